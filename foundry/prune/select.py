"""Masks from scores: the lowest-scoring weights of each group removed, exactly, or an N:M pattern.

    keep = group_mask(scores, 0.5, "row")          # bool (out, in): each row keeps ceil(half)
    keeps = global_masks({name: scores}, 0.5)      # one threshold over all matrices
    keep = nm_mask(scores, 2, 4)                   # the 2 best of every 4 consecutive inputs per row
    nm_violations(weight, 2, 4)                    # groups of 4 with more than 2 non-zeros (0 = valid)

Counts are exact: a group of n weights loses floor(sparsity * n) of them; ties go to the lower
index (a stable sort), so the same scores always give the same mask.
"""
from __future__ import annotations

import torch


def _keep_top(scores, n_prune: int):
    """Bool mask over a 1-D or row-wise 2-D `scores`: False on the n_prune lowest of each row."""
    order = torch.argsort(scores, dim=-1, stable=True)  # ascending: the first n_prune go
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep.scatter_(-1, order[..., :n_prune], False)
    return keep


def group_mask(scores, sparsity: float, scope: str):
    """(out, in) scores -> keep mask; scope `row` (per output row) or `layer` (the whole matrix)."""
    if scope == "row":
        return _keep_top(scores.float(), int(sparsity * scores.shape[1]))
    if scope == "layer":
        return _keep_top(scores.float().flatten(), int(sparsity * scores.numel())).view_as(scores)
    raise ValueError(f"scope {scope!r} is not row or layer")


def global_masks(scores: dict, sparsity: float) -> dict:
    """{name: (out, in) scores} -> {name: keep mask} with one threshold over all of them."""
    flat = torch.cat([s.float().flatten() for s in scores.values()])
    keep = _keep_top(flat, int(sparsity * flat.numel()))
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start:start + s.numel()].view_as(s)
        start += s.numel()
    return out


def nm_mask(scores, n: int, m: int):
    """(out, in) scores, `in` a multiple of m -> keep the n highest of every m consecutive inputs."""
    out_features, in_features = scores.shape
    if in_features % m:
        raise ValueError(f"an N:M pattern needs the input width ({in_features}) to be a multiple of M={m}")
    groups = scores.float().reshape(out_features, in_features // m, m)
    return _keep_top(groups, m - n).reshape(out_features, in_features)


def nm_violations(weight, n: int, m: int) -> int:
    """Groups of m consecutive inputs (per row) holding more than n non-zero weights; 0 = N:M sparse."""
    out_features, in_features = weight.shape
    if in_features % m:
        return out_features * -(-in_features // m)
    nonzero = (weight.reshape(out_features, in_features // m, m) != 0).sum(dim=-1)
    return int((nonzero > n).sum())
