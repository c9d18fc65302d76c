"""foundry.search.stats: Student t intervals and tests, checked against scipy's own t-tests and by coverage."""
import math
import random

import pytest
from scipy import stats as scipy_stats

from foundry.search import stats


def test_mean_stderr_and_t_interval():
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.mean(values) == 2.5
    assert stats.stdev(values) == pytest.approx(math.sqrt(5 / 3))
    assert stats.stderr(values) == pytest.approx(math.sqrt(5 / 3) / 2)
    lo, hi = stats.confidence_interval(values, 0.95)
    assert (lo + hi) / 2 == pytest.approx(2.5)
    assert hi - lo == pytest.approx(2 * 3.182446 * stats.stderr(values), rel=1e-5)   # t(0.975, 3), not 1.96
    assert stats.t_quantile(0.975, 2) == pytest.approx(4.302653, rel=1e-6)
    assert stats.confidence_interval([3.0]) == (3.0, 3.0) and stats.stderr([3.0]) == 0.0
    with pytest.raises(ValueError):
        stats.mean([])


def test_three_seed_interval_covers_at_its_level():
    """The reason for t: a 95% interval from 3 seeds covers ~95% of the time (a normal one ~80%)."""
    rng = random.Random(0)
    hits, normal_hits, n = 0, 0, 4000
    for _ in range(n):
        values = [rng.gauss(1.0, 0.1) for _ in range(3)]
        lo, hi = stats.confidence_interval(values, 0.95)
        hits += lo <= 1.0 <= hi
        half = 1.959964 * stats.stderr(values)
        normal_hits += stats.mean(values) - half <= 1.0 <= stats.mean(values) + half
    assert 0.94 < hits / n < 0.96
    assert normal_hits / n < 0.83


def test_paired_and_welch_agree_with_scipy():
    base, cand = [1.30, 1.20, 1.25, 1.27], [1.24, 1.19, 1.21, 1.22]
    paired = stats.difference(base, cand, paired=True)
    ref = scipy_stats.ttest_rel(base, cand, alternative="greater")
    assert paired.test == "paired t" and paired.df == 3
    assert paired.p_value == pytest.approx(ref.pvalue) and paired.improvement / paired.se == pytest.approx(ref.statistic)
    welch = stats.difference(base, cand)
    ref = scipy_stats.ttest_ind(base, cand, equal_var=False, alternative="greater")
    assert welch.test == "Welch t" and welch.p_value == pytest.approx(ref.pvalue)
    assert welch.improvement / welch.se == pytest.approx(ref.statistic)
    lo, hi = paired.interval(0.95)
    ci = scipy_stats.ttest_rel(cand, base).confidence_interval(0.95)   # of cand - base
    assert (lo, hi) == (pytest.approx(-ci.high), pytest.approx(-ci.low))
    with pytest.raises(ValueError, match="equal lengths"):
        stats.difference([1.0, 2.0], [1.0], paired=True)


def test_significance_needs_the_test_and_min_delta():
    base = [1.30, 1.31, 1.29]
    clear = stats.difference(base, [1.20, 1.215, 1.19], alpha=0.05, min_delta=0.001, paired=True)
    assert clear.significant and clear.p_value < 0.05 and clear.threshold == pytest.approx(
        max(0.001, stats.t_quantile(0.95, 2) * clear.se))
    assert "paired t" in clear.summary(0.001) and "3 seeds" in clear.summary(0.001)
    noisy = stats.difference(base, [1.24, 1.32, 1.26], alpha=0.05, paired=True)
    assert noisy.improvement > 0 and not noisy.significant
    small = stats.difference(base, [1.2995, 1.3095, 1.2895], min_delta=0.001, paired=True)   # certain, tiny
    assert small.p_value == 0.0 and not small.significant
    higher = stats.difference([0.50, 0.52], [0.70, 0.71], lower_is_better=False)
    assert higher.improvement == pytest.approx(0.195) and higher.significant


def test_one_seed_a_side_is_never_significant():
    d = stats.difference([1.0], [0.5], min_delta=0.002)
    assert not d.significant and d.df == 0 and d.p_value is None and "no test" in d.summary()
    assert d.interval() == (0.5, 0.5) and d.to_dict()["threshold"] is None
    assert not stats.difference([1.0], [0.5], paired=True).significant
