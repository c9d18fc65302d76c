"""foundry.search.stats: the numbers behind noise-aware promotion."""
import math

import pytest

from foundry.search import stats


def test_mean_stderr_and_interval():
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.mean(values) == 2.5
    assert stats.stdev(values) == pytest.approx(math.sqrt(5 / 3))
    assert stats.stderr(values) == pytest.approx(math.sqrt(5 / 3) / 2)
    lo, hi = stats.confidence_interval(values, 0.95)
    assert (lo + hi) / 2 == pytest.approx(2.5)
    assert hi - lo == pytest.approx(2 * 1.959964 * stats.stderr(values), rel=1e-5)
    assert stats.stderr([3.0]) == 0.0 and stats.z_for_level(0.95) == pytest.approx(1.959964, rel=1e-6)
    with pytest.raises(ValueError):
        stats.mean([])


def test_difference_needs_more_than_noise():
    baseline, noisy = [1.30, 1.20, 1.25], [1.24, 1.19, 1.26]
    d = stats.difference(baseline, noisy, z=2.0, min_delta=0.001)
    assert d.improvement == pytest.approx(0.02)
    assert d.se == pytest.approx(math.sqrt(stats.stderr(baseline) ** 2 + stats.stderr(noisy) ** 2))
    assert d.threshold == pytest.approx(2.0 * d.se) and not d.significant
    clear = stats.difference(baseline, [1.10, 1.11, 1.09], z=2.0, min_delta=0.001)
    assert clear.significant and clear.relative < 0
    lo, hi = clear.interval(0.95)
    assert lo > 0 and hi > lo


def test_min_delta_and_direction():
    # one seed each: no noise estimate, so min_delta alone decides
    assert not stats.difference([1.0], [0.999], min_delta=0.002).significant
    assert stats.difference([1.0], [0.99], min_delta=0.002).significant
    higher = stats.difference([0.50, 0.52], [0.70, 0.71], z=2.0, lower_is_better=False)
    assert higher.improvement == pytest.approx(0.195) and higher.significant
