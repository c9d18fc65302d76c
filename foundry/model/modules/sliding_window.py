"""Sliding-window attention (Longformer / Mistral style): each query sees only the last
`model.window` tokens, itself included. Keys/values may be grouped as in gqa (model.n_kv_head).

    model: {attention: sliding_window, window: 64}

The KV cache is bounded: after each call it keeps the last window - 1 keys and values (rotated at
their absolute positions), all that the next token can see, so generation memory stops growing at
the window (bench/generation_memory.py). FLOPs count the band of query-key pairs the window allows
(what a banded kernel computes; training's masked SDPA still computes the full square).
"""
from foundry.model.modules.gqa import GroupedQueryAttention


def band_pairs(T: int, window: int) -> int:
    """Causal query-key pairs over T positions when each query sees at most `window` keys."""
    w = min(window, T)
    return w * (w + 1) // 2 + (T - w) * w


class SlidingWindowAttention(GroupedQueryAttention):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.window = cfg.window  # read by GroupedQueryAttention.attend to build the banded mask

    def extend_cache(self, cache, k, v):
        k, v = super().extend_cache(cache, k, v)
        keep = self.window - 1  # the next query sees these and itself; a copy, not a view of all keys
        cache["k"], cache["v"] = (t[:, :, t.shape[2] - min(keep, t.shape[2]):].clone() for t in (k, v))
        return k, v

    def mixing_flops(self, cfg) -> int:
        T = cfg.block_size  # the full causal square's T (T + 1) / 2 pairs cost 6 T per channel (PaLM)
        return 6 * T * band_pairs(T, self.window) * cfg.n_head * cfg.head_dim // band_pairs(T, T)

    @staticmethod
    def check(cfg):
        m = cfg.model
        if m.window <= 0:
            return f"sliding_window needs model.window > 0, got {m.window}"
        if m.window > m.block_size:
            return f"sliding_window: model.window={m.window} is larger than model.block_size={m.block_size}"
        return None


ATTENTION = {"sliding_window": SlidingWindowAttention}
