"""Rotary position embeddings (RoFormer): rotate query/key channel pairs by position.

Uses the half-split layout (as LLaMA in transformers): channel i pairs with i + D/2.
"""
import torch

from foundry.model.protocols import Position


def rope_tables(dim, positions, base):
    """cos, sin of shape (..., T, dim) for the half-split layout; positions (..., T)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=positions.device).float() / dim))
    angles = positions.float()[..., None] * inv_freq  # (..., T, dim/2)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """x (..., T, D) with cos/sin (T, D)."""
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)


class RotaryPosition(Position):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.base = cfg.rope_base

    def rotate(self, q, k, q_pos, k_pos):
        cos, sin = rope_tables(q.shape[-1], q_pos, self.base)
        kcos, ksin = (cos, sin) if k_pos is q_pos else rope_tables(k.shape[-1], k_pos, self.base)
        return apply_rope(q, cos, sin), apply_rope(k, kcos, ksin)

    @staticmethod
    def check(cfg):
        if cfg.model.head_dim % 2:
            return f"rope rotates channel pairs; head_dim={cfg.model.head_dim} (n_embd / n_head) must be even"
        return None


POSITIONS = {"rope": RotaryPosition}
