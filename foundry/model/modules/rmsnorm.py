"""RMSNorm: scale by the root mean square, no centering, no bias."""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import Norm


class RMSNorm(Norm):
    def __init__(self, dim, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = 1e-6

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


NORMS = {"rmsnorm": RMSNorm}
