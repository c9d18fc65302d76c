"""Hugging Face folders read lazily, tensor by tensor, in Foundry's names; `foundry zoo import`.

    hf = HFCheckpoint("hf/qwen")                    # config.json read, family picked, nothing loaded
    hf.family.name, hf.model_keys                   # "qwen2", {Foundry model key: value}
    specs = model_specs(model_cfg)                  # {Foundry name: shape} of the GPT, reading nothing
    for name, tensor in hf.foundry_tensors(model_cfg): ...   # streamed; fused parts joined
    summary = import_folder("hf/qwen", "runs/qwen")            # a Foundry checkpoint folder

An import writes RUN/checkpoint/{model.safetensors, config.yaml, tokenizer.json}, RUN/config.yaml
(the same config, a starting point for fine-tuning) and RUN/zoo.json (where it came from). The
weights keep their dtype unless `dtype` says otherwise. Peak memory is about one tensor group
(e.g. k and v), never the model: tensors are read one at a time and written at their planned
offsets. Pickled weights are read only with allow_pickle (weights_only=True); no code from the
folder ever runs (no trust_remote_code).
"""
from __future__ import annotations

import json
import os
import time

import torch

from foundry import catalog
from foundry.config import save as save_config
from foundry.data import HFTokenizer
from foundry.errors import UserError
from foundry.io import atomic_folder, write_json
from foundry.model.shapes import weight_shapes
from foundry.weights.tensors import TensorReader, TensorWriter
from foundry.zoo.families import family_of, foundry_model_keys
from foundry.zoo.family import to_foundry_tensors

DTYPES = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise UserError(f"{folder}: not a Hugging Face model folder (cannot read config.json: {e.strerror})") from None
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def model_specs(model_cfg) -> dict:
    """{Foundry tensor name: shape} of GPT(model_cfg), reading nothing; a tied head is left out."""
    return {n: s for n, s in weight_shapes(model_cfg).items() if not (model_cfg.tie_embeddings and n == "lm_head.weight")}


class HFCheckpoint:
    """A Hugging Face causal-LM folder: config.json, safetensors (or, with allow_pickle,
    pytorch_model.bin), tokenizer.json. Tensors are read only when iterated."""

    def __init__(self, folder: str, allow_pickle: bool = False):
        self.folder = os.fspath(folder)
        self.config = read_config(self.folder)
        self.family = family_of(self.config, self.folder)
        self.model_keys = foundry_model_keys(self.family, self.config, f"{self.folder}/config.json")
        self.reader = TensorReader.from_folder(self.folder, allow_pickle)

    def tokenizer(self) -> HFTokenizer:
        if not os.path.isfile(os.path.join(self.folder, "tokenizer.json")):
            raise UserError(f"{self.folder}: no tokenizer.json (a fast tokenizer); Foundry needs one to import")
        tokenizer = HFTokenizer.from_folder(self.folder)
        for key in ("bos_token", "eos_token"):  # config.json ids stand in for a missing tokenizer_config.json
            token_id = self.config.get(f"{key}_id")
            if key not in tokenizer.special and isinstance(token_id, int):
                tokenizer.special[key] = tokenizer.id_to_token(token_id)
        return tokenizer

    def foundry_tensors(self, model_cfg):
        """(Foundry name, tensor) pairs, streamed; each checked against the shape model_cfg gives."""
        specs = model_specs(model_cfg)
        pairs = to_foundry_tensors(self.family, model_cfg.n_layer, model_cfg.tie_embeddings,
                                   self.reader.tensors(), specs)
        for name, tensor in pairs:
            if tuple(tensor.shape) != specs[name]:
                raise UserError(f"{self.folder}: {name} has shape {tuple(tensor.shape)}, config.json implies {specs[name]}")
            yield name, tensor

    def foundry_dtypes(self, model_cfg, dtype=None) -> dict:
        """{Foundry name: dtype}: each takes the dtype of the first HF tensor it is built from."""
        out, names = {}, set(self.reader.names())
        for rule, hf, foundry in self.family.rules(model_cfg.n_layer, model_cfg.tie_embeddings):
            source = next((n for n in (hf[0], hf[0].removeprefix(self.family.prefix)) if n in names), None)
            out.update({n: dtype or (self.reader.spec(source)[0] if source else torch.float32) for n in foundry})
        return out


def import_folder(folder: str, out_dir: str, allow_pickle: bool = False, dtype: str = "auto", log=print) -> dict:
    """Convert a Hugging Face folder into a Foundry checkpoint folder `out_dir`; returns a summary."""
    start = time.perf_counter()
    if dtype not in DTYPES:
        raise UserError(f"--dtype: unknown {dtype!r} (valid: {', '.join(DTYPES)})")
    hf = HFCheckpoint(folder, allow_pickle)
    tokenizer = hf.tokenizer()
    out_dir = os.path.abspath(out_dir)
    tokenizer_path = os.path.join(out_dir, "checkpoint", "tokenizer.json")
    name = os.path.basename(os.path.normpath(folder)) or hf.family.name
    cfg = catalog.from_dict({"name": name, "model": hf.model_keys, "budget": {"tokens": 1_000_000},
                             "data": {"tokenizer": "hf", "tokenizer_path": tokenizer_path}})
    if tokenizer.vocab_size > cfg.model.vocab_size:
        raise UserError(f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens, the model only {cfg.model.vocab_size}")
    specs, dtypes = model_specs(cfg.model), hf.foundry_dtypes(cfg.model, DTYPES[dtype])
    log(f"importing {folder} ({hf.family.name}, {len(hf.reader.names())} tensors) -> {out_dir}")
    with atomic_folder(out_dir) as tmp:
        os.makedirs(os.path.join(tmp, "checkpoint"))
        plan = [(n, dtypes[n], shape) for n, shape in specs.items()]
        with TensorWriter(os.path.join(tmp, "checkpoint", "model.safetensors"), plan, {"format": "pt"}) as out:
            for i, (tensor_name, tensor) in enumerate(hf.foundry_tensors(cfg.model)):
                out.write(tensor_name, tensor.to(dtypes[tensor_name]))
                if (i + 1) % 50 == 0:
                    log(f"  {i + 1}/{len(plan)} tensors")
        save_config(cfg, os.path.join(tmp, "checkpoint", "config.yaml"))
        save_config(cfg, os.path.join(tmp, "config.yaml"))
        with open(os.path.join(tmp, "checkpoint", "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tokenizer.to_json())
        summary = {"source": os.path.abspath(folder), "family": hf.family.name, "tensors": len(plan),
                   "params": sum(torch.Size(s).numel() for s in specs.values()),
                   "pickle": hf.reader.pickled, "seconds": round(time.perf_counter() - start, 3)}
        write_json(os.path.join(tmp, "zoo.json"), {**summary, "hf_config": hf.config})
    return {**summary, "out": out_dir}
