"""The engine behind task_arithmetic, ties, dare_*, breadcrumbs* and della*: task vectors
(model - base), optionally sparsified, weighted, optionally sign-elected, summed onto the base.

    delta_i = sparsify(model_i - base)            # magnitude (TIES), random (DARE), outliers, della
    delta_i = weight_i * delta_i
    TIES consensus: sign = sign(Σ delta_i) (>= 0 counts as +); keep delta_i where its sign agrees
    merged = base + lambda * Σ delta_i / (normalize ? Σ weight_i over the kept entries : 1)

This is mergekit 0.1.5's generalized task arithmetic. Sparsifiers keep at least one element of a
nonempty tensor (magnitude), break ties in |x| by position (as a stable sort would, so any device
agrees; found with kthvalue, without sorting),
and draw random masks from a CPU generator seeded by (seed, tensor name, input index): the same
merge gives the same bits in any order, on any device, resumed or not.

Rescaling of the kept entries after a random drop: `rescale_mode: l1` (mergekit's default) scales
them so the delta keeps its L1 norm; `rescale_mode: density` divides by the density, the DARE
paper's 1/(1-p), whose expected value is exactly the input.

The functions here are the definitions, on whole tensors; merges run their streamed form
(streaming.py: chunk by chunk, holding the inputs and the output, not a stack of task vectors).
"""
from __future__ import annotations

import hashlib

import torch

from foundry.merge import streaming
from foundry.merge.method import Param, stack, work_dtype
from foundry.merge.streaming import streamed_combine

RESCALE_MODES = ("l1", "density")


def generator(seed: int, name: str, index: int) -> torch.Generator:
    """A CPU generator for input `index` of tensor `name`: independent of order and device."""
    digest = hashlib.sha256(f"{int(seed)}\0{name}\0{int(index)}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def rank_window(values: torch.Tensor, start: int, count: int) -> torch.Tensor:
    """Mask of the entries whose rank in the stable ascending order of `values` (1-D; equal values
    ranked by position) lies in [start, start + count). Selection by kthvalue, not a full sort."""
    n = values.numel()
    mask = torch.zeros(n, dtype=torch.bool, device=values.device)
    if count <= 0 or start >= n:
        return mask
    end = min(n, start + count)
    low = values.min() if start == 0 else torch.kthvalue(values, start + 1).values
    high = values.max() if end == n else torch.kthvalue(values, end).values
    mask |= (values > low) & (values < high)
    for edge in {float(low), float(high)}:            # equal values: their block of ranks, by position
        equal = (values == edge).nonzero().reshape(-1)
        first = int((values < edge).sum())
        mask[equal[max(start, first) - first:max(0, min(end, first + len(equal)) - first)]] = True
    return mask


def magnitude(tensor: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the max(1, int(density * n)) entries of largest |x|; zero the rest (TIES' trim)."""
    if density >= 1:
        return tensor
    if density <= 0 or tensor.numel() == 0:
        return torch.zeros_like(tensor)
    keep = rank_window(-tensor.abs().reshape(-1), 0, max(1, int(density * tensor.numel())))
    return tensor * keep.reshape(tensor.shape)


def outliers(tensor: torch.Tensor, density: float, gamma: float) -> torch.Tensor:
    """Model breadcrumbs: drop the int(gamma * n) largest |x| and the smallest beyond that, keeping
    int(density * n); when density + gamma > 1 fewer of the largest are dropped."""
    if density >= 1:
        return tensor
    n = tensor.numel()
    keep, top = int(density * n), int(gamma * n)
    window = rank_window(tensor.abs().reshape(-1), max(0, n - keep - top), keep)
    return tensor * window.reshape(tensor.shape)


def rescaled(delta: torch.Tensor, kept: torch.Tensor, density: float, mode: str, eps: float = 1e-7):
    if mode == "density":
        return kept / density
    before, after = delta.abs().sum(), kept.abs().sum()
    if before < eps or after < eps:
        return kept
    return kept * (before / after)


def random_drop(delta, density: float, gen: torch.Generator, rescale: bool = True, mode: str = "l1"):
    """DARE: keep each entry with probability `density` (then rescale, see the module doc)."""
    if density >= 1:
        return delta
    mask = torch.rand(delta.shape, generator=gen, dtype=torch.float32) < density
    kept = delta * mask.to(delta.device)
    return rescaled(delta, kept, density, mode) if rescale else kept


def della_drop(delta, density: float, epsilon: float, gen: torch.Generator, rescale: bool = True, mode: str = "l1"):
    """DELLA's MagPrune: keep probabilities from density - epsilon (smallest |x| of a row) rising
    linearly with the magnitude rank to density + epsilon (largest)."""
    if density >= 1:
        return delta
    if density <= 0:
        return torch.zeros_like(delta)
    if not (0 < density - epsilon and density + epsilon < 1):
        raise ValueError(f"della: epsilon={epsilon} must keep density +- epsilon inside (0, 1), density={density}")
    rows = delta.reshape(1, -1) if delta.dim() < 2 else delta.reshape(delta.shape[0], -1)
    ranks = torch.argsort(torch.argsort(rows.abs(), dim=1, stable=True), dim=1).to(rows.dtype)
    span = (rows.shape[1] - 1) or 1
    probs = (density - epsilon) + (ranks / span) * 2 * epsilon
    mask = torch.rand(rows.shape, generator=gen, dtype=torch.float32) < probs.float().cpu()
    kept = (rows * mask.to(rows.device)).reshape(delta.shape)
    if not rescale:
        return kept
    if mode == "density":  # the paper: each kept entry divided by its own keep probability
        return kept / probs.reshape(delta.shape)
    return rescaled(delta, kept, density, "l1")


def combine(base, tensors, weights, sparsify=None, consensus: bool = False, normalize: bool = False,
            lambda_: float = 1.0) -> torch.Tensor:
    """base + lambda * Σ w_i sparsify_i(t_i - base) [/ Σ w_i], with TIES' sign election when consensus.

    sparsify(delta, i) -> delta is applied to input i's task vector (None: keep all)."""
    dtype = work_dtype(base)
    b = base.to(dtype)
    deltas = stack(tensors, dtype)                              # (N, *shape)
    for i in range(len(tensors)):
        deltas[i].sub_(b)
        if sparsify is not None:
            deltas[i] = sparsify(deltas[i], i)
        deltas[i].mul_(float(weights[i]))
    if consensus:
        majority = torch.where(deltas.sum(dim=0) >= 0, 1.0, -1.0).to(dtype)   # (*shape)
        mixed, divisor = torch.zeros_like(b), torch.zeros_like(b)
        for i in range(len(tensors)):
            agree = deltas[i].sign() == majority                # a zero delta never agrees
            mixed.add_(deltas[i] * agree)
            divisor.add_(agree.to(dtype), alpha=float(weights[i]))
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.sum(dim=0)
        divisor = sum(float(w) for w in weights)
        divisor = 1.0 if abs(divisor) < 1e-8 else divisor
    if normalize:
        mixed = mixed / divisor
    if lambda_ != 1:
        mixed = mixed * lambda_
    return b + mixed


def task_merge(base, tensors, weights, densities=None, *, drop: str | None = None, consensus: bool = False,
               normalize: bool = False, rescale: bool = False, rescale_mode: str = "l1", lambda_: float = 1.0,
               gammas=None, epsilons=None, seed: int = 0, name: str = "", whole: bool = False) -> torch.Tensor:
    """Any method of the family: `drop` is None, "magnitude", "random", "outliers" or "della";
    densities, gammas and epsilons are per input (random drops are seeded by seed, name, index).

    Runs streaming.streamed_combine (chunk by chunk); whole=True runs the whole-tensor definition
    (`combine` with the functions above), which the tests hold the streamed form to."""
    densities = densities or [1.0] * len(tensors)
    if rescale_mode not in RESCALE_MODES:
        raise ValueError(f"rescale_mode: {rescale_mode!r} (valid: {', '.join(RESCALE_MODES)})")
    row = base.numel() // base.shape[0] if base.dim() >= 2 and base.shape[0] else base.numel()
    if not whole:
        keeps = [_sparsifier(drop, float(densities[i]), gammas, epsilons, i, rescale, rescale_mode, seed, name, row)
                 for i in range(len(tensors))]
        return streamed_combine(base, tensors, weights, keeps, consensus, normalize, lambda_, row=row)

    def sparsify(delta, i):
        density = float(densities[i])
        if drop == "random":
            return random_drop(delta, density, generator(seed, name, i), rescale, rescale_mode)
        if drop == "della":
            return della_drop(delta, density, float(epsilons[i]), generator(seed, name, i), rescale, rescale_mode)
        kept = magnitude(delta, density) if drop == "magnitude" else outliers(delta, density, float(gammas[i]))
        return rescaled(delta, kept, density, rescale_mode) if rescale and density < 1 else kept

    return combine(base, tensors, weights, sparsify if drop else None, consensus, normalize, lambda_)


def _sparsifier(drop, density, gammas, epsilons, i, rescale, mode, seed, name, row) -> streaming.Keep:
    """Input i's sparsifier for streamed_combine: the streamed form of task_merge's `sparsify`."""
    stream = lambda: generator(seed, name, i)
    if drop == "della":
        keep = streaming.Della(density, float(epsilons[i]), stream, row, rescale and mode == "density")
        return streaming.Rescaled(keep, "l1") if rescale and mode == "l1" and 0 < density < 1 else keep
    keep = {None: lambda: streaming.Keep(), "magnitude": lambda: streaming.Magnitude(density),
            "outliers": lambda: streaming.Outliers(density, float(gammas[i])),
            "random": lambda: streaming.RandomDrop(density, stream)}[drop]()
    return streaming.Rescaled(keep, mode) if drop and rescale and density < 1 else keep


def run_job(job, drop: str | None, consensus: bool) -> torch.Tensor:
    """A TensorJob of a method of this family (its resolved recipe parameters) -> the merged tensor."""
    per, shared = job.per_model, job.shared
    return task_merge(job.base, job.tensors, [p["weight"] for p in per], [p["density"] for p in per],
                      drop=drop, consensus=consensus, normalize=shared["normalize"], rescale=shared["rescale"],
                      rescale_mode=shared["rescale_mode"], lambda_=shared["lambda"],
                      gammas=[p.get("gamma") for p in per], epsilons=[p.get("epsilon") for p in per],
                      seed=job.seed, name=job.name)


def parameters(normalize: bool, rescale: bool, extra: dict | None = None) -> dict:
    """(shared, per_model) parameter specs of a method of this family, as mergekit names them;
    int8_mask (a memory option of mergekit's) is accepted and changes nothing here."""
    shared = {"normalize": Param(bool, normalize), "rescale": Param(bool, rescale),
              "rescale_mode": Param(str, "l1", RESCALE_MODES), "lambda": Param(float, 1.0),
              "int8_mask": Param(bool, False)}
    return {"shared": shared, "per_model": {"weight": Param(float), "density": Param(float, 1.0), **(extra or {})},
            "base": True, "min_models": 2}
