"""One fused layer (MoL): router -> expert paths -> adapters -> weighted combination.

    path = ExpertPath("python", "python", expert_cfg, [0, 2], width=96, adapter_settings, blocks)
    layer = MoLLayer(paths, router)
    h = layer(h, positions, cache, start)      # (B, T, width) -> (B, T, width)

An expert path is a run of one expert's frozen blocks, [first, last) of its model, between an
input adapter (fused width -> the expert's) and an output adapter (back). A path that starts at
the expert's block 0 adds the expert's own position embedding after the input adapter, where the
expert's GPT adds it; its blocks get the expert's own position component (rope, alibi, ...), so
every expert keeps the position handling it was trained with. A path runs on its expert's device
and in its weights' dtype; hidden states cross devices at the adapters. Every path runs on every
token (its attention needs the whole sequence, and its KV cache must stay complete); the router's
weights, sparse for the token router, decide what each contributes. The output's value is the
gated combination (routers.py); its gradient is also that of the router's own mixture, so the
router and the other paths' adapters learn from the first step, while the output stays exactly the
init path until the gate opens (a straight-through estimator: value of one, gradient of both). The
init path's adapters learn from the true output only.
"""
from __future__ import annotations

import torch
from torch import nn

from foundry.fusion.adapters import ADAPTERS


class ExpertPath(nn.Module):
    def __init__(self, label: str, expert: str, expert_cfg, layer_range, width: int, adapter_settings, blocks):
        super().__init__()
        self.label, self.expert = label, expert
        self.first, self.last = layer_range
        kind = ADAPTERS[adapter_settings.kind]
        self.adapter_in = kind(width, expert_cfg.n_embd, adapter_settings)
        self.blocks = nn.ModuleList(blocks)  # the expert's frozen Blocks first..last-1
        self.adapter_out = kind(expert_cfg.n_embd, width, adapter_settings)
        self.embeds_positions = self.first == 0

    def forward(self, h, position, cache=None, start=0):  # (B, T, width) -> (B, T, width)
        frozen = next(self.blocks.parameters())
        x = self.adapter_in(h.to(frozen.device)).to(frozen.dtype)  # (B, T, C_expert)
        if self.embeds_positions:
            emb = position.embed(torch.arange(start, start + h.shape[1], device=x.device))
            if emb is not None:
                x = x + emb
        for j, block in enumerate(self.blocks):
            x = block(x, position, cache[j] if cache is not None else None, start)
        return self.adapter_out(x.to(h.dtype)).to(h.device)

    def adapters(self) -> list[nn.Module]:
        return [self.adapter_in, self.adapter_out]


class MoLLayer(nn.Module):
    def __init__(self, paths: list[ExpertPath], router):
        super().__init__()
        self.paths = nn.ModuleList(paths)
        self.router = router

    def forward(self, h, positions, cache=None, start=0):  # (B, T, D) -> (B, T, D)
        router_cache = cache.setdefault("router", {}) if cache is not None else None
        combined, weights = self.router(h, router_cache, start)  # (B, T, E) each
        out = mixture = 0.0
        for e, path in enumerate(self.paths):
            path_cache = cache.setdefault(f"path_{e}", [{} for _ in path.blocks]) if cache is not None else None
            y = path(h, positions[path.expert], path_cache, start)  # (B, T, D)
            out = out + combined[..., e:e + 1].to(y.dtype) * y
            # the init path's adapters learn from the true output only, the others also from the mixture
            mixture = mixture + weights[..., e:e + 1].to(y.dtype) * (y.detach() if e == self.router.init_expert else y)
        # the value is the gated combination; gradients also flow as from the router's own mixture
        return out + (mixture - mixture.detach())
