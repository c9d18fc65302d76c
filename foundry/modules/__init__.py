"""Every swappable component, gathered from the registry at the end of each file.

Kinds and their one constructor signature:
    ATTENTION[name](model_cfg)        forward(x (B,T,C), position, cache: dict | None, start: int)
    NORMS[name](dim, model_cfg)       forward(x (..., dim))
    ACTIVATIONS[name](model_cfg)      an MLP, forward(x (B,T,C)) -> (B,T,C)
    FFNS[name](model_cfg)             forward(x (B,T,C)); may set .aux_loss (a scalar) each call
    POSITIONS[name](model_cfg)        see base.Position
    LOSSES[name](train_cfg)           forward(logits (B,T,V), targets (B,T)) -> scalar; a loss with
                                      `needs_pairs = True` (dpo) instead trains on preference pairs,
                                      forward(logits, targets, ref_logits) (see foundry/dpo.py)
A component may define `check(cfg: Config) -> str | None` to reject a config at load time.
To add one: write the file, end it with its registry dict, add it to the merge below.
"""
from foundry.modules import (alibi, cross_entropy, dense, dpo, focal, gelu, glu, gqa, label_smoothing,
                             layernorm, learned, mla, moe, no_position, relu2, rmsnorm, rope,
                             sliding_window, sparse, swiglu)

ATTENTION = {**gqa.ATTENTION, **mla.ATTENTION, **sliding_window.ATTENTION, **sparse.ATTENTION}
NORMS = {**rmsnorm.NORMS, **layernorm.NORMS}
ACTIVATIONS = {**gelu.ACTIVATIONS, **swiglu.ACTIVATIONS, **glu.ACTIVATIONS, **relu2.ACTIVATIONS}
FFNS = {**dense.FFNS, **moe.FFNS}
POSITIONS = {**learned.POSITIONS, **rope.POSITIONS, **alibi.POSITIONS, **no_position.POSITIONS}
LOSSES = {**cross_entropy.LOSSES, **focal.LOSSES, **label_smoothing.LOSSES, **dpo.LOSSES}

REGISTRIES = {"attention": ATTENTION, "norm": NORMS, "activation": ACTIVATIONS, "ffn": FFNS,
              "position": POSITIONS, "loss": LOSSES}
