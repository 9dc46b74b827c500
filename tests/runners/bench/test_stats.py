"""The gate's intervals: the sign test's covers the median at least 95% of the time whatever
the ratios' law (here skewed, with outliers), the Mann-Whitney one covers a known shift, and
a verdict is FAIL or ok only when the whole interval is on one side of the threshold."""

from __future__ import annotations

import math
import random

import pytest

from runners.bench import stats


@pytest.mark.parametrize("n", range(2, 61))
def test_the_sign_test_rank_is_the_widest_that_keeps_95_percent(n):
    k = stats.sign_test_rank(n)
    if k == 0:  # too few pairs for any interval: even [min, max] covers less than 95%
        assert 2 * stats._binomial_cdf(0, n) > 0.05
        assert stats.paired([1.0] * n).bounded is False
        return
    assert 2 * stats._binomial_cdf(k - 1, n) <= 0.05  # [x_(k), x_(n+1-k)]: >= 95%
    assert k == n // 2 or 2 * stats._binomial_cdf(k, n) > 0.05  # one further in: < 95%


def skewed_ratio(rng: random.Random, median: float) -> float:
    """A ratio whose law has the given median but is skewed, with 15% stalls either way."""
    e = abs(rng.gauss(0, 0.05)) * (1 if rng.random() < 0.5 else -3)
    if rng.random() < 0.15:
        e += math.log(1.8) if e > 0 else -math.log(1.8)  # a stalled call, kept on its side
    return median * math.exp(e)


def test_the_paired_interval_covers_the_median_95_percent_of_the_time():
    rng = random.Random(0)
    for n in (12, 25, 40):
        hits = sum(
            (lambda i: i.low <= 1.2 <= i.high)(
                stats.paired([skewed_ratio(rng, 1.2) for _ in range(n)])
            )
            for _ in range(2000)
        )
        assert hits / 2000 >= 0.95 - 0.01  # 0.01: the simulation's own error


def test_the_unpaired_interval_covers_a_known_shift():
    rng = random.Random(1)
    hits = 0
    for _ in range(500):
        base = [math.exp(rng.gauss(0, 0.05)) for _ in range(20)]
        head = [1.5 * math.exp(rng.gauss(0, 0.05)) for _ in range(30)]
        interval = stats.unpaired(base, head)
        hits += interval.low <= 1.5 <= interval.high
        assert 1.35 < interval.estimate < 1.65
    assert hits / 500 >= 0.93


@pytest.mark.parametrize(
    "low, high, verdict",
    [
        (1.31, 1.6, "FAIL"),
        (0.9, 1.29, "ok"),
        (1.1, 1.4, "inconclusive"),
        (0.0, math.inf, "inconclusive"),
    ],
)
def test_a_verdict_is_decided_only_by_the_whole_interval(low, high, verdict):
    assert stats.judge(stats.Interval(1.2, low, high, 12), 1.3) == verdict


def test_the_spread_is_robust_to_one_stall():
    assert stats.spread([10.0, 10.2, 9.8, 10.1, 9.9, 100.0]) == pytest.approx(0.01, abs=0.006)
    assert math.isnan(stats.spread([1.0]))
