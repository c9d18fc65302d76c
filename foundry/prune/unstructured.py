"""Unstructured and N:M pruning of a GPT in place: a method's scores, exact masks, kept as buffers.

    x, y = calibration_batch(dataset.train, 16, cfg.model.block_size, seed=0)
    report = prune_unstructured(model, "wanda", 0.5, pattern="", scope="", x=x, y=y)
    report = prune_unstructured(model, "magnitude", 0.0, pattern="2:4")

The prunable weights are every linear layer inside the blocks (attention, MLPs, experts and the
router); embeddings, norms and the head are left dense, as in Wanda and SparseGPT. Wanda with a
row or layer scope goes block by block: each block's input norms are measured on the model whose
earlier blocks are already pruned (as the reference implementation feeds each layer the pruned
inputs); a global scope and saliency measure the dense model once. A model that already has masks
keeps them: new masks are intersected with the old ones.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from foundry.data import get_batch
from foundry.errors import UserError
from foundry.prune.scores import CHUNK, PRUNE_METHODS, observe, parse_pattern
from foundry.prune.select import global_masks, group_mask, nm_mask
from foundry.weights.masks import mask_of, set_mask, sparsity



def calibration_batch(tokens, n: int, block_size: int, seed: int):
    """(x, y) (n, block_size) int64: n windows of the training split at offsets drawn from `seed`."""
    return get_batch(tokens, n, block_size, np.random.default_rng(seed))


def block_linears(model, index: int) -> dict:
    """{name in the model: nn.Linear} of one block."""
    return {f"blocks.{index}.{name}": m for name, m in model.blocks[index].named_modules() if isinstance(m, nn.Linear)}


def prunable(model) -> dict:
    return {name: m for i in range(len(model.blocks)) for name, m in block_linears(model, i).items()}


@torch.no_grad()
def input_norms(model, modules: dict, x) -> dict:
    """{name: (in,) fp32}: the L2 norm of each input feature of each module over all tokens of x."""
    sums = {name: torch.zeros(m.in_features, device=m.weight.device) for name, m in modules.items()}

    def hook(name):
        def accumulate(module, args):  # returns None: the input passes unchanged
            sums[name].add_(args[0].detach().float().pow(2).flatten(0, -2).sum(dim=0))
        return accumulate
    observe(model, x, [m.register_forward_pre_hook(hook(name)) for name, m in modules.items()])
    return {name: s.sqrt() for name, s in sums.items()}


def gradients(model, modules: dict, x, y) -> dict:
    """{name: dL/dW} of the mean next-token cross-entropy over the calibration sequences."""
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for m in modules.values():
        m.weight.requires_grad_(True)
    for i in range(0, len(x), CHUNK):
        logits = model(x[i:i + CHUNK])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y[i:i + CHUNK].flatten(), reduction="sum") / y.numel()
        loss.backward()
    grads = {name: m.weight.grad.detach().clone() for name, m in modules.items()}
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return grads


def _statistics(method, model, modules, x, y) -> dict:
    if method.needs is None:
        return dict.fromkeys(modules)
    if x is None:
        raise UserError(f"pruning with {method.description} needs calibration sequences")
    return input_norms(model, modules, x) if method.needs == "input_norm" else gradients(model, modules, x, y)


def _masks(method, modules: dict, stats: dict, sparsity_target: float, scope: str, pattern) -> dict:
    scores = {name: method.score(m.weight.detach(), stats[name]) for name, m in modules.items()}
    if pattern:
        return {name: nm_mask(s, *pattern) for name, s in scores.items()}
    if scope == "global":
        return global_masks(scores, sparsity_target)
    return {name: group_mask(s, sparsity_target, scope) for name, s in scores.items()}


def prune_unstructured(model, method_name: str, sparsity_target: float, pattern: str = "", scope: str = "",
                       x=None, y=None) -> dict:
    """Mask `model` in place; returns {"method", "scope", "pattern", "sparsity", "layers"}."""
    if method_name not in PRUNE_METHODS:
        raise UserError(f"prune method: unknown {method_name!r} (valid: {', '.join(PRUNE_METHODS)})")
    method, nm = PRUNE_METHODS[method_name], parse_pattern(pattern)
    scope = scope or method.scope
    if nm and scope == "global":
        raise UserError(f"pattern {pattern}: an N:M pattern is per row; it has no global scope")
    if not 0.0 <= sparsity_target < 1.0:
        raise UserError(f"sparsity must be in [0, 1), got {sparsity_target}")
    modules = prunable(model)
    if method.needs == "input_norm" and scope != "global":
        groups = [block_linears(model, i) for i in range(len(model.blocks))]  # block by block, pruned inputs
    else:
        groups = [modules]
    for group in groups:
        keeps = _masks(method, group, _statistics(method, model, group, x, y), sparsity_target, scope, nm)
        for name, keep in keeps.items():
            old = mask_of(group[name])
            set_mask(group[name], keep if old is None else keep & old)
    measured = sparsity(model)
    return {"method": method_name, "scope": "row" if nm else scope, "pattern": pattern,
            "sparsity": measured["sparsity"], "layers": measured["layers"]}
