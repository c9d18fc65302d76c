"""Rotary position embeddings (RoFormer): rotate query/key channel pairs by position.

Uses the half-split layout (as LLaMA in transformers): channel i pairs with i + D/2, so
Hugging Face Llama, Mistral and Qwen2 q/k weights load without a permutation.
`model.rope_base` is transformers' `rope_theta`. Subclasses change only `inv_freq`
(llama3_rope.py rescales the low frequencies).
"""
import torch

from foundry.model.protocols import Position


def rope_inv_freq(dim, base, device=None):
    """The dim/2 rotation frequencies base^(-2i/dim), as transformers computes them."""
    return 1.0 / (base ** (torch.arange(0, dim, 2, device=device).float() / dim))


def rope_tables(dim, positions, base, inv_freq=None):
    """cos, sin of shape (..., T, dim) for the half-split layout; positions (..., T)."""
    if inv_freq is None:
        inv_freq = rope_inv_freq(dim, base, positions.device)
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

    def inv_freq(self, dim, device):  # (dim/2,)
        return rope_inv_freq(dim, self.base, device)

    def rotate(self, q, k, q_pos, k_pos):
        inv_freq = self.inv_freq(q.shape[-1], q.device)
        cos, sin = rope_tables(q.shape[-1], q_pos, self.base, inv_freq)
        kcos, ksin = (cos, sin) if k_pos is q_pos else rope_tables(k.shape[-1], k_pos, self.base, inv_freq)
        return apply_rope(q, cos, sin), apply_rope(k, kcos, ksin)

    @staticmethod
    def check(cfg):
        if cfg.model.head_dim % 2:
            return f"rope rotates channel pairs; head_dim={cfg.model.head_dim} (n_embd / n_head) must be even"
        return None


POSITIONS = {"rope": RotaryPosition}
