"""The dense feed-forward: one MLP of the configured activation (model.activation)."""
from foundry.model.protocols import FeedForward


class DenseFFN(FeedForward):
    def __init__(self, cfg):
        super().__init__()
        from foundry.model.modules import MLPS
        self.mlp = MLPS[cfg.activation](cfg)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.mlp(x)

    def residual_projections(self):
        return self.mlp.residual_projections()


FFNS = {"dense": DenseFFN}
