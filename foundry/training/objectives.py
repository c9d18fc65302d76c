"""What a training step optimizes: next-token prediction on a token stream, DPO on pairs, or
distillation from a teacher.

    objective = build_objective(cfg, device, tokenizer=None)
    loss = objective.micro_loss(model, rng)        # one micro-batch, differentiable
    metrics = objective.evaluate(model)            # {"val_loss": ..., ...} on a fixed slice

`train.loss` picks the loss and the loss names its objective (`objective` on the loss class,
registry OBJECTIVES at the end): `next_token`, or `preference` (dpo), which trains on
{prompt, chosen, rejected} JSONL records against a frozen copy of the starting weights.
`train.distill.teacher` (or `.cache`) set makes it `distill`: next-token batches scored against a
frozen teacher's soft targets as well (foundry/distill/).
Each objective: start(model), micro_loss(model, rng), evaluate(model), stats() to log,
parameters(): trainable tensors of its own beside the model's (distillation's projections), a
`progress` attribute (share of the budget done, 0..1) that the loop sets before each step, so a
curriculum (`data.curriculum`) can change what batches contain as training goes on, and
shard(rank, world_size) under several processes (training/parallel.py): every rank draws the same
global batch from the shared generator and trains on its own rows of it; evaluation is split
likewise where it can be, and the loop averages the ranks' results.
A fused model (`fusion:` section, foundry/fusion/) trains on `fusion`: its mixture of sources.
"""
from __future__ import annotations

import hashlib

import torch

from foundry.data import build_tokenizer, load_dataset, load_preference_pairs
from foundry.data.curriculum import NEEDS_REFERENCE, available_share
from foundry.data.packing import PACKINGS
from foundry.errors import UserError
from foundry.evaluation import val_metrics, val_slice
from foundry.fusion.objective import FusionObjective
from foundry.hardware import autocast
from foundry.training.losses import LOSSES
from foundry.training.parallel import rank_rows, val_share


class NextToken:
    progress = 0.0
    rows, ranks = slice(None), (0, 1)   # this process's rows of every batch; (rank, world size)

    def __init__(self, cfg, device, tokenizer=None):
        self.cfg, self.device = cfg, device
        reference = None
        if cfg.data.curriculum.by in NEEDS_REFERENCE:
            from foundry.training.reference import Reference
            reference = Reference(cfg.data.curriculum.reference, device=str(device))
        self.data = load_dataset(cfg.data, reference=reference)
        if tokenizer is not None and tokenizer.to_json() != self.data.tokenizer.to_json():
            hint = (f" (an {tokenizer.name} tokenizer: data.tokenizer=hf data.tokenizer_path={cfg.train.init_from})"
                    if tokenizer.name == "hf" else "")
            raise UserError("train.init_from: the checkpoint's tokenizer differs from data.tokenizer's "
                            f"on data.source; fine-tune with the same tokenizer{hint}")
        self.tokenizer, self.meta = self.data.tokenizer, self.data.meta
        self.loss_fn = LOSSES[cfg.train.loss](cfg.train)
        for split in ("train", "val"):
            n = len(getattr(self.data, split))
            if n <= cfg.model.block_size + 1:
                raise UserError(f"data: the {split} split has {n} tokens, too few for "
                                f"model.block_size={cfg.model.block_size}")
        self.sampler = PACKINGS[cfg.data.packing](self.data, cfg.model.block_size, cfg.data.curriculum.by != "none")
        if cfg.data.packing != "random":
            self.meta = dict(self.meta, packing=self.sampler.stats)  # the waste, in the run summary
        self.description = f"{len(self.data.train):,} train / {len(self.data.val):,} val tokens"
        try:   # the fixed slice of validation text every variant is scored on (foundry/evaluation.py)
            self.val_tokens, self.val_bytes_per_token = val_slice(self.data.val, self.tokenizer.decode,
                                                                  cfg.eval.bytes)
        except ValueError as e:
            raise UserError(f"eval.bytes: {e}") from None

    def start(self, model):
        pass

    def shard(self, rank: int, world_size: int) -> None:
        self.rows, self.ranks = rank_rows(self.cfg.train.batch_size, rank, world_size), (rank, world_size)

    def stats(self) -> dict:
        return {}

    def parameters(self) -> list:
        return []

    def batch(self, rng):
        """(x, y, doc_ids or None) of one micro-batch at the current progress (the curriculum's share)."""
        share = available_share(self.cfg.data.curriculum, self.progress)
        return self.sampler.batch(self.cfg.train.batch_size, rng, share)

    def micro_loss(self, model, rng):
        x, y, doc_ids = (t[self.rows].to(self.device, non_blocking=True) if t is not None else None
                         for t in self.batch(rng))
        return self.loss_fn(model(x) if doc_ids is None else model(x, doc_ids=doc_ids), y)

    def evaluate(self, model):
        tokens, block = self.val_tokens, self.cfg.model.block_size
        if (len(tokens) - 1) % block == 0:   # whole windows only: each rank scores an equal run of them
            tokens = val_share(tokens, block, (len(tokens) - 1) // block, *self.ranks)
        return val_metrics(model, tokens, self.cfg, self.val_bytes_per_token, self.device)


class Preference:
    """DPO: the reference is the model as it stands when training starts (after init_from).
    Under several processes each rank trains on its pairs of the batch and evaluates all of them."""
    progress = 0.0
    rows = slice(None)

    def __init__(self, cfg, device, tokenizer=None):
        from foundry.training import dpo
        self.cfg, self.device, self.dpo = cfg, device, dpo
        pairs = load_preference_pairs(cfg.data.source)
        n_val = max(1, int(len(pairs) * cfg.data.val_fraction))
        if len(pairs) - n_val < 1:
            raise UserError(f"{cfg.data.source}: {len(pairs)} pairs are too few to hold out validation pairs")
        self.train_pairs, self.val_pairs = pairs[:-n_val], pairs[-n_val:]
        text = "\n".join(p[k] for p in self.train_pairs for k in ("prompt", "chosen", "rejected"))
        self.tokenizer = tokenizer or build_tokenizer(cfg.data.tokenizer, text, cfg.data.bpe_vocab_size)
        self.loss_fn = LOSSES[cfg.train.loss](cfg.train)
        self.meta = {"source": cfg.data.source, "kind": "preference pairs", "train_pairs": len(self.train_pairs),
                     "val_pairs": n_val, "source_hash": hashlib.sha256(text.encode()).hexdigest()[:16]}
        self.description = f"{len(self.train_pairs):,} train / {n_val:,} val preference pairs"
        self.reference = None

    def start(self, model):
        self.reference = self.dpo.frozen_reference(model)

    def shard(self, rank: int, world_size: int) -> None:
        if len(self.train_pairs) < self.cfg.train.batch_size:
            raise UserError(f"train.batch_size={self.cfg.train.batch_size}: more than the {len(self.train_pairs)} "
                            f"training pairs, so {world_size} processes cannot split a batch")
        self.rows = rank_rows(self.cfg.train.batch_size, rank, world_size)

    def parameters(self) -> list:
        return []

    def stats(self) -> dict:
        """The DPO loss's reward margin and accuracy on the last micro-batch, for the logs."""
        return dict(self.loss_fn.stats)

    def micro_loss(self, model, rng):
        batch = self.dpo.sample_pair_batch(self.train_pairs, self.tokenizer, self.cfg.train.batch_size,
                                           self.cfg.model.block_size, rng, self.device, self.rows)
        with torch.no_grad():
            ref_logits = self.reference(batch["idx"])
        return self.loss_fn(model(batch["idx"]), batch["targets"], ref_logits)

    @torch.no_grad()
    def evaluate(self, model):
        was_training = model.training
        model.eval()
        batch = self.dpo.pair_batch(self.val_pairs, self.tokenizer, self.cfg.model.block_size, self.device)
        with autocast(self.device, self.cfg):
            loss, margin, accuracy = self.dpo.dpo_step(model, self.reference, batch, self.cfg.train.dpo_beta)
        model.train(was_training)
        return {"val_loss": loss.item(), "val_reward_margin": margin.item(), "val_reward_accuracy": accuracy.item()}


class Distill(NextToken):
    """Next-token batches; the loss mixes train.loss on the labels with a teacher's soft targets."""

    def __init__(self, cfg, device, tokenizer=None):
        super().__init__(cfg, device, tokenizer)
        from foundry.distill.distiller import Distiller
        self.distiller = Distiller(cfg, device, self.data, self.loss_fn)

    def start(self, model):
        self.distiller.start(model)

    def stats(self) -> dict:
        return dict(self.distiller.stats)

    def parameters(self) -> list:
        return self.distiller.parameters()

    def micro_loss(self, model, rng):
        # this process's rows, on the CPU: the cache looks windows up by their tokens
        x, y, doc_ids = (t[self.rows] if t is not None else None for t in self.batch(rng))
        return self.distiller(model, x, y, doc_ids)


def build_objective(cfg, device, tokenizer=None):
    """The objective the loss asks for (`Loss.objective`), `fusion` for a fused model, or `distill`
    when train.distill names a teacher or a cache, from OBJECTIVES."""
    if cfg.model_kind == "fusion":
        name = "fusion"
    elif cfg.train.distill.teacher or cfg.train.distill.cache:
        name = "distill"
    else:
        name = LOSSES[cfg.train.loss].objective
    return OBJECTIVES[name](cfg, device, tokenizer)


OBJECTIVES = {"next_token": NextToken, "preference": Preference, "distill": Distill, "fusion": FusionObjective}
