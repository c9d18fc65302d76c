"""Where heads and hidden units sit in each component's weights: the slices structured pruning keeps.

    gqa_slices(attention, kept_heads)   -> {local name: tensor} of the smaller attention
    mlp_slices(mlp, kept_units)         -> c_fc rows and c_proj columns
    gated_slices(mlp, kept_units)       -> gate and up rows of the fused gate_up, c_proj columns

Grouped-query attention (gqa.py): q_proj rows [h D, (h + 1) D) are query head h; kv_proj rows are
[keys of the n_kv groups; values of the n_kv groups]; c_proj columns [h D, (h + 1) D) read head h.
Query head h uses key/value group h // (n_head / n_kv). When n_kv = n_head a removed head takes its
key and value with it; otherwise the groups stay whole. Names not returned are copied unchanged.
"""
from __future__ import annotations

import torch


def _rows(kept: list[int], width: int, offset: int = 0) -> torch.Tensor:
    return torch.tensor([offset + u * width + d for u in kept for d in range(width)], dtype=torch.long)


def _take(module, rows=None, cols=None) -> dict:
    """A linear layer's weight (and bias) restricted to some output rows or input columns."""
    out = {"weight": module.weight.detach()}
    if rows is not None:
        out["weight"] = out["weight"].index_select(0, rows.to(module.weight.device))
    if cols is not None:
        out["weight"] = out["weight"].index_select(1, cols.to(module.weight.device))
    if module.bias is not None:
        bias = module.bias.detach()
        out["bias"] = bias.index_select(0, rows.to(bias.device)) if rows is not None else bias
    return out


def _prefixed(prefix: str, tensors: dict) -> dict:
    return {f"{prefix}.{k}": v.clone() for k, v in tensors.items()}


def gqa_slices(attn, kept_heads: list[int]) -> dict:
    D, groups = attn.head_dim, attn.n_kv
    q_rows = _rows(kept_heads, D)
    out = {**_prefixed("q_proj", _take(attn.q_proj, rows=q_rows)),
           **_prefixed("c_proj", _take(attn.c_proj, cols=q_rows))}
    if groups == attn.n_head:
        kv_rows = torch.cat([_rows(kept_heads, D), _rows(kept_heads, D, offset=groups * D)])
        out.update(_prefixed("kv_proj", _take(attn.kv_proj, rows=kv_rows)))
    return out


def mlp_slices(mlp, kept: list[int]) -> dict:
    units = torch.tensor(kept, dtype=torch.long)
    return {**_prefixed("c_fc", _take(mlp.c_fc, rows=units)), **_prefixed("c_proj", _take(mlp.c_proj, cols=units))}


def gated_slices(mlp, kept: list[int]) -> dict:
    hidden = mlp.c_proj.in_features
    units = torch.tensor(kept, dtype=torch.long)
    return {**_prefixed("gate_up", _take(mlp.gate_up, rows=torch.cat([units, units + hidden]))),
            **_prefixed("c_proj", _take(mlp.c_proj, cols=units))}
