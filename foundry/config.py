"""Typed experiment configs: nested dataclasses loaded from YAML with dotted overrides.

    cfg = load("baselines/tiny.yaml", ["model.n_layer=6", "train.lr=3e-4"])
    save(cfg, "out.yaml")            # writes YAML that loads back to an equal config
    config_hash(cfg)                 # stable content hash (lineage fields excluded)

A YAML file lists only what differs from the defaults below. Unknown keys, wrong types,
unknown component names and impossible shapes raise ConfigError naming the key.
Derived values (kv heads, the budget in tokens) are computed here and nowhere else.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import typing
from dataclasses import dataclass, field

import yaml

from foundry.errors import UserError


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
    n_experts: int = 4          # moe
    top_k: int = 2              # moe
    capacity_factor: float = 1.25
    moe_aux_weight: float = 1e-2
    moe_z_weight: float = 1e-3
    rope_base: float = 10000.0
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = True
    gradient_checkpointing: bool = False

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


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
    dtype: str = "auto"         # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    device: str = "auto"        # auto | cpu | cuda | cuda:N
    init_from: str = ""         # a run folder or checkpoint to start from (fine-tuning, DPO)
    lora_rank: int = 0          # 0 = train every weight; else LoRA adapters only
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    diverge_factor: float = 4.0  # loss above factor x its initial value = diverged
    checkpoint_interval: int = 0  # steps between checkpoints; 0 = at eval time and end


@dataclass
class DataConfig:
    source: str = "builtin"     # builtin | a text file | a folder or glob | file.jsonl
    tokenizer: str = "byte"     # byte | char | bpe
    field: str = "text"         # JSONL field to read
    val_fraction: float = 0.1
    bpe_vocab_size: int = 512
    format: str = "none"        # chat format for JSONL conversations: none | chatml | llama3 | alpaca
    curriculum: str = "none"    # none | short_first (training documents shortest first)


@dataclass
class BudgetConfig:
    tokens: int = 0
    steps: int = 0
    seconds: float = 0.0


@dataclass
class EvalConfig:
    interval: int = 100         # steps between validation passes
    batches: int = 8            # validation batches per pass (a fixed slice)
    tasks: list[str] = field(default_factory=list)  # benchmark tasks run after training
    limit: int = 0              # items per task (0 = all); a cheap, fixed subset for ranking
    rank: dict[str, float] = field(default_factory=dict)  # task -> weight of summary's rank_score; empty = equal


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

    # ---- derived values: the one place they are computed ----
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


LINEAGE_KEYS = ("name", "parent", "mutations")


# ---------------------------------------------------------------- conversion
def _coerce(value, typ, key: str):
    """Check `value` against the annotation `typ`; ints widen to float, numeric strings to float."""
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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "3e-4" as a string
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")


def build_dataclass(cls, data: dict, prefix: str = ""):
    """A (nested) dataclass from a dict, checking keys and types; ConfigError names the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"{dotted}: unknown key (valid: {', '.join(names)})")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            kwargs[key] = build_dataclass(typ, value or {}, dotted + ".")
        else:
            kwargs[key] = _coerce(value, typ, dotted)
    return cls(**kwargs)


def from_dict(data: dict) -> Config:
    cfg = build_dataclass(Config, data or {})
    validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict, overrides) -> dict:
    """Apply `a.b=value` strings onto a nested dict; values are parsed as YAML scalars."""
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
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def load(path, overrides=()) -> Config:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return from_dict(apply_overrides(data, overrides))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dumps(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def save(cfg: Config, path) -> None:
    """Write atomically: a crash never leaves a half-written config."""
    atomic_write_text(path, dumps(cfg))


def atomic_write_text(path, text: str) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def config_hash(cfg: Config) -> str:
    """12 hex digits over the content, lineage (name, parent, mutations) excluded."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in LINEAGE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def diff(a: Config, b: Config) -> dict[str, tuple]:
    """Dotted key -> (a value, b value) for every leaf that differs."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and k != "rank":
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out
    fa, fb = flat(to_dict(a)), flat(to_dict(b))
    return {k: (fa.get(k), fb.get(k)) for k in fa if fa.get(k) != fb.get(k)}


# ---------------------------------------------------------------- validation
def _check_name(key: str, name: str, registry: dict) -> None:
    if name not in registry:
        raise ConfigError(f"{key}: unknown {name!r} (valid: {', '.join(sorted(registry))})")


def validate(cfg: Config) -> None:
    from foundry.data import CURRICULA, FORMATS, TOKENIZERS
    from foundry.modules import ACTIVATIONS, ATTENTION, FFNS, LOSSES, NORMS, POSITIONS

    m, t, b = cfg.model, cfg.train, cfg.budget
    for key in ("n_layer", "n_head", "n_embd", "block_size"):
        if getattr(m, key) <= 0:
            raise ConfigError(f"model.{key}: must be positive, got {getattr(m, key)}")
    if m.n_embd % m.n_head:
        raise ConfigError(f"model.n_embd: {m.n_embd} is not divisible by model.n_head={m.n_head}")
    if m.n_kv_head < 0 or (m.n_kv_head and m.n_head % m.n_kv_head):
        raise ConfigError(f"model.n_kv_head: model.n_head={m.n_head} is not divisible by {m.n_kv_head}")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError(f"model.dropout: must be in [0, 1), got {m.dropout}")
    for key, registry in (("attention", ATTENTION), ("norm", NORMS), ("activation", ACTIVATIONS),
                          ("position", POSITIONS), ("ffn", FFNS)):
        _check_name(f"model.{key}", getattr(m, key), registry)
        component = registry[getattr(m, key)]
        reason = component.check(cfg) if hasattr(component, "check") else None
        if reason:
            raise ConfigError(f"model.{key}: {reason}")
    _check_name("train.loss", t.loss, LOSSES)
    reason = LOSSES[t.loss].check(cfg) if hasattr(LOSSES[t.loss], "check") else None
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
    d = cfg.data
    _check_name("data.tokenizer", d.tokenizer, TOKENIZERS)
    _check_name("data.format", d.format, {"none": None, **FORMATS})
    _check_name("data.curriculum", d.curriculum, CURRICULA)
    if not 0.0 < d.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be in (0, 1), got {d.val_fraction}")
    if d.tokenizer == "bpe" and d.bpe_vocab_size < 256:
        raise ConfigError(f"data.bpe_vocab_size: must be at least 256 (the byte alphabet), got {d.bpe_vocab_size}")
    if d.format != "none" and not d.source.endswith(".jsonl"):
        raise ConfigError(f"data.format: {d.format!r} needs a .jsonl source of conversations, got {d.source!r}")
    budgets = {k: v for k, v in dataclasses.asdict(b).items() if v}
    if any(v < 0 for v in budgets.values()) or len(budgets) != 1:
        raise ConfigError(f"budget: set exactly one of tokens, steps, seconds to a positive value, got {dataclasses.asdict(b)}")
    if cfg.eval.interval <= 0 or cfg.eval.batches <= 0 or cfg.eval.limit < 0:
        raise ConfigError("eval.interval/eval.batches: must be positive; eval.limit: not negative")
    from foundry.benchmarks import TASKS
    for task in cfg.eval.tasks:
        _check_name("eval.tasks", task, TASKS)
    for task in cfg.eval.rank:
        if task not in cfg.eval.tasks:
            raise ConfigError(f"eval.rank: {task!r} is not in eval.tasks {cfg.eval.tasks}")
