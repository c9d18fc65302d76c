"""The MLPs that `model.activation` names: one plain MLP and one gated MLP, each with its function.

    MLP       (GPT-2, Primer):  c_proj(act(c_fc(x)))               gelu (GPT-2's tanh form), gelu_exact
                                                                   (erf, as nanoGPT), relu2 (relu squared)
    GatedMLP  (GLU family):     c_proj(gate_fn(x W_g) * (x W_u))    glu (sigmoid), swiglu (silu, LLaMA)

gelu_exact is the exact erf GELU (torch's and nanoGPT's default, Hugging Face's "gelu"); on CPUs its
kernel is faster than the tanh approximation that `gelu` keeps for GPT-2 ("gelu_new").
A gated MLP has three matrices, so its hidden width is 2/3 of mlp_ratio * n_embd: both kinds then
hold about 2 * mlp_ratio * n_embd^2 weights. `model.mlp_hidden` > 0 sets the width exactly instead
(Hugging Face's intermediate_size). W_g and W_u are one fused `gate_up` projection, [gate; up].
"""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import MLP as MLPKind


def hidden_width(cfg, gated: bool) -> int:
    """The MLP's hidden width: model.mlp_hidden, else mlp_ratio * n_embd (2/3 of it when gated)."""
    if cfg.mlp_hidden:
        return cfg.mlp_hidden
    return int(2 * cfg.mlp_ratio * cfg.n_embd / 3) if gated else int(cfg.mlp_ratio * cfg.n_embd)


class MLP(MLPKind):
    activation = None  # a function (B, T, hidden) -> (B, T, hidden), set by each registered kind

    def __init__(self, cfg):
        super().__init__()
        hidden = hidden_width(cfg, gated=False)
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.c_proj(type(self).activation(self.c_fc(x)))

    def residual_projections(self):
        return [self.c_proj]


class GatedMLP(MLPKind):
    gate = None  # the gate's function, set by each registered kind

    def __init__(self, cfg):
        super().__init__()
        hidden = hidden_width(cfg, gated=True)
        self.gate_up = nn.Linear(cfg.n_embd, 2 * hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (B, T, hidden) each
        return self.c_proj(type(self).gate(gate) * up)

    def residual_projections(self):
        return [self.c_proj]


def _tanh_gelu(x):
    return F.gelu(x, approximate="tanh")


def _relu_squared(x):
    return F.relu(x).square()


class GeluMLP(MLP):
    activation = staticmethod(_tanh_gelu)


class ExactGeluMLP(MLP):
    activation = staticmethod(F.gelu)


class Relu2MLP(MLP):
    activation = staticmethod(_relu_squared)


class GLUMLP(GatedMLP):
    gate = staticmethod(torch.sigmoid)


class SwiGLUMLP(GatedMLP):
    gate = staticmethod(F.silu)


MLPS = {"gelu": GeluMLP, "gelu_exact": ExactGeluMLP, "relu2": Relu2MLP, "glu": GLUMLP, "swiglu": SwiGLUMLP}
