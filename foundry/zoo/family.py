"""What a model family is, as data: the weight-name table and the config-key table between a
Hugging Face checkpoint and Foundry, and the one engine that applies any family's tables.

A Rule pairs Hugging Face names with Foundry names ("{}" = the layer index). One name on each side
is a plain rename; several on one side are a fused projection, concatenated along dim 0 of the
Foundry (out, in) orientation: HF k_proj + v_proj <-> Foundry kv_proj = [k; v], HF c_attn
<-> Foundry q_proj + kv_proj. `transpose` marks HF tensors stored (in, out) (GPT-2's Conv1D).
Splitting on import uses the Foundry model's shapes; splitting on export cuts into equal parts
(k and v, gate and up are always the same size). Hugging Face's Llama-style checkpoints already
store q/k rows in the half-split rotary layout of foundry/model/modules/rope.py, so no family needs
a RoPE permutation.

    family.hf_names(n_layer)                    # every HF name the table expects
    to_foundry_tensors(family, n_layer, named_hf_tensors, foundry_shapes)   # -> (name, tensor)
    to_hf_tensors(family, n_layer, get_foundry_tensor)                       # -> (name, tensor)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from foundry.errors import UserError


@dataclass(frozen=True)
class Rule:
    hf: tuple[str, ...]
    foundry: tuple[str, ...]
    transpose: bool = False
    untied_only: bool = False   # the output head: absent from both sides when embeddings are tied


@dataclass(frozen=True)
class Family:
    name: str
    architecture: str             # config.json "architectures" entry (written on export)
    model_type: str               # config.json "model_type"
    weights: tuple[Rule, ...]
    config: tuple[tuple[str, str], ...]   # (Foundry model key, HF config key), copied both ways
    requires: dict                # Foundry model key -> the values the family can express (first: import's)
    hf_requires: dict             # HF key -> accepted values (first: export's); absent keys take the first
    hf_defaults: dict             # transformers' values for keys a config.json may leave out
    read: Callable                # (hf config dict) -> the Foundry keys the tables cannot copy
    write: Callable               # (Foundry ModelConfig) -> the HF keys the tables cannot copy
    prefix: str = ""              # the base-model prefix a checkpoint saved without its head lacks
    ignored: tuple[str, ...] = field(default=())   # HF tensors that are buffers, not weights

    def expand(self, names, n_layer: int) -> list[str]:
        return [n.format(i) for n in names for i in range(n_layer)] if "{}" in names[0] else list(names)

    def rules(self, n_layer: int, tied: bool):
        """(rule, hf names, foundry names) per rule and layer."""
        for rule in self.weights:
            if rule.untied_only and tied:
                continue
            layers = range(n_layer) if "{}" in rule.hf[0] else [None]
            for i in layers:
                fill = (lambda n: n.format(i)) if i is not None else (lambda n: n)
                yield rule, [fill(n) for n in rule.hf], [fill(n) for n in rule.foundry]


def _cat(tensors):
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=0)


def _split(tensor, sizes):
    return [tensor] if len(sizes) == 1 else list(torch.split(tensor, sizes, dim=0))


def _t(tensor, rule: Rule):
    return tensor.t().contiguous() if rule.transpose and tensor.dim() == 2 else tensor


def to_foundry_tensors(family: Family, n_layer: int, tied: bool, hf_tensors, foundry_shapes: dict):
    """Foundry (name, tensor) pairs from an iterator of HF (name, tensor) pairs, emitted as soon as
    each rule's inputs are all in hand (fused parts may sit in different shards). Names missing a
    family's base-model prefix are accepted; an HF tensor the table does not know is an error."""
    owner, pending = {}, {}
    for index, (rule, hf, foundry) in enumerate(family.rules(n_layer, tied)):
        owner.update({name: index for name in hf})
        pending[index] = (rule, hf, foundry, {})
    ignored = {n for pattern in family.ignored for n in family.expand((pattern,), n_layer)}
    for name, tensor in hf_tensors:
        key = name if name in owner or not family.prefix else family.prefix + name
        if key in ignored or (tied and key.endswith("lm_head.weight")):
            continue
        if key not in owner:
            raise UserError(f"tensor {name!r} has no Foundry counterpart in the {family.name} table")
        rule, hf, foundry, got = pending[owner[key]]
        got[key] = tensor
        if len(got) == len(hf):
            whole = _cat([_t(got[n], rule) for n in hf])
            sizes = [foundry_shapes[n][0] for n in foundry]
            yield from zip(foundry, _split(whole, sizes))
            del pending[owner[key]]
    if pending:
        missing = sorted(n for rule, hf, foundry, got in pending.values() for n in hf if n not in got)
        raise UserError(f"{len(missing)} {family.name} tensors are missing, e.g. {missing[0]}")


def to_hf_tensors(family: Family, n_layer: int, tied: bool, get_foundry):
    """HF (name, tensor) pairs, reading each Foundry tensor through get_foundry(name)."""
    for rule, hf, foundry in family.rules(n_layer, tied):
        whole = _cat([get_foundry(n) for n in foundry])
        parts = _split(whole, [whole.shape[0] // len(hf)] * len(hf))
        yield from zip(hf, (_t(p, rule) for p in parts))


def hf_specs(family: Family, n_layer: int, tied: bool, foundry_specs: dict) -> list[tuple]:
    """(HF name, dtype, shape) of an export, from the Foundry tensors' (dtype, shape), reading nothing."""
    out = []
    for rule, hf, foundry in family.rules(n_layer, tied):
        dtype, shape = foundry_specs[foundry[0]]
        rows = sum(foundry_specs[n][1][0] for n in foundry) // len(hf)
        part = (rows, *shape[1:])
        out += [(n, dtype, part[::-1] if rule.transpose and len(part) == 2 else part) for n in hf]
    return out


# ---------------------------------------------------------------- config helpers the families share
ROPE_LLAMA3 = (("rope_factor", "factor"), ("rope_low_freq_factor", "low_freq_factor"),
               ("rope_high_freq_factor", "high_freq_factor"),
               ("rope_original_positions", "original_max_position_embeddings"))


def read_rope(hf: dict) -> dict:
    """Foundry position keys from transformers' rope settings: `rope_parameters` (5.x) or
    `rope_theta` + `rope_scaling` (4.x). Supported rope types: default, llama3."""
    params = hf.get("rope_parameters") or {**(hf.get("rope_scaling") or {}), "rope_theta": hf.get("rope_theta", 10000.0)}
    kind = params.get("rope_type", params.get("type", "default"))
    out = {"rope_base": float(params.get("rope_theta", 10000.0))}
    if kind == "default":
        return {**out, "position": "rope"}
    if kind == "llama3":
        return {**out, "position": "llama3_rope", **{f: params[h] for f, h in ROPE_LLAMA3}}
    raise UserError(f"config.json: rope type {kind!r} is not supported (supported: default, llama3)")


def write_rope(m) -> dict:
    """transformers' 4.x form, which 5.x reads too: rope_theta and rope_scaling."""
    scaling = None
    if m.position == "llama3_rope":
        scaling = {"rope_type": "llama3", **{h: getattr(m, f) for f, h in ROPE_LLAMA3}}
    return {"rope_theta": m.rope_base, "rope_scaling": scaling}


def read_attention(hf: dict, heads_key: str, kv_key: str | None) -> dict:
    """mha when every query head has its own key/value head, else gqa with n_kv_head groups."""
    heads = hf[heads_key]
    kv = hf.get(kv_key) or heads if kv_key else heads
    return {"attention": "mha", "n_kv_head": 0} if kv == heads else {"attention": "gqa", "n_kv_head": kv}


def check_head_dim(hf: dict, width_key: str, heads_key: str) -> None:
    head_dim = hf.get("head_dim")
    if head_dim and head_dim * hf[heads_key] != hf[width_key]:
        raise UserError(f"config.json: head_dim={head_dim} is not {width_key}/{heads_key}="
                        f"{hf[width_key] // hf[heads_key]}; Foundry derives the head size from the width")
