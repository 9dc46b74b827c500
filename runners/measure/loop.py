"""The measurement loop's predictions: what a curve's shorter lengths say about a longer one.

    chain = Chain(min_slope=2.0)            # softmax: time never assumed flatter than N^2
    chain.points.append((1024, 3.1, 2**26))   # (N, ms, peak bytes) of each ok cell
    chain.predict(8192, 1)                  # ms extrapolated along the log-log line

A cell predicted to run past its time budget, or past the memory there is, is recorded as
skipped with the prediction as its reason instead of being tried (the sweep, LRA's
efficiency mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Chain:
    """One curve (method, options, pass) as it is swept upwards in length."""

    points: list[tuple[int, float, int]] = field(default_factory=list)  # (N, ms, bytes) of ok cells
    failure: str | None = None  # "oom at N=..." once a cell failed
    min_slope: float = 1.0  # the log-log slope of time never assumed flatter than this

    def predict(self, n: int, column: int) -> float | None:
        """Extrapolate time (column 1) or memory (column 2) to length n along the log-log line
        through the last two points, never flatter than linear (time: than `min_slope`, 2
        for a quadratic mechanism, whose short lengths on a GPU are launch-bound and flat)."""
        if len(self.points) < 2:
            return None
        (n0, *a), (n1, *b) = self.points[-2:]
        y0, y1 = a[column - 1], b[column - 1]
        if n1 <= n0 or y0 <= 0 or y1 <= 0:
            return None
        floor = self.min_slope if column == 1 else 1.0
        slope = max(floor, math.log(y1 / y0) / math.log(n1 / n0))
        return y1 * (n / n1) ** slope


def available_memory_bytes() -> float:
    """MemAvailable from /proc/meminfo (inf where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf
