"""`foundry zoo export`: a Foundry checkpoint as a Hugging Face folder that transformers loads.

    summary = export_run("runs/qwen-ft", "hf/qwen-ft")                 # merged LoRA, if any
    summary = export_run("runs/qwen-ft", "hf/adapter", lora="adapter")  # a peft adapter folder
    summary = export_run("runs/tiny", "hf/tiny", family="llama", max_shard_bytes=2**30)

The folder gets config.json, model.safetensors (or shards and model.safetensors.index.json above
max_shard_bytes), generation_config.json, tokenizer.json and tokenizer_config.json; byte, char and
bpe tokenizers are written as equivalent tokenizer.json files. The family is --family, else the one
the run was imported as (zoo.json, followed through train.init_from), else the first that can express
the model; a model none can express (MoE, ALiBi, MLA, ...) is refused with the reasons. Tensors are
streamed one at a time; max_position_embeddings is the run's model.block_size.
"""
from __future__ import annotations

import json
import os
import time

from foundry import catalog
from foundry.data import tokenizer_from_json
from foundry.errors import UserError
from foundry.io import atomic_folder, read_json, write_json
from foundry.weights.checkpoint import checkpoint_dir
from foundry.weights.lora import merged_weights
from foundry.weights.tensors import TensorReader, write_sharded
from foundry.zoo.adapter import write_adapter
from foundry.zoo.families import FAMILIES, exportable_family, hf_config_of, misfit
from foundry.zoo.family import hf_specs, to_hf_tensors
from foundry.zoo.hf import DTYPES

DEFAULT_SHARD_BYTES = 5 * 2**30
TORCH_DTYPE_NAMES = {"torch.float32": "float32", "torch.bfloat16": "bfloat16", "torch.float16": "float16"}


def recorded_family(run: str, hops: int = 8) -> str | None:
    """The family a run was imported as: its zoo.json, or that of the run its train.init_from names."""
    for _ in range(hops):
        folder = checkpoint_dir(run)
        top = os.path.dirname(folder) if os.path.basename(folder) == "checkpoint" else folder
        record = read_json(os.path.join(top, "zoo.json"))
        if record and record.get("family") in FAMILIES:
            return record["family"]
        try:
            run = catalog.load(os.path.join(folder, "config.yaml")).train.init_from
        except UserError:
            return None
        if not run:
            return None
    return None


def load_run(run: str):
    """(checkpoint folder, cfg, tokenizer, tensor reader) of a run folder or checkpoint."""
    folder = checkpoint_dir(run)
    missing = [n for n in ("config.yaml", "model.safetensors", "tokenizer.json") if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise UserError(f"{run}: not a Foundry checkpoint (missing {', '.join(missing)})")
    cfg = catalog.load(os.path.join(folder, "config.yaml"))
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = tokenizer_from_json(f.read())
    weights = "ema" if os.path.exists(os.path.join(folder, "ema.safetensors")) else "model"
    return folder, cfg, tokenizer, TensorReader.from_folder(folder, prefix=weights)


def tokenizer_files(tokenizer, block_size: int) -> tuple[dict, dict]:
    """(tokenizer.json, tokenizer_config.json) contents for any Foundry tokenizer."""
    hf = tokenizer.to_hf()
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": block_size,
              "clean_up_tokenization_spaces": False, **hf.special}
    return hf.spec, config


def export_run(run: str, out_dir: str, family: str | None = None, lora: str = "merge", dtype: str = "auto",
               max_shard_bytes: int = DEFAULT_SHARD_BYTES, log=print) -> dict:
    start = time.perf_counter()
    if lora not in ("merge", "adapter"):
        raise UserError(f"--lora: unknown {lora!r} (valid: merge, adapter)")
    if dtype not in DTYPES:
        raise UserError(f"--dtype: unknown {dtype!r} (valid: {', '.join(DTYPES)})")
    folder, cfg, tokenizer, reader = load_run(run)
    m = cfg.model
    recorded = None if family else recorded_family(run)
    chosen = exportable_family(m, family or (recorded if recorded and not misfit(FAMILIES[recorded], m) else None), run)
    log(f"exporting {run} as {chosen.name} -> {out_dir}")
    with atomic_folder(out_dir) as tmp:
        if lora == "adapter":
            written = write_adapter(tmp, chosen, cfg, reader)
            return {"family": chosen.name, "out": os.path.abspath(out_dir), **written,
                    "seconds": round(time.perf_counter() - start, 3)}
        specs, get = merged_weights(reader, cfg.train)
        if m.tie_embeddings and "wte.weight" not in specs:  # Foundry stores a tied pair under the head's name
            specs["wte.weight"], get = specs["lm_head.weight"], _alias(get, "wte.weight", "lm_head.weight")
        target = DTYPES[dtype]
        plan = [(n, target or d, s) for n, d, s in hf_specs(chosen, m.n_layer, m.tie_embeddings, specs)]
        tensors = ((n, t.to(target) if target else t) for n, t in to_hf_tensors(chosen, m.n_layer, m.tie_embeddings, get))
        files = write_sharded(tmp, plan, tensors, max_shard_bytes)
        hf_tok = tokenizer.to_hf()
        ids = {f"{k}_id": hf_tok.token_id(k) for k in ("bos_token", "eos_token", "pad_token")}
        ids = {k: v for k, v in ids.items() if v is not None}
        config = {**hf_config_of(chosen, m), **ids, "torch_dtype": TORCH_DTYPE_NAMES[str(plan[0][1])], "use_cache": True}
        write_json(os.path.join(tmp, "config.json"), config)
        write_json(os.path.join(tmp, "generation_config.json"), {**ids, "_from_model_config": True})
        spec, tokenizer_config = tokenizer_files(tokenizer, m.block_size)
        with open(os.path.join(tmp, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False)
        write_json(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config)
    return {"family": chosen.name, "out": os.path.abspath(out_dir), "files": files, "tensors": len(plan),
            "seconds": round(time.perf_counter() - start, 3)}


def _alias(get, name: str, stored: str):
    return lambda n: get(stored if n == name else n)
