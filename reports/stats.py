"""Statistics over seeds for the accuracy tables: Student t intervals and paired differences.

    mean, std, (low, high) = mean_interval([34.0, 36.0, 38.0])     # 95%, t with n - 1 df
    diff, (low, high), n = paired_difference({0: 36.0, 1: 35.0}, {0: 33.0, 1: 34.5})

With n seeds the interval is mean ± t(0.975, n - 1) · s / sqrt(n), s the sample standard
deviation; one seed has no interval. A paired difference is the same interval over the
per-seed differences of the seeds both sides ran.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

# t(0.975, df) for df = 1..30 (any table of Student's t, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip
Z975 = 1.959964


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975  # Cornish-Fisher expansion in 1/df: within 1e-3 of the exact value past 30
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(
    values: Sequence[float],
) -> tuple[float, float | None, tuple[float, float] | None]:
    """(mean, sample std, 95% t interval) of `values`; std and interval None for one value."""
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    std = statistics.stdev(values)
    half = t975(len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, (mean - half, mean + half)


def paired_difference(
    ours: Mapping[int, float], base: Mapping[int, float]
) -> tuple[float, tuple[float, float] | None, int] | None:
    """Mean of ours[seed] - base[seed] over the seeds both have, its 95% interval and the
    number of pairs; None if no seed is shared."""
    seeds = sorted(set(ours) & set(base))
    if not seeds:
        return None
    mean, _, interval = mean_interval([ours[s] - base[s] for s in seeds])
    return mean, interval, len(seeds)


def overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """Whether two intervals overlap; a missing one overlaps everything (nothing is shown)."""
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]
