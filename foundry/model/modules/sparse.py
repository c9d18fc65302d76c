"""Fixed sparse attention (Child et al., 2019, "fixed" pattern): a query at position i sees
the keys j <= i that lie in its own block of `model.window` tokens (j // window == i // window),
plus "summary" columns, the last token of every `model.stride`-token span (j % stride == stride - 1).

    model: {attention: sparse, window: 16, stride: 8}

The pattern is a boolean (Tq, Tk) mask passed to SDPA, so it costs dense compute; it changes
what the model can see, not its speed. Keys/values may be grouped as in gqa (model.n_kv_head).
"""

from foundry.model.modules.gqa import GroupedQueryAttention
from foundry.model.modules.masks import attention_mask, sdpa


def sparse_mask(q_pos, k_pos, block: int, stride: int):
    """Boolean (Tq, Tk), True where query q_pos[i] may attend key k_pos[j]."""
    causal = k_pos[..., None, :] <= q_pos[..., :, None]
    same_block = (k_pos[..., None, :] // block) == (q_pos[..., :, None] // block)
    summary = (k_pos % stride == stride - 1)[..., None, :]
    return causal & (same_block | summary)


class SparseAttention(GroupedQueryAttention):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.block, self.stride = cfg.window, cfg.stride

    def attend(self, q, k, v, position, q_pos, k_pos, documents=None):
        """q (B, H, Tq, D), k/v (B, Hkv, Tk, D) -> (B, H, Tq, D); the pattern restarts per packed document."""
        bias = position.bias(self.n_head, q_pos, k_pos)  # (H, Tq, Tk) or None
        allowed = sparse_mask(q_pos, k_pos, self.block, self.stride)
        mask = attention_mask(q_pos, k_pos, bias, allowed if documents is None else allowed & documents.same)
        return sdpa(q, k, v, attn_mask=mask if bias is None else mask.to(q.dtype),
                                              dropout_p=self.dropout if self.training else 0.0,
                                              enable_gqa=self.n_kv != self.n_head)

    @staticmethod
    def check(cfg):
        m = cfg.model
        if m.window <= 0 or m.stride <= 0:
            return f"sparse needs model.window > 0 and model.stride > 0, got window={m.window}, stride={m.stride}"
        if m.window > m.block_size or m.stride > m.block_size:
            return (f"sparse: model.window={m.window} and model.stride={m.stride} must not exceed "
                    f"model.block_size={m.block_size}")
        return None


ATTENTION = {"sparse": SparseAttention}
