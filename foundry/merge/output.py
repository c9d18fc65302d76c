"""Writing a merge's output in the base model's format, tensors streamed in as they are merged.

    files = write(tmp_folder, plan, (name, tensor) pairs, max_shard_bytes)

Foundry: checkpoint/model.safetensors (every tensor at an offset planned before any data, so
nothing is held), checkpoint/config.yaml and config.yaml (the base's config with the new depth,
vocabulary and per-layer settings of stacked layers; LoRA merged in, so lora_rank 0),
checkpoint/tokenizer.json. Hugging Face: transformers' layout, sharded above max_shard_bytes
(foundry.weights.tensors.write_sharded), config.json (the base's, with the new depth, per-layer
types, vocabulary and dtype), generation_config.json and the tokenizer files.
"""
from __future__ import annotations

import json
import os
import shutil

from foundry.io import write_json
from foundry.merge.sources import TOKENIZER_FILES
from foundry.weights.tensors import TensorWriter, write_sharded

HF_DTYPE_NAMES = {"torch.float32": "float32", "torch.bfloat16": "bfloat16", "torch.float16": "float16",
                  "torch.float64": "float64"}


def vocab_rows(plan, default: int) -> int:
    rows = [t.shape[0] for t in plan.tensors if t.name in plan.base.vocab_names]
    return rows[0] if rows else default


def foundry_config(plan, name: str):
    """The output's Config: the base's, with the output's depth, vocabulary and per-layer settings."""
    from foundry import catalog
    from foundry.config import PER_LAYER_KEYS, layer_config, to_dict
    base_cfg = plan.base.cfg
    data = to_dict(base_cfg)
    wide = base_cfg.model
    layers = {}
    for i, (model, j) in enumerate(plan.layer_sources):
        own = layer_config(model.cfg.model, j)
        changed = {k: getattr(own, k) for k in PER_LAYER_KEYS if getattr(own, k) != getattr(wide, k)}
        if changed:
            layers[str(i)] = changed
    data["model"].update(n_layer=plan.n_layer, layers=layers, vocab_size=vocab_rows(plan, wide.vocab_size))
    data["train"].update(lora_rank=0, init_from="")
    data.update(name=name, parent=base_cfg.name)
    return catalog.from_dict(data)


def write_foundry(folder: str, plan, tensors, name: str) -> list[str]:
    from foundry.config import save
    checkpoint = os.path.join(folder, "checkpoint")
    os.makedirs(checkpoint)
    cfg = foundry_config(plan, name)
    specs = [(t.name, t.dtype, t.shape) for t in plan.tensors]
    with TensorWriter(os.path.join(checkpoint, "model.safetensors"), specs, {"format": "pt"}) as out:
        for name, tensor in tensors:
            out.write(name, tensor)
    save(cfg, os.path.join(checkpoint, "config.yaml"))
    save(cfg, os.path.join(folder, "config.yaml"))
    with open(os.path.join(checkpoint, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(plan.tokenizer.to_json())
    return ["checkpoint/model.safetensors"]


def hf_config(plan) -> dict:
    base = plan.base
    config = json.loads(json.dumps(base.config))
    keys = dict(base.family.config)                        # Foundry model key -> config.json key
    config[keys["n_layer"]] = plan.n_layer
    config[keys["vocab_size"]] = vocab_rows(plan, config[keys["vocab_size"]])
    if isinstance(config.get("layer_types"), list):        # per-layer attention kinds (transformers 5)
        own = lambda model: getattr(model, "config", {}).get("layer_types") or config["layer_types"]  # noqa: E731
        config["layer_types"] = [own(model)[min(j, len(own(model)) - 1)] for model, j in plan.layer_sources]
    dtype = next((t.dtype for t in plan.tensors if t.dtype.is_floating_point), None)
    if dtype is not None:
        for key in ("torch_dtype", "dtype"):
            if key in config or key == "torch_dtype":
                config[key] = HF_DTYPE_NAMES[str(dtype)]
    return config


def write_hf(folder: str, plan, tensors, max_shard_bytes: int) -> list[str]:
    specs = [(t.name, t.dtype, t.shape) for t in plan.tensors]
    files = write_sharded(folder, specs, tensors, max_shard_bytes)
    write_json(os.path.join(folder, "config.json"), hf_config(plan))
    if os.path.isfile(os.path.join(plan.base.path, "generation_config.json")):
        shutil.copyfile(os.path.join(plan.base.path, "generation_config.json"), os.path.join(folder, "generation_config.json"))
    source = plan.tokenizer_model or plan.base
    if hasattr(source, "inner"):                     # a Foundry model's tokenizer, written as transformers' files
        from foundry.zoo.export import tokenizer_files
        spec, tokenizer_config = tokenizer_files(plan.tokenizer, source.model_cfg.block_size)
        write_json(os.path.join(folder, "tokenizer.json"), spec)
        write_json(os.path.join(folder, "tokenizer_config.json"), tokenizer_config)
    for name in TOKENIZER_FILES if not hasattr(source, "inner") else ():
        if os.path.isfile(os.path.join(source.path, name)):
            shutil.copyfile(os.path.join(source.path, name), os.path.join(folder, name))
    return files + (["model.safetensors.index.json"] if len(files) > 1 else [])


def write(folder: str, plan, tensors, max_shard_bytes: int, name: str) -> list[str]:
    """Fill `folder` (empty) with the output; `name` is the Foundry config's name."""
    if plan.base.kind == "foundry":
        return write_foundry(folder, plan, tensors, name)
    return write_hf(folder, plan, tensors, max_shard_bytes)
