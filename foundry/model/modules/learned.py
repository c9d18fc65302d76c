"""Learned absolute position embeddings (GPT-2): one vector per position up to block_size."""
from torch import nn

from foundry.model.protocols import Position


class LearnedPosition(Position):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)

    def embed(self, pos):  # (T,) -> (T, C)
        return self.wpe(pos)

    def embedding_params(self) -> int:
        return self.wpe.weight.numel()


POSITIONS = {"learned": LearnedPosition}
