"""What the CI gate measures, and the stored baseline (how it judges: runners.bench.judge; the
base commit measured beside the change: runners.bench.paired).

    python -m runners.bench check                 # = make bench-check: base and head, measured
    python -m runners.bench check --stored        # this run against the stored baseline
    python -m runners.bench baseline              # = make bench-baseline: rewrite the baseline
    python -m runners.bench check -k lotformer    # a subset (pytest -k expression)

The benchmarks (`cases`) are every mechanism, forward and forward_backward, at lengths that
finish in seconds on a CPU (the built-in mechanisms, and plugins when asked: --import FILE,
--plugins), each built by `prepare` at SETTINGS on one intra-op thread. Compared with a base
commit, two worker processes time them (runners.bench.worker). For the stored baseline they
run under pytest-benchmark (`tests/benchmarks/bench_zoo.py`, `run_case`), whose `extra_info`
holds:
- `peak_mem_bytes`: the sweep's memory meter (CPU: the allocator's own events, exact and the
  same on every run; CUDA: `max_memory_allocated`). An increase over MEMORY_TOLERANCE fails.
- `normalised` and `normalised_samples`: the call's time over a fixed reference workload's
  (plain torch, not the zoo), one reference call before every benchmarked call; the median,
  and every round's ratio (what an interval against the baseline is computed from).

The baseline is a pytest-benchmark JSON (so `pytest-benchmark compare` reads it too) at
`results/bench/baseline-<device kind>.json`; a baseline made on another device kind is refused.
"""

from __future__ import annotations

import copy
import functools
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import attention_zoo as zoo
from attention_zoo.plugins import BUILT_IN
from results.files import write_json_atomic
from runners.measure import allocator
from runners.measure.cases import AttentionCase, Settings, workload
from runners.measure.meters import call_ms, measure_memory

REPO = Path(__file__).resolve().parents[2]
BENCH_FILE = REPO / "tests" / "benchmarks" / "bench_zoo.py"
BASELINES = REPO / "results" / "bench"

SPEED_THRESHOLD = 1.3  # FAIL: the whole 95% interval of the time ratio over 1.3 (docs/gate.md)
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
    """Milliseconds of one call on `device` (runners.measure.meters.call_ms)."""
    return functools.partial(call_ms, device=device)


def prepare(case: Case, device: torch.device):
    """The module, the call to time and the bytes its inputs hold, at the gate's settings (one
    intra-op thread). Both the stored-baseline path and the paired workers build calls here."""
    torch.set_num_threads(THREADS)
    settings = Settings(device=device, **SETTINGS)
    return workload(AttentionCase(case.method, (), case.seq_len, case.pass_), settings)


def run_case(benchmark, case: Case, device: torch.device | None = None) -> dict[str, object]:
    """Measure `case` with pytest-benchmark's fixture; fills and returns its `extra_info`."""
    device = device or current_device()
    attn, call, before = prepare(case, device)
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
        # each round's call over the reference call just before it: what an interval against
        # this run is computed from (runners.bench.stats.unpaired)
        "normalised_samples": [c / r for c, r in zip(call_times, ref_times, strict=True)],
        "call_ms": statistics.median(call_times),
        "reference_ms": statistics.median(ref_times),
        "reference_samples": ref_times,  # the machine's noise in this run (runners.bench.judge)
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
class Extra:
    """What the gate measures beyond the built-in mechanisms: `imports` (modules or .py
    files, loaded and gated) and, with `plugins`, every installed plugin."""

    imports: tuple[str, ...] = ()
    plugins: bool = False


def benchmark_environment(extra: Extra, device: torch.device) -> dict[str, str]:
    """The environment of a benchmark process: the sweep's allocator on CPU (large blocks
    fault in 2 MiB), and what it must import (IMPORTS_ENV) and gate (PLUGINS_ENV)."""
    env = dict(os.environ)
    if device.type == "cpu":
        env = allocator.environment_for("auto") or env
    imports = [str(Path(i).resolve()) if Path(i).is_file() else i for i in extra.imports]
    env[IMPORTS_ENV], env[PLUGINS_ENV] = json.dumps(imports), "1" if extra.plugins else "0"
    return env


def run_benchmarks(json_out: Path, select: str | None = None, extra: Extra = Extra()) -> dict:
    """Run the benchmark file under pytest-benchmark in a fresh process; its JSON report."""
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
    env = benchmark_environment(extra, current_device())
    done = subprocess.run(cmd, cwd=REPO, env=env)
    if done.returncode != 0:
        raise GateError(f"the benchmarks failed (pytest exit {done.returncode}); see above")
    return json.loads(json_out.read_text())


def merge_runs(reports: list[dict]) -> dict:
    """One baseline from several runs: the last report, each benchmark's `normalised` replaced
    by its median over the runs (kept in `normalised_runs`) and its `normalised_samples` by
    every run's. The memory meter is exact, so the runs must agree on every peak; a
    disagreement is an error, not an average."""
    merged = copy.deepcopy(reports[-1])
    runs = [by_name(r) for r in reports]
    for b in merged["benchmarks"]:
        info = b["extra_info"]
        name = benchmark_name(info)
        values = [r[name]["normalised"] for r in runs if name in r]
        peaks = {r[name]["peak_mem_bytes"] for r in runs if name in r}
        if len(peaks) > 1:
            raise GateError(f"{name}: peak memory differs between runs ({sorted(peaks)})")
        info["normalised_runs"] = values
        info["normalised"] = statistics.median(values)
        info["normalised_samples"] = [
            x for r in runs if name in r for x in r[name].get("normalised_samples", [])
        ]
    return merged


def benchmark_name(info: dict) -> str:
    """A benchmark's name from its extra_info: 'softmax-forward-512' (as Case.name)."""
    return Case(info["method"], info["seq_len"], info["pass"]).name


def by_name(report: dict) -> dict[str, dict]:
    """extra_info per benchmark name ('softmax-forward-512') of a pytest-benchmark JSON."""
    out = {}
    for b in report.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "normalised" in info:
            out[benchmark_name(info)] = info
    return out


def default_baseline() -> Path:
    return BASELINES / f"baseline-{device_kind(current_device())}.json"


def write_baseline(path: Path, select: str | None, runs: int, extra: Extra = Extra()) -> None:
    """Run the benchmarks `runs` times and write their merged report to `path` atomically:
    a run that fails leaves the old baseline as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        reports = [
            run_benchmarks(Path(tmp) / "now.json", select, extra) for _ in range(max(runs, 1))
        ]
    write_json_atomic(path, merge_runs(reports))
    count = len(by_name(reports[-1]))
    print(f"bench: wrote {path} ({count} benchmarks, median of {len(reports)} runs)")
