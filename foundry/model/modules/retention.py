"""Multi-scale retention (RetNet, Sun et al. 2023): attention without a softmax, scores decaying by
gamma_h^(n - m) in head h; one computation in three equal forms (tests/model/modules/test_mixers.py):

    parallel   (Q K^T * D) V over the whole sequence            training, model.retention_chunk: 0
    chunked    parallel inside chunks, a state carried across     training, model.retention_chunk: N
    recurrent  S = gamma S + k^T v;  o = q S, a token a step      generation: the cache is S alone

gamma_h = 1 - 2^(-5 - h); q and k are rotated by model.position (RetNet's xPos-style rotation) and
honour model.qk_norm; each head's output is normalised (GroupNorm, no weights) and gated by
swish(x W_g). The cache is one (H, D, D) state a layer at any context length. Packed rows use the
parallel form with the documents' mask.
"""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import Attention, Position


def retain(q, k, v, log_decay, state=None, allowed=None):
    """One chunk: q, k, v (B, H, L, D); log_decay (H,); state (B, H, D, D): what came before, or None.
    -> (out (B, H, L, D), state after the chunk). `allowed` (B, 1, L, L) masks packed documents."""
    L = q.shape[2]
    i = torch.arange(L, device=q.device, dtype=torch.float32)
    gap = i[:, None] - i[None, :]  # (L, L): n - m
    decay = torch.exp(log_decay[:, None, None] * gap.clamp(min=0)) * (gap >= 0)  # (H, L, L)
    if allowed is not None:
        decay = decay * allowed
    out = (q @ k.transpose(-1, -2) * decay).to(v.dtype) @ v  # (B, H, L, D)
    rate = log_decay[:, None]  # (H, 1)
    new = (k * torch.exp(rate * (L - 1 - i))[..., None]).transpose(-1, -2) @ v  # (B, H, D, D)
    if state is not None:
        out = out + (q * torch.exp(rate * (i + 1))[..., None]) @ state
        new = new + torch.exp(log_decay * L)[:, None, None] * state
    return out, new


class MultiScaleRetention(Attention):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.head_dim, self.chunk = cfg.n_head, cfg.head_dim, cfg.retention_chunk
        width = cfg.n_head * cfg.head_dim
        self.q_proj, self.k_proj, self.v_proj, self.g_proj = (nn.Linear(cfg.n_embd, width, bias=cfg.bias)
                                                              for _ in range(4))
        self.c_proj = nn.Linear(width, cfg.n_embd, bias=cfg.bias)
        self.q_norm = self.k_norm = None
        if cfg.qk_norm:
            from foundry.model.modules import NORMS
            self.q_norm, self.k_norm = NORMS[cfg.norm](cfg.head_dim, cfg), NORMS[cfg.norm](cfg.head_dim, cfg)

    def forward(self, x, position, cache=None, start=0, documents=None):
        B, T, C = x.shape
        H, D = self.n_head, self.head_dim
        q, k, v = (p(x).view(B, T, H, D).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        pos = torch.arange(start, start + T, device=x.device) if documents is None else documents.positions
        q, k = position.rotate(q * D ** -0.5, k, pos, pos)  # (B, H, T, D) each
        log_decay = torch.log1p(-2.0 ** (-5.0 - torch.arange(H, device=x.device, dtype=torch.float32)))
        if documents is not None:
            y, _ = retain(q, k, v, log_decay, allowed=documents.same)
        else:
            y, state = self.chunked(q, k, v, log_decay, cache.get("state") if cache is not None else None)
            if cache is not None:
                cache["state"] = state
        y = F.layer_norm(y.float(), (D,)).to(x.dtype)  # GroupNorm: each head normalised on its own
        return self.c_proj(F.silu(self.g_proj(x)) * y.transpose(1, 2).reshape(B, T, H * D))

    def chunked(self, q, k, v, log_decay, state=None):
        """Chunks of model.retention_chunk (all of T when 0: the parallel form; 1: the recurrent one)."""
        size, outs = self.chunk or q.shape[2], []
        for s in range(0, q.shape[2], size):
            out, state = retain(q[:, :, s:s + size], k[:, :, s:s + size], v[:, :, s:s + size], log_decay, state)
            outs.append(out)
        return torch.cat(outs, dim=2), state

    def residual_projections(self):
        return [self.c_proj]

    @staticmethod
    def check(cfg):
        from foundry.model.modules import POSITIONS
        if cfg.model.position in POSITIONS and POSITIONS[cfg.model.position].bias is not Position.bias:
            return f"retention decays its scores itself; model.position={cfg.model.position} adds an attention bias"
        return None


ATTENTION = {"retention": MultiScaleRetention}
