"""The dense feed-forward: one MLP of the configured activation (model.activation)."""
from torch import nn


class DenseFFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        from foundry.modules import ACTIVATIONS
        self.mlp = ACTIVATIONS[cfg.activation](cfg)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.mlp(x)


FFNS = {"dense": DenseFFN}
