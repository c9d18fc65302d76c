"""The `fusion` training objective: next-token prediction on a mixture of sources, scored per source.

    objective = FusionObjective(cfg, device)       # cfg: a fused config (fusion.mixture, or data.source)
    loss = objective.micro_loss(model, rng)        # rows drawn from the sources by their weights
    objective.evaluate(model)                      # any model, a GPT expert as well as the fused one:
    # {"val_loss", "val_bpb": the mixture, "val_loss/NAME", "val_bpb/NAME": each source}
    objective.stats()                              # {"NAME/layer_I/usage_EXPERT": ...} for the last batch

Each source is loaded with the config's data settings (split, tokenizer, cache) and must reproduce
the experts' tokenizer exactly (byte, or an imported model's hf tokenizer). A micro-batch draws how
many rows each source gets from a multinomial over the weights (the run's seeded generator, so a
resumed run draws the same). The mixture's validation numbers are the weighted mean of the
sources' (each on its own fixed slice, as foundry.evaluation computes it).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from foundry.data import get_batch, load_dataset
from foundry.errors import UserError
from foundry.evaluation import val_metrics, val_slice
from foundry.fusion.experts import expert_tokenizer
from foundry.fusion.model import FusedModel
from foundry.fusion.spec import MixtureSource, parse_fused
from foundry.training.losses import LOSSES


class FusionObjective:
    progress = 0.0  # set by the loop; the mixture does not follow a curriculum
    def __init__(self, cfg, device, tokenizer=None):
        spec = parse_fused(cfg)
        self.cfg, self.device = cfg, device
        mixture = spec.mixture or {"data": MixtureSource(cfg.data.source, 1.0)}
        self.names = list(mixture)
        weights = np.array([mixture[n].weight for n in self.names], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.tokenizer = tokenizer or expert_tokenizer(spec.experts[spec.base].path)
        self.datasets = {}
        for name in self.names:
            ds = load_dataset(dataclasses.replace(cfg.data, source=mixture[name].source))
            if ds.tokenizer.to_json() != self.tokenizer.to_json():
                raise UserError(f"fusion.mixture.{name}: data.tokenizer={cfg.data.tokenizer} does not reproduce the "
                                f"experts' {self.tokenizer.name} tokenizer (fusion needs byte or hf tokenizers)")
            for split in ("train", "val"):
                if len(getattr(ds, split)) <= cfg.model.block_size + 1:
                    raise UserError(f"fusion.mixture.{name}: the {split} split is too short for "
                                    f"model.block_size={cfg.model.block_size}")
            self.datasets[name] = ds
        self.loss_fn = LOSSES[cfg.train.loss](cfg.train)
        self.meta = {"mixture": {n: {"weight": float(w), **self.datasets[n].meta}
                                 for n, w in zip(self.names, self.weights)}}
        self.description = ", ".join(f"{n}: {len(d.train):,} train / {len(d.val):,} val tokens"
                                     for n, d in self.datasets.items())
        self.model, self.rows = None, None

    def start(self, model):
        self.model = model

    def parameters(self) -> list:
        return []   # the fused model's adapters and routers are the model's own

    def shard(self, rank: int, world_size: int) -> None:
        raise UserError(f"train.strategy: a fused model trains in one process (its experts are placed per "
                        f"device inside it), not {world_size} under torchrun; run `foundry fuse` without torchrun")

    def micro_loss(self, model, rng):
        counts = rng.multinomial(self.cfg.train.batch_size, self.weights)
        xs, ys, rows = [], [], []
        for index, (name, count) in enumerate(zip(self.names, counts)):
            if count:
                x, y = get_batch(self.datasets[name].train, int(count), self.cfg.model.block_size, rng)
                xs.append(x)
                ys.append(y)
                rows += [index] * int(count)
        x, y = torch.cat(xs).to(self.device), torch.cat(ys).to(self.device)  # (B, T) each
        self.rows = torch.tensor(rows)
        return self.loss_fn(model(x), y)

    def stats(self) -> dict:
        """Each layer's usage per expert on each source's rows of the last micro-batch."""
        if not isinstance(self.model, FusedModel) or self.rows is None:
            return {}
        out = {}
        for i, (layer, usage) in enumerate(zip(self.model.blocks, self.model.row_usage())):
            for index, name in enumerate(self.names):
                mine = self.rows.to(usage.device) == index
                if mine.any():
                    share = usage[mine].mean(dim=0)  # (E,)
                    out.update({f"{name}/layer_{i}/usage_{label}": share[e]
                                for e, label in enumerate(layer.router.names)})
        return out

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        metrics, loss, bpb = {}, 0.0, 0.0
        for name, weight in zip(self.names, self.weights.tolist()):
            ds = self.datasets[name]
            tokens, per_token = val_slice(ds.val, self.tokenizer.decode, self.cfg.eval.bytes)   # eval.bytes each
            m = val_metrics(model, tokens, self.cfg, per_token, self.device)
            metrics[f"val_loss/{name}"], metrics[f"val_bpb/{name}"] = m["val_loss"], m["val_bpb"]
            loss, bpb = loss + weight * m["val_loss"], bpb + weight * m["val_bpb"]
        return {"val_loss": loss, "val_bpb": bpb, **metrics}
