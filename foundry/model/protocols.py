"""What a component of each kind provides: the contract between model/gpt.py and model/modules/.

Every registered component subclasses the base class of its kind, so the GPT calls methods
instead of guessing from attributes. Constructor signatures, one per kind (`cfg` is the
layer's ModelConfig: the model-wide settings with `model.layers` applied):

    Attention(cfg)      forward(x (B, T, C), position, cache: dict | None, start: int,
                                documents: masks.Documents | None) -> (B, T, C)
                        `cache` is this layer's dict for generation: the component stores what it
                        needs (keys/values, a latent, a state) and reads it back on the next call.
                        `documents` (packed rows, data.packing: bin; never with a cache): use its
                        per-document positions and never attend across its `same` mask.
                        Like a FeedForward it may leave `aux_loss` and `stats` (a router's balance).
    MLP(cfg)            forward(x (B, T, C)) -> (B, T, C); the kind `model.activation` names
    FeedForward(cfg)    forward(x (B, T, C)) -> (B, T, C); `model.ffn`: dense or a mixture of MLPs
    Norm(dim, cfg)      forward(x (..., dim)) -> (..., dim)
    Position(cfg)       embed / rotate / bias hooks, see the class

Residual projections: the linear layers that write a component's output into the residual
stream. Attention, MLPs and feed-forwards list them in `residual_projections()`; the GPT gives
exactly those the scaled GPT-2 init (std 0.02 / sqrt(2 n_layer)), and the contract tests check
that zeroing them zeroes the component's output. `check(cfg: Config) -> str | None` rejects a
configuration at load time with a reason (the default accepts everything).
"""
from __future__ import annotations

from torch import nn


class Component(nn.Module):
    @staticmethod
    def check(cfg) -> str | None:
        """A reason why `cfg` (the whole Config) cannot use this component, or None."""
        return None


class Attention(Component):
    def __init__(self):
        super().__init__()
        self.aux_loss, self.stats = None, {}  # as FeedForward's: set by each forward that has them

    def forward(self, x, position, cache=None, start=0, documents=None):  # (B, T, C) -> (B, T, C)
        raise NotImplementedError

    def residual_projections(self) -> list[nn.Linear]:
        raise NotImplementedError(f"{type(self).__name__} must list its residual_projections()")

    def mixing_flops(self, cfg) -> int:
        """Training FLOPs per token of the mixing itself, beyond its weights' 6 N (cfg: the layer's
        ModelConfig). Attention: scores and their weighted sum over the causal context, 6 T x width (PaLM)."""
        return 6 * cfg.block_size * cfg.n_head * cfg.head_dim


class MLP(Component):
    def forward(self, x):  # (B, T, C) -> (B, T, C)
        raise NotImplementedError

    def residual_projections(self) -> list[nn.Linear]:
        raise NotImplementedError(f"{type(self).__name__} must list its residual_projections()")


class FeedForward(Component):
    """Besides its output, each forward may leave:
    aux_loss   a scalar tensor the trainer adds to the loss (MoE balance, z-loss), or None;
    stats      {name: detached scalar} the trainer logs (expert load, dropped share, ...)."""

    def __init__(self):
        super().__init__()
        self.aux_loss, self.stats = None, {}

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        raise NotImplementedError

    def residual_projections(self) -> list[nn.Linear]:
        raise NotImplementedError(f"{type(self).__name__} must list its residual_projections()")

    def inactive_params(self) -> int:
        """Weights a token does not touch (experts not routed to); FLOPs per token leave them out."""
        return 0


class Norm(Component):
    def forward(self, x):  # (..., dim) -> (..., dim)
        raise NotImplementedError


class Position(Component):
    """A position component answers three questions for attention; the defaults say "nothing":
        embed(pos)                   -> (T, C) added to token embeddings, or None
        rotate(q, k, q_pos, k_pos)   -> q, k rotated by position (B, H, T, D each)
        bias(n_head, q_pos, k_pos)   -> additive attention bias (H, Tq, Tk), or None
    Packed rows pass per-row positions, (B, T) to embed and (B, 1, T) to rotate and bias
    (which then returns (B, H, T, T)): leading dimensions broadcast.
    and says which of its weights are embedding tables (free lookups, not counted in FLOPs)."""

    def __init__(self, cfg):
        super().__init__()

    def embed(self, pos):
        return None

    def rotate(self, q, k, q_pos, k_pos):
        return q, k

    def bias(self, n_head, q_pos, k_pos):
        return None

    def embedding_params(self) -> int:
        return 0


class Loss(nn.Module):
    """Loss(train_cfg); forward(logits (B, T, V), targets (B, T), -1 ignored) -> scalar.
    `objective` names the training objective that feeds it (foundry.training.objectives):
    next_token batches, or preference pairs for a loss with `needs_pairs = True` (dpo), which
    is called forward(logits, targets, ref_logits) with a frozen reference model's logits."""
    objective = "next_token"
    needs_pairs = False

    @staticmethod
    def check(cfg) -> str | None:
        return None
