"""GELU MLP: n_embd -> mlp_ratio * n_embd -> n_embd (GPT-2's feed-forward)."""
import torch.nn.functional as F
from torch import nn

from foundry.modules.base import residual_linear


class GeluMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.n_embd)
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = residual_linear(hidden, cfg.n_embd, cfg.bias)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


ACTIVATIONS = {"gelu": GeluMLP}
