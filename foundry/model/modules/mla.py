"""Multi-head latent attention (DeepSeek-V2): keys and values come from one low-rank latent.

Per token: latent = norm(x W_dkv) of width model.kv_lora_rank (0 = n_embd // 4), up-projected
to per-head non-rotary keys (head_dim - rope_dim) and values (head_dim); plus one rope key of
width model.rope_dim (0 = head_dim // 2) shared by all heads, rotated by the position component
("decoupled rope"). Queries carry the same split per head. The KV cache stores only the latent
and the shared rope key: (kv_lora_rank + rope_dim) numbers per token and layer instead of
2 * n_embd. Honours model.qk_norm (norm over each full head before rotation).
"""
import torch
from torch import nn

from foundry.model.modules.masks import causal_mask, sdpa
from foundry.model.protocols import Attention, Position


class MultiHeadLatentAttention(Attention):
    def __init__(self, cfg):
        super().__init__()
        from foundry.model.modules import NORMS
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.rope_dim = cfg.rope_dim or cfg.head_dim // 2
        self.nope_dim, self.rank = self.head_dim - self.rope_dim, cfg.kv_lora_rank or cfg.n_embd // 4
        self.q_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)  # per head: nope, then rope channels
        self.kv_down = nn.Linear(cfg.n_embd, self.rank + self.rope_dim, bias=cfg.bias)
        self.kv_norm = NORMS[cfg.norm](self.rank, cfg)
        self.k_up = nn.Linear(self.rank, cfg.n_head * self.nope_dim, bias=False)
        self.v_up = nn.Linear(self.rank, cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.q_norm = self.k_norm = None
        if cfg.qk_norm:
            self.q_norm, self.k_norm = NORMS[cfg.norm](self.head_dim, cfg), NORMS[cfg.norm](self.head_dim, cfg)
        self.dropout = cfg.dropout

    def forward(self, x, position, cache=None, start=0, documents=None):
        B, T, C = x.shape
        H, N = self.n_head, self.nope_dim
        q = self.q_proj(x).view(B, T, H, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        latent, k_rope = self.kv_down(x).split([self.rank, self.rope_dim], dim=-1)  # (B, T, r), (B, T, R)
        latent = self.kv_norm(latent)
        if cache is not None:
            if "latent" in cache:
                latent = torch.cat([cache["latent"], latent], dim=1)
                k_rope = torch.cat([cache["k_rope"], k_rope], dim=1)
            cache["latent"], cache["k_rope"] = latent, k_rope
        S = latent.shape[1]
        k_nope = self.k_up(latent).view(B, S, H, N).transpose(1, 2)  # (B, H, S, N)
        v = self.v_up(latent).view(B, S, H, self.head_dim).transpose(1, 2)  # (B, H, S, D)
        k = torch.cat([k_nope, k_rope[:, None].expand(B, H, S, self.rope_dim)], dim=-1)  # (B, H, S, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q_pos, k_pos = torch.arange(start, start + T, device=x.device), torch.arange(S, device=x.device)
        if documents is not None:  # packed rows: (B, 1, T) positions within each document
            q_pos = k_pos = documents.positions
        q_rot, k_rot = position.rotate(q[..., N:], k[..., N:], q_pos, k_pos)  # only the rope channels
        q, k = torch.cat([q[..., :N], q_rot], dim=-1), torch.cat([k[..., :N], k_rot], dim=-1)
        mask = None if T == S else causal_mask(q_pos, k_pos)  # (T, S); a fresh sequence is plain causal
        if documents is not None:
            mask = causal_mask(q_pos, k_pos) & documents.same  # (B, 1, T, T)
        y = sdpa(q, k, v, attn_mask=mask, is_causal=mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, D)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)

    def residual_projections(self):
        return [self.c_proj]

    @staticmethod
    def check(cfg):
        from foundry.model.modules import POSITIONS
        m = cfg.model
        rope_dim = m.rope_dim or m.head_dim // 2
        if rope_dim <= 0 or rope_dim % 2 or rope_dim >= m.head_dim:
            return (f"mla: rope_dim={rope_dim} must be even, positive and below head_dim={m.head_dim} "
                    f"(set model.rope_dim)")
        if not 0 <= m.kv_lora_rank <= m.n_embd:
            return f"mla: model.kv_lora_rank={m.kv_lora_rank} must be in [0, n_embd={m.n_embd}] (0 = n_embd // 4)"
        if m.head_size and m.head_size * m.n_head != m.n_embd:
            return f"mla: heads must fill n_embd; model.head_size={m.head_size} x n_head={m.n_head} != {m.n_embd}"
        if m.n_kv_head not in (0, m.n_head):
            return f"mla compresses keys/values into a latent; model.n_kv_head={m.n_kv_head} does not apply (use 0)"
        if m.position in POSITIONS and POSITIONS[m.position].bias is not Position.bias:
            return f"mla takes positions only through its decoupled rope key; model.position={m.position} adds an attention bias"
        return None


ATTENTION = {"mla": MultiHeadLatentAttention}
