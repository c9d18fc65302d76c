"""Sliding-window attention (Longformer / Mistral style): each query sees only the last
`model.window` tokens, itself included. Keys/values may be grouped as in gqa (model.n_kv_head).

    model: {attention: sliding_window, window: 64}

The KV cache keeps every key (positions stay absolute); the mask limits the look-back.
"""
from foundry.model.modules.gqa import GroupedQueryAttention


class SlidingWindowAttention(GroupedQueryAttention):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.window = cfg.window  # read by GroupedQueryAttention.attend to build the banded mask

    @staticmethod
    def check(cfg):
        m = cfg.model
        if m.window <= 0:
            return f"sliding_window needs model.window > 0, got {m.window}"
        if m.window > m.block_size:
            return f"sliding_window: model.window={m.window} is larger than model.block_size={m.block_size}"
        return None


ATTENTION = {"sliding_window": SlidingWindowAttention}
