"""Every registry by config key, and a config checked against them: the one way to load a config.

    cfg = load("baselines/tiny.yaml", ["model.attention=gqa", "model.n_kv_head=1"])
    cfg = from_dict({"model": {"n_layer": 2}, "budget": {"steps": 10}})
    validate(cfg)                   # ConfigError naming the file and key, with the valid names

foundry.config knows the schema (keys and types); this file adds what needs the components:
their names, their own `check(cfg)` reasons (per layer when `model.layers` varies them), the
data registries, the eval task names, and the shape and budget rules. COMPONENTS maps each
config key that names a component to its registry.
"""
from __future__ import annotations

import dataclasses

from foundry.config import (
    Config,
    ConfigError,
    layer_config,
    layer_selector,
    parse,
    parse_file,
)
from foundry.data import FORMATS, TOKENIZERS
from foundry.data.curriculum import check as check_curriculum
from foundry.data.filters import check_filters
from foundry.data.packing import PACKINGS
from foundry.errors import UserError
from foundry.model.modules import BROKEN, BROKEN_NAMES, REGISTRIES
from foundry.training.losses import LOSSES
from foundry.training.parallel import STRATEGIES, STRATEGY_NAMES

LOSS_ON = {"all": "every token", "assistant": "assistant turns of chat formats"}
COMPONENTS = {**{f"model.{key}": registry for key, registry in REGISTRIES.items()}, "train.loss": LOSSES}


def presets() -> dict:
    """The named model shapes `model.preset` may name (foundry/zoo/presets.py)."""
    from foundry.zoo.presets import PRESETS
    return PRESETS


def load(path, overrides=()) -> Config:
    """A checked Config from a YAML file and dotted overrides; ConfigError names the file and key."""
    cfg = parse_file(path, overrides, presets())
    try:
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg


def from_dict(data: dict) -> Config:
    cfg = parse(data, presets())
    validate(cfg)
    return cfg


def check_name(key: str, name: str, registry: dict) -> None:
    if name in registry:
        return
    if name in BROKEN_NAMES:  # the file that defines it failed to import: say so, once, by file
        where = BROKEN_NAMES[name]
        raise ConfigError(f"{key}: {name!r} comes from {where}, which failed to import: {BROKEN[where]}")
    raise ConfigError(f"{key}: unknown {name!r} (valid: {', '.join(sorted(registry))})")


def _check_model_components(cfg: Config, model_cfg, where: str) -> None:
    """Names and each component's own check, for one layer's settings (`where` prefixes messages)."""
    layer_cfg = dataclasses.replace(cfg, model=model_cfg)
    for key, registry in REGISTRIES.items():
        name = getattr(model_cfg, key)
        check_name(f"{where}model.{key}", name, registry)
        reason = registry[name].check(layer_cfg)
        if reason:
            raise ConfigError(f"{where}model.{key}: {reason}")


def _check_layers(cfg: Config) -> None:
    m = cfg.model
    for selector in m.layers:
        try:
            layer_selector(selector, m.n_layer)
        except ValueError as e:
            raise ConfigError(f"model.layers.{selector}: {e}") from None
    checked = set()
    for index in range(m.n_layer):
        layer = layer_config(m, index)
        key = repr(layer)
        if layer is not m and key not in checked:
            checked.add(key)
            _check_shape(layer, f"model.layers (layer {index}): ")
            _check_model_components(cfg, layer, f"model.layers (layer {index}): ")


def _check_shape(m, where: str = "") -> None:
    for key in ("n_layer", "n_head", "n_embd", "block_size"):
        if getattr(m, key) <= 0:
            raise ConfigError(f"{where}model.{key}: must be positive, got {getattr(m, key)}")
    if m.n_embd % m.n_head:
        raise ConfigError(f"{where}model.n_embd: {m.n_embd} is not divisible by model.n_head={m.n_head}")
    if m.n_kv_head < 0 or (m.n_kv_head and m.n_head % m.n_kv_head):
        raise ConfigError(f"{where}model.n_kv_head: model.n_head={m.n_head} is not divisible by {m.n_kv_head}")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError(f"{where}model.dropout: must be in [0, 1), got {m.dropout}")
    if m.mlp_hidden < 0 or m.norm_eps < 0:
        raise ConfigError(f"{where}model.mlp_hidden/norm_eps: must not be negative, got {m.mlp_hidden}/{m.norm_eps}")


def validate(cfg: Config) -> None:
    m, t, b = cfg.model, cfg.train, cfg.budget
    _check_shape(m)
    _check_model_components(cfg, m, "")
    _check_layers(cfg)
    check_name("train.loss", t.loss, LOSSES)
    reason = LOSSES[t.loss].check(cfg)
    if reason:
        raise ConfigError(f"train.loss: {reason}")
    for key in ("lr", "batch_size", "grad_accum"):
        if getattr(t, key) <= 0:
            raise ConfigError(f"train.{key}: must be positive, got {getattr(t, key)}")
    if t.min_lr < 0 or t.min_lr > t.lr:
        raise ConfigError(f"train.min_lr: must be in [0, train.lr={t.lr}], got {t.min_lr}")
    if len(t.betas) != 2 or not all(0.0 <= x < 1.0 for x in t.betas):
        raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {t.betas}")
    if t.warmup_steps < 0 or t.grad_clip < 0 or t.weight_decay < 0:
        raise ConfigError("train.warmup_steps/grad_clip/weight_decay: must not be negative")
    if not 0.0 <= t.ema < 1.0:
        raise ConfigError(f"train.ema: must be in [0, 1), got {t.ema}")
    if t.dtype not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"train.dtype: unknown {t.dtype!r} (valid: auto, bf16, fp32)")
    if t.lora_rank < 0:
        raise ConfigError(f"train.lora_rank: must not be negative, got {t.lora_rank}")
    check_name("train.strategy", t.strategy, dict.fromkeys(STRATEGY_NAMES))
    reason = STRATEGIES[t.strategy].check(cfg) if t.strategy in STRATEGIES else None
    if reason:
        raise ConfigError(f"train.strategy: {reason}")
    d = cfg.data
    check_name("data.tokenizer", d.tokenizer, TOKENIZERS)
    check_name("data.format", d.format, {"none": None, **FORMATS})
    reason = check_curriculum(d.curriculum)
    if reason:
        raise ConfigError(f"data.curriculum.{reason}")
    if not 0.0 < d.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be in (0, 1), got {d.val_fraction}")
    if d.tokenizer == "hf" and not d.tokenizer_path:
        raise ConfigError("data.tokenizer: hf needs data.tokenizer_path (a tokenizer.json, or a folder or run holding one)")
    if d.tokenizer == "bpe" and d.bpe_vocab_size < 256:
        raise ConfigError(f"data.bpe_vocab_size: must be at least 256 (the byte alphabet), got {d.bpe_vocab_size}")
    if d.format != "none" and not d.source.endswith(".jsonl"):
        raise ConfigError(f"data.format: {d.format!r} needs a .jsonl source of conversations, got {d.source!r}")
    check_name("data.packing", d.packing, PACKINGS)
    check_name("data.loss_on", d.loss_on, LOSS_ON)
    if d.format == "none" and (d.loss_on != "all" or d.constitution):
        raise ConfigError("data.loss_on: assistant and data.constitution need a chat format (data.format)")
    try:
        check_filters(d.filters)
    except UserError as e:
        raise ConfigError(str(e)) from None
    budgets = {k: v for k, v in dataclasses.asdict(b).items() if v}
    if any(v < 0 for v in budgets.values()) or len(budgets) != 1:
        raise ConfigError(f"budget: set exactly one of tokens, steps, seconds to a positive value, got {dataclasses.asdict(b)}")
    if cfg.eval.interval <= 0 or cfg.eval.batches <= 0 or cfg.eval.limit < 0:
        raise ConfigError("eval.interval/eval.batches: must be positive; eval.limit: not negative")
    from foundry.benchmarks.tasks import TASKS
    for task in cfg.eval.tasks:
        check_name("eval.tasks", task, TASKS)
    for task in cfg.eval.rank:
        if task not in cfg.eval.tasks:
            raise ConfigError(f"eval.rank: {task!r} is not in eval.tasks {cfg.eval.tasks}")
