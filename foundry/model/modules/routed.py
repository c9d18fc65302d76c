"""A per-token router over token mixers: each token takes the top-k of model.router_mixers (any
registered attention components: mha, retention, ssm by default), weighted by the router's
probabilities softmax(x W_r / model.router_temperature).

    model: {attention: routed, router_mixers: [mha, retention, ssm], router_top_k: 1, router_temperature: 0.5}

Every mixer runs over every token (a mixer's keys, values or state must see the whole sequence for
later tokens to use them), so routing picks outputs, not work: FLOPs count all of them. Each mixer
keeps its own cache under the layer's cache dict ("0", "1", ...). Each forward sets `aux_loss` =
router_aux_weight x the Switch balance loss (1.0 when balanced; GPT.aux_loss() sums it into the
trainer's loss) and `stats`: router_balance and router_use_NAME, each mixer's share of the
assignments, which the trainer logs per layer (metrics.jsonl, TensorBoard).
"""
import torch
import torch.nn.functional as F
from torch import nn

from foundry.model.protocols import Attention


class RoutedMixer(Attention):
    def __init__(self, cfg):
        super().__init__()
        from foundry.model.modules import ATTENTION
        self.names = list(cfg.router_mixers)
        self.mixers = nn.ModuleList(ATTENTION[name](cfg) for name in self.names)
        self.router = nn.Linear(cfg.n_embd, len(self.names), bias=False)
        self.top_k, self.temperature, self.aux_weight = cfg.router_top_k, cfg.router_temperature, cfg.router_aux_weight

    def forward(self, x, position, cache=None, start=0, documents=None):
        probs = (self.router(x).float() / self.temperature).softmax(dim=-1)  # (B, T, M), routing in fp32
        gate, chosen = probs.topk(self.top_k, dim=-1)  # (B, T, k) each
        weights = torch.zeros_like(probs).scatter(-1, chosen, gate).to(x.dtype)  # (B, T, M), 0 off the top k
        out = 0
        for i, mixer in enumerate(self.mixers):
            own = cache.setdefault(str(i), {}) if cache is not None else None
            out = out + mixer(x, position, own, start, documents) * weights[..., i:i + 1]
        share = F.one_hot(chosen, len(self.names)).float().mean(dim=(0, 1, 2))  # (M,) of the assignments
        balance = len(self.names) * (share * probs.mean(dim=(0, 1))).sum()
        self.aux_loss = self.aux_weight * balance
        self.stats = {"router_balance": balance.detach(),
                      **{f"router_use_{name}": share[i].detach() for i, name in enumerate(self.names)}}
        return out

    def residual_projections(self):
        return [p for mixer in self.mixers for p in mixer.residual_projections()]

    def mixing_flops(self, cfg) -> int:
        return sum(mixer.mixing_flops(cfg) for mixer in self.mixers)

    @staticmethod
    def check(cfg):
        from foundry.model.modules import ATTENTION
        m = cfg.model
        names = m.router_mixers
        unknown = [n for n in names if n not in ATTENTION or n == "routed"]
        if not names or unknown or len(set(names)) < len(names):
            return (f"routed: model.router_mixers must name distinct mixers among "
                    f"{', '.join(sorted(set(ATTENTION) - {'routed'}))}; got {names}")
        if not 1 <= m.router_top_k <= len(names):
            return f"routed needs 1 <= model.router_top_k <= {len(names)} (the mixers), got {m.router_top_k}"
        for name in names:
            reason = ATTENTION[name].check(cfg)
            if reason:
                return f"routed mixer {name}: {reason}"
        return None


ATTENTION = {"routed": RoutedMixer}
