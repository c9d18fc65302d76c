"""GLU MLP (Dauphin et al.): sigmoid(x W_gate) * (x W_up), then W_down.

The hidden width is 2/3 of mlp_ratio * n_embd so the parameter count matches a GELU MLP
(as swiglu.py, which gates with SiLU instead of a sigmoid).
"""
import torch
from torch import nn

from foundry.modules.base import residual_linear


class GLUMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = int(2 * cfg.mlp_ratio * cfg.n_embd / 3)
        self.gate_up = nn.Linear(cfg.n_embd, 2 * hidden, bias=cfg.bias)
        self.c_proj = residual_linear(hidden, cfg.n_embd, cfg.bias)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (B, T, hidden) each
        return self.c_proj(torch.sigmoid(gate) * up)


ACTIVATIONS = {"glu": GLUMLP}
