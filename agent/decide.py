"""The noise-aware decision of a generation (the text of a promoted file: foundry/lineage/promotion.py).

    kind, reason, diff, seeds = judge(baseline_trials, candidate_trials, settings.promotion)
    # kind: "promote" | "near_miss" | "reject"

Both sides are trained with the same seeds (the screening seed plus k fresh confirmation
seeds). The candidate is promoted only if its mean beats the baseline's by more than
max(min_delta, z * standard error of the difference); a smaller win is a near-miss, kept
in the ledger with its numbers.
"""
from __future__ import annotations

import math

from foundry.search import stats


def improvement(baseline: float, candidate: float, lower_is_better: bool) -> float:
    return (baseline - candidate) if lower_is_better else (candidate - baseline)


def usable(trial: dict) -> bool:
    return trial["status"] == "done" and trial["metric"] is not None and math.isfinite(trial["metric"])


def judge(baseline_trials: list[dict], candidate_trials: list[dict], promotion) -> tuple:
    """(kind, reason, stats.Difference | None, [(seed, baseline, candidate)])."""
    broken = [t for t in baseline_trials + candidate_trials if not usable(t)]
    if broken:
        t = broken[0]
        return "reject", f"{t['id']} {t['status']}: {t['reason'] or 'no metric'}", None, []
    base = {t["seed"]: t["metric"] for t in baseline_trials}
    cand = {t["seed"]: t["metric"] for t in candidate_trials}
    seeds = sorted(set(base) & set(cand))
    if not seeds:
        return "reject", "no seed trained on both sides", None, []
    d = stats.difference([base[s] for s in seeds], [cand[s] for s in seeds], z=promotion.z,
                         min_delta=promotion.min_delta, lower_is_better=promotion.lower_is_better)
    table = [(s, base[s], cand[s]) for s in seeds]
    numbers = (f"improvement {d.improvement:.4f} vs threshold {d.threshold:.4f} "
               f"(max of min_delta {promotion.min_delta:g} and z {promotion.z:g} x se {d.se:.4f}, {len(seeds)} seeds)")
    if d.significant:
        return "promote", numbers, d, table
    if d.improvement > 0:
        return "near_miss", numbers, d, table
    return "reject", numbers, d, table
