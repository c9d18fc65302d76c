"""The fused model: the base expert's embedding, a stack of MoL layers, the base's final norm and head.

    model = FusedModel(cfg, spec, devices)          # cfg.model: the base's, n_layer = fused layers
    logits = model(idx)                             # (B, T) -> (B, T, vocab), as the GPT
    out = model.generate(idx, 50, temperature=0.8)  # the GPT's decoding loop, KV caches per layer
    model.aux_loss(), model.ffn_stats()             # router losses, per-layer usage: the trainer's hooks
    model.optimizer_groups(train_lr)                # adapters and routers, each at its own lr

The interface is the GPT's (cfg, blocks, forward(idx, caches, start), generate, num_params,
flops_per_token, aux_loss, ffn_stats), so the trainer, foundry eval and foundry sample take either.
Frozen parts (embedding, head, final norm, expert blocks) are built on the meta device and get
their tensors from a checkpoint (build.py), as do the experts' position components; adapters and routers are built
for real, initialised so that step 0 reproduces the base expert exactly. `frozen_sources()` is the
table of every frozen tensor's name in its expert's checkpoint. Frozen modules always run in eval
mode (no dropout): only adapters and routers train.
"""
from __future__ import annotations

import torch
from torch import nn

from foundry.fusion.layer import ExpertPath, MoLLayer
from foundry.fusion.routers import ROUTERS
from foundry.model.gpt import GPT, Block
from foundry.model.modules import NORMS, POSITIONS


def _labels(layer) -> list[str]:
    """Path names within a layer: the expert, or expert.FIRST-LAST when it appears more than once."""
    names = [s.expert for s in layer.sources]
    return [n if names.count(n) == 1 else f"{n}.{s.layer_range[0]}-{s.layer_range[1]}"
            for n, s in zip(names, layer.sources)]


class FusedModel(nn.Module):
    generate = GPT.generate  # the same loop: it needs only forward(idx, caches, start), blocks and cfg

    def __init__(self, cfg, spec, devices: dict):
        """`devices`: {expert name: torch.device} for every used expert, and "main" for the
        embedding, head and routers."""
        super().__init__()
        self.cfg, self.spec, self.main_device = cfg.model, spec, torch.device(devices["main"])
        self.devices = {name: torch.device(devices[name]) for name in spec.used_experts()}
        base, width = spec.experts[spec.base].model, cfg.model.n_embd
        with torch.device("meta"):
            self.wte = nn.Embedding(cfg.model.vocab_size, width)
            self.norm_f = NORMS[base.norm](width, base)
            self.lm_head = nn.Linear(width, cfg.model.vocab_size, bias=False)
        self.positions = nn.ModuleDict()  # built for real (small; some compute tables at construction)
        for name in spec.used_experts():
            with torch.device(self.devices[name]):
                self.positions[name] = POSITIONS[spec.experts[name].model.position](spec.experts[name].model)
        self.blocks = nn.ModuleList()
        for layer in spec.layers:
            paths = []
            for label, source in zip(_labels(layer), layer.sources):
                expert_cfg = spec.experts[source.expert].model
                with torch.device("meta"):
                    blocks = [Block(expert_cfg, i) for i in range(*source.layer_range)]
                with torch.device(self.devices[source.expert]):
                    paths.append(ExpertPath(label, source.expert, expert_cfg, source.layer_range, width,
                                            layer.adapter, blocks))
            with torch.device(self.main_device):
                router = ROUTERS[layer.router.kind](width, _labels(layer), layer.init, layer.router)
            self.blocks.append(MoLLayer(paths, router))
        for module in self.frozen_modules():
            module.requires_grad_(False)

    # ---- structure
    def frozen_modules(self) -> list[nn.Module]:
        paths = [path.blocks for layer in self.blocks for path in layer.paths]
        return [self.wte, self.positions, self.norm_f, self.lm_head, *paths]

    def adapter_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.blocks for path in layer.paths for a in path.adapters() for p in a.parameters()]

    def router_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.blocks for p in layer.router.parameters()]

    def optimizer_groups(self, train_lr: float) -> list[tuple[list, float]]:
        """[(params, lr scale)]: adapters and routers, at fusion.lr over the schedule's train.lr."""
        lr = self.spec.lr
        return [(self.adapter_parameters(), (lr.adapters or train_lr) / train_lr),
                (self.router_parameters(), (lr.routers or train_lr) / train_lr)]

    def frozen_sources(self) -> dict[str, tuple[str, str]]:
        """{tensor name here: (expert, tensor name in the expert's checkpoint)} for every frozen tensor."""
        base = self.spec.base
        table = {f"{part}.{n}": (base, f"{part}.{n}") for part in ("wte", "norm_f", "lm_head")
                 for n in getattr(self, part).state_dict()}
        for name, position in self.positions.items():
            table.update({f"positions.{name}.{n}": (name, f"position.{n}") for n in position.state_dict()})
        for i, layer in enumerate(self.blocks):
            for p, path in enumerate(layer.paths):
                for j, block in enumerate(path.blocks):
                    table.update({f"blocks.{i}.paths.{p}.blocks.{j}.{n}": (path.expert, f"blocks.{path.first + j}.{n}")
                                  for n in block.state_dict()})
        return table

    def device_of(self, name: str) -> torch.device:
        """Where the tensor `name` lives: its expert's device inside a path or position, else main."""
        parts = name.split(".")
        if parts[0] == "positions":
            return self.devices[parts[1]]
        if parts[0] == "blocks" and parts[2] == "paths":
            return self.devices[self.blocks[int(parts[1])].paths[int(parts[3])].expert]
        return self.main_device

    def tie(self) -> None:
        """The base's tied head shares the embedding's tensor, as in its GPT."""
        if self.spec.experts[self.spec.base].model.tie_embeddings:
            self.lm_head.weight = self.wte.weight

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    # ---- forward
    def forward(self, idx, caches=None, start=0):
        """idx (B, T) token ids -> logits (B, T, vocab). `caches`: one dict per fused layer."""
        T = idx.shape[1]
        if start + T > self.cfg.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.cfg.block_size}")
        x = self.wte(idx.to(self.wte.weight.device)).float()  # (B, T, D); positions are added by each path
        for i, layer in enumerate(self.blocks):
            x = layer(x, self.positions, caches[i] if caches is not None else None, start)
        return self.lm_head(self.norm_f(x.to(self.lm_head.weight.dtype)))

    def aux_loss(self):
        """Sum of the routers' entropy and balance losses from the last forward pass."""
        losses = [layer.router.aux_loss for layer in self.blocks if layer.router.aux_loss is not None]
        return sum(losses) if losses else None

    def ffn_stats(self) -> dict:
        """{"layer_I/NAME": detached scalar}: each router's usage per expert, entropy, balance, gate."""
        return {f"layer_{i}/{k}": v for i, layer in enumerate(self.blocks) for k, v in layer.router.stats.items()}

    def row_usage(self) -> list:
        """Per layer, (B, E) combined weights averaged over each row of the last forward pass."""
        return [layer.router.row_usage for layer in self.blocks]

    # ---- size
    def num_params(self, non_embedding=False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + sum(pos.embedding_params() for pos in self.positions.values())
        return n

    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 N for trained weights, 4 N for frozen ones (forward and the
        backward to their inputs, no weight gradient), 6 L T C for each expert block's attention."""
        trained = self.trainable_params()
        frozen = self.num_params(non_embedding=True) - trained + (self.lm_head.weight.numel() if self.spec.experts[
            self.spec.base].model.tie_embeddings else 0)
        attention = sum(6 * self.cfg.block_size * path.blocks[0].cfg.n_embd * len(path.blocks)
                        for layer in self.blocks for path in layer.paths)
        return int(6 * trained + 4 * frozen + attention)
