"""The one measurement loop: cases measured in order, skipped when their curve predicts they
would not fit, every row on disk the moment it is made (the sweep, LRA's efficiency mode).

    cases = [Case(curve=("softmax", "forward"), length=n, label=f"softmax N={n}",
                  columns={...}, measure=lambda n=n: measure_cell(...)) for n in lengths]
    rows = run_cases(cases, writer, Budgets(memory_bytes=8 * 2**30, case_s=60.0, calls=5))

Each curve keeps a `Chain` of its measured points: a case predicted (log-log, from the
curve's last two points) to peak over the memory budget or to take longer than its time
budget is recorded as skipped with the prediction as its reason, and once a case of a curve
failed (out of memory, an error) its longer cases are skipped. A case measured before (a
resumed run) keeps its old row.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

# the error of a case the total time budget left untried: not a result, so a re-run tries it
OUT_OF_TIME = "not tried: the sweep's time budget"


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

    def record(self, n: int, row: Mapping) -> None:
        """A case's row at length n: a point when ok, the curve's failure when not."""
        if row["status"] == "ok":
            self.points.append((n, row["time_ms"], row["peak_mem_bytes"]))
        elif row["status"] != "skipped":
            self.failure = self.failure or f"{row['status']} at N={n}"


@dataclass(frozen=True)
class Budgets:
    """What a case may cost before the loop records it as skipped instead of measuring it."""

    memory_bytes: float = math.inf  # predicted peak memory over this: skipped
    case_s: float = math.inf  # predicted time of the case's `calls` over this: skipped
    calls: int = 1  # the calls one case makes (warm-up, memory, timed repeats)
    total_s: float | None = None  # cases not started within this many seconds: skipped
    after_failure: bool = True  # a curve's longer cases skipped once one failed
    hints: Mapping[str, str] = field(default_factory=dict)  # budget -> the flag that sets it


def skip_reason(chain: Chain, n: int, budgets: Budgets, elapsed_s: float = 0.0) -> str | None:
    """Why the case at length `n` of `chain`'s curve should not be tried, or None."""

    def hint(budget: str) -> str:
        return f" ({budgets.hints[budget]})" if budget in budgets.hints else ""

    if budgets.total_s is not None and elapsed_s > budgets.total_s:
        return f"{OUT_OF_TIME} of {budgets.total_s:g} s ran out{hint('total_s')}"
    if chain.failure and budgets.after_failure:
        return f"not tried: {chain.failure}{hint('after_failure')}"
    time_ms = chain.predict(n, 1)
    if time_ms is not None and budgets.calls * time_ms / 1e3 > budgets.case_s:
        return (
            f"predicted {time_ms / 1e3:.1f} s per call from shorter lengths: {budgets.calls} "
            f"calls exceed the cell budget of {budgets.case_s:g} s{hint('case_s')}"
        )
    peak = chain.predict(n, 2)
    if peak is not None and peak > budgets.memory_bytes:
        return (
            f"predicted peak memory {peak / 2**30:.1f} GiB exceeds the memory budget of "
            f"{budgets.memory_bytes / 2**30:.1f} GiB{hint('memory_bytes')}"
        )
    return None


@dataclass(frozen=True)
class Case:
    """One measurement: its curve and length, its row's other columns, and how to take it."""

    curve: Hashable  # the cases of one curve share a Chain; give them in increasing length
    length: int
    label: str  # on the progress bar
    columns: dict  # the row's columns besides the measurement's
    measure: Callable[[], dict]  # the measurement's columns, with `status` and `error`
    min_slope: float = 1.0  # of the curve's time in N (2 for a quadratic mechanism)
    done: dict | None = None  # its row from an earlier run: kept, not measured again


def run_cases(cases: list[Case], writer, budgets: Budgets, progress: bool = True) -> list[dict]:
    """Every case's row, in order: its earlier row, a skipped row with the reason, or the
    measurement; each new row appended to `writer` (on disk) before the next case starts."""
    started = time.monotonic()
    chains: dict[Hashable, Chain] = {}
    rows = []
    bar = tqdm(total=len(cases), unit="cell", disable=not progress, dynamic_ncols=True)
    for case in cases:
        chain = chains.setdefault(case.curve, Chain(min_slope=case.min_slope))
        bar.set_description(case.label)
        row = case.done
        if row is None:
            reason = skip_reason(chain, case.length, budgets, time.monotonic() - started)
            measured = {"status": "skipped", "error": reason} if reason else case.measure()
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            row = {**case.columns, "measured_at": now, **measured}
            writer.append(row)
            if row["status"] not in ("ok", "skipped"):
                bar.write(f"{case.label}: {row['status']}: {row['error']}")
        rows.append(row)
        chain.record(case.length, row)
        bar.update()
    bar.close()
    return rows


def available_memory_bytes() -> float:
    """MemAvailable from /proc/meminfo (inf where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf
