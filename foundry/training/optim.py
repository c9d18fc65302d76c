"""The optimizer and its schedule: AdamW over matrices with decay, warmup then cosine.

    optimizer = make_optimizer(model, cfg, device)
    lr = lr_at(cfg, step, max_steps, time_fraction)
"""
from __future__ import annotations

import math

import torch

from foundry.config import Config


def lr_at(cfg: Config, step: int, max_steps: int | None, time_fraction: float = 0.0) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to min_lr over the rest of the run.

    With a wall-clock budget (max_steps None) the decay follows the elapsed share of time.
    """
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if max_steps:
        progress = (step - t.warmup_steps) / max(1, max_steps - t.warmup_steps)
    else:
        progress = time_fraction
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return t.min_lr + cosine * (t.lr - t.min_lr)


def make_optimizer(model, cfg: Config, device, parts=None, extra=()):
    """AdamW; weight decay on matrices only (not norms, biases or 1-D gains). `parts`: [(params,
    lr_scale)] trained at lr_scale x the schedule's lr (a fused model's adapters and routers);
    default: every parameter that requires grad, at 1. `extra`: the objective's own trainable
    tensors (distillation's projections), at 1."""
    parts = list(parts or [([p for p in model.parameters() if p.requires_grad], 1.0)])
    if extra:
        parts.append((list(extra), 1.0))
    groups = []
    for params, scale in parts:
        groups += [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.train.weight_decay,
                    "lr_scale": scale},
                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr_scale": scale}]
    kwargs = dict(lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device/dtype
        return torch.optim.AdamW(groups, foreach=True, **kwargs)
