"""Mutations of the optimisation: learning rate, batch, warmup, clipping, decay, betas, EMA, LoRA.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry TRAINING at the end maps type -> (function, variants).
"""
from foundry.mutate.edit import NotApplicable, factor_of, scaled_int, with_values


def lr(cfg, variant):
    """Peak learning rate scaled; the floor min_lr keeps its ratio to it."""
    f = factor_of(variant)
    return with_values(cfg, {"train.lr": cfg.train.lr * f, "train.min_lr": cfg.train.min_lr * f})


def batch_size(cfg, variant):
    """Sequences per step scaled. A step budget is rescaled so the token budget stays the same."""
    t, b = cfg.train, cfg.budget
    new = scaled_int(t.batch_size, factor_of(variant))
    updates = {"train.batch_size": new}
    if b.steps:
        updates["budget.steps"] = max(1, round(b.steps * t.batch_size / new))
    return with_values(cfg, updates)


def warmup(cfg, variant):
    """Linear warmup steps: off, half, double."""
    n = cfg.train.warmup_steps
    if variant == "off":
        return with_values(cfg, {"train.warmup_steps": 0})
    if n == 0:
        raise NotApplicable("train.warmup_steps is 0; scaling it changes nothing")
    return with_values(cfg, {"train.warmup_steps": scaled_int(n, factor_of(variant))})


def grad_clip(cfg, variant):
    """Global gradient-norm clipping threshold (off = no clipping)."""
    return with_values(cfg, {"train.grad_clip": 0.0 if variant == "off" else float(variant)})


def weight_decay(cfg, variant):
    """AdamW decoupled weight decay: off, or scaled (from 0.1 when it was off)."""
    wd = cfg.train.weight_decay
    if variant == "off":
        return with_values(cfg, {"train.weight_decay": 0.0})
    return with_values(cfg, {"train.weight_decay": (wd or 0.1) * factor_of(variant)})


def betas(cfg, variant):
    """Adam (beta1, beta2); the variant name is 'beta1_beta2'."""
    return with_values(cfg, {"train.betas": [float(x) for x in variant.split("_")]})


def ema(cfg, variant):
    """Exponential moving average of the weights for evaluation (off or its decay)."""
    return with_values(cfg, {"train.ema": 0.0 if variant == "off" else float(variant)})


def lora_rank(cfg, variant):
    """LoRA adapter rank (off = train every weight); adapters need a checkpoint in train.init_from."""
    if variant != "off" and not cfg.train.init_from:
        raise NotApplicable("LoRA freezes the base weights; without train.init_from they would stay random")
    return with_values(cfg, {"train.lora_rank": 0 if variant == "off" else int(variant)})


def lora_alpha(cfg, variant):
    """LoRA scaling alpha; only meaningful when train.lora_rank > 0."""
    if not cfg.train.lora_rank:
        raise NotApplicable("train.lora_alpha has no effect while train.lora_rank is 0")
    return with_values(cfg, {"train.lora_alpha": float(variant)})


def lora_dropout(cfg, variant):
    """Dropout on the LoRA input; only meaningful when train.lora_rank > 0."""
    if not cfg.train.lora_rank:
        raise NotApplicable("train.lora_dropout has no effect while train.lora_rank is 0")
    return with_values(cfg, {"train.lora_dropout": float(variant)})


TRAINING = {
    "lr": (lr, ("x0.5", "x0.7", "x1.4", "x2")),
    "batch_size": (batch_size, ("x0.5", "x2")),
    "warmup": (warmup, ("off", "x0.5", "x2")),
    "grad_clip": (grad_clip, ("off", "0.5", "1.0", "2.0")),
    "weight_decay": (weight_decay, ("off", "x0.5", "x2")),
    "betas": (betas, ("0.9_0.95", "0.9_0.99", "0.8_0.95", "0.95_0.98")),
    "ema": (ema, ("off", "0.99", "0.999")),
    "lora_rank": (lora_rank, ("off", "4", "8", "16")),
    "lora_alpha": (lora_alpha, ("8", "16", "32")),
    "lora_dropout": (lora_dropout, ("0", "0.05", "0.1")),
}
