"""Genetic operators over state dicts, and selection: small registered functions.

    child, record = OPERATORS["slerp"].fn(a, b, Context(generator, n_layer), {"t": 0.5, "jitter": 0.2})
    child, record = OPERATORS["gaussian"].fn(a, None, ctx, {"sigma": 0.01, "fraction": 1.0, ...})
    parent = SELECTIONS["tournament"].fn(population, rng, {"k": 3})
    kept = elites(population, 2)                  # the top 2 by fitness, unchanged
    sigma = one_fifth_update(sigma, success_rate)  # Rechenberg's 1/5 success rule

A state dict is {tensor name: tensor} as a checkpoint's model.safetensors holds it. Operators act
on floating-point tensors only (pruning masks and integer buffers come from the first parent) and
draw every random number from ctx.generator (a torch.Generator the caller seeds from the run's
seed, the generation and the child's index), so a child is a pure function of its parents and
that seed. Layer positions follow mergekit: tensor `blocks.i.*` sits at i / (n_layer - 1), the
others (embeddings, final norm, head) at 0, so `t` may be a number, a gradient list across the
layers or a list of {filter, value} exactly as in a merge recipe (foundry.merge.recipe.evaluate).

Crossovers (two parents): slerp (per tensor, foundry.merge.slerp, t per layer plus an optional
per-layer random jitter), uniform (each entry from b with probability p), layerwise (each layer
whole from one parent). Mutation (one parent): gaussian, w + sigma * rms(w) * N(0, 1) on a random
`fraction` of the entries; sigma is the recipe's (adapt: none), the population's adapted by the
1/5 success rule (adapt: one_fifth), or the parent's own times exp(tau * N(0, 1)) (adapt: self).
Every operator returns a record of what it drew (saved in the child's `extra`).

To add an operator: a function `(a, b, ctx, params) -> (child, record)` and a line in OPERATORS
with its kind and parameters (name -> Param(default, low, high)); recipes name it at once.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import torch

from foundry.merge.recipe import evaluate
from foundry.merge.slerp import slerp

LAYER = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
ONE_FIFTH_FACTOR = 0.817        # Schwefel's c for the 1/5 rule: sigma *= c (too few successes) or /= c


@dataclass(frozen=True)
class Param:
    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    gradient: bool = False      # also a gradient list or {filter, value} list, as merge recipes give it


@dataclass(frozen=True)
class Operator:
    kind: str                   # "crossover" (two parents) or "mutation" (one)
    fn: Callable                # (a, b, ctx, params) -> (child state dict, record dict)
    params: dict                # name -> Param
    summary: str


@dataclass
class Context:
    generator: torch.Generator
    n_layer: int
    sigma: float | None = None  # the population's adapted mutation scale (adapt: one_fifth)
    parent_sigma: float | None = None   # the parent's own scale (adapt: self)


def layer_of(name: str) -> int | None:
    match = LAYER.search(name)
    return int(match.group(1)) if match else None


def position(name: str, n_layer: int) -> float:
    layer = layer_of(name)
    return 0.0 if layer is None or n_layer < 2 else layer / (n_layer - 1)


def evolvable(name: str, tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and not name.endswith("_mask")


def _uniform(ctx: Context, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=ctx.generator, dtype=torch.float64))


# ---------------------------------------------------------------- crossovers
def slerp_crossover(a: dict, b: dict, ctx: Context, params: dict):
    """Per tensor slerp(a, b, t): t from the recipe's setting at the tensor's layer position, plus a
    per-layer offset drawn in [-jitter, jitter], clipped to [0, 1]."""
    offsets = [_uniform(ctx, -params["jitter"], params["jitter"]) for _ in range(ctx.n_layer + 1)]
    child = {}
    for name, x in a.items():
        if not evolvable(name, x):
            child[name] = x.clone()
            continue
        layer = layer_of(name)
        t = float(evaluate(params["t"], name, position(name, ctx.n_layer)))
        t = min(1.0, max(0.0, t + offsets[ctx.n_layer if layer is None else layer]))
        child[name] = slerp(x, b[name], t).to(x.dtype)
    layers = [min(1.0, max(0.0, float(evaluate(params["t"], f"blocks.{i}.", position(f"blocks.{i}.", ctx.n_layer)))
                           + offsets[i])) for i in range(ctx.n_layer)]
    return child, {"t_layers": [round(t, 6) for t in layers]}


def uniform_crossover(a: dict, b: dict, ctx: Context, params: dict):
    """Each entry of each tensor from b with probability p, else from a."""
    child = {}
    for name, x in a.items():
        if not evolvable(name, x):
            child[name] = x.clone()
            continue
        take_b = torch.rand(x.shape, generator=ctx.generator) < params["p"]
        child[name] = torch.where(take_b, b[name], x)
    return child, {"p": params["p"]}


def layerwise_crossover(a: dict, b: dict, ctx: Context, params: dict):
    """Each layer (and the tensors outside the layers, as one group) whole from b with probability p."""
    from_b = [bool(torch.rand((), generator=ctx.generator) < params["p"]) for _ in range(ctx.n_layer + 1)]
    child = {}
    for name, x in a.items():
        layer = layer_of(name)
        use_b = evolvable(name, x) and from_b[ctx.n_layer if layer is None else layer]
        child[name] = (b[name] if use_b else x).clone()
    return child, {"layers_from_b": [i for i in range(ctx.n_layer) if from_b[i]], "outside_from_b": from_b[-1]}


# ---------------------------------------------------------------- mutation
def mutation_sigma(ctx: Context, params: dict) -> float:
    """The scale this child is mutated with, by the recipe's adaptation rule."""
    if params["adapt"] == "one_fifth" and ctx.sigma is not None:
        return ctx.sigma
    if params["adapt"] == "self":
        parent = ctx.parent_sigma if ctx.parent_sigma is not None else params["sigma"]
        step = float(torch.randn((), generator=ctx.generator, dtype=torch.float64))
        return min(params["max_sigma"], max(params["min_sigma"], parent * math.exp(params["tau"] * step)))
    return params["sigma"]


def gaussian_mutation(a: dict, b, ctx: Context, params: dict):
    """w + sigma * rms(w) * N(0, 1) on a random `fraction` of each tensor's entries."""
    sigma = mutation_sigma(ctx, params)
    child = {}
    for name, x in a.items():
        if not evolvable(name, x):
            child[name] = x.clone()
            continue
        work = x.float()
        rms = work.pow(2).mean().sqrt() if work.numel() else work.new_zeros(())
        noise = torch.randn(x.shape, generator=ctx.generator) * (sigma * rms)
        if params["fraction"] < 1.0:
            noise = noise * (torch.rand(x.shape, generator=ctx.generator) < params["fraction"])
        child[name] = (work + noise).to(x.dtype)
    return child, {"sigma": sigma, "rate": params["rate"], "fraction": params["fraction"], "adapt": params["adapt"]}


def one_fifth_update(sigma: float, success_rate: float, factor: float = ONE_FIFTH_FACTOR,
                     low: float = 1e-6, high: float = 10.0) -> float:
    """Rechenberg's rule: more than 1/5 of mutations improving -> larger steps, fewer -> smaller."""
    if success_rate > 0.2:
        sigma = sigma / factor
    elif success_rate < 0.2:
        sigma = sigma * factor
    return min(high, max(low, sigma))


# ---------------------------------------------------------------- selection
def ranked(population: list) -> list:
    """Best first; ties keep population order; failed and unscored last."""
    return sorted(population, key=lambda ind: -ind.rank_key)


def elites(population: list, count: int) -> list:
    """The top `count` scored individuals, carried into the next generation unchanged."""
    return [ind for ind in ranked(population)[:count] if ind.status == "scored"]


def tournament(population: list, rng, params: dict):
    """The best of k individuals drawn without replacement (ties: the first drawn)."""
    k = min(params["k"], len(population))
    sample = [population[int(i)] for i in rng.choice(len(population), size=k, replace=False)]
    return max(sample, key=lambda ind: ind.rank_key)


def truncation(population: list, rng, params: dict):
    """One of the best `keep` share (at least one), uniformly."""
    top = ranked(population)[:max(1, math.ceil(params["keep"] * len(population)))]
    return top[int(rng.integers(len(top)))]


@dataclass(frozen=True)
class Selection:
    fn: Callable                # (population, numpy Generator, params) -> Individual
    params: dict
    summary: str


RATE = Param(0.5, 0.0, 1.0)
OPERATORS = {
    "slerp": Operator("crossover", slerp_crossover, {"rate": RATE, "t": Param(0.5, 0.0, 1.0, gradient=True), "jitter": Param(0.0, 0.0, 0.5)},
                      "spherical interpolation per tensor (foundry.merge.slerp), t per layer"),
    "uniform": Operator("crossover", uniform_crossover, {"rate": RATE, "p": Param(0.5, 0.0, 1.0)},
                        "each weight from the second parent with probability p"),
    "layerwise": Operator("crossover", layerwise_crossover, {"rate": RATE, "p": Param(0.5, 0.0, 1.0)},
                          "each layer whole from the second parent with probability p"),
    "gaussian": Operator("mutation", gaussian_mutation,
                         {"rate": Param(1.0, 0.0, 1.0), "sigma": Param(0.01, 0.0, 10.0), "fraction": Param(1.0, 0.0, 1.0),
                          "adapt": Param("one_fifth", choices=("none", "one_fifth", "self")),
                          "tau": Param(0.3, 0.0, 5.0), "min_sigma": Param(1e-6, 0.0, 10.0), "max_sigma": Param(1.0, 0.0, 10.0)},
                         "w + sigma * rms(w) * N(0,1); sigma fixed, by the 1/5 success rule, or self-adaptive"),
}
SELECTIONS = {
    "tournament": Selection(tournament, {"k": Param(3, 1, 1000)}, "best of k drawn at random"),
    "truncation": Selection(truncation, {"keep": Param(0.5, 0.0, 1.0)}, "uniform among the best `keep` share"),
}
