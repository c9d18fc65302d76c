"""Shared pieces for components: the position interface and attention masks.

A position component answers three questions for attention; the defaults say "nothing":
    embed(pos)           -> (T, C) added to token embeddings, or None
    rotate(q, k, pos)    -> q, k rotated in place of position (B, H, T, D each)
    bias(n_head, q_pos, k_pos) -> additive attention bias (H, Tq, Tk), or None
"""
from torch import nn


class Position(nn.Module):
    def __init__(self, cfg):
        super().__init__()

    def embed(self, pos):
        return None

    def rotate(self, q, k, q_pos, k_pos):
        return q, k

    def bias(self, n_head, q_pos, k_pos):
        return None


def causal_mask(q_pos, k_pos, window: int = 0):
    """Boolean (Tq, Tk) mask, True where a query may attend; `window` > 0 limits look-back."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window > 0:
        allowed = allowed & (q_pos[:, None] - k_pos[None, :] < window)
    return allowed


def attention_mask(q_pos, k_pos, bias, allowed):
    """Combine a boolean mask (Tq, Tk) and an optional additive bias (H, Tq, Tk) for SDPA."""
    if bias is None:
        return allowed
    return bias.masked_fill(~allowed, float("-inf"))


def residual_linear(n_in: int, n_out: int, bias: bool) -> nn.Linear:
    """A projection back into the residual stream; GPT init scales it by 1/sqrt(2 * n_layer)."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    layer.is_residual_proj = True
    return layer
