"""The `fusion:` section of a config: the experts, which of their blocks form each fused layer, and
how each layer adapts and routes. Parsed from plain data with every key, type and name checked;
a ConfigError names the key (`fusion.layers[1].sources[0].layer_range: ...`).

    spec = parse_fused(cfg)           # FusionSpec of a Config whose `fusion` section is set
    spec.experts["python"].model      # the expert's ModelConfig (recipe.py reads it from its checkpoint)
    spec.layers[0].sources            # [Source(expert, layer_range), ...]; spec.layers[0].init (index)

The resolved section, as recipe.py writes it into config.yaml (a fused checkpoint then needs no
expert folder to load):

    fusion:
      base: python                   # embedding, final norm, head and width; the model at step 0
      experts:
        python: {path: runs/llama_python, device: auto, model: {...the expert's model section...}}
        shakespeare: {path: runs/gpt2_shakespeare, device: cuda:1, model: {...}}
      layers:                        # one MoL layer each; layer_range [first, last) as mergekit's
        - sources: [{expert: python, layer_range: [0, 1]}, {expert: shakespeare, layer_range: [0, 2]}]
          adapter: linear            # a kind, or a mapping of settings over the defaults below
          router: {kind: token, top_k: 1}
      adapter: {kind: linear, bottleneck: 16, dropout: 0.0, norm: rmsnorm}
      router: {kind: pooled, top_k: 1, temperature: 1.0, entropy_weight: 0.0, balance_weight: 0.01}
      lr: {adapters: 0.0, routers: 0.0}           # 0 = train.lr
      mixture: {python: {source: builtin, weight: 1.0}, shakespeare: {source: ..., weight: 1.0}}

Each layer's init path (the source that carries it at step 0) is its first source from the base
expert, else its first source. `mixture` empty means data.source alone.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from foundry.config import ConfigError, ModelConfig, build_dataclass
from foundry.fusion.adapters import ADAPTERS
from foundry.fusion.routers import ROUTERS
from foundry.model.modules import NORMS

NAME = re.compile(r"^[A-Za-z0-9_-]+$")          # expert and mixture names: they become metric names
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
SECTION_KEYS = ("base", "experts", "layers", "adapter", "router", "lr", "mixture")


@dataclass
class AdapterSettings:
    kind: str = "linear"        # linear | bottleneck
    bottleneck: int = 16        # bottleneck: inner width
    dropout: float = 0.0        # bottleneck: dropout after the activation
    norm: str = "rmsnorm"       # the adapter's input norm (model.norm names)


@dataclass
class RouterSettings:
    kind: str = "pooled"        # pooled | token
    top_k: int = 1              # token: experts per token
    temperature: float = 1.0    # initial value of the learnable temperature
    entropy_weight: float = 0.0
    balance_weight: float = 0.01


@dataclass
class LearningRates:
    adapters: float = 0.0       # 0 = train.lr
    routers: float = 0.0


@dataclass
class Source:
    expert: str
    layer_range: list[int]      # [first, last) of the expert's blocks


@dataclass
class Layer:
    sources: list[Source]
    adapter: AdapterSettings
    router: RouterSettings
    init: int = 0               # index of the source that carries the layer at step 0


@dataclass
class Expert:
    path: str
    device: str = "auto"
    model: ModelConfig | None = None


@dataclass
class MixtureSource:
    source: str
    weight: float = 1.0


@dataclass
class FusionSpec:
    base: str
    experts: dict[str, Expert]
    layers: list[Layer]
    lr: LearningRates = field(default_factory=LearningRates)
    mixture: dict[str, MixtureSource] = field(default_factory=dict)

    def used_experts(self) -> list[str]:
        """Experts with at least one source, in the order the layers first name them."""
        return list(dict.fromkeys(s.expert for layer in self.layers for s in layer.sources))


def _mapping(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {value!r}")
    return value


def _settings(cls, defaults, value, key: str, registry: dict):
    """A layer's adapter/router settings: the section defaults, then the layer's kind or mapping."""
    layer = {"kind": value} if isinstance(value, str) else _mapping({} if value is None else value, key)
    settings = build_dataclass(cls, {**dataclasses.asdict(defaults), **layer}, key + ".")
    if settings.kind not in registry:
        raise ConfigError(f"{key}.kind: unknown {settings.kind!r} (valid: {', '.join(sorted(registry))})")
    return settings


def _expert(name: str, value, key: str, need_model: bool) -> Expert:
    if not NAME.match(name):
        raise ConfigError(f"{key}: expert names are letters, digits, - and _, got {name!r}")
    data = {"path": value} if isinstance(value, str) else dict(_mapping(value, key))
    model = data.pop("model", None)
    expert = build_dataclass(Expert, data, key + ".")
    if not expert.path:
        raise ConfigError(f"{key}.path: the expert's run folder or checkpoint is required")
    if not DEVICE.match(expert.device):
        raise ConfigError(f"{key}.device: expected auto, cpu, cuda or cuda:N, got {expert.device!r}")
    if model is not None:
        expert.model = build_dataclass(ModelConfig, _mapping(model, key + ".model"), key + ".model.")
    elif need_model:
        raise ConfigError(f"{key}.model: missing; `foundry fuse RECIPE` reads it from the expert's checkpoint")
    return expert


def _source(value, key: str, experts: dict) -> Source:
    source = build_dataclass(Source, _mapping(value, key), key + ".")
    if source.expert not in experts:
        raise ConfigError(f"{key}.expert: unknown {source.expert!r} (experts: {', '.join(experts)})")
    bounds = source.layer_range
    model = experts[source.expert].model
    depth = model.n_layer if model else None
    if len(bounds) != 2 or not 0 <= bounds[0] < bounds[1] or (depth and bounds[1] > depth):
        raise ConfigError(f"{key}.layer_range: expected [first, last) with 0 <= first < last"
                          f"{f' <= {depth} (its n_layer)' if depth else ''}, got {bounds}")
    return source


def _layer(value, key: str, experts: dict, base: str, defaults) -> Layer:
    data = dict(_mapping(value, key))
    unknown = set(data) - {"sources", "adapter", "router"}
    if unknown:
        raise ConfigError(f"{key}.{min(unknown)}: unknown key (valid: sources, adapter, router)")
    raw = data.get("sources")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}.sources: expected a non-empty list of {{expert, layer_range}}")
    sources = [_source(s, f"{key}.sources[{i}]", experts) for i, s in enumerate(raw)]
    layer = Layer(sources, _settings(AdapterSettings, defaults[0], data.get("adapter"), f"{key}.adapter", ADAPTERS),
                  _settings(RouterSettings, defaults[1], data.get("router"), f"{key}.router", ROUTERS))
    layer.init = next((i for i, s in enumerate(sources) if s.expert == base), 0)
    _check_settings(layer, key)
    return layer


def _check_settings(layer: Layer, key: str) -> None:
    a, r = layer.adapter, layer.router
    if a.norm not in NORMS:
        raise ConfigError(f"{key}.adapter.norm: unknown {a.norm!r} (valid: {', '.join(sorted(NORMS))})")
    if a.bottleneck <= 0 or not 0.0 <= a.dropout < 1.0:
        raise ConfigError(f"{key}.adapter: bottleneck must be positive and dropout in [0, 1), got {a.bottleneck}, {a.dropout}")
    if not 1 <= r.top_k <= len(layer.sources):
        raise ConfigError(f"{key}.router.top_k: must be in [1, {len(layer.sources)}] (the layer's sources), got {r.top_k}")
    if r.temperature <= 0 or r.entropy_weight < 0 or r.balance_weight < 0:
        raise ConfigError(f"{key}.router: temperature must be positive and loss weights not negative")


def parse_spec(data: dict, need_models: bool = True) -> FusionSpec:
    """A FusionSpec from the `fusion` section's data; `need_models` (the resolved form) requires each
    expert's model section."""
    data = _mapping(data, "fusion")
    unknown = set(data) - set(SECTION_KEYS)
    if unknown:
        raise ConfigError(f"fusion.{min(unknown)}: unknown key (valid: {', '.join(SECTION_KEYS)})")
    raw_experts = _mapping(data.get("experts"), "fusion.experts")
    if not raw_experts:
        raise ConfigError("fusion.experts: name at least one expert (name: run folder)")
    experts = {str(n): _expert(str(n), v, f"fusion.experts.{n}", need_models) for n, v in raw_experts.items()}
    base = data.get("base")
    if base not in experts:
        raise ConfigError(f"fusion.base: expected one of the experts ({', '.join(experts)}), got {base!r}")
    defaults = (build_dataclass(AdapterSettings, _mapping(data.get("adapter") or {}, "fusion.adapter"), "fusion.adapter."),
                build_dataclass(RouterSettings, _mapping(data.get("router") or {}, "fusion.router"), "fusion.router."))
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ConfigError("fusion.layers: expected a non-empty list of layers, each with sources")
    layers = [_layer(v, f"fusion.layers[{i}]", experts, base, defaults) for i, v in enumerate(raw_layers)]
    lr = build_dataclass(LearningRates, _mapping(data.get("lr") or {}, "fusion.lr"), "fusion.lr.")
    if lr.adapters < 0 or lr.routers < 0:
        raise ConfigError(f"fusion.lr: learning rates must not be negative, got {dataclasses.asdict(lr)}")
    mixture = {}
    for name, value in _mapping(data.get("mixture") or {}, "fusion.mixture").items():
        key = f"fusion.mixture.{name}"
        if not NAME.match(str(name)):
            raise ConfigError(f"{key}: source names are letters, digits, - and _")
        item = build_dataclass(MixtureSource, {"source": value} if isinstance(value, str) else _mapping(value, key), key + ".")
        if not item.source or item.weight <= 0:
            raise ConfigError(f"{key}: needs a source and a positive weight, got {dataclasses.asdict(item)}")
        mixture[str(name)] = item
    spec = FusionSpec(base, experts, layers, lr, mixture)
    unused = [n for n in experts if n not in spec.used_experts()]
    if unused:
        raise ConfigError(f"fusion.experts.{unused[0]}: not a source of any layer")
    return spec


def to_data(spec: FusionSpec) -> dict:
    """The section as plain data (what config.yaml holds), every setting spelled out per layer."""
    data = dataclasses.asdict(spec)
    for layer in data["layers"]:
        layer.pop("init")
    return data


def parse_fused(cfg) -> FusionSpec:
    """The spec of a fused Config, with the rules that tie it to the rest of the config."""
    spec = parse_spec(cfg.fusion)
    base = spec.experts[spec.base].model
    if (cfg.model.n_embd, cfg.model.vocab_size) != (base.n_embd, base.vocab_size) or cfg.model.n_layer != len(spec.layers):
        raise ConfigError("model: a fused model's model section is its base expert's, with n_layer = the fused "
                          "layers (foundry fuse writes it)")
    short = [n for n, e in spec.experts.items() if e.model.block_size < cfg.model.block_size]
    if short:
        raise ConfigError(f"model.block_size: {cfg.model.block_size} exceeds expert {short[0]}'s "
                          f"{spec.experts[short[0]].model.block_size}")
    t = cfg.train
    for key, value in (("init_from", t.init_from), ("lora_rank", t.lora_rank), ("ema", t.ema)):
        if value:
            raise ConfigError(f"train.{key}: not used with a fused model (its experts are frozen; "
                              "only adapters and routers train)")
    return spec
