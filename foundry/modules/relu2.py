"""Squared-ReLU MLP (Primer): relu(x) ** 2 between the two projections."""
import torch.nn.functional as F
from torch import nn

from foundry.modules.base import residual_linear


class Relu2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.n_embd)
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = residual_linear(hidden, cfg.n_embd, cfg.bias)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.c_proj(F.relu(self.c_fc(x)).square())


ACTIVATIONS = {"relu2": Relu2MLP}
