"""How busy the machine is while the gate measures: the cores other processes used.

`/proc/stat` counts the time every core spent busy since boot; `/proc/<pid>/stat` the time
each of the gate's own processes used. Sampled before and after a stretch of measuring, their
difference over the wall time is how many cores the rest of the machine kept busy (0.0 on a
quiet machine, ~2.0 with two CPU-bound threads beside us on a 2-core one). Linux only: where
/proc is missing, `Load.cores_used_by_others` is None and the gate says it could not tell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BUSY_ABOVE = 0.25  # cores used by others over which the gate calls the machine busy


def _busy_ticks() -> int | None:
    """Busy ticks of every core together since boot (all but idle and iowait)."""
    try:
        fields = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def _process_ticks(pid: int) -> int:
    """utime + stime of one process (its threads included); 0 once it has gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class Sample:
    wall: float
    busy: int | None
    ours: int


def sample(pids: Iterable[int]) -> Sample:
    """The machine's busy ticks and ours, now: those of `pids` (this process and live
    workers) and of the children this process has waited for (a finished pytest run)."""
    t = os.times()
    reaped = round((t.children_user + t.children_system) * TICKS)
    ours = sum(_process_ticks(p) for p in {os.getpid(), *pids}) + reaped
    return Sample(time.monotonic(), _busy_ticks(), ours)


def cores_used_by_others(before: Sample, after: Sample) -> float | None:
    """Cores the machine kept busy between two samples, less what our processes used."""
    elapsed = after.wall - before.wall
    if before.busy is None or after.busy is None or elapsed <= 0:
        return None
    others = (after.busy - before.busy) - (after.ours - before.ours)
    return max(others, 0) / TICKS / elapsed


def cores() -> int:
    return os.cpu_count() or 1


def load_average() -> float | None:
    try:
        return float((PROC / "loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
