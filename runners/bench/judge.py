"""The gate's verdicts: a table, the noise the run saw, and an exit code.

    0  every benchmark ok (the whole 95% interval of its time ratio under the threshold, its
       peak memory within the tolerance)
    1  a regression: some benchmark's whole interval over the threshold, or more memory, or
       (against a stored baseline) a benchmark new or gone
    2  the check could not be made (no baseline, a benchmark or a worker that failed, ...)
    3  no regression, but some benchmark still inconclusive after the re-measuring budget: the
       machine was too noisy to judge them; never reported as a pass

Two ways to get the numbers: the base commit measured beside the working tree in this run
(`runners.bench.paired`, the default), or this run against the stored baseline
(`results/bench/baseline-<kind>.json`, where there is no base: no git history, a shallow
clone, `--stored`).
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from results.files import write_json_atomic
from runners.bench import noise, paired, stats
from runners.bench.gate import (
    MEMORY_TOLERANCE,
    REPO,
    SPEED_THRESHOLD,
    Extra,
    GateError,
    by_name,
    cases,
    current_device,
    run_benchmarks,
)

OLD_BASELINE = "no interval: old baseline (`make bench-baseline` writes one with samples)"
NOISY_SPREAD = 0.10  # the reference workload's spread over which the run is called noisy


@dataclass(frozen=True)
class Verdict:
    """One line of the table: time and memory of a benchmark, base against now."""

    name: str
    base: float | None  # median time: ms (paired) or time / reference (stored baseline)
    now: float | None
    speed: stats.Interval | None  # None: nothing to compare with; n == 0: a point, no interval
    base_mem: int | None
    now_mem: int | None
    speed_verdict: str  # stats.OK | FAIL | INCONCLUSIVE, or "" with no comparison
    memory_failed: bool = False
    note: str = ""  # "new: not in the baseline", OLD_BASELINE, ...
    failed_otherwise: bool = False  # new or gone against a stored baseline
    busy: float | None = None  # cores other processes used while it was measured

    @property
    def speed_ratio(self) -> float | None:
        return self.speed.estimate if self.speed else None

    @property
    def memory_ratio(self) -> float | None:
        return self.now_mem / self.base_mem if self.base_mem and self.now_mem else None

    @property
    def state(self) -> str:
        if self.speed_verdict == stats.FAIL or self.memory_failed or self.failed_otherwise:
            return stats.FAIL
        return stats.INCONCLUSIVE if self.speed_verdict == stats.INCONCLUSIVE else stats.OK

    @property
    def failed(self) -> bool:
        return self.state == stats.FAIL

    @property
    def verdict(self) -> str:
        """What is wrong, or 'ok': '1.52x slower', '25% more memory', 'inconclusive', ..."""
        parts = []
        if self.speed_verdict == stats.FAIL:
            parts.append(f"{self.speed_ratio:.2f}x slower")
        elif self.speed_verdict == stats.INCONCLUSIVE:
            parts.append("inconclusive")
        if self.memory_failed:
            parts.append(f"{self.memory_ratio - 1:.0%} more memory")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts) or stats.OK


def verdict(
    name: str,
    base: float | None,
    now: float | None,
    speed: stats.Interval | None,
    mem: tuple[int | None, int | None],
    threshold: float,
    tolerance: float = MEMORY_TOLERANCE,
    check: stats.Interval | None = None,
    **more: object,
) -> Verdict:
    """The verdict on one benchmark: its interval judged against `threshold` (a point with no
    interval is judged as a point), its peaks against `tolerance`. With `check`, a second
    measurement's interval (fresh processes), a FAIL stands only if the check FAILs too."""
    base_mem, now_mem = mem
    speed_verdict = stats.judge(speed, threshold) if speed else ""
    unconfirmed = check is not None and stats.judge(check, threshold) != stats.FAIL
    if speed_verdict == stats.FAIL and unconfirmed:
        speed_verdict = stats.INCONCLUSIVE
        more["note"] = f"the FAIL was not confirmed: {check} in fresh workers"
    memory_failed = bool(base_mem and now_mem and now_mem > base_mem * tolerance)
    return Verdict(name, base, now, speed, base_mem, now_mem, speed_verdict, memory_failed, **more)


def compare(
    baseline: dict,
    now: dict,
    speed_threshold: float = SPEED_THRESHOLD,
    memory_tolerance: float = MEMORY_TOLERANCE,
    subset: bool = False,
) -> list[Verdict]:
    """This run's pytest-benchmark report against a stored baseline: a verdict per benchmark
    in either (with `subset`, `now` ran a -k selection: the baseline's others are left out,
    not "gone"); raises GateError across device kinds."""
    base, cur = by_name(baseline), by_name(now)
    if subset:
        base = {name: info for name, info in base.items() if name in cur}
    kinds = {i["device_kind"] for i in base.values()}, {i["device_kind"] for i in cur.values()}
    if kinds[0] and kinds[1] and kinds[0] != kinds[1]:
        raise GateError(
            f"the baseline was made on {', '.join(sorted(kinds[0]))} and this run is on "
            f"{', '.join(sorted(kinds[1]))}: timings and memory do not carry across device "
            "kinds; make a baseline on this kind with `make bench-baseline`"
        )
    verdicts = []
    for name in sorted(set(base) | set(cur)):
        b, c = base.get(name, {}), cur.get(name, {})
        mem = (b.get("peak_mem_bytes"), c.get("peak_mem_bytes"))
        times = (b.get("normalised"), c.get("normalised"))
        if not b or not c:
            what = "new: not in the baseline" if not b else "gone: in the baseline only"
            verdicts.append(Verdict(name, *times, None, *mem, "", note=what, failed_otherwise=True))
            continue
        if b.get("normalised_samples") and c.get("normalised_samples"):
            speed, note = stats.unpaired(b["normalised_samples"], c["normalised_samples"]), ""
        else:
            ratio = c["normalised"] / b["normalised"]
            speed, note = stats.Interval(ratio, ratio, ratio, 0), OLD_BASELINE
        verdicts.append(
            verdict(name, *times, speed, mem, speed_threshold, memory_tolerance, note=note)
        )
    return verdicts


def from_paired(
    measured: list[paired.Measured],
    threshold: float = SPEED_THRESHOLD,
    tolerance: float = MEMORY_TOLERANCE,
) -> list[Verdict]:
    """A verdict per benchmark measured on both sides (a mechanism new at head: no verdict
    on it, and no failure either: nothing was slower)."""
    out = []
    for m in measured:
        now = statistics.median(m.head_ms) if m.head_ms else None
        busy = max(m.busy) if m.busy else None
        if m.missing:
            note = "new: not at the base"
            out.append(Verdict(m.case.name, None, now, None, None, m.head_peak, "", note=note))
            continue
        base = statistics.median(m.base_ms)
        mem = (m.base_peak, m.head_peak)
        check = m.check.interval() if m.check else None
        out.append(
            verdict(
                m.case.name, base, now, m.interval(), mem, threshold, tolerance, check, busy=busy
            )
        )
    return out


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def table(verdicts: list[Verdict], unit: str = "t/ref") -> str:
    """Every benchmark: base, now, ratio with its interval, pairs or samples, the others' load,
    memory, verdict."""
    header = (
        f"{'benchmark':<34} {'base ' + unit:>10} {'now ' + unit:>10} {'ratio':>6} "
        f"{'95% interval':>14} {'n':>4} {'busy':>5} {'base MiB':>9} {'now MiB':>9} "
        f"{'ratio':>6}  verdict"
    )
    lines = [header, "-" * len(header)]
    for v in verdicts:
        shown = v.speed and v.speed.n and v.speed.bounded
        interval = f"[{v.speed.low:.2f}, {v.speed.high:.2f}]" if shown else "-"
        mib = lambda x: None if x is None else x / 2**20  # noqa: E731
        lines.append(
            f"{v.name:<34} {_num(v.base, '.3f'):>10} {_num(v.now, '.3f'):>10} "
            f"{_num(v.speed_ratio, '.2f'):>6} {interval:>14} "
            f"{v.speed.n if v.speed else '-':>4} {_num(v.busy, '.1f'):>5} "
            f"{_num(mib(v.base_mem), '.1f'):>9} {_num(mib(v.now_mem), '.1f'):>9} "
            f"{_num(v.memory_ratio, '.2f'):>6}  {'FAIL ' if v.failed else ''}{v.verdict}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Noise:
    """What the run saw of the machine: the reference workload's spread, the cores other
    processes kept busy (mean and most over the benchmarks' stretches), the load average."""

    spread: float
    reference_calls: int
    busy_mean: float | None
    busy_min: float | None
    busy_max: float | None
    load_average: float | None

    @property
    def noisy(self) -> bool:
        busy = self.busy_mean is not None and self.busy_mean > noise.BUSY_ABOVE
        return busy or (not math.isnan(self.spread) and self.spread > NOISY_SPREAD)

    def __str__(self) -> str:
        parts = []
        if self.reference_calls:
            parts.append(
                f"the reference workload's spread {self.spread:.1%} (median absolute "
                f"deviation over median, {self.reference_calls} calls)"
            )
        if self.busy_mean is None:
            parts.append("the load of other processes unknown (no /proc/stat)")
        else:
            changed = self.busy_max - self.busy_min > noise.BUSY_ABOVE
            parts.append(
                f"other processes kept {self.busy_mean:.2f} of {noise.cores()} cores busy on "
                f"average, from {self.busy_min:.2f} to {self.busy_max:.2f} between benchmarks"
                + (" (the load changed during the run: see the busy column)" if changed else "")
            )
        if self.load_average is not None:
            parts.append(f"load average {self.load_average:.2f} at the start")
        return "; ".join(parts)


def noise_of(measured: list[paired.Measured], load_average: float | None) -> Noise:
    refs = [r for m in measured for r in m.reference_ms]
    busy = [b for m in measured for b in m.busy]
    return Noise(
        stats.spread(refs),
        len(refs),
        statistics.mean(busy) if busy else None,
        min(busy) if busy else None,
        max(busy) if busy else None,
        load_average,
    )


def conclude(verdicts: list[Verdict], seen: Noise, threshold: float, started: float) -> int:
    """The summary lines and the exit code (0 ok, 1 regression, 3 inconclusive)."""
    worst = max((v.speed_ratio for v in verdicts if v.speed_ratio), default=math.nan)
    print(
        f"\nbench: {len(verdicts)} benchmarks in {time.perf_counter() - started:.0f} s; "
        f"largest time ratio {worst:.2f} (threshold {threshold:g}); memory tolerance "
        f"{MEMORY_TOLERANCE:g}\nbench: noise: {seen}"
    )
    if seen.noisy:
        print("bench: warning: the machine was busy or noisy while measuring; intervals widen")
    failed = [v for v in verdicts if v.failed]
    if failed:
        print(f"bench: FAILED: {', '.join(f'{v.name} ({v.verdict})' for v in failed)}")
        return 1
    open_ = [v for v in verdicts if v.state == stats.INCONCLUSIVE]
    if open_:
        named = ", ".join(f"{v.name} {v.speed}" for v in open_)
        print(f"bench: machine too noisy to judge: {named}; noise: {seen}")
        return 3
    print(f"bench: passed ({len(verdicts)} benchmarks)")
    return 0


@dataclass(frozen=True)
class Request:
    """What `python -m runners.bench check` was asked."""

    baseline: Path
    select: str | None = None  # a pytest -k expression over the benchmark names
    threshold: float = SPEED_THRESHOLD
    keep: Path | None = None  # where to keep this run's measurements (JSON)
    extra: Extra = field(default_factory=Extra)
    against: str | None = None  # the base commit; None: HEAD if the tree has changes, HEAD~1
    stored: bool = False  # compare with the stored baseline even where there is a base
    budget_s: float = paired.BUDGET_S


def selected(select: str | None, extra: Extra) -> list:
    """The gated cases that a pytest -k expression selects (all without one)."""
    every = cases(extra.plugins, [_source(i) for i in extra.imports])
    if not select:
        return every
    from _pytest.mark.expression import Expression  # pytest's own -k grammar

    try:
        expression = Expression.compile(select)
    except Exception as exc:  # pytest's ParseError
        raise GateError(f"-k {select!r}: {exc}") from exc
    chosen = [c for c in every if expression.evaluate(lambda s, n=c.name: s.lower() in n)]
    if not chosen:
        raise GateError(f"-k {select!r} selects none of the {len(every)} benchmarks")
    return chosen


def _source(spec: str) -> str:
    """The registry's `source` of a mechanism --import loaded (already imported by the CLI)."""
    from attention_zoo.plugins import import_plugin

    return import_plugin(spec)


def check(req: Request) -> int:
    """Measure and judge; the exit code of the module docstring."""
    started = time.perf_counter()
    if not req.stored:
        try:
            ref = req.against or paired.default_ref()
            commit = paired.resolve(ref)
        except paired.NoBase as exc:
            if req.against:
                raise GateError(f"--against {req.against}: {exc}") from exc
            print(
                f"bench: no base commit to measure beside the change ({exc}); comparing with "
                f"the stored baseline {req.baseline} instead"
            )
        else:
            return _check_paired(req, ref, commit, started)
    return _check_stored(req, started)


def _check_paired(req: Request, ref: str, commit: str, started: float) -> int:
    chosen = selected(req.select, req.extra)
    device = current_device()
    load = noise.load_average()
    print(
        f"bench: base = {ref} ({commit[:12]}), head = the working tree: {len(chosen)} "
        "benchmarks, both sides measured in this run, in alternation, on one core"
    )
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        base_root = paired.extract_zoo(commit, Path(tmp))
        measured = paired.run(
            chosen, base_root, REPO, device, req.extra, req.threshold, req.budget_s
        )
    if req.keep:
        runs = [m.as_json() for m in measured]
        write_json_atomic(req.keep, {"base": commit, "ref": ref, "benchmarks": runs})
    verdicts = from_paired(measured, req.threshold)
    print(table(verdicts, unit="ms"))
    return conclude(verdicts, noise_of(measured, load), req.threshold, started)


def _check_stored(req: Request, started: float) -> int:
    if not req.baseline.is_file():
        raise GateError(
            f"no baseline at {req.baseline}: make one on this device kind with "
            "`make bench-baseline` (and commit it on its own)"
        )
    load = noise.load_average()
    before = noise.sample([])
    with tempfile.TemporaryDirectory() as tmp:
        now = run_benchmarks(Path(tmp) / "now.json", req.select, req.extra)
        if req.keep:
            shutil.copyfile(Path(tmp) / "now.json", req.keep)
    busy = noise.cores_used_by_others(before, noise.sample([]))
    baseline = json.loads(req.baseline.read_text())
    verdicts = compare(baseline, now, req.threshold, subset=bool(req.select))
    print(f"bench: against the stored baseline {req.baseline}")
    print(table(verdicts))
    refs = [r for info in by_name(now).values() for r in info.get("reference_samples", [])]
    seen = Noise(stats.spread(refs), len(refs), busy, busy, busy, load)
    return conclude(verdicts, seen, req.threshold, started)
