"""The base commit measured beside the change, in the same run, interleaved.

A stored baseline was made on another machine or at another hour; a time ratio against it
moves by 1.3-1.5x with the host and its neighbours (docs/gate.md). So by default the gate
checks out the base commit's `attention_zoo` (`git archive`, into a temporary folder: nothing
is left in the repository's worktree list if the gate is killed), starts one worker process
on it and one on the working tree (`runners.bench.worker`), and times them in turn: base,
head, head, base, ... (the order alternates, as `asv continuous` does, so that neither side
always runs first or always runs on a cache the other warmed). A neighbour that slows the
machine slows both sides of a pair alike; the pairs' ratios give the interval
(`stats.paired`). Inconclusive benchmarks are measured again while the budget lasts.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from runners.bench import noise, stats
from runners.bench.gate import (
    REPO,
    Case,
    Extra,
    GateError,
    benchmark_environment,
)

ZOO = "attention_zoo"
TARGET_S = 2.0  # both sides' timed calls of one benchmark take about this long
# pairs of blocks: 12 pairs give the sign test's interval [x_(3), x_(10)] (96.1%), which two
# stalled calls on either side cannot move
MIN_PAIRS, MAX_PAIRS = 12, 40
BLOCK_S, MAX_BLOCK = 0.05, 5  # a side's turn: consecutive calls of ~50 ms in all, their median
REFERENCE_CALLS = 3  # reference workload calls per benchmark, for the noise estimate
# re-measuring inconclusive benchmarks: at most this long. With `make test` (~5 min on 2 cores,
# its venv included) and the gate's first pass (~4.2 min), `.ci/run` stays under 13 min
BUDGET_S = 150.0


class NoBase(Exception):
    """There is no base commit to measure (no git, no history, an unknown ref)."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise NoBase("git is not installed") from exc


def default_ref(repo: Path = REPO) -> str:
    """HEAD when the working tree's zoo has changes (they are the change), else HEAD~1 (CI on
    a clean checkout checks the last commit). Only the zoo counts: it is all that differs
    between the sides, and files a test run leaves behind must not turn CI's check of the
    last commit into a comparison of HEAD with itself."""
    status = _git(repo, "status", "--porcelain", "--", ZOO)
    if status.returncode != 0:
        raise NoBase(f"{repo} is not a git checkout")
    return "HEAD" if status.stdout.strip() else "HEAD~1"


def resolve(ref: str, repo: Path = REPO) -> str:
    """The commit `ref` names, or NoBase saying why not (a shallow clone has no HEAD~1)."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        shallow = _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
        why = " (a shallow clone: fetch more history, or pass --against)" if shallow else ""
        raise NoBase(f"no commit {ref!r} in {repo}{why}")
    return done.stdout.decode().strip()


def extract_zoo(commit: str, into: Path, repo: Path = REPO) -> Path:
    """`attention_zoo` as it was at `commit`, written under `into`; returns `into`."""
    done = _git(repo, "archive", "--format=tar", commit, ZOO)
    if done.returncode != 0:
        raise NoBase(f"commit {commit[:12]} has no {ZOO}/: {done.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


class Side:
    """A worker process importing the zoo found in `root` (its working directory, first on
    sys.path). Requests go one at a time; a worker that dies or answers an error stops the
    gate with one line naming the side."""

    def __init__(self, label: str, root: Path, device: torch.device, extra: Extra) -> None:
        self.label = label
        env = benchmark_environment(extra, device)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
        )  # runners/ from this tree; attention_zoo from root, which comes first
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runners.bench.worker", "--device", device.type],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.pid = hello["pid"]
        zoo = Path(hello["zoo"]).resolve()
        if zoo.parent != root.resolve():
            self.close()
            raise GateError(f"the {label} worker imported {zoo}, not the zoo in {root}")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise GateError(f"the {self.label} worker exited (code {code}); its error is above")
        return json.loads(line)

    def request(self, op: str, **fields: object) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # _read reports the exit
        reply = self._read()
        if "error" in reply:
            raise GateError(f"{self.label}: {reply['error']}")
        return reply

    def time_block(self, calls: int) -> float:
        """The median of `calls` consecutive calls, ms."""
        return statistics.median(self.request("time", n=calls)["ms"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@dataclass
class Measured:
    """Both sides of one benchmark: every pair's times, the exact peaks, the machine's load."""

    case: Case
    base_ms: list[float] = field(default_factory=list)  # a block's median time, a pair each
    head_ms: list[float] = field(default_factory=list)
    block: int = 1  # calls a side makes in its turn
    base_peak: int | None = None
    head_peak: int | None = None
    missing: str | None = None  # why the base could not run it (a mechanism new at head)
    busy: list[float] = field(default_factory=list)  # cores others used, a value a stretch
    reference_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    check: Measured | None = None  # a FAIL measured again in fresh worker processes

    @property
    def ratios(self) -> list[float]:
        return [h / b for b, h in zip(self.base_ms, self.head_ms, strict=True)]

    def interval(self) -> stats.Interval:
        return stats.paired(self.ratios)

    def as_json(self) -> dict:
        fields = {k: v for k, v in vars(self).items() if k not in ("case", "check")}
        return {"name": self.case.name, **fields, "check": self.check and self.check.as_json()}


def shared_core() -> int | None:
    """The one core both workers are pinned to (the highest this process may use), or None
    where affinity cannot be set. The cores of a virtual machine need not be alike: on this
    project's 2-core machine the same call ran 20% slower on one than on the other, so a
    worker left on each read a 1.2x "regression" of an unchanged tree (docs/gate.md). On one
    core the two sides alternate, never overlap, and share whatever the core suffers."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


@dataclass
class Sides:
    base: Side
    head: Side
    core: int | None = None

    @property
    def pids(self) -> list[int]:
        return [self.base.pid, self.head.pid]  # noise.sample adds this process


@contextmanager
def sides(base_root: Path, head_root: Path, device: torch.device, extra: Extra) -> Iterator[Sides]:
    with ExitStack() as stack:
        base = Side("base", base_root, device, extra)
        stack.callback(base.close)
        head = Side("head", head_root, device, extra)
        stack.callback(head.close)
        core = shared_core()
        if core is not None:
            for side in (base, head):
                os.sched_setaffinity(side.pid, {core})
        yield Sides(base, head, core)


def _plan(base_ms: float, head_ms: float) -> tuple[int, int]:
    """(pairs, calls a block) for a benchmark whose calls take `base_ms` and `head_ms`."""
    call_s = max(base_ms, head_ms, 1e-3) / 1e3
    block = int(min(MAX_BLOCK, max(1, round(BLOCK_S / call_s))))
    pairs = TARGET_S / (block * (base_ms + head_ms) / 1e3)
    return int(min(MAX_PAIRS, max(MIN_PAIRS, pairs))), block


def measure(m: Measured, both: Sides, rounds: int | None = None) -> None:
    """Set both sides up for `m.case` and add `rounds` pairs (by default about TARGET_S)."""
    t0 = time.perf_counter()
    wanted = [m.case.method, m.case.seq_len, m.case.pass_]
    base = both.base.request("setup", case=wanted)
    head = both.head.request("setup", case=wanted)
    if "missing" in head:
        raise GateError(f"head: {head['missing']}")
    m.head_peak = head["peak_mem_bytes"]
    if "missing" in base:
        m.missing = base["missing"]
        m.seconds += time.perf_counter() - t0
        return
    m.base_peak = base["peak_mem_bytes"]
    for side in (both.base, both.head):  # both: a side that alone ran it had a warmer heap
        m.reference_ms += side.request("reference", n=REFERENCE_CALLS)["ms"]
    planned, block = _plan(base["ms"], head["ms"])
    if not m.base_ms:
        m.block = block  # measured again, it keeps the first pass's block
    rounds = rounds or planned
    # one pair untimed: the first block after the setups ran on caches they evicted
    both.base.time_block(m.block), both.head.time_block(m.block)
    before = noise.sample(both.pids)
    for i in range(rounds):
        # base first on even pairs of the whole record, head first on odd ones
        if (len(m.base_ms) + i) % 2 == 0:
            b, h = both.base.time_block(m.block), both.head.time_block(m.block)
        else:
            h, b = both.head.time_block(m.block), both.base.time_block(m.block)
        m.base_ms.append(b)
        m.head_ms.append(h)
    busy = noise.cores_used_by_others(before, noise.sample(both.pids))
    if busy is not None:
        m.busy.append(busy)
    m.seconds += time.perf_counter() - t0


def run(
    cases: Sequence[Case],
    base_root: Path,
    head_root: Path,
    device: torch.device,
    extra: Extra,
    threshold: float,
    budget_s: float = BUDGET_S,
    progress: Callable[[str], None] = print,
) -> list[Measured]:
    """Every case measured on both sides; inconclusive ones again while `budget_s` lasts, each
    time in fresh worker processes: a state one process keeps through all its pairs (a heavy
    benchmark's page faults; see `confirm`) then widens the interval instead of biasing it."""
    results = [Measured(c) for c in cases]
    with sides(base_root, head_root, device, extra) as both:
        for i, m in enumerate(results, 1):
            measure(m, both)
            progress(f"bench: [{i}/{len(results)}] {_line(m, threshold)}")
    deadline = time.monotonic() + budget_s
    while pending := [m for m in results if _undecided(m, threshold)]:
        left = deadline - time.monotonic()
        fits = [m for m in pending if _doubling_s(m) * 1.5 < left]
        if not fits:
            break
        progress(
            f"bench: {len(pending)} inconclusive; measuring {len(fits)} again in fresh workers "
            f"({left:.0f} s of the --budget-s left)"
        )
        with sides(base_root, head_root, device, extra) as fresh:
            for m in fits:
                if _doubling_s(m) * 1.5 < deadline - time.monotonic():
                    measure(m, fresh, len(m.base_ms))  # doubles the pairs
                    progress(f"bench: again: {_line(m, threshold)}")
    confirm(results, base_root, head_root, device, extra, threshold, progress)
    return results


def confirm(
    results: list[Measured],
    base_root: Path,
    head_root: Path,
    device: torch.device,
    extra: Extra,
    threshold: float,
    progress: Callable[[str], None] = print,
) -> None:
    """Measure every FAIL again in two fresh worker processes (`Measured.check`): a regression
    is reported only when both measurements put their whole interval over the threshold.
    Beside a memory-hungry neighbour, the same code read 0.8x in some runs and 1.8x in others
    (softmax forward_backward at 2048, 408 MiB faulted in on every call): a state that one
    process keeps through all its pairs, which the pairs' interval cannot see and fresh
    processes do not share (docs/gate.md). Not limited by --budget-s: a FAIL is rare and must
    be right."""
    failing = [m for m in results if _verdict(m, threshold) == stats.FAIL]
    if not failing:
        return
    progress(f"bench: {len(failing)} over the threshold; confirming each in fresh workers")
    with sides(base_root, head_root, device, extra) as fresh:
        for m in failing:
            m.check = Measured(m.case)
            measure(m.check, fresh)
            progress(f"bench: confirming: {_line(m.check, threshold)}")


def _verdict(m: Measured, threshold: float) -> str | None:
    return None if m.missing else stats.judge(m.interval(), threshold)


def _doubling_s(m: Measured) -> float:
    """Seconds that as many pairs again as `m` has would take."""
    return m.block * (sum(m.base_ms) + sum(m.head_ms)) / 1e3


def _undecided(m: Measured, threshold: float) -> bool:
    return _verdict(m, threshold) == stats.INCONCLUSIVE


def _line(m: Measured, threshold: float) -> str:
    if m.missing:
        return f"{m.case.name}: new at head ({m.missing})"
    interval = m.interval()
    busy = f", others used {max(m.busy):.1f} cores" if m.busy else ""
    return (
        f"{m.case.name}: {interval} {stats.judge(interval, threshold)} "
        f"({interval.n} pairs, {m.seconds:.1f} s{busy})"
    )
