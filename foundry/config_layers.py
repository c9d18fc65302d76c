"""Per-layer variety in the config schema: `model.layers` selectors and `model.stages` pipelines.

Part of config.py's schema, kept in its own file for length; like config.py it imports nothing of
foundry, and config.py re-exports what callers use (`from foundry.config import layer_config`).

    layer_config(cfg.model, 3)     # layer 3's settings: model-wide, then its stage, then model.layers
    stage_spans(cfg.model.stages)  # [(first global layer, layer count)] per stage (0 for a latent)

`model.stages` is an ordered list of named stages, e.g.

    stages:
      - {name: encoder, kind: encoder, n_layer: 1}              # non-causal, feeds the latent only
      - {name: latent, kind: latent, d_latent: 16, rank: 8}     # FiLM + low-rank injection
      - {name: decoder_lower, kind: decoder, n_layer: 2, attention: routed}
      - {name: decoder_upper, kind: decoder, n_layer: 2, qk_norm: true, layers: {"-1": {window: 32}}}

A stack stage (encoder, decoder) takes any per-layer key (config.PER_LAYER_KEYS) for all its layers
and `layers: {selector: {...}}` with selectors counted inside the stage. The stacks' layers are the
GPT's blocks in order, so `model.n_layer` is their sum (derived; a different value is an error).
What each kind does at run time: foundry/model/stages.py; what combinations are valid: its check().
"""
from __future__ import annotations

import dataclasses
import re

# stage kind -> {key: default}; None = required. Stack kinds also take every per-layer key.
STACK_KEYS = {"name": None, "kind": None, "n_layer": 1, "layers": {}}
LATENT_KEYS = {"name": None, "kind": None,
               "d_latent": 16,      # width of the per-token latent z
               "rank": 8,           # rank of the low-rank projection z -> residual stream
               "kl_weight": 1.0,    # weight of the KL term (beyond the free bits) in the loss
               "free_bits": 0.25,   # nats per token of KL that cost nothing (Kingma et al. 2016)
               "prior": "mean"}     # at eval and generation: mean (z = 0) | sample (z ~ N(0, I))
STAGE_KINDS = {"encoder": STACK_KEYS, "decoder": STACK_KEYS, "latent": LATENT_KEYS}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def layer_selector(selector: str, n_layer: int) -> list[int]:
    """Layer indices a `model.layers` key names: "3", "-1" (the last), or a slice "1::2", "0:4".

    Raises ValueError with the reason for a key that is not an index or slice, or out of range.
    """
    text = str(selector).strip()
    if ":" not in text:
        index = int(text)
        if not -n_layer <= index < n_layer:
            raise ValueError(f"layer {index} is out of range for n_layer={n_layer}")
        return [index % n_layer]
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"{text!r} is not a slice like 1::2")
    bounds = [int(p) if p.strip() else None for p in parts]
    picked = list(range(n_layer))[slice(*bounds)]
    if not picked:
        raise ValueError(f"{text!r} selects no layer of n_layer={n_layer}")
    return picked


def stage_spans(stages: list[dict]) -> list[tuple[int, int]]:
    """(first global layer index, layer count) of each stage; a latent stage holds no layer."""
    spans, first = [], 0
    for stage in stages:
        count = stage["n_layer"] if STAGE_KINDS.get(stage["kind"]) is STACK_KEYS else 0
        spans.append((first, count))
        first += count
    return spans


def selector_sets(model_cfg) -> list[tuple[str, set[int]]]:
    """(config key, global layer indices) of every place that gives some layers settings, in the
    order they apply: each stack stage, its own `layers` selectors, then `model.layers`.
    Raises ValueError("KEY: reason") for a selector out of range."""
    out = []
    for stage, (first, count) in zip(model_cfg.stages, stage_spans(model_cfg.stages)):
        if not count:
            continue
        out.append((f"model.stages.{stage['name']}", set(range(first, first + count))))
        for selector in stage["layers"]:
            key = f"model.stages.{stage['name']}.layers.{selector}"
            out.append((key, {first + i for i in _selected(key, selector, count)}))
    for selector in model_cfg.layers:
        key = f"model.layers.{selector}"
        out.append((key, set(_selected(key, selector, model_cfg.n_layer))))
    return out


def _selected(key: str, selector: str, n_layer: int) -> list[int]:
    try:
        return layer_selector(selector, n_layer)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None


def layer_config(model_cfg, index: int):
    """The ModelConfig of layer `index`: model-wide values, then its stage's settings and the stage's
    own `layers` entries, then `model.layers` entries, in file order (a later key overrides an
    earlier one). Layers without any get model_cfg itself."""
    changes = {}
    for stage, (first, count) in zip(model_cfg.stages, stage_spans(model_cfg.stages)):
        if first <= index < first + count:
            changes.update({k: v for k, v in stage.items() if k not in STACK_KEYS})
            for selector, values in stage["layers"].items():
                if index - first in layer_selector(selector, count):
                    changes.update(values)
    for selector, values in model_cfg.layers.items():
        if index in layer_selector(selector, model_cfg.n_layer):
            changes.update(values)
    if not changes and not model_cfg.stages:
        return model_cfg
    return dataclasses.replace(model_cfg, layers={}, stages=[], **changes)


def coerce_stages(value, key: str, per_layer: dict, coerce, coerce_layers) -> list[dict]:
    """`model.stages`: a list of stage mappings, defaults filled in, each value typed by
    `coerce(value, type, dotted key)`: per_layer maps each per-layer key to its ModelConfig type,
    `coerce_layers` checks a stage's `layers`. Raises ValueError naming the stage and key."""
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list of stages, got {value!r}")
    out, names = [], set()
    for i, raw in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping with name and kind, got {raw!r}")
        name, kind = raw.get("name"), raw.get("kind")
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"{where}.name: expected a name like decoder_lower (letters, digits, _), got {name!r}")
        if name in names:
            raise ValueError(f"{key}.{name}: two stages are named {name!r}")
        names.add(name)
        where = f"{key}.{name}"
        if kind not in STAGE_KINDS:
            raise ValueError(f"{where}.kind: unknown {kind!r} (valid: {', '.join(sorted(STAGE_KINDS))})")
        own = STAGE_KINDS[kind]
        allowed = [*own, *per_layer] if own is STACK_KEYS else list(own)
        stage = {"name": name, "kind": kind, **{k: v for k, v in own.items() if v is not None}}
        for k, v in raw.items():
            if k not in allowed:
                raise ValueError(f"{where}.{k}: not a key of a {kind} stage (valid: {', '.join(allowed)})")
            if k in ("name", "kind"):
                continue
            if k == "layers":
                stage[k] = coerce_layers(v, f"{where}.layers")
            elif k in own and own[k] is not None:
                stage[k] = coerce(v, type(own[k]), f"{where}.{k}")
            else:
                stage[k] = coerce(v, per_layer[k], f"{where}.{k}")
        out.append(stage)
    return out


def stage_depth(stages: list[dict], n_layer, key: str = "model") -> int:
    """model.n_layer of a staged model: the layers of its stacks; a given n_layer must agree."""
    total = sum(count for _, count in stage_spans(stages))
    if n_layer is not None and n_layer != total:
        parts = ", ".join(f"{s['name']} {s['n_layer']}" for s in stages if "n_layer" in s)
        raise ValueError(f"{key}.n_layer: {n_layer}, but model.stages hold {total} layers ({parts}); "
                         "leave model.n_layer out, it is their sum")
    return total
