"""The CI gate on speed and memory: pytest-benchmark benchmarks compared against a baseline.

    python -m runners.bench check                 # = make bench-check: table + exit 1 on regression
    python -m runners.bench baseline              # = make bench-baseline: rewrite the baseline
    python -m runners.bench check -k lotformer    # a subset (pytest -k expression)
    python -m runners.bench check --json now.json # keep this run's pytest-benchmark JSON

The benchmarks (`tests/benchmarks/bench_zoo.py`, run by pytest-benchmark) are every mechanism,
forward and forward_backward, at lengths that finish in seconds on a CPU (`cases`; the
built-in mechanisms, and plugins when asked: --import FILE, --plugins). Each one
records in its `extra_info`:
- `peak_mem_bytes`: the sweep's memory meter (CPU: the allocator's own events, exact and the
  same on every run; CUDA: `max_memory_allocated`). Checked exactly: an increase over
  MEMORY_TOLERANCE fails.
- `normalised`: the median time of the call divided by the median time of a fixed reference
  workload (plain torch, not the zoo) timed in the same rounds, interleaved: one reference
  call before every benchmarked call. Absolute times move between machines and drift on a
  shared one; the ratio survives both. A ratio over the baseline's by more than
  SPEED_THRESHOLD fails (the threshold comes from measured noise: docs/gate.md).

The baseline is a pytest-benchmark JSON (so `pytest-benchmark compare` reads it too) at
`results/bench/baseline-<device kind>.json`; a baseline made on another device kind is refused.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import attention_zoo as zoo
from attention_zoo.plugins import BUILT_IN
from runners.measure import allocator
from runners.measure.cases import AttentionCase, Settings, workload
from runners.measure.meters import measure_memory

REPO = Path(__file__).resolve().parents[2]
BENCH_FILE = REPO / "tests" / "benchmarks" / "bench_zoo.py"
BASELINES = REPO / "results" / "bench"

SPEED_THRESHOLD = 1.3  # normalised time may grow by 30% before the gate fails (docs/gate.md: why)
MEMORY_TOLERANCE = 1.05  # peak bytes may grow by 5%
THREADS = 1  # one intra-op thread: the other core's load does not change the timings
TARGET_S = 2.0  # timed rounds per benchmark take about this long (bench + reference)
MIN_ROUNDS, MAX_ROUNDS = 9, 41

SETTINGS = {"batch": 1, "heads": 8, "head_dim": 64, "dtype": "fp32"}
# the lengths each mechanism is gated at, by its declared complexity: every call under ~1 s on
# one core; a mechanism registered later is gated too, at its kind's lengths
LENGTHS = {"quadratic": (512, 1024, 2048), "linear": (1024, 4096, 16384)}
SHORTER = {
    # performer's forward_backward at 16K takes 2.2 s and holds 1.2 GB: its page faults alone
    # moved it by up to 29% between unchanged runs, so it stops at 8K
    "performer": (1024, 4096, 8192),
}
# what the benchmark process loads and gates beyond the built-in mechanisms (set by `check`
# and `write_baseline` from the command line's --import and --plugins)
IMPORTS_ENV, PLUGINS_ENV = "ATTENTION_BENCH_GATE_IMPORTS", "ATTENTION_BENCH_GATE_PLUGINS"


@dataclass(frozen=True)
class Case:
    """One benchmark: a mechanism, a length, a pass."""

    method: str
    seq_len: int
    pass_: str

    @property
    def name(self) -> str:
        return f"{self.method}-{self.pass_}-{self.seq_len}"


def gated(plugins: bool = False, sources: Sequence[str] = ()) -> dict[str, tuple[int, ...]]:
    """The mechanisms the gate measures and their lengths: the built-in ones, those from
    `sources` (what --import loaded), and with `plugins` every registered one."""
    return {
        m: SHORTER.get(m, LENGTHS[zoo.info(m).complexity])
        for m in zoo.names()
        if plugins or zoo.info(m).source in (BUILT_IN, *sources)
    }


def cases(plugins: bool = False, sources: Sequence[str] = ()) -> list[Case]:
    """Every gated mechanism x pass x length."""
    return [
        Case(method, n, pass_)
        for method, lengths in gated(plugins, sources).items()
        for pass_ in ("forward", "forward_backward")
        for n in lengths
    ]


def cases_from_environment() -> list[Case]:
    """The cases of the benchmark process: it imports what IMPORTS_ENV lists (JSON) and
    gates installed plugins too when PLUGINS_ENV is 1."""
    sources = [zoo.import_plugin(spec) for spec in json.loads(os.environ.get(IMPORTS_ENV, "[]"))]
    return cases(os.environ.get(PLUGINS_ENV) == "1", sources)


class GateError(Exception):
    """A check that cannot be made (no baseline, another device kind, a failed benchmark)."""


def device_kind(device: torch.device) -> str:
    """'cpu', or the GPU's name as a slug ('cuda-nvidia-h100-80gb-hbm3')."""
    if device.type == "cpu":
        return "cpu"
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip(
        "-"
    )


def current_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def reference_workload(device: torch.device) -> Callable[[], object]:
    """The yardstick: softmax(QK^T/8) V for 8 heads at N = 256, d = 64, eight times, in plain
    torch. Its tensors (2 MiB) stay in cache and in the heap: it measures the machine's speed,
    not page faults, which the benchmarks around it leave behind."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(8, 256, 64, generator=g).to(device) for _ in range(3))

    def call() -> object:
        with torch.no_grad():
            for _ in range(8):
                out = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1) @ v
        return out

    return call


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Milliseconds of one call: perf_counter on CPU, CUDA events on a GPU."""
    if device.type == "cuda":

        def cuda_ms(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end)

        return cuda_ms

    def cpu_ms(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return cpu_ms


def run_case(benchmark, case: Case, device: torch.device | None = None) -> dict[str, object]:
    """Measure `case` with pytest-benchmark's fixture; fills and returns its `extra_info`."""
    device = device or current_device()
    torch.set_num_threads(THREADS)
    settings = Settings(device=device, **SETTINGS)
    cell = AttentionCase(case.method, (), case.seq_len, case.pass_)
    attn, call, before = workload(cell, settings)
    reference = reference_workload(device)
    timer = _timer(device)
    call_ms, ref_ms = timer(call), timer(reference)  # warm-up, and the round estimate
    call_ms, ref_ms = timer(call), timer(reference)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TARGET_S * 1e3 / (call_ms + ref_ms))))
    peak = measure_memory(call, device, before).peak_bytes
    ref_times: list[float] = []
    call_times: list[float] = []

    def before_each_round() -> None:  # untimed by pytest-benchmark; timed by us
        ref_times.append(timer(reference))

    def timed_call() -> None:
        call_times.append(timer(call))

    gc.collect()
    gc.disable()  # a cyclic collection inside a timed call is the interpreter's noise, not ours
    try:
        benchmark.pedantic(timed_call, setup=before_each_round, rounds=rounds, warmup_rounds=1)
    finally:
        gc.enable()
    ref_times, call_times = ref_times[1:], call_times[1:]  # the warm-up round's
    info = {
        "normalised": statistics.median(call_times) / statistics.median(ref_times),
        "call_ms": statistics.median(call_times),
        "reference_ms": statistics.median(ref_times),
        "peak_mem_bytes": int(peak),
        "device_kind": device_kind(device),
        "threads": THREADS,
        "rounds": rounds,
        "backend": getattr(attn, "last_backend", None),
        **{"method": case.method, "seq_len": case.seq_len, "pass": case.pass_},
    }
    benchmark.extra_info.update(info)
    benchmark.group = case.method
    return info


@dataclass(frozen=True)
class Verdict:
    """One line of the check's table."""

    name: str
    base_norm: float | None
    now_norm: float | None
    base_mem: int | None
    now_mem: int | None
    verdict: str  # ok | slower | more memory | slower, more memory | new | gone
    failed: bool

    @property
    def speed_ratio(self) -> float | None:
        return self.now_norm / self.base_norm if self.base_norm and self.now_norm else None

    @property
    def memory_ratio(self) -> float | None:
        return self.now_mem / self.base_mem if self.base_mem and self.now_mem else None


def _name(info: dict) -> str:
    """A benchmark's name from its extra_info: 'softmax-forward-512' (as Case.name)."""
    return Case(info["method"], info["seq_len"], info["pass"]).name


def _by_name(report: dict) -> dict[str, dict]:
    """extra_info per benchmark name ('softmax-forward-512') of a pytest-benchmark JSON."""
    out = {}
    for b in report.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "normalised" in info:
            out[_name(info)] = info
    return out


def compare(
    baseline: dict,
    now: dict,
    speed_threshold: float = SPEED_THRESHOLD,
    memory_tolerance: float = MEMORY_TOLERANCE,
    subset: bool = False,
) -> list[Verdict]:
    """A verdict per benchmark in either report (with `subset`, `now` ran a -k selection: the
    baseline's others are left out, not "gone"); raises GateError across device kinds."""
    base, cur = _by_name(baseline), _by_name(now)
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
        b, c = base.get(name), cur.get(name)
        if b is None or c is None:
            what = "new: not in the baseline" if b is None else "gone: in the baseline only"
            verdicts.append(
                Verdict(
                    name,
                    b and b["normalised"],
                    c and c["normalised"],
                    b and b["peak_mem_bytes"],
                    c and c["peak_mem_bytes"],
                    what,
                    True,
                )
            )
            continue
        problems = []
        if c["normalised"] > b["normalised"] * speed_threshold:
            problems.append(f"{c['normalised'] / b['normalised']:.2f}x slower")
        if c["peak_mem_bytes"] > b["peak_mem_bytes"] * memory_tolerance:
            more = c["peak_mem_bytes"] / b["peak_mem_bytes"] - 1
            problems.append(f"{more:.0%} more memory")
        verdicts.append(
            Verdict(
                name,
                b["normalised"],
                c["normalised"],
                b["peak_mem_bytes"],
                c["peak_mem_bytes"],
                ", ".join(problems) or "ok",
                bool(problems),
            )
        )
    return verdicts


def table(verdicts: list[Verdict]) -> str:
    """Every benchmark: baseline, now, ratio and verdict for time and memory."""

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    header = (
        f"{'benchmark':<34} {'base t/ref':>10} {'now t/ref':>10} {'ratio':>6} "
        f"{'base MiB':>10} {'now MiB':>10} {'ratio':>6}  verdict"
    )
    lines = [header, "-" * len(header)]
    for v in verdicts:
        mib = lambda x: None if x is None else x / 2**20  # noqa: E731
        lines.append(
            f"{v.name:<34} {num(v.base_norm, '.3f'):>10} {num(v.now_norm, '.3f'):>10} "
            f"{num(v.speed_ratio, '.2f'):>6} {num(mib(v.base_mem), '.1f'):>10} "
            f"{num(mib(v.now_mem), '.1f'):>10} {num(v.memory_ratio, '.2f'):>6}  "
            f"{'FAIL ' if v.failed else ''}{v.verdict}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Extra:
    """What the gate measures beyond the built-in mechanisms: `imports` (modules or .py
    files, loaded and gated) and, with `plugins`, every installed plugin."""

    imports: tuple[str, ...] = ()
    plugins: bool = False


def run_benchmarks(json_out: Path, select: str | None = None, extra: Extra = Extra()) -> dict:
    """Run the benchmark file under pytest-benchmark in a fresh process; its JSON report."""
    env = dict(os.environ)
    if current_device().type == "cpu":  # the sweep's allocator: large blocks fault in 2 MiB
        env = allocator.environment_for("auto") or env
    imports = [str(Path(i).resolve()) if Path(i).is_file() else i for i in extra.imports]
    env[IMPORTS_ENV], env[PLUGINS_ENV] = json.dumps(imports), "1" if extra.plugins else "0"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(BENCH_FILE),
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-only",
        "--benchmark-sort=name",
        "--benchmark-columns=median,min,max,rounds",
        f"--benchmark-json={json_out}",
    ]
    if select:
        cmd += ["-k", select]
    done = subprocess.run(cmd, cwd=REPO, env=env)
    if done.returncode != 0:
        raise GateError(f"the benchmarks failed (pytest exit {done.returncode}); see above")
    return json.loads(json_out.read_text())


def merge_runs(reports: list[dict]) -> dict:
    """One baseline from several runs: the last report, each benchmark's `normalised` replaced
    by its median over the runs (kept in `normalised_runs`). The memory meter is exact, so the
    runs must agree on every peak; a disagreement is an error, not an average."""
    merged = copy.deepcopy(reports[-1])
    runs = [_by_name(r) for r in reports]
    for b in merged["benchmarks"]:
        info = b["extra_info"]
        name = _name(info)
        values = [r[name]["normalised"] for r in runs if name in r]
        peaks = {r[name]["peak_mem_bytes"] for r in runs if name in r}
        if len(peaks) > 1:
            raise GateError(f"{name}: peak memory differs between runs ({sorted(peaks)})")
        info["normalised_runs"] = values
        info["normalised"] = statistics.median(values)
    return merged


def default_baseline() -> Path:
    return BASELINES / f"baseline-{device_kind(current_device())}.json"


def write_baseline(path: Path, select: str | None, runs: int, extra: Extra = Extra()) -> None:
    """Run the benchmarks `runs` times and write their merged report to `path` atomically."""
    with tempfile.TemporaryDirectory() as tmp:
        reports = [
            run_benchmarks(Path(tmp) / "now.json", select, extra) for _ in range(max(runs, 1))
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(merge_runs(reports), indent=2) + "\n")
    partial.replace(path)
    count = len(_by_name(reports[-1]))
    print(f"bench: wrote {path} ({count} benchmarks, median of {len(reports)} runs)")


def check(
    baseline: Path,
    select: str | None,
    threshold: float,
    keep: Path | None,
    extra: Extra = Extra(),
) -> int:
    """Run the benchmarks, print the table against `baseline`; 1 on a regression, else 0."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        now = run_benchmarks(Path(tmp) / "now.json", select, extra)
        if keep:
            shutil.copyfile(Path(tmp) / "now.json", keep)
    verdicts = compare(json.loads(baseline.read_text()), now, threshold, subset=bool(select))
    print(table(verdicts))
    worst = max((v.speed_ratio for v in verdicts if v.speed_ratio), default=float("nan"))
    print(
        f"\nbench: {len(verdicts)} benchmarks against {baseline} in "
        f"{time.perf_counter() - started:.0f} s; largest time ratio {worst:.2f} "
        f"(threshold {threshold:g}); memory tolerance {MEMORY_TOLERANCE:g}"
    )
    failed = [v for v in verdicts if v.failed]
    if failed:
        print(f"bench: FAILED: {', '.join(f'{v.name} ({v.verdict})' for v in failed)}")
        return 1
    print("bench: passed")
    return 0
