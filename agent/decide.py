"""The noise-aware decision of a generation (the text of a promoted file: foundry/lineage/promotion.py).

    kind, reason, diff, seeds = judge(baseline_confirm_trials, candidate_confirm_trials, settings.promotion)
    # kind: "promote" | "near_miss" | "reject" | "more" (train one more seed on both sides, then ask again)

The screening run only chooses: the best of P candidates on one seed is biased upwards (the
winner's curse), so the test uses the confirmation trials alone, fresh seeds that both sides
train. It is a one-sided paired t-test (foundry/search/stats.py): promote when p < alpha and the
mean improvement exceeds min_delta. Sequential confirmation (promotion.max_confirm_seeds above
confirm_seeds, the default 3 -> 6) looks twice: after confirm_seeds, and, only if that look is
unclear, after max_confirm_seeds (the extra seeds are trained together). Each look tests at
alpha / 2 (Bonferroni), so the chance of promoting a change that does nothing stays below alpha
however the looks fall; a first look whose mean improvement is not positive stops there (futility:
that only lowers the chance of promoting). Simulated on the stub landscape of
tests/agent/simulation.py, 3 -> 6 has the power of a fixed 5 seeds (about 0.8 for an effect of
2 sd of one run's seed noise) at about 4.4 seeds per null candidate. A win that is not significant
at the last look is a near-miss, kept in the ledger with its numbers. confirm_seeds 0 is allowed
only with promotion.no_noise_control: then the screening pair decides on min_delta alone, and says so.
"""
from __future__ import annotations

import math

from foundry.search import stats

NO_NOISE_CONTROL = "NO NOISE CONTROL (confirm_seeds 0): one screening seed a side, min_delta alone decides"


def improvement(baseline: float, candidate: float, lower_is_better: bool) -> float:
    return (baseline - candidate) if lower_is_better else (candidate - baseline)


def usable(trial: dict) -> bool:
    return trial["status"] == "done" and trial["metric"] is not None and math.isfinite(trial["metric"])


def looks(promotion) -> int:
    """How many times the test may look: 2 with sequential confirmation, else 1."""
    return 2 if promotion.max_confirm_seeds > promotion.confirm_seeds else 1


def judge(baseline_trials: list[dict], candidate_trials: list[dict], promotion) -> tuple:
    """(kind, reason, stats.Difference | None, [(seed, baseline, candidate)]) over the seeds both sides have."""
    broken = [t for t in baseline_trials + candidate_trials if not usable(t)]
    if broken:
        t = broken[0]
        return "reject", f"{t['id']} {t['status']}: {t['reason'] or 'no metric'}", None, []
    base = {t["seed"]: t["metric"] for t in baseline_trials}
    cand = {t["seed"]: t["metric"] for t in candidate_trials}
    seeds = sorted(set(base) & set(cand))
    if not seeds:
        return "reject", "no seed trained on both sides", None, []
    table = [(s, base[s], cand[s]) for s in seeds]
    if promotion.confirm_seeds == 0:
        return _without_noise_control(base, cand, seeds, table, promotion)
    n_looks = looks(promotion)
    alpha = promotion.alpha / n_looks
    d = stats.difference([base[s] for s in seeds], [cand[s] for s in seeds], alpha=alpha,
                         min_delta=promotion.min_delta, lower_is_better=promotion.lower_is_better, paired=True)
    last_look = len(seeds) >= max(promotion.confirm_seeds, promotion.max_confirm_seeds)
    rule = f" [look {1 if not last_look or n_looks == 1 else 2} of {n_looks}]" if n_looks > 1 else ""
    numbers = d.summary(promotion.min_delta) + rule
    if d.significant:
        return "promote", numbers, d, table
    if not last_look and d.improvement > 0:
        return "more", numbers, d, table
    if d.improvement > 0:
        return "near_miss", numbers, d, table
    return "reject", numbers, d, table


def _without_noise_control(base, cand, seeds, table, promotion) -> tuple:
    b, c = [base[s] for s in seeds], [cand[s] for s in seeds]
    d = stats.difference(b, c, min_delta=promotion.min_delta, lower_is_better=promotion.lower_is_better,
                         paired=True)
    d.threshold, d.significant = promotion.min_delta, d.improvement > promotion.min_delta
    numbers = f"{NO_NOISE_CONTROL}: improvement {d.improvement:.4f} vs min_delta {promotion.min_delta:g}"
    kind = "promote" if d.significant else "near_miss" if d.improvement > 0 else "reject"
    return kind, numbers, d, table
