"""Every registry by config key, and a config checked against them: the one way to load a config.

    cfg = load("baselines/tiny.yaml", ["model.attention=gqa", "model.n_kv_head=1"])
    cfg = from_dict({"model": {"n_layer": 2}, "budget": {"steps": 10}})
    validate(cfg)                   # ConfigError naming the file and key, with the valid names

foundry.config knows the schema (keys and types); this file adds what needs the components:
their names, their own `check(cfg)` reasons (per layer when `model.layers` varies them), the
data registries, the eval task names, the range of every number (RANGES), the shape and budget
rules, and whether training the model fits in the machine's memory (count_params, training_memory).
COMPONENTS maps each config key that names a component to its registry.
"""
from __future__ import annotations

import dataclasses

from foundry import hardware
from foundry.config import (
    Config,
    ConfigError,
    in_range,
    layer_config,
    parse,
    parse_file,
    shown,
)
from foundry.config_layers import selector_sets
from foundry.data import FORMATS, TOKENIZERS
from foundry.data.curriculum import check as check_curriculum
from foundry.data.filters import check_filters
from foundry.data.packing import PACKINGS
from foundry.distill.losses import DISTILL_LOSSES
from foundry.errors import UserError
from foundry.model.modules import BROKEN, BROKEN_NAMES, REGISTRIES
from foundry.model.stages import check as check_stages
from foundry.prune.scores import PRUNE_METHODS, PRUNE_SCOPES, parse_pattern
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


def layer_groups(m) -> list[tuple[object, int, int]]:
    """(settings, first layer index, layer count) of each distinct per-layer config of `m`: the
    layers that the same stages and `model.layers` selectors name share their settings. One pass
    over the layers per selector, so a deep model costs milliseconds, not n_layer squared."""
    if not m.layers and not m.stages:
        return [(m, 0, m.n_layer)]
    try:
        named = [indices for _, indices in selector_sets(m)]
    except ValueError as e:
        raise ConfigError(str(e)) from None
    groups: dict[tuple, list[int]] = {}
    for index in range(m.n_layer):
        signature = tuple(i for i, indices in enumerate(named) if index in indices)
        groups.setdefault(signature, [index, 0])[1] += 1
    return [(layer_config(m, first), first, count) for first, count in groups.values()]


def _check_layers(cfg: Config, groups) -> None:
    for layer, index, _ in groups:
        if layer is not cfg.model:
            stage = [key for key, indices in selector_sets(cfg.model) if key.startswith("model.stages.")
                     and key.count(".") == 2 and index in indices]
            where = f"{stage[0]} (layer {index}): " if stage else f"model.layers (layer {index}): "
            _check_numbers({"model": layer}, where)
            _check_shape(layer, where)
            _check_model_components(cfg, layer, where)


def _check_shape(m, where: str = "") -> None:
    if not m.head_size and m.n_embd % m.n_head:
        raise ConfigError(f"{where}model.n_embd: {m.n_embd} is not divisible by model.n_head={m.n_head}")
    if m.n_kv_head and m.n_head % m.n_kv_head:
        raise ConfigError(f"{where}model.n_kv_head: model.n_head={m.n_head} is not divisible by {m.n_kv_head}")


# Every number a config holds, with the values it may take ("[a, b]" closed, "(a, b)" open). Beyond
# these a run crashes later (negative sizes), runs forever (nan budgets) or cannot mean anything.
RANGES = {
    "model.n_layer": "[1, 1e6]", "model.n_head": "[1, 4096]", "model.n_kv_head": "[0, 4096]",
    "model.n_embd": "[1, 1e6]", "model.block_size": "[1, 1e8]", "model.vocab_size": "[0, 1e8]",
    "model.mlp_ratio": "(0, 64]", "model.window": "[0, 1e8]", "model.stride": "[0, 1e8]",
    "model.kv_lora_rank": "[0, 1e6]", "model.head_size": "[0, 1e6]", "model.rope_dim": "[0, 1e6]", "model.n_experts": "[1, 4096]",
    "model.top_k": "[1, 4096]", "model.capacity_factor": "(0, 64]", "model.moe_aux_weight": "[0, 100]",
    "model.moe_z_weight": "[0, 100]", "model.rope_base": "(1, 1e12]", "model.dropout": "[0, 1)",
    "model.rope_factor": "(0, 1e6]", "model.rope_low_freq_factor": "(0, 1e6]",
    "model.rope_high_freq_factor": "(0, 1e6]", "model.rope_original_positions": "[1, 1e8]",
    "model.norm_eps": "[0, 1)", "model.mlp_hidden": "[0, 1e8]",
    "model.retention_chunk": "[0, 1e8]", "model.d_state": "[1, 4096]", "model.d_conv": "[1, 64]",
    "model.expand": "[1, 64]", "model.router_top_k": "[1, 64]", "model.router_temperature": "(0, 1e6]",
    "model.router_aux_weight": "[0, 100]",
    "train.lr": "(0, 1000]", "train.min_lr": "[0, 1000]", "train.warmup_steps": "[0, 1e12]",
    "train.batch_size": "[1, 1e7]", "train.grad_accum": "[1, 1e6]", "train.weight_decay": "[0, 10]",
    "train.grad_clip": "[0, 1e9]", "train.seed": "[0, 4294967295]", "train.focal_gamma": "[0, 100]",
    "train.label_smoothing": "[0, 1)", "train.dpo_beta": "(0, 1000]", "train.ema": "[0, 1)",
    "train.lora_rank": "[0, 1e6]", "train.lora_alpha": "(0, 1e6]", "train.lora_dropout": "[0, 1)",
    "train.diverge_factor": "(1, 1e12]", "train.checkpoint_interval": "[0, 1e12]", "train.threads": "[0, 4096]",
    "data.val_fraction": "(0, 1)", "data.bpe_vocab_size": "[1, 1e8]",
    "budget.tokens": "[0, 1e15]", "budget.steps": "[0, 1e12]", "budget.seconds": "[0, 1e9]",
    "eval.interval": "[1, 1e12]", "eval.bytes": "[0, 1e12]", "eval.limit": "[0, 1e9]",
}


def _check_numbers(sections: dict, where: str = "") -> None:
    for key, text in RANGES.items():
        section, name = key.split(".")
        if section in sections:
            value = getattr(sections[section], name)
            if not in_range(value, text):
                raise ConfigError(f"{where}{key}: must be in {text}, got {shown(value)}")


def count_params(cfg: Config, groups) -> int:
    """The model's parameters, counted exactly on the meta device (nothing allocated): the
    embeddings, position and head of a one-layer GPT, plus one block of each group of layers
    times its layer count."""
    import torch

    from foundry.model.gpt import GPT, Block
    from foundry.model.stages import Pipeline
    m = dataclasses.replace(cfg.model, vocab_size=_vocab(cfg))

    def numel(module) -> int:
        return sum(p.numel() for p in module.parameters())
    with torch.device("meta"):
        shell = GPT(dataclasses.replace(m, n_layer=1, layers={}, stages=[]))
        pipeline = numel(Pipeline(m)) if m.stages else 0    # latent stages' weights
        return numel(shell) - numel(shell.blocks[0]) + pipeline + sum(count * numel(Block(m, first)) for _, first, count in groups)


def _vocab(cfg: Config) -> int:
    return cfg.model.vocab_size or (cfg.data.bpe_vocab_size if cfg.data.tokenizer == "bpe" else 256)


def training_memory(cfg: Config, params: int) -> int:
    """Bytes that training `cfg` needs, about: 16 a trained parameter (fp32 weight, gradient, two
    Adam moments; 4 for LoRA's frozen base, 4 more for DPO's frozen reference), plus activations
    kept for the backward pass, 34 x n_embd values per token and layer (Korthikanti et al. 2022,
    attention scores left out: SDPA does not keep them), and the logits."""
    m, t = cfg.model, cfg.train
    per_param = (4 if t.lora_rank else 16) + (4 if t.loss == "dpo" else 0)
    value_bytes = 2 if t.dtype == "bf16" else 4
    tokens = t.batch_size * m.block_size
    layers_kept = 1 if m.gradient_checkpointing else m.n_layer
    return params * per_param + tokens * value_bytes * (34 * m.n_embd * layers_kept + 3 * _vocab(cfg))


def check_fits(cfg: Config) -> None:
    """Refuse (ConfigError) a model whose training would not fit in the memory of train.device,
    with the estimate. Run by the trainer and the commands that train, before anything is written;
    not part of validate(): importing, exporting, sampling or scoring a large model needs far less."""
    m = cfg.model
    groups = layer_groups(m)
    hidden = m.mlp_hidden or m.mlp_ratio * m.n_embd
    rough = m.n_layer * (4 * m.n_embd ** 2 + 3 * m.n_embd * hidden) + _vocab(cfg) * m.n_embd
    if training_memory(cfg, rough) < 2 ** 28:   # small models: any machine has that; skip the count
        return
    try:
        params = count_params(cfg, groups)
    except Exception:   # a component that cannot be built on the meta device: keep the rough count
        params = rough
    need = training_memory(cfg, params)
    available, device = hardware.memory_bytes(cfg.train.device)
    if need > available:
        raise ConfigError(f"model: {params / 1e9:.3g} billion parameters need about {need / 2**30:,.1f} GiB to "
                          f"train (weights, gradients, Adam moments, activations), more than the "
                          f"{available / 2**30:,.1f} GiB of {device}: lower model.n_layer, model.n_embd, "
                          "model.block_size or train.batch_size")


def _check_experts(cfg: Config) -> None:
    """A fused model (foundry/fusion/): its section, and each expert's model section as a model's own."""
    from foundry.fusion.spec import parse_fused
    for name, expert in parse_fused(cfg).experts.items():
        expert_cfg = dataclasses.replace(cfg, model=expert.model, fusion={})
        try:
            _check_shape(expert.model)
            _check_model_components(expert_cfg, expert.model, "")
            _check_layers(expert_cfg, layer_groups(expert.model))
        except ConfigError as e:
            raise ConfigError(f"fusion.experts.{name}: {e}") from None


def validate(cfg: Config) -> None:
    m, t, b = cfg.model, cfg.train, cfg.budget
    _check_numbers({name: getattr(cfg, name) for name in ("model", "train", "data", "budget", "eval")})
    _check_shape(m)
    groups = layer_groups(m)
    _check_model_components(cfg, m, "")
    _check_layers(cfg, groups)
    check_stages(cfg)
    if cfg.fusion:
        _check_experts(cfg)
    check_name("train.loss", t.loss, LOSSES)
    reason = LOSSES[t.loss].check(cfg)
    if reason:
        raise ConfigError(f"train.loss: {reason}")
    if t.min_lr > t.lr:
        raise ConfigError(f"train.min_lr: must not exceed train.lr={t.lr}, got {t.min_lr}")
    if len(t.betas) != 2 or not all(0.0 <= x < 1.0 for x in t.betas):
        raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {t.betas}")
    if t.dtype not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"train.dtype: unknown {t.dtype!r} (valid: auto, bf16, fp32)")
    check_name("train.strategy", t.strategy, dict.fromkeys(STRATEGY_NAMES))
    reason = STRATEGIES[t.strategy].check(cfg) if t.strategy in STRATEGIES else None
    if reason:
        raise ConfigError(f"train.strategy: {reason}")
    _check_distill(cfg)
    _check_prune(cfg)
    reason = hardware.device_name_error(t.device)
    if reason:
        raise ConfigError(f"train.device: {reason}")
    d = cfg.data
    check_name("data.tokenizer", d.tokenizer, TOKENIZERS)
    check_name("data.format", d.format, {"none": None, **FORMATS})
    reason = check_curriculum(d.curriculum)
    if reason:
        raise ConfigError(f"data.curriculum.{reason}")
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
    if len(budgets) != 1:
        raise ConfigError(f"budget: set exactly one of tokens, steps, seconds to a positive value, got {dataclasses.asdict(b)}")
    from foundry.benchmarks.tasks import TASKS
    for task in cfg.eval.tasks:
        check_name("eval.tasks", task, TASKS)
    for task, weight in cfg.eval.rank.items():
        if task not in cfg.eval.tasks:
            raise ConfigError(f"eval.rank: {task!r} is not in eval.tasks {cfg.eval.tasks}")
        if not 0 <= weight <= 1e6:
            raise ConfigError(f"eval.rank.{task}: must be in [0, 1e6], got {weight}")


def _check_distill(cfg: Config) -> None:
    d = cfg.train.distill
    if not (d.teacher or d.cache):
        return
    if d.teacher and d.cache:
        raise ConfigError("train.distill: set teacher (a live teacher) or cache (its stored logits), not both")
    check_name("train.distill.loss", d.loss, DISTILL_LOSSES)
    if LOSSES[cfg.train.loss].objective != "next_token":
        raise ConfigError(f"train.distill: distillation trains on next-token batches; train.loss={cfg.train.loss} does not")
    if d.temperature <= 0 or not 0.0 <= d.alpha <= 1.0 or d.top_k < 0:
        raise ConfigError(f"train.distill: temperature must be positive, alpha in [0, 1], top_k >= 0; "
                          f"got {d.temperature}, {d.alpha}, {d.top_k}")
    if d.teacher_dtype not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"train.distill.teacher_dtype: unknown {d.teacher_dtype!r} (valid: auto, bf16, fp32)")
    f = d.features
    if f.weight < 0 or f.loss not in ("mse", "cosine"):
        raise ConfigError(f"train.distill.features: weight >= 0 and loss mse or cosine, got {f.weight}, {f.loss!r}")
    if f.weight and not f.pairs:
        raise ConfigError("train.distill.features.pairs: feature distillation needs [[student layer, teacher layer], ...]")
    for pair in f.pairs:
        if len(pair) != 2 or not -cfg.model.n_layer <= pair[0] < cfg.model.n_layer:
            raise ConfigError(f"train.distill.features.pairs: {pair} is not [student layer < "
                              f"model.n_layer={cfg.model.n_layer}, teacher layer]")
    if f.weight and d.cache:
        raise ConfigError("train.distill.features: a cache holds logits only; feature distillation needs a live teacher")
    if d.cache and (cfg.data.packing != "random" or cfg.data.curriculum.by != "none"):
        raise ConfigError("train.distill.cache: a cache holds the windows of data.packing: random without a "
                          f"curriculum; this run has packing {cfg.data.packing}, curriculum {cfg.data.curriculum.by} "
                          "(use a live train.distill.teacher)")


def _check_prune(cfg: Config) -> None:
    p = cfg.train.prune
    if not p.method:
        return
    check_name("train.prune.method", p.method, PRUNE_METHODS)
    if p.scope:
        check_name("train.prune.scope", p.scope, PRUNE_SCOPES)
    if not cfg.train.init_from:
        raise ConfigError("train.prune: pruning acts on trained weights; set train.init_from to the run to prune")
    if LOSSES[cfg.train.loss].objective != "next_token":
        raise ConfigError(f"train.prune: calibrates on next-token batches; train.loss={cfg.train.loss} does not train on them")
    if not 0.0 <= p.sparsity < 1.0 or p.calibration <= 0:
        raise ConfigError(f"train.prune: sparsity in [0, 1) and calibration > 0, got {p.sparsity}, {p.calibration}")
    try:
        parse_pattern(p.pattern)
    except ValueError as e:
        raise ConfigError(f"train.prune.pattern: {e}") from None
