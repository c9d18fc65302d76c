"""Routers: how much each expert path of a fused layer contributes to each token (registry ROUTERS).

    router = ROUTERS["token"](width=96, names=["python", "shakespeare"], init_expert=0, settings)
    combined, weights = router(h, cache, start)   # (B, T, D) -> (B, T, E) each, rows summing to 1

Both kinds score the experts from the normed hidden state with a linear layer (zero-initialised,
so uniform at first), divide by a learnable temperature and take a softmax over experts:
    pooled   one decision per sequence, from the mean hidden state. Kept causal: position t uses
             the running mean of positions 0..t, so no token sees its future and cached decoding
             equals the full pass; the decision settles as the sequence grows. Dense weights.
    token    a decision per token: its top_k experts by probability, renormalised; every other
             expert gets exactly 0 (sparse). Straight-through: the values are the sparse weights,
             the gradient that of the dense probabilities, so top_k = 1 still trains.

The router's weights meet the layer's init path through a gate g in [0, 1], 0 at first:
    combined = g * weights + (1 - g) * onehot(init expert)
so at step 0 the layer is exactly its init path (zero-initialised gating, as Flamingo's) and the
router takes over as g grows; which expert serves which text is the router's weights' business.
g is a parameter clamped to [0, 1] with a straight-through gradient, so a gate pushed below 0 (the
router's mixture not yet better than the init path) can come back. MoLLayer passes gradients as if
the output were the router's own mixture as well, so routers and adapters learn from the first
step while the gate decides what the output is.
After each forward, `aux_loss` = entropy_weight * entropy + balance_weight * balance:
    entropy   mean entropy of the router's probabilities (a positive weight sharpens decisions)
    balance   n_experts * sum_e u_e^2, u_e the mean router weight of expert e: 1 exactly when usage
              is uniform, n_experts when one expert takes everything (Cauchy-Schwarz)
`stats`: usage_NAME (mean combined weight: who serves the tokens), entropy, balance, gate; and
`row_usage` (B, E), the combined weights averaged over each row (usage per data source).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from foundry.config import ModelConfig
from foundry.model.modules import NORMS

MIN_TEMPERATURE = 0.05  # the learnable temperature is clamped here: a softmax sharper than this only overflows


class Router(nn.Module):
    def __init__(self, width: int, names: list[str], init_expert: int, settings):
        super().__init__()
        self.names, self.init_expert, self.settings = list(names), init_expert, settings
        self.n_experts = len(self.names)
        self.norm = NORMS["rmsnorm"](width, ModelConfig())
        self.score = nn.Linear(width, self.n_experts)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(settings.temperature)))
        self.gate = nn.Parameter(torch.zeros(()))
        self.aux_loss, self.stats, self.row_usage = None, {}, None

    def features(self, h, cache, start):  # (B, T, D) -> (B, T, D): what the decision is made from
        return h

    def select(self, probs):  # (B, T, E) -> (B, T, E) weights
        return probs

    def forward(self, h, cache=None, start=0):  # (B, T, D) -> combined, weights: (B, T, E) each
        logits = self.score(self.norm(self.features(h, cache, start))).float()
        temperature = self.log_temperature.float().exp().clamp(min=MIN_TEMPERATURE)
        probs = (logits / temperature).softmax(dim=-1)
        weights = self.select(probs)
        gate = self.gate.float()
        g = gate.clamp(0.0, 1.0).detach() + (gate - gate.detach())  # value clamped, gradient straight through
        prior = F.one_hot(torch.tensor(self.init_expert, device=h.device), self.n_experts).float()
        combined = g * weights + (1 - g) * prior
        self._record(probs, weights, combined, g)
        return combined, weights

    def _record(self, probs, weights, combined, g) -> None:
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1).mean()
        balance = self.n_experts * weights.mean(dim=(0, 1)).square().sum()
        s = self.settings
        self.aux_loss = s.entropy_weight * entropy + s.balance_weight * balance
        served = combined.detach().mean(dim=(0, 1))  # (E,)
        self.row_usage = combined.detach().mean(dim=1)  # (B, E)
        self.stats = {"entropy": entropy.detach(), "balance": balance.detach(), "gate": g.detach(),
                      **{f"usage_{name}": served[e] for e, name in enumerate(self.names)}}


class PooledRouter(Router):
    def features(self, h, cache, start):
        T = h.shape[1]
        total = h.float().cumsum(dim=1)  # (B, T, D) running sums from this call's first token
        if cache is not None:
            if "sum" in cache:
                total = total + cache["sum"][:, None]
            cache["sum"] = total[:, -1]
        count = torch.arange(start + 1, start + T + 1, device=h.device, dtype=total.dtype)  # (T,)
        return (total / count[:, None]).to(h.dtype)


class TokenRouter(Router):
    def select(self, probs):
        k = min(self.settings.top_k, self.n_experts)
        top, index = probs.topk(k, dim=-1)  # (B, T, k)
        sparse = torch.zeros_like(probs).scatter(-1, index, top / top.sum(dim=-1, keepdim=True))
        return sparse + (probs - probs.detach())  # values: sparse exactly; gradient: the dense softmax


ROUTERS = {"pooled": PooledRouter, "token": TokenRouter}
