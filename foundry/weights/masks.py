"""Pruning masks: a boolean buffer `weight_mask` on each pruned linear layer, saved with the weights.

    set_mask(linear, keep)            # keep: bool (out, in); the weight is zeroed where False
    attach_masks(model, names)        # empty masks for a checkpoint's `X.weight_mask` tensors, before loading
    load_weights(model, path)         # safetensors weights into model, masks included
    pairs = masked_weights(model)     # [(weight, mask)], once
    apply_masks(pairs)                # weight *= mask: after every optimizer step and every merge
    sparsity(model)                   # {"sparsity": share of masked-out weights, "layers": {name: share}}

A checkpoint stores each mask as the tensor `NAME.weight_mask` beside `NAME.weight`, so a pruned
model is an ordinary Foundry checkpoint (load_model, train.init_from, resume); a layer wrapped by
LoRA keeps its mask on the wrapped base layer (`NAME.base_layer.weight_mask`). foundry/prune/
decides what to mask; this file only keeps masks and weights consistent.
"""
from __future__ import annotations

import torch
from safetensors import safe_open
from safetensors.torch import load_model as load_safetensors

MASK = "weight_mask"


def set_mask(module, keep) -> None:
    """Give `module` (with a .weight) the mask `keep` (same shape; True = kept) and zero the rest."""
    keep = keep.to(device=module.weight.device, dtype=torch.bool).clone()  # its own storage, for safetensors
    if keep.shape != module.weight.shape:
        raise ValueError(f"mask of shape {tuple(keep.shape)} for a weight of shape {tuple(module.weight.shape)}")
    module.register_buffer(MASK, keep)
    with torch.no_grad():
        module.weight.mul_(keep)


def mask_of(module):
    """The module's mask buffer, or None."""
    return module._buffers.get(MASK) if hasattr(module, "_buffers") else None


def masked_modules(model) -> list[tuple[str, torch.nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if mask_of(m) is not None]


def masked_weights(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, mask) of every masked layer; computed once, applied after every step."""
    return [(m.weight, mask_of(m)) for _, m in masked_modules(model)]


@torch.no_grad()
def apply_masks(pairs) -> None:
    """weight *= mask in place; `pairs` from masked_weights (or a model)."""
    if isinstance(pairs, torch.nn.Module):
        pairs = masked_weights(pairs)
    for weight, mask in pairs:
        weight.mul_(mask)


def attach_masks(model, names) -> None:
    """For every `PATH.weight_mask` in `names` (a state dict's or a file's), an all-True mask on PATH,
    so that loading the weights fills it."""
    for name in names:
        if name.endswith("." + MASK):
            module = model.get_submodule(name[: -len(MASK) - 1])
            if mask_of(module) is None:
                module.register_buffer(MASK, torch.ones_like(module.weight, dtype=torch.bool))


def file_names(path) -> list[str]:
    with safe_open(path, framework="pt") as f:
        return list(f.keys())


def load_weights(model, path) -> None:
    """A safetensors file into `model` (strict), with the masks it holds attached first."""
    attach_masks(model, file_names(path))
    load_safetensors(model, path)


@torch.no_grad()
def sparsity(model) -> dict:
    """Share of masked-out entries over all masked layers, and per layer."""
    layers, zero, total = {}, 0, 0
    for name, module in masked_modules(model):
        mask = mask_of(module)
        layers[name] = 1.0 - mask.float().mean().item()
        zero, total = zero + int((~mask).sum()), total + mask.numel()
    return {"sparsity": zero / total if total else 0.0, "layers": layers}
