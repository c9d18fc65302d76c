"""Fusion recipes: a YAML file naming experts and the layers built from their blocks, resolved into a
Foundry config whose `fusion:` section holds everything a fused checkpoint needs.

    cfg = load_recipe("fuse.yaml", ["router.kind=token", "budget.tokens=200000"])
    cfg = resolve({"experts": {...}, "base": ..., "layers": [...], "budget": {"steps": 10}})

A recipe's top level holds the fusion keys (experts, base, layers, adapter, router, lr, mixture:
see spec.py) beside the config sections a run takes (name, train, data, budget, eval):

    name: shakespeare-python
    experts:                                    # name: a Foundry run or checkpoint (zoo imports too)
      python: runs/fusion-bench/llama_python
      shakespeare: {path: runs/fusion-bench/gpt2_shakespeare, device: auto}
    base: python                                # embedding, final norm, head; the model at step 0
    layers:
      - sources: [{expert: python, layer_range: [0, 1]}, {expert: shakespeare, layer_range: [0, 1]}]
        router: token
    router: {kind: pooled, balance_weight: 0.01}
    lr: {adapters: 2.0e-3, routers: 1.0e-2}
    mixture: {python: builtin, shakespeare: $FOUNDRY_DATA/tinyshakespeare.txt}
    budget: {tokens: 300000}

Resolving reads each expert's config.yaml and tokenizer.json (never its weights): the experts must
share one tokenizer; each expert's model section is recorded under fusion.experts.NAME.model and
its path made absolute; `model` becomes the base's model section with n_layer = the fused layers
and block_size = the smallest expert's; data.tokenizer (and tokenizer_path) default to the base's.
A file that already has a `fusion:` section (a fused run's config.yaml) is loaded as it is.
"""
from __future__ import annotations

import copy
import dataclasses
import os

from foundry import catalog
from foundry.config import ConfigError, apply_overrides
from foundry.errors import UserError
from foundry.fusion.experts import expert_folder, expert_tokenizer
from foundry.fusion.spec import SECTION_KEYS, parse_spec, to_data
from foundry.io import read_yaml_mapping

RUN_KEYS = ("name", "train", "data", "budget", "eval")


def load_recipe(path, overrides=()):
    """A checked, resolved fused Config from a recipe file and dotted overrides."""
    data = apply_overrides(read_yaml_mapping(path, empty={}), overrides)
    try:
        return catalog.from_dict(data) if "fusion" in data else resolve(data)
    except ConfigError as e:
        raise ConfigError(f"{os.fspath(path)}: {e}") from None


def resolve(recipe: dict):
    """A recipe (top-level fusion keys + run sections) -> the fused Config, experts' sections read."""
    recipe = copy.deepcopy(recipe)
    unknown = set(recipe) - set(SECTION_KEYS) - set(RUN_KEYS)
    if unknown:
        key = min(unknown)
        why = "comes from the base expert" if key == "model" else "unknown key"
        raise ConfigError(f"{key}: {why} (valid: {', '.join(SECTION_KEYS + RUN_KEYS)})")
    fusion = {k: recipe.pop(k) for k in SECTION_KEYS if k in recipe}
    spec = parse_spec(fusion, need_models=False)
    tokenizers, expert_cfgs = {}, {}
    for name, expert in spec.experts.items():
        folder = expert_folder(expert.path)
        expert.path = os.path.abspath(folder)
        expert_cfgs[name] = catalog.load(os.path.join(folder, "config.yaml"))
        expert.model = expert_cfgs[name].model
        tokenizers[name] = expert_tokenizer(folder).to_json()
    different = [n for n in tokenizers if tokenizers[n] != tokenizers[spec.base]]
    if different:
        raise UserError(f"fusion.experts.{different[0]}: its tokenizer differs from the base {spec.base}'s; "
                        "fused experts must share one tokenizer")
    spec = parse_spec(to_data(spec))  # again, now that each source's layer_range can be checked
    base = spec.experts[spec.base]
    model = dataclasses.replace(base.model, n_layer=len(spec.layers), layers={}, preset="",
                                block_size=min(e.model.block_size for e in spec.experts.values()))
    data = recipe.setdefault("data", {})
    if isinstance(data, dict) and "tokenizer" not in data:
        base_data = expert_cfgs[spec.base].data
        data.update({"tokenizer": base_data.tokenizer, "tokenizer_path": base_data.tokenizer_path})
    recipe.setdefault("name", "fused")
    return catalog.from_dict({**recipe, "model": dataclasses.asdict(model), "fusion": to_data(spec)})


def describe(cfg) -> str:
    """A few lines: the experts, and each layer's sources, adapter and router."""
    spec = parse_spec(cfg.fusion)
    lines = [f"{n}: {e.model.n_layer} layers x {e.model.n_embd} ({e.model.norm}, {e.model.position}, "
             f"{e.model.activation}){' [base]' if n == spec.base else ''}" for n, e in spec.experts.items()]
    for i, layer in enumerate(spec.layers):
        sources = " | ".join(f"{s.expert}[{s.layer_range[0]}:{s.layer_range[1]}]" for s in layer.sources)
        lines.append(f"layer {i}: {sources}  adapter {layer.adapter.kind}, router {layer.router.kind}")
    return "\n".join(lines)

