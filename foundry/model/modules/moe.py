"""Mixture-of-experts feed-forward (Switch / GShard style): a router picks top_k of n_experts
MLPs (model.activation) per token and mixes their outputs by the router probabilities.

    model: {ffn: moe, n_experts: 4, top_k: 2, capacity_factor: 1.25}

Each forward sets `self.aux_loss` = moe_aux_weight * Switch load-balancing loss
+ moe_z_weight * router z-loss (GPT.aux_loss() sums them; the trainer adds them to the loss), and
`self.stats`: the balance and z terms, the share of assignments dropped and each expert's share of
assignments (`moe_load_E`), which the trainer logs per layer to TensorBoard and metrics.jsonl. In training each expert
takes at most ceil(capacity_factor * tokens * top_k / n_experts) assignments, first come (in token
order, so only earlier tokens can crowd a token out) first served; an overflowing assignment
contributes zero, so that token passes through on the residual. At eval nothing is dropped, so a
token's output does not depend on the rest of the batch and cached decoding equals the full pass.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import FeedForward


class MixtureOfExperts(FeedForward):
    def __init__(self, cfg):
        super().__init__()
        from foundry.model.modules import MLPS
        self.n_experts, self.top_k, self.capacity_factor = cfg.n_experts, cfg.top_k, cfg.capacity_factor
        self.aux_weight, self.z_weight = cfg.moe_aux_weight, cfg.moe_z_weight
        self.router = nn.Linear(cfg.n_embd, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(MLPS[cfg.activation](cfg) for _ in range(cfg.n_experts))

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        B, T, C = x.shape
        flat = x.reshape(B * T, C)  # (N, C)
        logits = self.router(flat).float()  # (N, E); routing in fp32 for stable softmax / z-loss
        probs = logits.softmax(dim=-1)
        gate, expert = probs.topk(self.top_k, dim=-1)  # (N, k) each
        keep = self.within_capacity(expert) if self.training else torch.ones_like(expert, dtype=torch.bool)
        out = torch.zeros_like(flat)
        for e, mlp in enumerate(self.experts):
            token, slot = torch.nonzero((expert == e) & keep, as_tuple=True)  # (n,) each
            if token.numel():
                out.index_add_(0, token, mlp(flat[token]) * gate[token, slot, None].to(x.dtype))
        share = F.one_hot(expert, self.n_experts).float().mean(dim=(0, 1))  # (E,) of assignments, pre-capacity
        balance = self.n_experts * (share * probs.mean(dim=0)).sum()  # 1.0 when perfectly balanced
        z_loss = torch.logsumexp(logits, dim=-1).square().mean()
        self.aux_loss = self.aux_weight * balance + self.z_weight * z_loss
        self.stats = {"moe_balance": balance.detach(), "moe_z": z_loss.detach(),
                      "moe_dropped": 1.0 - keep.float().mean(),
                      **{f"moe_load_{e}": share[e].detach() for e in range(self.n_experts)}}
        return out.view(B, T, C)

    def residual_projections(self):
        return [proj for mlp in self.experts for proj in mlp.residual_projections()]

    def inactive_params(self) -> int:
        """The experts a token is not routed to; GPT.flops_per_token leaves them out."""
        return (self.n_experts - self.top_k) * sum(p.numel() for p in self.experts[0].parameters())

    def within_capacity(self, expert):
        """(N, k) expert ids -> (N, k) bool: the assignment is among its expert's first `capacity`."""
        N = expert.shape[0]
        capacity = math.ceil(self.capacity_factor * N * self.top_k / self.n_experts)
        onehot = F.one_hot(expert.flatten(), self.n_experts)  # (N*k, E), token-major order
        rank = (onehot.cumsum(dim=0) * onehot).sum(dim=-1) - 1  # (N*k,) earlier picks of the same expert
        return (rank < capacity).view(N, self.top_k)

    @staticmethod
    def check(cfg):
        m = cfg.model
        if m.n_experts < 1 or not 1 <= m.top_k <= m.n_experts:
            return f"moe needs 1 <= model.top_k <= model.n_experts, got top_k={m.top_k}, n_experts={m.n_experts}"
        if m.capacity_factor <= 0:
            return f"moe: model.capacity_factor must be positive, got {m.capacity_factor}"
        if m.moe_aux_weight < 0 or m.moe_z_weight < 0:
            return f"moe: loss weights must not be negative, got aux={m.moe_aux_weight}, z={m.moe_z_weight}"
        return None


FFNS = {"moe": MixtureOfExperts}
