"""Mutations of the optimisation: learning rate, batch, warmup, clipping, decay, betas, EMA, LoRA,
distillation (temperature, alpha, top_k of a fixed teacher) and pruning of a trained baseline.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry TRAINING at the end maps type -> (function, variants).
"""
import os

from foundry.io import read_json
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


def _distilling(cfg) -> None:
    if not (cfg.train.distill.teacher or cfg.train.distill.cache):
        raise NotApplicable("no distillation: train.distill.teacher and train.distill.cache are empty")


def distill_temperature(cfg, variant):
    """Distillation temperature T of the soft targets (the loss keeps its T^2 scale)."""
    _distilling(cfg)
    return with_values(cfg, {"train.distill.temperature": float(variant)})


def distill_alpha(cfg, variant):
    """Distillation alpha: the weight of the hard labels; 1 - alpha goes to the teacher's soft targets."""
    _distilling(cfg)
    return with_values(cfg, {"train.distill.alpha": float(variant)})


def distill_top_k(cfg, variant):
    """Soft targets over the teacher's top k tokens plus the missing mass (0 = the whole vocabulary)."""
    _distilling(cfg)
    k = int(variant)
    if cfg.train.distill.cache:  # a cache holds a fixed K: only what it can serve
        manifest = read_json(os.path.join(os.path.expandvars(cfg.train.distill.cache), "manifest.json")) or {}
        K, V = manifest.get("top_k", 0), manifest.get("vocab_size", -1)
        if k > K or (k == 0 and K != V):
            raise NotApplicable(f"train.distill.cache holds the teacher's top {K}; top_k={k} needs more")
    return with_values(cfg, {"train.distill.top_k": k})


def prune(cfg, variant):
    """Prune the trained baseline's weights (train.init_from) with a method, then fine-tune them for
    the baseline's budget: "wanda_0.3" = 30% with Wanda, "magnitude_2:4" = the 2:4 pattern; off = no pruning."""
    if not cfg.train.init_from:
        raise NotApplicable("pruning acts on trained weights; the config has no train.init_from")
    if variant == "off":
        return with_values(cfg, {"train.prune.method": "", "train.prune.pattern": "", "train.prune.sparsity": 0.5})
    method, amount = variant.split("_")
    pattern = amount if ":" in amount else ""
    return with_values(cfg, {"train.prune.method": method, "train.prune.pattern": pattern,
                             "train.prune.sparsity": 0.5 if pattern else float(amount)})


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
    "distill_temperature": (distill_temperature, ("1", "2", "4")),
    "distill_alpha": (distill_alpha, ("0", "0.25", "0.5", "0.9")),
    "distill_top_k": (distill_top_k, ("0", "8", "32")),
    "prune": (prune, ("off", "magnitude_0.3", "saliency_0.3", "wanda_0.3", "wanda_0.5", "magnitude_2:4", "wanda_2:4")),
}
