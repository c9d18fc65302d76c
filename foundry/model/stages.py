"""The pipeline of `model.stages`: how the GPT runs its blocks stage by stage.

    pipeline = Pipeline(model_cfg)                     # built by GPT.__init__ (no stages: one decoder)
    x = pipeline(x, run_block, caches, start, documents, doc_ids)   # (B, T, C) -> (B, T, C)
    pipeline.aux_loss(), pipeline.stats()              # the latents' KL terms (training only)

Stage kinds (STAGES; schema in foundry/config_layers.py):
- `decoder`: a stack of the GPT's blocks on the residual stream, causal, with KV/state caches.
- `encoder`: a non-causal stack. It runs its blocks twice with the same weights, over the sequence
  and over the sequence reversed (each a causal pass, so every mixer works unchanged), and averages
  the two (B, T, C) outputs: each position then sees the whole sequence. Its output feeds only the
  latent stage right after it; the residual stream passes it by unchanged.
- `latent`: a per-token Gaussian latent z (B, T, d_latent). In training it is the posterior
  q(z | source) of the previous stage's output (an encoder's, else the stream), sampled with the
  reparameterisation trick; aux_loss = kl_weight * mean over tokens of max(0, KL - free_bits)
  (KL to N(0, I), nats per token; logged raw as STAGE/kl). Every later decoder stage gets it at its
  entry by FiLM and a low-rank projection: x * (1 + gamma(z)) + beta(z) + up(down(z)), with
  gamma/beta/up zero at init (so an untrained latent changes nothing) and down of rank `rank`.

The generation rule (Free Transformer, Fleuret 2025): the encoder sees future tokens, so it runs in
training only. In eval mode (validation, sampling, scoring) encoder stages are skipped and each
latent is taken from the prior: z = 0 (`prior: mean`, deterministic) or z ~ N(0, I) drawn one
position at a time (`prior: sample`, so a cached and an uncached pass draw the same z from the same
seed). Cached decoding therefore equals the uncached forward, and val_bpb never peeks ahead.
"""
from __future__ import annotations

import torch
from torch import nn

from foundry.config import ConfigError
from foundry.config_layers import stage_spans
from foundry.model.modules import NORMS
from foundry.model.modules.masks import packed_documents


class Latent(nn.Module):
    def __init__(self, cfg, stage: dict, n_targets: int):
        super().__init__()
        C, d, r = cfg.n_embd, stage["d_latent"], stage["rank"]
        self.d_latent, self.kl_weight, self.free_bits, self.prior = d, stage["kl_weight"], stage["free_bits"], stage["prior"]
        self.norm = NORMS[cfg.norm](C, cfg)
        self.posterior = nn.Linear(C, 2 * d)                           # source -> [mu; log variance]
        self.film = nn.ModuleList(nn.Linear(d, 2 * C, bias=False) for _ in range(n_targets))  # z -> [gamma; beta]
        self.down = nn.ModuleList(nn.Linear(d, r, bias=False) for _ in range(n_targets))
        self.up = nn.ModuleList(nn.Linear(r, C, bias=False) for _ in range(n_targets))
        self.aux_loss, self.stats = None, {}

    def zero_init(self):
        """gamma, beta and the low-rank up projection start at zero: the latent starts as a no-op."""
        for linear in [*self.film, *self.up]:
            nn.init.zeros_(linear.weight)

    def forward(self, source):  # (B, T, C) -> z (B, T, d)
        B, T, _ = source.shape
        if not self.training:
            self.aux_loss, self.stats = None, {}
            if self.prior == "mean":
                return source.new_zeros(B, T, self.d_latent)
            return torch.stack([torch.randn(B, self.d_latent, device=source.device) for _ in range(T)], 1).to(source.dtype)
        mu, logvar = self.posterior(self.norm(source)).float().chunk(2, dim=-1)  # (B, T, d) each
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)         # (B, T) nats
        self.aux_loss = self.kl_weight * (kl - self.free_bits).clamp(min=0).mean()
        self.stats = {"kl": kl.mean().detach()}
        return z.to(source.dtype)

    def inject(self, x, z, target: int):  # x (B, T, C), z (B, T, d) -> (B, T, C)
        gamma, beta = self.film[target](z).chunk(2, dim=-1)
        return x * (1 + gamma) + beta + self.up[target](self.down[target](z))


class Pipeline(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.plain = not cfg.stages   # one decoder stage over whatever blocks the model holds
        stages = cfg.stages or [{"name": "decoder", "kind": "decoder", "n_layer": cfg.n_layer}]
        self.plan = [(s["kind"], s["name"], range(first, first + count))
                     for s, (first, count) in zip(stages, stage_spans(stages))]
        later = [sum(k == "decoder" for k, _, _ in self.plan[i + 1:]) for i in range(len(self.plan))]
        self.latents = nn.ModuleDict({s["name"]: Latent(cfg, s, later[i])
                                      for i, s in enumerate(stages) if s["kind"] == "latent"})

    def forward(self, x, run_block, caches=None, start=0, documents=None, doc_ids=None, n_blocks=None):
        """n_blocks: the model's block count now (a plain model whose blocks were cut runs those)."""
        source, active = None, []   # the last encoder's output; [(latent, z, next target)]
        for kind, name, layers in self.plan:
            if self.plain and n_blocks is not None:
                layers = range(n_blocks)
            if kind == "encoder":
                source = self.encode(x, layers, run_block, documents, doc_ids) if self.training else None
            elif kind == "latent":
                latent = self.latents[name]
                active.append([latent, latent(x if source is None else source), 0])
                source = None
            else:
                for entry in active:
                    latent, z, target = entry
                    x, entry[2] = latent.inject(x, z, target), target + 1
                for i in layers:
                    x = run_block(i, x, caches, start, documents)
        return x

    @staticmethod
    def encode(x, layers, run_block, documents, doc_ids):
        """Both directions through the encoder's blocks, averaged: (B, T, C) -> (B, T, C)."""
        forward, backward = x, x.flip(1)
        reversed_documents = packed_documents(doc_ids.flip(1)) if documents is not None else None
        for i in layers:
            forward = run_block(i, forward, None, 0, documents)
            backward = run_block(i, backward, None, 0, reversed_documents)
        return 0.5 * (forward + backward.flip(1))

    def encoder_layers(self) -> list[int]:
        """Blocks that run twice per training token (both directions); FLOPs count them twice."""
        return [i for kind, _, layers in self.plan if kind == "encoder" for i in layers]

    def aux_loss(self):
        losses = [latent.aux_loss for latent in self.latents.values() if latent.aux_loss is not None]
        return sum(losses) if losses else None

    def stats(self) -> dict:
        return {f"{name}/{k}": v for name, latent in self.latents.items() for k, v in latent.stats.items()}


def check(cfg) -> None:
    """ConfigError naming the stage and key of a pipeline that cannot train or generate."""
    stages = cfg.model.stages
    if not stages:
        return
    kinds = [s["kind"] for s in stages]
    for i, stage in enumerate(stages):
        where, after = f"model.stages.{stage['name']}", kinds[i + 1:]
        if stage["kind"] == "encoder" and (not after or after[0] != "latent"):
            follows = f"{stages[i + 1]['name']} follows it" if after else "it is the last stage"
            raise ConfigError(f"{where}.kind: a non-causal encoder must feed a latent stage right after it (here "
                              f"{follows}); without the sampler later stages would see future tokens and the model "
                              "could not generate left to right")
        if stage["kind"] == "latent":
            if "decoder" not in after:
                raise ConfigError(f"{where}: a latent stage needs a decoder stage after it to inject into")
            for key, low in (("d_latent", 1), ("rank", 1), ("kl_weight", 0), ("free_bits", 0)):
                if not low <= stage[key] <= 1e6:
                    raise ConfigError(f"{where}.{key}: must be in [{low}, 1e6], got {stage[key]}")
            if stage["prior"] not in ("mean", "sample"):
                raise ConfigError(f"{where}.prior: unknown {stage['prior']!r} (valid: mean, sample)")
        if stage["kind"] != "latent" and not 1 <= stage["n_layer"] <= 1e6:
            raise ConfigError(f"{where}.n_layer: must be in [1, 1e6], got {stage['n_layer']}")


STAGES = {"decoder": "causal stack of blocks on the residual stream",
          "encoder": "non-causal stack (both directions) feeding the next latent stage; training only",
          "latent": "per-token Gaussian latent, KL in the loss, injected by FiLM + low-rank into later decoders"}
