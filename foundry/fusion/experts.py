"""Experts read from their checkpoints: a Foundry run (trained, or a Hugging Face model imported with
`foundry zoo import`, which is one) gives the blocks the fused layers name, and nothing else.

    model = build_from_experts(cfg, device)     # the fused model at step 0: experts frozen, placed
    tokenizer = expert_tokenizer("runs/llama")  # the tokenizer an expert was trained with

Each expert's weights (its EMA when it kept one, as train.init_from reads) are opened as a
memory-mapped safetensors file and only the tensors of the named blocks, of its position
component and (for the base) of the embedding, final norm and head are read, one at a time, onto
the expert's device. The log says, per expert, how many of its tensors and bytes were read.
"""
from __future__ import annotations

import os

from foundry.errors import UserError
from foundry.fusion.build import TIED_ALIAS, materialize, skeleton, tied_head
from foundry.weights.checkpoint import checkpoint_dir
from foundry.weights.tensors import TensorReader


def expert_folder(path: str) -> str:
    folder = checkpoint_dir(os.path.expanduser(os.path.expandvars(path)))
    if not os.path.isfile(os.path.join(folder, "config.yaml")):
        raise UserError(f"{path}: not a Foundry checkpoint (no config.yaml); train one, or "
                        "`foundry zoo import` a Hugging Face model first")
    return folder


def expert_reader(path: str) -> TensorReader:
    folder = expert_folder(path)
    prefix = "ema" if os.path.isfile(os.path.join(folder, "ema.safetensors")) else "model"
    return TensorReader.from_folder(folder, prefix=prefix)


def expert_tokenizer(path: str):
    from foundry.data import tokenizer_from_json
    file = os.path.join(expert_folder(path), "tokenizer.json")
    try:
        with open(file, encoding="utf-8") as f:
            return tokenizer_from_json(f.read())
    except OSError as e:
        raise UserError(f"{file}: cannot read the expert's tokenizer ({e.strerror})") from None


def build_from_experts(cfg, device, log=print):
    """The fused model of `cfg` with its frozen tensors read from the experts' checkpoints."""
    model = skeleton(cfg, device)
    readers = {name: expert_reader(model.spec.experts[name].path) for name in model.devices}
    table = model.frozen_sources()
    names = [n for n in table if n not in tied_head(model)]
    stored = {name: set(reader.names()) for name, reader in readers.items()}

    def stored_name(expert, source):
        return source if source in stored[expert] else TIED_ALIAS.get(source, source)

    def get(name):
        expert, source = table[name]
        return readers[expert].get(stored_name(expert, source))

    try:
        materialize(model, names, get, "fusion.experts")
    except RuntimeError as e:  # a shape that no longer matches: the checkpoint changed after the recipe was read
        raise UserError(f"fusion.experts: a checkpoint does not fit its recorded model section "
                        f"({str(e).strip().splitlines()[-1].strip()})") from None
    for expert, reader in readers.items():
        used = {stored_name(expert, table[n][1]) for n in names if table[n][0] == expert}
        read_mb = sum(reader.nbytes(n) for n in used) / 2**20
        total_mb = sum(reader.nbytes(n) for n in reader.names()) / 2**20
        log(f"expert {expert}: {len(used)} of {len(reader.names())} tensors read "
            f"({read_mb:.2f} of {total_mb:.2f} MB) -> {model.devices[expert]}")
    return model
