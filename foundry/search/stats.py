"""Small-sample statistics for comparing configs trained with several seeds.

    from foundry.search import stats
    stats.mean([1.21, 1.23]); stats.stderr([1.21, 1.23])
    stats.confidence_interval([1.21, 1.23, 1.22], level=0.95)   # (lo, hi), normal approximation
    d = stats.difference(baseline=[1.25, 1.26], candidate=[1.21, 1.22], z=2.0, min_delta=0.001)
    d.improvement, d.se, d.threshold, d.significant

A candidate counts as better only when its improvement over the baseline exceeds
max(min_delta, z * standard error of the difference): single runs of small models differ by
seed, and a rule that keeps anything lower promotes noise. The standard error is the unpaired
one, sqrt(se_a^2 + se_b^2), which is conservative when the seeds are shared.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist


def mean(values) -> float:
    values = list(values)
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def stdev(values) -> float:
    """Sample standard deviation (n - 1); 0.0 for fewer than two values."""
    values = list(values)
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def stderr(values) -> float:
    """Standard error of the mean; 0.0 for fewer than two values (no estimate of the noise)."""
    values = list(values)
    return stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else 0.0


def z_for_level(level: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.96."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def confidence_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval for the mean: mean +- z * stderr."""
    m, half = mean(values), z_for_level(level) * stderr(values)
    return (m - half, m + half)


@dataclass
class Difference:
    """Candidate versus baseline on one metric, in the 'better' direction."""
    baseline_mean: float
    candidate_mean: float
    improvement: float      # > 0 when the candidate is better (lower, for a minimised metric)
    relative: float         # signed change of the candidate relative to the baseline mean
    se: float               # standard error of the difference of means
    threshold: float        # max(min_delta, z * se)
    significant: bool       # improvement > threshold
    n_baseline: int
    n_candidate: int

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        half = z_for_level(level) * self.se
        return (self.improvement - half, self.improvement + half)

    def to_dict(self) -> dict:
        return asdict(self)


def difference(baseline, candidate, z: float = 2.0, min_delta: float = 0.0,
               lower_is_better: bool = True) -> Difference:
    baseline, candidate = list(baseline), list(candidate)
    mb, mc = mean(baseline), mean(candidate)
    improvement = (mb - mc) if lower_is_better else (mc - mb)
    se = math.sqrt(stderr(baseline) ** 2 + stderr(candidate) ** 2)
    threshold = max(min_delta, z * se)
    relative = (mc - mb) / abs(mb) if mb else 0.0
    return Difference(mb, mc, improvement, relative, se, threshold, improvement > threshold,
                      len(baseline), len(candidate))
