"""Attention masks shared by the attention components.

    causal_mask(q_pos, k_pos, window=0)        -> (Tq, Tk) bool, True where a query may attend
    attention_mask(q_pos, k_pos, bias, allowed) -> what SDPA takes: the bool mask, or the bias
                                                   (H, Tq, Tk) with -inf where not allowed
"""


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
