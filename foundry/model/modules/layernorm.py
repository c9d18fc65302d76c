"""LayerNorm with an optional bias (model.bias), as in GPT-2; eps = model.norm_eps or 1e-5."""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import Norm


class LayerNorm(Norm):
    default_eps = 1e-5

    def __init__(self, dim, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if cfg.bias else None
        self.eps = cfg.norm_eps or self.default_eps

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


NORMS = {"layernorm": LayerNorm}
