"""A selective state-space mixer (Mamba, Gu & Dao 2023) in plain PyTorch, with a sequential scan (scan.py).

    model: {attention: ssm, d_state: 16, d_conv: 4, expand: 2}

x -> in_proj -> (u, z), each expand x n_embd wide; u -> causal depthwise conv (d_conv taps) -> SiLU;
from u, per token: dt = softplus(dt_proj(.) + dt_bias), B and C (d_state each): the selection.
Per channel, h_t = exp(dt A) h_{t-1} + dt B_t u_t and y_t = C_t . h_t + D u_t, gated by SiLU(z).
The cache holds the last d_conv - 1 conv inputs and h (expand x n_embd x d_state numbers): constant
in the context length. Packed rows: a document's first token forgets h and the conv stops at its start.
model.position and model.qk_norm do not apply (order comes from the scan). Mamba's initialisations:
A = -(1..d_state), D = 1, dt in [1e-3, 0.1] log-uniform (kept outside nn.Linear, which the GPT re-inits).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.modules.scan import linear_scan
from foundry.model.protocols import Attention


class SelectiveSSM(Attention):
    def __init__(self, cfg):
        super().__init__()
        C, E, N = cfg.n_embd, cfg.expand * cfg.n_embd, cfg.d_state
        self.d_inner, self.d_state, self.d_conv, self.dt_rank = E, N, cfg.d_conv, math.ceil(C / 16)
        self.in_proj = nn.Linear(C, 2 * E, bias=cfg.bias)
        self.conv_weight = nn.Parameter(torch.empty(E, cfg.d_conv).uniform_(-cfg.d_conv ** -0.5, cfg.d_conv ** -0.5))
        self.conv_bias = nn.Parameter(torch.zeros(E))
        self.x_proj = nn.Linear(E, self.dt_rank + 2 * N, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, E, bias=False)
        dt = torch.exp(torch.rand(E) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) = dt
        # A = -exp(A_log), (E, N) kept flat: AdamW decays matrices only (optim.py) and Mamba does not decay A
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E))  # (E * N,)
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, C, bias=cfg.bias)

    def forward(self, x, position, cache=None, start=0, documents=None):
        B, T, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, E) each
        u = F.silu(self.conv(u, cache, documents))
        dt, Bs, Cs = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt).float() + self.dt_bias).transpose(0, 1)  # (T, B, E): time first, fp32
        A = -torch.exp(self.A_log.float()).view(self.d_inner, self.d_state)  # (E, N)
        keep = torch.exp(dt[..., None] * A)  # (T, B, E, N): exp(dt A)
        if documents is not None:  # a document's first token starts from h = 0
            keep = keep * (documents.positions[:, 0].T[..., None, None] > 0)
        write = (dt * u.transpose(0, 1).float())[..., None] * Bs.transpose(0, 1).float()[:, :, None, :]  # dt B u
        h = cache.get("h") if cache is not None else None
        h = x.new_zeros(B, self.d_inner, self.d_state, dtype=torch.float32) if h is None else h
        states = linear_scan(keep, write, h)  # (T, B, E, N): h_t = keep_t h_{t-1} + write_t
        if cache is not None:
            cache["h"] = states[-1].clone()
        y = (states @ Cs.transpose(0, 1).float()[..., None]).squeeze(-1).transpose(0, 1)  # (B, T, E): C_t . h_t
        y = (y.to(x.dtype) + u * self.D.to(x.dtype)) * F.silu(z)
        return self.out_proj(y)

    def conv(self, u, cache, documents):
        """Causal depthwise conv over time: u (B, T, E) -> (B, T, E); the cache keeps the last d_conv - 1 inputs."""
        K = self.d_conv
        past = cache.get("conv") if cache is not None else None
        past = u.new_zeros(u.shape[0], K - 1, u.shape[2]) if past is None else past
        padded = torch.cat([past, u], dim=1)  # (B, K - 1 + T, E)
        if cache is not None:
            cache["conv"] = padded[:, padded.shape[1] - (K - 1):].clone()  # not a view of the whole prompt
        T, out = u.shape[1], self.conv_bias.to(u.dtype)
        for tap in range(K):  # tap K - 1 is the current token, tap K - 1 - j the one j tokens back
            term = padded[:, tap:tap + T] * self.conv_weight[:, tap].to(u.dtype)
            if documents is not None:  # not across a document start
                term = term * (documents.positions[:, 0, :, None] >= K - 1 - tap)
            out = out + term
        return out

    def residual_projections(self):
        return [self.out_proj]

    def mixing_flops(self, cfg) -> int:
        """The scan, per channel and state number: exp(dt A), dt B u, the update, C . h (~6 forward, x3)."""
        return 18 * self.d_inner * self.d_state


ATTENTION = {"ssm": SelectiveSSM}
