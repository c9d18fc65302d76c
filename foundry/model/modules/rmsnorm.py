"""RMSNorm: scale by the root mean square, no centering, no bias; eps = model.norm_eps or 1e-6."""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import Norm


class RMSNorm(Norm):
    default_eps = 1e-6

    def __init__(self, dim, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = cfg.norm_eps or self.default_eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


NORMS = {"rmsnorm": RMSNorm}
