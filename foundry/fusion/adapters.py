"""Adapters: map a hidden state between the fused model's width and an expert's (registry ADAPTERS).

Each adapter is a skip path plus a learned correction whose last projection starts at zero, so a
freshly built adapter *is* its skip path and the fused model starts as the base expert exactly:

    linear       y = skip(x) + proj(norm(x))                              (projection + norm + residual)
    bottleneck   y = skip(x) + up(dropout(act(down(norm(x)))))            (Houlsby-style, width r)

skip(x) is x when the widths are equal, else the rectangular identity: the first min(d_in, d_out)
channels copied, the rest zero. The norm comes first (pre-norm) so the zero-initialised output
projection receives well-scaled inputs from the first step on.

    adapter = ADAPTERS["bottleneck"](64, 96, settings)   # settings: fusion.spec.AdapterSettings
    y = adapter(x)                                       # (..., 64) -> (..., 96)
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from foundry.config import ModelConfig
from foundry.model.modules import NORMS


class Adapter(nn.Module):
    def __init__(self, d_in: int, d_out: int, settings):
        super().__init__()
        self.d_in, self.d_out = d_in, d_out
        self.norm = NORMS[settings.norm](d_in, ModelConfig())

    def skip(self, x):  # (..., d_in) -> (..., d_out)
        if self.d_in == self.d_out:
            return x
        if self.d_out < self.d_in:
            return x[..., :self.d_out]
        return F.pad(x, (0, self.d_out - self.d_in))

    def correction(self, x):  # (..., d_in) normed -> (..., d_out)
        raise NotImplementedError

    def forward(self, x):
        return self.skip(x) + self.correction(self.norm(x))


class LinearAdapter(Adapter):
    def __init__(self, d_in, d_out, settings):
        super().__init__(d_in, d_out, settings)
        self.proj = nn.Linear(d_in, d_out, bias=False)
        nn.init.zeros_(self.proj.weight)

    def correction(self, x):
        return self.proj(x)


class BottleneckAdapter(Adapter):
    def __init__(self, d_in, d_out, settings):
        super().__init__(d_in, d_out, settings)
        self.down = nn.Linear(d_in, settings.bottleneck)
        self.drop = nn.Dropout(settings.dropout)
        self.up = nn.Linear(settings.bottleneck, d_out)
        nn.init.normal_(self.down.weight, std=d_in ** -0.5)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def correction(self, x):
        return self.up(self.drop(F.gelu(self.down(x))))


ADAPTERS = {"linear": LinearAdapter, "bottleneck": BottleneckAdapter}
