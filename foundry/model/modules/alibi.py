"""ALiBi (Press et al., 2022): no position embedding; each head adds -slope * distance to its
attention scores, with head slopes a geometric sequence. Select with `model.position: alibi`.

The bias reaches attention through Position.bias, so any attention that honours it (mha, gqa,
sliding_window, sparse) works; mla takes positions only through its decoupled rope key and
rejects alibi at config load.
"""
import math

import torch

from foundry.model.protocols import Position


def alibi_slopes(n_head: int) -> list[float]:
    """The paper's slopes: 2^(-8 i / n) for a power-of-two n; otherwise those of the nearest
    lower power of two, topped up with every other slope of the next power of two."""
    lower = 2 ** int(math.floor(math.log2(n_head)))
    slopes = [2 ** (-8 * (i + 1) / lower) for i in range(lower)]
    slopes += [2 ** (-8 * (2 * i + 1) / (2 * lower)) for i in range(n_head - lower)]
    return slopes


class ALiBiPosition(Position):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.slopes = alibi_slopes(cfg.n_head)

    def bias(self, n_head, q_pos, k_pos):  # (Tq,), (Tk,) -> (H, Tq, Tk); packed (B, 1, T) -> (B, H, T, T)
        slopes = torch.tensor(self.slopes, device=q_pos.device)  # (H,)
        distance = (q_pos[..., :, None] - k_pos[..., None, :]).clamp(min=0).float()  # (Tq, Tk); future is masked anyway
        return -slopes[:, None, None] * distance

    @staticmethod
    def check(cfg):
        if any("n_head" in settings for settings in cfg.model.layers.values()):
            return "alibi gives each of model.n_head heads its own slope; a per-layer n_head (model.layers) has none"
        return None


POSITIONS = {"alibi": ALiBiPosition}
