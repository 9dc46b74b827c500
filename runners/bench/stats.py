"""The gate's statistics: a time ratio with a 95% interval, and the verdict it allows.

Two intervals, both distribution-free (timings are skewed, and a neighbour adds outliers that
a normal model would turn into a wide or a wrong interval):
- `paired`: base and head timed in alternation, a ratio head/base per pair. The estimate is
  the median ratio; the interval is the sign test's: the order statistics x_(k) and
  x_(n+1-k) of the n ratios, with k the largest count for which a Binomial(n, 1/2) falls
  below k with probability <= 2.5%. It covers the median with at least 95% whatever the
  ratios' distribution, as long as the pairs are exchangeable (why the order alternates).
- `unpaired`: two independent sets of samples (a stored baseline's and this run's). The
  estimate is the Hodges-Lehmann shift of their logarithms (the median of every difference
  log y_j - log x_i), the interval the Mann-Whitney one (normal approximation to U's law).

`judge` turns an interval into a verdict against a threshold: FAIL only when the whole
interval lies above it, ok only when the whole interval lies below it, inconclusive else.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
OK, FAIL, INCONCLUSIVE = "ok", "FAIL", "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A time ratio (head over base) with its confidence interval, from `n` pairs or samples."""

    estimate: float
    low: float  # 0 when n is too small for any interval at this confidence
    high: float  # inf likewise
    n: int

    @property
    def bounded(self) -> bool:
        return self.low > 0 and math.isfinite(self.high)

    def __str__(self) -> str:
        if not self.bounded:
            return f"{self.estimate:.2f} (n={self.n}: too few for an interval)"
        return f"{self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _binomial_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def sign_test_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The largest k >= 1 with P(B <= k - 1) <= (1 - confidence) / 2, or 0 when even k = 1
    fails (n too small): [x_(k), x_(n+1-k)] covers the median with >= `confidence`."""
    tail = (1 - confidence) / 2
    k = 0
    while k < n // 2 and _binomial_cdf(k, n) <= tail:
        k += 1
    return k


def paired(ratios: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of paired ratios with the sign test's interval."""
    if not ratios:
        raise ValueError("no pairs to compare")
    x = sorted(ratios)
    n, k = len(x), sign_test_rank(len(x), confidence)
    if k == 0:
        return Interval(statistics.median(x), 0.0, math.inf, n)
    return Interval(statistics.median(x), x[k - 1], x[n - k], n)


def _normal_quantile(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def unpaired(
    base: Sequence[float], head: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """head/base as exp(Hodges-Lehmann shift of the logs), with the Mann-Whitney interval."""
    if not base or not head:
        raise ValueError("no samples to compare")
    lx, ly = [math.log(v) for v in base], [math.log(v) for v in head]
    d = sorted(y - x for x in lx for y in ly)
    m, n = len(lx), len(ly)
    z = _normal_quantile(1 - (1 - confidence) / 2)
    # k = the number of differences cut from each end (normal approximation to U's law)
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    estimate = math.exp(statistics.median(d))
    if k < 0:
        return Interval(estimate, 0.0, math.inf, min(m, n))
    return Interval(estimate, math.exp(d[k]), math.exp(d[len(d) - 1 - k]), min(m, n))


def judge(interval: Interval, threshold: float) -> str:
    """FAIL when the whole interval is above `threshold`, ok when below, else inconclusive."""
    if interval.low > threshold:
        return FAIL
    if interval.high < threshold:
        return OK
    return INCONCLUSIVE


def spread(samples: Sequence[float]) -> float:
    """A robust relative spread: the median absolute deviation over the median (0.03 = 3%)."""
    if len(samples) < 2:
        return math.nan
    mid = statistics.median(samples)
    return statistics.median(abs(s - mid) for s in samples) / mid
