"""Typed experiment configs: the schema as nested dataclasses, YAML in and out, dotted overrides.

    cfg = parse_file("baselines/tiny.yaml", ["model.n_layer=6", "train.lr=3e-4"])
    save(cfg, "out.yaml")            # writes YAML that loads back to an equal config
    config_hash(cfg)                 # stable content hash (lineage fields excluded)
    layer_config(cfg.model, 3)       # the settings of layer 3 (model.stages, model.layers applied)

A YAML file lists only what differs from the defaults below. Unknown keys and wrong types
raise ConfigError naming the key. `model.preset: NAME` fills the model keys a file leaves out from
a named shape (parse's `presets`; foundry.catalog passes foundry/zoo/presets.py). This file is the ground floor: it imports nothing from
foundry but errors.py and io.py, so it cannot know the components; foundry.catalog.load
(what every command uses) adds the component names and shapes to the checks.
Derived values (kv heads, per-layer settings, the budget in tokens) are computed here and
nowhere else.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import typing
from dataclasses import dataclass, field

import yaml

from foundry.config_layers import coerce_stages, layer_config, layer_selector, stage_depth  # noqa: F401 (schema)
from foundry.config_sections import CurriculumConfig, DistillConfig, EvalConfig, FeatureConfig, PruneConfig  # noqa: F401
from foundry.errors import UserError
from foundry.io import atomic_write_text, read_yaml_mapping


class ConfigError(UserError, ValueError):
    """A config that cannot be used; the message names the file and key."""


@dataclass
class ModelConfig:
    n_layer: int = 2
    n_head: int = 4
    n_kv_head: int = 0          # 0 = n_head (plain multi-head); 1 = multi-query
    n_embd: int = 128
    block_size: int = 128
    vocab_size: int = 0         # 0 = taken from the tokenizer at train time
    attention: str = "mha"
    norm: str = "rmsnorm"
    activation: str = "gelu"
    position: str = "rope"
    ffn: str = "dense"          # dense | moe
    mlp_ratio: float = 4.0
    qk_norm: bool = False
    window: int = 0             # sliding_window / sparse: local window in tokens
    stride: int = 0             # sparse: strided "summary" columns every `stride` tokens
    kv_lora_rank: int = 0       # mla: latent width (0 = n_embd // 4)
    rope_dim: int = 0           # mla: decoupled rope width per head (0 = head_dim // 2)
    retention_chunk: int = 0    # retention: chunk length of the chunked form in training; 0 = the parallel form
    d_state: int = 16           # ssm: state numbers per channel
    d_conv: int = 4             # ssm: taps of the causal depthwise conv
    expand: int = 2             # ssm: inner width = expand x n_embd
    router_mixers: list[str] = field(default_factory=lambda: ["mha", "retention", "ssm"])  # routed: the mixers
    router_top_k: int = 2       # routed: mixers each token takes
    router_temperature: float = 1.0  # routed: softmax(logits / temperature)
    router_aux_weight: float = 1e-2  # routed: weight of the balance loss
    n_experts: int = 4          # moe
    top_k: int = 2              # moe
    capacity_factor: float = 1.25
    moe_aux_weight: float = 1e-2
    moe_z_weight: float = 1e-3
    rope_base: float = 10000.0  # rope_theta
    # llama3_rope: Llama 3's rope_scaling of the low frequencies (transformers' rope_type "llama3")
    rope_factor: float = 8.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_positions: int = 8192
    norm_eps: float = 0.0       # 0 = the norm's own default (rmsnorm 1e-6, layernorm 1e-5)
    qkv_bias: bool = False      # biases on the query/key/value projections only (Qwen2); `bias` sets all
    mlp_hidden: int = 0         # MLP hidden width; 0 = derived from mlp_ratio (HF intermediate_size)
    preset: str = ""            # a named shape (foundry zoo list) filling the model keys a file leaves out
    head_size: int = 0          # width of one attention head; 0 = n_embd // n_head (pruned heads keep theirs)
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = True
    gradient_checkpointing: bool = False
    # per-layer settings over the model-wide ones: {selector: {key: value}}, a selector being a
    # layer index ("3", "-1") or a slice ("1::2" = odd layers); keys from PER_LAYER_KEYS
    layers: dict[str, dict] = field(default_factory=dict)
    # an ordered pipeline of named stages (encoder, latent, decoder stacks): config_layers.py
    stages: list[dict] = field(default_factory=list)

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.head_size or self.n_embd // self.n_head


@dataclass
class TrainConfig:
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 20
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    grad_clip: float = 1.0
    seed: int = 1337
    loss: str = "cross_entropy"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.1
    dpo_beta: float = 0.1
    ema: float = 0.0            # 0 = off; else decay of an EMA of the weights
    dtype: str = "auto"         # auto (bf16 where the device computes it natively: CUDA, AMX or AVX512-BF16 CPUs) | fp32 | bf16
    device: str = "auto"        # auto | cpu | cuda | cuda:N
    compile: bool = False       # torch.compile the model (helps on GPUs; tokens/s leaves its warm-up steps out)
    strategy: str = "auto"      # processes under torchrun: auto (ddp < 1B params <= fsdp) | ddp | fsdp | none; see training/parallel.py
    threads: int = 0            # CPU threads; 0 = the cores free when the run starts (or OMP_NUM_THREADS)
    keep_freed_memory: bool = True  # CPU: glibc malloc keeps freed memory for reuse (~30 page faults a step, not ~1000)
    init_from: str = ""         # a run folder or checkpoint to start from (fine-tuning, DPO)
    lora_rank: int = 0          # 0 = train every weight; else LoRA adapters only
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    diverge_factor: float = 4.0  # loss above factor x its initial value = diverged
    checkpoint_interval: int = 0  # steps between checkpoints; 0 = at eval time and end
    distill: DistillConfig = field(default_factory=DistillConfig)  # knowledge distillation (foundry/distill/)
    prune: PruneConfig = field(default_factory=PruneConfig)  # prune the starting weights (foundry/prune/)


@dataclass
class DataConfig:
    source: str = "builtin"     # builtin | a text file | a folder or glob | file.jsonl
    tokenizer: str = "byte"     # byte | char | bpe | hf
    tokenizer_path: str = ""    # hf: a tokenizer.json, or a Hugging Face folder / Foundry run holding one
    field: str = "text"         # JSONL field to read
    val_fraction: float = 0.1
    bpe_vocab_size: int = 512
    format: str = "none"        # chat format for JSONL conversations: none | chatml | llama3 | alpaca
    curriculum: CurriculumConfig = dataclasses.field(default_factory=CurriculumConfig)  # `field` is a key here
    packing: str = "random"     # random (windows over the joined stream) | bin (documents packed into rows)
    # training-split filters, in order: [{name: length, min_chars: 200}, {name: near_dup, threshold: 0.8}]
    filters: list[dict[str, typing.Any]] = dataclasses.field(default_factory=list)
    loss_on: str = "all"        # all | assistant (chat formats: loss on assistant turns only)
    constitution: str = ""      # a constitution YAML: its principles become a system message (chat formats)


@dataclass
class BudgetConfig:
    tokens: int = 0
    steps: int = 0
    seconds: float = 0.0


@dataclass
class Config:
    name: str = "unnamed"
    parent: str = ""
    mutations: list[str] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # a fused model's recipe, checked by foundry/fusion/spec.py; empty = the GPT of `model`
    fusion: dict = field(default_factory=dict)

    # ---- derived values: the one place they are computed ----
    @property
    def model_kind(self) -> str:
        """What `model` builds: "gpt", or "fusion" (experts' blocks, adapters, routers: foundry/fusion/)."""
        return "fusion" if self.fusion else "gpt"

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.train.grad_accum * self.model.block_size

    def max_steps(self) -> int | None:
        """Steps the budget allows, or None for a wall-clock budget."""
        if self.budget.steps:
            return self.budget.steps
        if self.budget.tokens:
            return max(1, -(-self.budget.tokens // self.tokens_per_step))
        return None


# libyaml's safe loader and dumper when PyYAML has them: the same YAML, ten times faster
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LINEAGE_KEYS = ("name", "parent", "mutations")
# how the machine runs a config, not what is trained: outside the hash
MACHINE_KEYS = ("train.threads", "train.keep_freed_memory")
SECTIONS = ("model", "train", "data", "budget", "eval")
BUDGET_KEYS = ("tokens", "steps", "seconds")
# keys that were removed, with what to write instead
REPLACED_KEYS = {"eval.batches": "replaced by eval.bytes, the bytes of validation text scored (the slice no longer "
                                 "depends on batch size and context); remove it, or set eval.bytes (0 = the whole split)"}
# ModelConfig keys that `model.layers` may set for some layers only; the rest are model-wide
PER_LAYER_KEYS = ("attention", "activation", "ffn", "mlp_ratio", "qk_norm", "window", "stride", "n_kv_head",
                  "kv_lora_rank", "rope_dim", "n_experts", "top_k", "capacity_factor", "n_head", "mlp_hidden",
                  "retention_chunk", "d_state", "d_conv", "expand", "router_mixers", "router_top_k",
                  "router_temperature")


# ---------------------------------------------------------------- conversion
def in_range(value, interval: str) -> bool:
    """Whether `value` lies in an interval written as text: "[0, 1)" (bracket: included)."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    return ((low <= value) if interval[0] == "[" else (low < value)) and \
        ((value <= high) if interval[-1] == "]" else (value < high))


def check_flags(args, ranges: dict) -> None:
    """Refuse a command-line number outside its interval (nan included), naming the flag:
    ranges maps argparse dests ("top_p") to intervals ("(0, 1]"); None (not given) passes."""
    for key, interval in ranges.items():
        value = getattr(args, key)
        if value is not None and not in_range(value, interval):
            flag = ("-" if len(key) == 1 else "--") + key.replace("_", "-")   # -n, --top-p
            raise UserError(f"{flag}: must be in {interval}, got {value}")


def shown(value) -> str:
    """repr(value) for an error message, shortened when it is long (a 400-digit literal)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _coerce(value, typ, key: str):
    """Check `value` against the annotation `typ`; ints widen to float, numeric strings to float."""
    if typ is typing.Any:
        return value  # settings whose keys and types a registry checks (data.filters: foundry.catalog)
    origin = typing.get_origin(typ)
    if origin is list:
        (item,) = typing.get_args(typ)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(typ)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value)  # YAML 1.1 reads "3e-4" as a string
            except ValueError:
                pass
        if number is not None:
            try:
                number = float(number)
            except OverflowError:  # an integer literal beyond the float range
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, got {shown(value)}")
            return number
    elif typ is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")


def _coerce_layers(value, key: str) -> dict[str, dict]:
    """`model.layers`: {selector: {per-layer key: value}}, each value typed as its ModelConfig key."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of layer -> settings, got {value!r}")
    hints = _type_hints(ModelConfig)
    out = {}
    for selector, settings in value.items():
        where = f"{key}.{selector}"
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {settings!r}")
        for name in settings:
            if name not in PER_LAYER_KEYS:
                raise ConfigError(f"{where}.{name}: not a per-layer key (valid: {', '.join(PER_LAYER_KEYS)})")
        out[str(selector)] = {name: _coerce(v, hints[name], f"{where}.{name}") for name, v in settings.items()}
    return out


@functools.cache
def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)   # resolving annotations is slow; the classes never change


def _coerce_stages(value, key: str) -> list[dict]:
    hints = _type_hints(ModelConfig)
    try:
        return coerce_stages(value, key, {k: hints[k] for k in PER_LAYER_KEYS}, _coerce, _coerce_layers)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build_dataclass(cls, data: dict, prefix: str = ""):
    """A (nested) dataclass from a dict, checking keys and types; ConfigError names the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            if dotted in REPLACED_KEYS:
                raise ConfigError(f"{dotted}: {REPLACED_KEYS[dotted]}")
            raise ConfigError(f"{dotted}: unknown key (valid: {', '.join(names)})")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            if isinstance(value, str) and hasattr(typ, "SHORTHAND"):   # `curriculum: length` (and old run folders)
                value = {typ.SHORTHAND: value}
            kwargs[key] = build_dataclass(typ, {} if value is None else value, dotted + ".")
        elif cls is ModelConfig and key == "layers":
            kwargs[key] = _coerce_layers(value, dotted)
        elif cls is ModelConfig and key == "stages":
            kwargs[key] = _coerce_stages(value, dotted)
        elif typ is dict:  # a section whose owner checks it (Config.fusion)
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping, got {value!r}")
            kwargs[key] = value
        else:
            kwargs[key] = _coerce(value, typ, dotted)
    if cls is ModelConfig and kwargs.get("stages"):
        try:
            kwargs["n_layer"] = stage_depth(kwargs["stages"], kwargs.get("n_layer"), prefix.rstrip("."))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return cls(**kwargs)


def apply_preset(data: dict, presets: dict) -> dict:
    """`model.preset: NAME` fills the model keys that `data` leaves out from presets[NAME]."""
    model = data.get("model") if isinstance(data, dict) else None
    name = model.get("preset") if isinstance(model, dict) else None
    if not name:
        return data
    if name not in presets:
        raise ConfigError(f"model.preset: unknown {name!r} (valid: {', '.join(sorted(presets))})")
    return {**data, "model": {**presets[name], **model}}


def parse(data: dict, presets: dict | None = None) -> Config:
    """A Config from a dict, keys and types checked, `model.preset` filled from `presets`.
    Components are checked by foundry.catalog.from_dict, which every caller outside the catalog uses."""
    return build_dataclass(Config, apply_preset(data or {}, presets or {}))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict, overrides) -> dict:
    """Apply `a.b=value` strings onto a nested dict; values are parsed as YAML scalars.

    A person who sets one budget key on the command line means that budget: an override of
    budget.tokens, budget.steps or budget.seconds clears the other two.
    """
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: {part} is not a section")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if parts[:1] == ["budget"] and len(parts) == 2 and parts[1] in BUDGET_KEYS and value:
            for other in BUDGET_KEYS:
                node.pop(other, None)
        node[parts[-1]] = value
    return data


def parse_file(path, overrides=(), presets: dict | None = None) -> Config:
    """A Config from a YAML file plus dotted overrides, keys and types checked (see parse)."""
    path = os.fspath(path)
    data = read_yaml_mapping(path, ConfigError, empty={})
    try:
        return parse(apply_overrides(data, overrides), presets)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dumps(cfg: Config) -> str:
    return yaml.dump(to_dict(cfg), Dumper=SAFE_DUMPER, sort_keys=False, default_flow_style=None)


def save(cfg: Config, path) -> None:
    """Write atomically: a crash never leaves a half-written config."""
    atomic_write_text(path, dumps(cfg))


def flat(cfg) -> dict:
    """Dotted key -> value for every leaf: top-level keys and the keys of each section, nested
    sections included (`train.distill.temperature`), so a new nested key never moves a hash."""
    out = {}
    for f in dataclasses.fields(cfg):   # not to_dict: asdict's deep copy of everything is slow
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in flat(value).items()})
        else:
            out[f.name] = copy.deepcopy(value) if isinstance(value, (list, dict)) else value
    return out


@functools.lru_cache(maxsize=1)
def _defaults() -> dict:
    return flat(Config())


def config_hash(cfg: Config) -> str:
    """12 hex digits over the values that differ from the defaults, lineage and MACHINE_KEYS excluded, so adding a
    new setting (with a default) to the schema leaves every existing config's hash unchanged."""
    defaults = _defaults()
    data = {k: v for k, v in flat(cfg).items()
            if k.split(".")[0] not in LINEAGE_KEYS and k not in MACHINE_KEYS and v != defaults[k]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def diff(a: Config, b: Config) -> dict[str, tuple]:
    """Dotted key -> (a value, b value) for every leaf that differs."""
    fa, fb = flat(a), flat(b)
    return {k: (fa.get(k), fb.get(k)) for k in fa if fa.get(k) != fb.get(k)}
