"""Sections of the config schema: train.distill (foundry/distill/), train.prune (foundry/prune/),
data.curriculum (foundry/data/curriculum.py) and eval (foundry/evaluation.py). Part of config.py's
schema, kept in its own file for length; like config.py it imports nothing of foundry. Import them from foundry.config.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FeatureConfig:
    weight: float = 0.0         # 0 = off; else weight of the hidden-state loss added to the total
    pairs: list[list[int]] = field(default_factory=list)  # [[student layer, teacher layer], ...]; -1 = last
    loss: str = "mse"           # mse | cosine, through a learned projection when the widths differ


@dataclass
class DistillConfig:
    teacher: str = ""           # a Foundry run folder or checkpoint; "" = no distillation
    cache: str = ""             # or offline teacher logits from `foundry distill cache` (no live teacher)
    temperature: float = 2.0
    alpha: float = 0.5          # weight of the hard-label loss (train.loss); 1 - alpha on T^2 x divergence
    loss: str = "kl"            # kl | jsd | tvd (foundry/distill/losses.py)
    top_k: int = 0              # 0 = the whole vocabulary; else the teacher's top k plus one bucket for the rest
    features: FeatureConfig = field(default_factory=FeatureConfig)
    teacher_device: str = ""    # "" = the student's device; cpu | cuda | cuda:N
    teacher_dtype: str = "auto"  # auto (as train.dtype) | fp32 | bf16 (the teacher's weights in bf16)


@dataclass
class PruneConfig:
    method: str = ""            # "" = off; magnitude | saliency | wanda: prune train.init_from's weights first
    sparsity: float = 0.5       # share of each pruned matrix set to zero (ignored with a pattern)
    pattern: str = ""           # "" | N:M, e.g. 2:4 (N kept of every M consecutive inputs)
    scope: str = ""             # "" = the method's own (wanda: row, others: layer) | row | layer | global
    calibration: int = 16       # training sequences for wanda's activations and saliency's gradients


@dataclass
class CurriculumConfig:
    SHORTHAND = "by"            # `data.curriculum: NAME` means {by: NAME}
    by: str = "none"            # none | length | perplexity: what makes a training document easy
    reference: str = ""         # perplexity: the run folder or checkpoint that scores the documents
    schedule: str = "sqrt"      # how harder data enters: sqrt | linear | step (foundry.data.curriculum)
    start: float = 0.2          # share of the training data (easiest first) sampled at step 0
    ramp: float = 0.5           # share of the budget after which every training token can be drawn


@dataclass
class EvalConfig:
    interval: int = 100         # steps between validation passes
    bytes: int = 16384          # the first N bytes of validation text are scored (0 = all); see evaluation.py
    tasks: list[str] = field(default_factory=list)  # benchmark tasks run after training
    limit: int = 0              # items per task (0 = all); a cheap, fixed subset for ranking
    rank: dict[str, float] = field(default_factory=dict)  # task -> weight of summary's rank_score; empty = equal
