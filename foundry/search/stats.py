"""Small-sample statistics for comparing configs trained with a few seeds (Student t, from scipy.stats).

    from foundry.search import stats
    stats.mean([1.21, 1.23]); stats.stderr([1.21, 1.23])
    stats.confidence_interval([1.21, 1.23, 1.22], level=0.95)        # (lo, hi): mean +- t(0.975, n-1) se
    d = stats.difference(baseline=[1.25, 1.26, 1.24], candidate=[1.21, 1.22, 1.22], alpha=0.05,
                         min_delta=0.001, paired=True)               # seeds shared: paired t-test
    d.improvement, d.se, d.df, d.p_value, d.threshold, d.significant, d.interval(0.95)

With 2-5 seeds a normal quantile is far too narrow (a "95%" interval of 3 seeds covers about 80%),
so every interval and test here uses Student's t: paired when both sides were trained with the
same seeds (the difference per seed removes what the seed does to both), Welch's unequal-variance
t otherwise. A candidate counts as better only when the one-sided test of "candidate better"
has p < alpha AND the improvement exceeds min_delta; equivalently improvement > threshold =
max(min_delta, t(1 - alpha, df) x se). With fewer than two values a side (two pairs, paired) there
is no estimate of the noise: no test, never significant.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats as scipy_stats


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


def t_quantile(probability: float, df: float) -> float:
    """Student t quantile: t_quantile(0.975, 2) = 4.303 (the normal's would be 1.960)."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    return float(scipy_stats.t.ppf(probability, df))


def confidence_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Two-sided t interval for the mean: mean +- t((1 + level) / 2, n - 1) x stderr; (m, m) below 2 values."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    values = list(values)
    m = mean(values)
    if len(values) < 2:
        return (m, m)
    half = t_quantile(0.5 + level / 2, len(values) - 1) * stderr(values)
    return (m - half, m + half)


@dataclass
class Difference:
    """Candidate versus baseline on one metric, in the 'better' direction."""
    baseline_mean: float
    candidate_mean: float
    improvement: float      # > 0 when the candidate is better (lower, for a minimised metric)
    relative: float         # signed change of the candidate relative to the baseline mean
    se: float               # standard error of the improvement (0.0: not estimable)
    df: float               # degrees of freedom of the t statistic (0: no test)
    p_value: float | None   # one-sided: P(an improvement this large | no true improvement)
    test: str               # "paired t" | "Welch t" | "none (fewer than 2 values a side)"
    alpha: float            # one-sided level of the test
    threshold: float        # max(min_delta, t(1 - alpha, df) x se); inf without a test
    significant: bool       # p_value < alpha and improvement > min_delta
    n_baseline: int
    n_candidate: int

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided t interval of the improvement; (improvement, improvement) without a test."""
        if not self.df:
            return (self.improvement, self.improvement)
        half = t_quantile(0.5 + level / 2, self.df) * self.se
        return (self.improvement - half, self.improvement + half)

    def summary(self, min_delta: float = 0.0) -> str:
        """One line for logs and commit messages: the numbers behind the verdict."""
        n = f"{self.n_candidate} seeds" if self.test == "paired t" else f"{self.n_baseline}+{self.n_candidate} seeds"
        if not self.df:
            return f"improvement {self.improvement:.4f}: no test ({self.test}, {n})"
        lo, hi = self.interval(0.95)
        verdict = "<" if self.p_value < self.alpha else ">="
        return (f"improvement {self.improvement:.4f} (95% CI [{lo:.4f}, {hi:.4f}]) vs threshold {self.threshold:.4f}"
                f" = max(min_delta {min_delta:g}, t({1 - self.alpha:g}, df {self.df:.3g}) x se {self.se:.4f});"
                f" {self.test}, p {self.p_value:.3g} {verdict} alpha {self.alpha:g}, {n}")

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def difference(baseline, candidate, alpha: float = 0.05, min_delta: float = 0.0,
               lower_is_better: bool = True, paired: bool = False) -> Difference:
    """The t-test of "candidate better than baseline". paired=True: baseline[i] and candidate[i]
    were trained with the same seed (equal lengths required)."""
    baseline, candidate = [float(v) for v in baseline], [float(v) for v in candidate]
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    mb, mc = mean(baseline), mean(candidate)
    improvement = (mb - mc) if lower_is_better else (mc - mb)
    relative = (mc - mb) / abs(mb) if mb else 0.0
    if paired:
        if len(baseline) != len(candidate):
            raise ValueError(f"paired test needs equal lengths, got {len(baseline)} and {len(candidate)}")
        gains = [(b - c) if lower_is_better else (c - b) for b, c in zip(baseline, candidate)]
        se, df, test = stderr(gains), len(gains) - 1, "paired t"
    else:
        va = stderr(baseline) ** 2
        vb = stderr(candidate) ** 2
        se, test = math.sqrt(va + vb), "Welch t"
        df = 0.0 if min(len(baseline), len(candidate)) < 2 else (   # Welch-Satterthwaite
            (va + vb) ** 2 / (va ** 2 / (len(baseline) - 1) + vb ** 2 / (len(candidate) - 1)) if va + vb > 0
            else len(baseline) + len(candidate) - 2)
    if df < 1 or (paired and len(baseline) < 2):
        return Difference(mb, mc, improvement, relative, 0.0, 0, None, "none (fewer than 2 values a side)",
                          alpha, math.inf, False, len(baseline), len(candidate))
    if se == 0.0:   # identical values on every seed: the sign of the improvement is certain
        p = 0.0 if improvement > 0 else 1.0
    else:
        p = float(scipy_stats.t.sf(improvement / se, df))
    threshold = max(min_delta, t_quantile(1 - alpha, df) * se)
    return Difference(mb, mc, improvement, relative, se, df, p, test, alpha, threshold,
                      p < alpha and improvement > min_delta, len(baseline), len(candidate))
