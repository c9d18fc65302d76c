"""What a merge method is: its parameters, the inputs it needs, and its per-tensor function.

Each method file defines plain tensor functions (what genetics and tests call directly) and ends
with a registry dict `METHODS = {"name": Method(...)}`; foundry/merge/__init__.py merges them.

    method = METHODS["ties"]
    method.shared, method.per_model       # {parameter: Param(type, default)} as recipes name them
    out = method.run(TensorJob(name, base, tensors, shared={...}, per_model=[{...}, ...], seed=0))

A TensorJob holds one output tensor's inputs: `base` (None for methods without one) and `tensors`,
the other inputs in recipe order, each with its resolved per-model parameters. Methods compute in
float32 (float64 for float64 inputs); the executor casts the result to the output dtype.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

REQUIRED = "required"   # a Param default: the recipe must give a value


@dataclass(frozen=True)
class Param:
    type: type                 # float, bool or str (ints are accepted where floats are)
    default: object = REQUIRED
    choices: tuple = ()        # for str parameters


@dataclass
class TensorJob:
    name: str                          # the output tensor's name (what DARE's masks are seeded by)
    base: torch.Tensor | None
    tensors: list[torch.Tensor]
    shared: dict = field(default_factory=dict)
    per_model: list[dict] = field(default_factory=list)
    seed: int = 0


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable[[TensorJob], torch.Tensor]
    summary: str                       # one line, with the paper
    shared: dict = field(default_factory=dict)      # parameters shared by all inputs
    per_model: dict = field(default_factory=dict)   # parameters of each (non-base) input
    base: bool = False                 # True: needs base_model (it is not one of `tensors`)
    min_models: int = 1                # inputs counted with the base
    max_models: int | None = None
    random: bool = False               # draws masks (seeded by the recipe's seed and tensor name)
    stacks_layers: bool = False        # passthrough: slices of different models and depths


def work_dtype(tensor: torch.Tensor) -> torch.dtype:
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def stack(tensors, dtype) -> torch.Tensor:
    """(N, *shape) in `dtype`, one copy."""
    out = torch.empty((len(tensors), *tensors[0].shape), dtype=dtype, device=tensors[0].device)
    for i, tensor in enumerate(tensors):
        out[i].copy_(tensor)
    return out


def weights_like(values, like: torch.Tensor) -> torch.Tensor:
    """Per-model scalars as a tensor shaped (N, 1, ..., 1) to broadcast against (N, *shape)."""
    w = torch.tensor([float(v) for v in values], dtype=like.dtype, device=like.device)
    return w.reshape(-1, *([1] * (like.dim() - 1)))
