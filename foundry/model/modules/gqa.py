"""Causal self-attention with grouped key/value heads, through PyTorch's SDPA.

`mha`: every query head has its own key/value head (n_kv_head = n_head).
`gqa`: n_kv_head groups shared by n_head // n_kv_head query heads each; 1 = multi-query.
Generation passes a per-layer `cache` dict that holds the keys and values seen so far (extend_cache;
sliding_window keeps only its window).
Heads are model.head_size wide (0 = n_embd // n_head), so a layer may have fewer heads (pruned).
`model.qkv_bias` gives the query/key/value projections biases and the output none (Qwen2);
`model.bias` gives all of them one.
"""
import torch
from torch import nn

from foundry.model.modules.masks import attention_mask, causal_mask, sdpa
from foundry.model.protocols import Attention


class GroupedQueryAttention(Attention):
    window = 0  # look-back limit; subclasses (sliding_window) set it from the config

    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        qkv_bias = cfg.bias or cfg.qkv_bias
        self.q_proj = nn.Linear(cfg.n_embd, cfg.n_head * self.head_dim, bias=qkv_bias)
        self.kv_proj = nn.Linear(cfg.n_embd, 2 * self.n_kv * self.head_dim, bias=qkv_bias)  # [k; v]
        self.c_proj = nn.Linear(cfg.n_head * self.head_dim, cfg.n_embd, bias=cfg.bias)
        self.q_norm = self.k_norm = None
        if cfg.qk_norm:
            from foundry.model.modules import NORMS
            self.q_norm = NORMS[cfg.norm](self.head_dim, cfg)
            self.k_norm = NORMS[cfg.norm](self.head_dim, cfg)
        self.dropout = cfg.dropout

    def project(self, x):
        """x (B, T, C) -> q (B, H, T, D), k and v (B, Hkv, T, D)."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k, v = self.kv_proj(x).view(B, T, 2, self.n_kv, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, x, position, cache=None, start=0, documents=None):
        B, T, C = x.shape
        q, k, v = self.project(x)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        # (T,) absolute positions; in packed rows (B, 1, T) positions within each document
        q_pos = torch.arange(start, start + T, device=x.device) if documents is None else documents.positions
        q, k = position.rotate(q, k, q_pos, q_pos)
        if cache is not None:
            k, v = self.extend_cache(cache, k, v)
        k_pos = torch.arange(start + T - k.shape[2], start + T, device=x.device) if documents is None else q_pos
        y = self.attend(q, k, v, position, q_pos, k_pos, documents)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))

    def residual_projections(self):
        return [self.c_proj]

    def extend_cache(self, cache, k, v):
        """Append this call's keys/values (B, Hkv, T, D) -> every key/value (the latest last) its queries see."""
        if "k" in cache:
            k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
        cache["k"], cache["v"] = k, v
        return k, v

    def attend(self, q, k, v, position, q_pos, k_pos, documents=None):
        """q (B, H, Tq, D), k/v (B, Hkv, Tk, D) -> (B, H, Tq, D); `documents` keeps packed rows apart."""
        bias = position.bias(self.n_head, q_pos, k_pos)
        dropout = self.dropout if self.training else 0.0
        gqa = self.n_kv != self.n_head
        if bias is None and not self.window and q.shape[2] == k.shape[2] and documents is None:
            return sdpa(q, k, v, is_causal=True, dropout_p=dropout,
                                                  enable_gqa=gqa)
        allowed = causal_mask(q_pos, k_pos, self.window)
        mask = attention_mask(q_pos, k_pos, bias, allowed if documents is None else allowed & documents.same)
        return sdpa(q, k, v, attn_mask=mask.to(q.dtype) if bias is not None else mask,
                                              dropout_p=dropout, enable_gqa=gqa)


class MultiHeadAttention(GroupedQueryAttention):
    @staticmethod
    def check(cfg):
        if cfg.model.n_kv_head not in (0, cfg.model.n_head):
            return f"mha uses n_kv_head = n_head; got n_kv_head={cfg.model.n_kv_head} (use gqa)"
        return None


ATTENTION = {"mha": MultiHeadAttention, "gqa": GroupedQueryAttention}
