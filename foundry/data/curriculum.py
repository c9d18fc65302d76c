"""Curricula: which training data a batch may come from as training goes on (easy first, then all).

    data:
      curriculum: {by: length, schedule: sqrt, start: 0.2, ramp: 0.5}

Two parts. `by` (CURRICULA) orders the training documents easiest first: `none` keeps the source
order, `length` puts short documents first, `perplexity` puts first the documents a reference model
(`reference: RUN`, foundry.training.reference) finds most predictable. The token stream (or, with `data.packing: bin`, the
rows) is laid out in that order. `schedule` (SCHEDULES) then says how much of it batches are drawn
from: at a share `p` of the budget, batches sample uniformly from the first `share(p)` of the
ordered training data, rising from `start` at step 0 to all of it at `p = ramp` ("competence-based"
curriculum, Platanios et al. 2019; `sqrt` is their square-root competence). So early batches really
contain the easy documents, and after the ramp sampling is uniform as without a curriculum. With
`by: none` nothing is reordered or limited. Validation keeps source order, so val metrics compare
across curricula. To add an ordering, add a function (documents, scores) -> sort keys (lower is
easier) to CURRICULA; to add a schedule, a function (progress, start, ramp) -> share to SCHEDULES.
"""
from __future__ import annotations

import math

from foundry.errors import UserError


def source_order(documents: list[str], scores=None) -> list[float]:
    """`none`: the source order (files sorted by name, JSONL records in file order)."""
    return [float(i) for i in range(len(documents))]


def by_length(documents: list[str], scores=None) -> list[float]:
    """`length`: characters; ties keep source order (the sort is stable)."""
    return [float(len(d)) for d in documents]


def by_perplexity(documents: list[str], scores=None) -> list[float]:
    """`perplexity`: bits per byte under the reference model (data.curriculum.reference), lowest first."""
    return [float(s) for s in scores]


def ordered_indices(by: str, documents: list[str], scores=None) -> list[int]:
    """Indices of `documents`, easiest first under curriculum `by` (`scores`: per-document values
    from a reference model, for orderings that need one)."""
    if by not in CURRICULA:
        raise UserError(f"data.curriculum.by: unknown {by!r} (valid: {', '.join(sorted(CURRICULA))})")
    keys = CURRICULA[by](documents, scores)
    return sorted(range(len(documents)), key=keys.__getitem__)


def order_documents(by: str, documents: list[str], scores=None) -> list[str]:
    return [documents[i] for i in ordered_indices(by, documents, scores)]


def linear(progress: float, start: float, ramp: float) -> float:
    return start + (1.0 - start) * min(1.0, progress / ramp)


def sqrt_competence(progress: float, start: float, ramp: float) -> float:
    """Platanios et al. (2019): c(t) = sqrt(t (1 - c0^2) / T + c0^2), T = the ramp."""
    return math.sqrt(start ** 2 + (1.0 - start ** 2) * min(1.0, progress / ramp))


def step(progress: float, start: float, ramp: float) -> float:
    """Only the easiest `start` share until the ramp ends, then everything."""
    return start if progress < ramp else 1.0


def available_share(curriculum, progress: float) -> float:
    """Share of the ordered training data batches may come from at `progress` (0..1 of the budget)."""
    if curriculum.by == "none":
        return 1.0
    return min(1.0, max(0.0, SCHEDULES[curriculum.schedule](max(0.0, progress), curriculum.start, curriculum.ramp)))


def check(curriculum) -> str | None:
    """A reason why `data.curriculum` is unusable, or None (called by foundry.catalog)."""
    c = curriculum
    if c.by not in CURRICULA:
        return f"by: unknown {c.by!r} (valid: {', '.join(sorted(CURRICULA))})"
    if c.schedule not in SCHEDULES:
        return f"schedule: unknown {c.schedule!r} (valid: {', '.join(sorted(SCHEDULES))})"
    if not 0.0 < c.start <= 1.0 or not 0.0 < c.ramp <= 1.0:
        return f"start and ramp must be in (0, 1], got start={c.start}, ramp={c.ramp}"
    if c.reference and c.by not in NEEDS_REFERENCE:
        return f"reference is only used by {', '.join(sorted(NEEDS_REFERENCE))}, not by {c.by!r}"
    if c.by in NEEDS_REFERENCE and not c.reference:
        return f"by: {c.by} needs a reference model (data.curriculum.reference: RUN)"
    return None


NEEDS_REFERENCE = {"perplexity"}  # orderings that score documents with a reference model

CURRICULA = {
    "none": source_order,
    "length": by_length,
    "perplexity": by_perplexity,
}

SCHEDULES = {
    "linear": linear,
    "sqrt": sqrt_competence,
    "step": step,
}
