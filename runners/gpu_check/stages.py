"""Budgeted stages: commands run one stage after another, each in its own process group,
within one time budget, with a summary kept current on disk.

    check = Check(stages, Context(out, run_dir, data_dir), budget_s=630, device=facts,
                  bundle=Path("gpu-check.tar.gz"))
    exit_code = check.run()      # 0 all passed, 1 one failed or was skipped, CUT_EXIT cut

The budget is split in proportion to the stages' predicted times; a stage gets its share
plus what earlier ones left unused, and is skipped with the reason when less than its
minimum is left. A failed stage is recorded (its last error line) and the next one runs.
SIGTERM/SIGINT (`Check.interrupt`) stops the running stage's process group: it is recorded
as cut and the later ones as skipped. After every change `<run_dir>/summary.json` and
`summary.md` are rewritten atomically, and the bundle, if asked for, re-packed. Used by
the GPU check (runners/gpu_check/cli.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from results.files import atomic_path, write_json_atomic, write_text_atomic
from runners.children import start, stop, wait_or_stop
from runners.provenance import REPO

CUT_EXIT = 128 + signal.SIGTERM


@dataclass(frozen=True)
class Context:
    """Where a run writes and what it runs with."""

    out: Path  # the results folder: sweep/, lra_efficiency/, bench/
    run_dir: Path  # <out>/gpu_check/<run>: logs, summary, training rows
    data_dir: Path  # generated ListOps (not kept)
    python: str = sys.executable
    device_kind: str = "cuda-<gpu>"  # the gate's baseline name: cuda-nvidia-h200, ...

    def module(self, name: str, *args: str) -> list[str]:
        return [self.python, "-m", name, *args]


@dataclass(frozen=True)
class Stage:
    """One step of the check: what it runs, how long it should take, the least it needs."""

    name: str
    what: str
    # seconds on one H200, from its first two runs (results/gpu_check/): cuda-tests 24 s of
    # tests + 21 s of kernel probe, sweep 90-99 s, bench 48-72 s, efficiency 22 s, training 60 s
    predicted_s: float
    min_s: float  # skipped when less than this is left
    commands: Callable[[Context, float], list[list[str]]]  # given the seconds allotted
    # started in the background when the check starts (CPU work), waited for before the stage
    prepare: Callable[[Context], list[str]] | None = None


@dataclass
class StageRecord:
    """What happened to one stage (summary.json)."""

    name: str
    status: str = "pending"  # pending | running | passed | failed | skipped | cut
    reason: str | None = None
    allotted_s: float | None = None
    seconds: float | None = None
    returncodes: list[int] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    log: str | None = None


def shares(stages: Sequence[Stage], budget_s: float) -> list[float]:
    """Each stage's share of the budget, in proportion to its predicted time."""
    total = sum(s.predicted_s for s in stages)
    return [budget_s * s.predicted_s / total for s in stages]


class Check:
    """Runs the stages in order within the budget, keeping summary.json current."""

    def __init__(
        self,
        stages: Sequence[Stage],
        ctx: Context,
        budget_s: float,
        device: dict[str, object],
        bundle: Path | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.stages, self.ctx, self.budget_s = list(stages), ctx, budget_s
        self.device, self.bundle, self.echo = device, bundle, echo
        self.records = [StageRecord(s.name) for s in stages]
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.child: subprocess.Popen | None = None
        self.cut_by: str | None = None
        self.prepared: dict[str, subprocess.Popen] = {}

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def run(self) -> int:
        """Every stage in order; 0 if all passed, 1 if one failed or was skipped."""
        try:
            self.start_preparations()
            return self._run()
        finally:
            for process in self.prepared.values():
                stop(process, grace_s=0)

    def start_preparations(self) -> None:
        """Start every stage's `prepare` command in the background, its output to a log."""
        for stage in self.stages:
            if stage.prepare is not None:
                with open(self.ctx.run_dir / f"{stage.name}-prepare.log", "w") as fh:
                    self.prepared[stage.name] = start(
                        stage.prepare(self.ctx),
                        cwd=REPO,
                        env=_environment(),
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                    )

    def _run(self) -> int:
        deadline = 0.0
        for stage, share, record in zip(
            self.stages, shares(self.stages, self.budget_s), self.records, strict=True
        ):
            if self.cut_by:
                record.status, record.reason = "skipped", f"interrupted by {self.cut_by}"
                continue
            deadline += share  # a stage may use what earlier ones left unused
            allotted = min(deadline - (time.monotonic() - self.started), self.remaining())
            if allotted < stage.min_s:
                record.status = "skipped"
                record.reason = (
                    f"needs at least {stage.min_s:g} s; {max(allotted, 0):.0f} s of the "
                    f"{self.budget_s:g} s budget were left for it (--budget-s)"
                )
                self.echo(f"== {stage.name}: skipped: {record.reason}")
                self.write_summary()
                continue
            self.run_stage(stage, record, allotted)
        self.write_summary()
        self.echo(self.summary_text())
        if self.cut_by:
            return CUT_EXIT
        return 0 if all(r.status == "passed" for r in self.records) else 1

    def run_stage(self, stage: Stage, record: StageRecord, allotted: float) -> None:
        commands = stage.commands(self.ctx, allotted)
        log = self.ctx.run_dir / f"{stage.name}.log"
        record.status, record.allotted_s = "running", round(allotted, 1)
        record.commands = [" ".join(c) for c in commands]
        record.log = log.name
        self.echo(f"== {stage.name} ({allotted:.0f} s allotted): {stage.what}")
        self.write_summary()
        t0 = time.monotonic()
        try:
            with open(log, "w") as fh:
                preparation = self.prepared.get(stage.name)
                if preparation is not None:  # its data, made in the background meanwhile
                    fh.write(f"waiting for: {' '.join(preparation.args)}\n")
                    fh.flush()
                    left = allotted - (time.monotonic() - t0)
                    record.returncodes.append(self.wait(preparation, left))
                for command in commands:  # each runs even if the one before failed
                    if self.cut_by or (preparation is not None and record.returncodes[0]):
                        break
                    left = allotted - (time.monotonic() - t0)
                    fh.write(f"$ {' '.join(command)}\n")
                    fh.flush()
                    record.returncodes.append(self.call(command, fh, left))
            failed = [rc for rc in record.returncodes if rc != 0]
            if self.cut_by:
                record.status, record.reason = "cut", f"interrupted by {self.cut_by}"
            else:
                record.status = "failed" if failed else "passed"
            if failed and not self.cut_by:
                record.reason = last_error(log) or f"exit codes {record.returncodes}"
        except subprocess.TimeoutExpired:
            record.status = "cut"
            record.reason = f"still running after its {allotted:.0f} s; stopped"
        record.seconds = round(time.monotonic() - t0, 1)
        self.echo(f"== {stage.name}: {record.status} in {record.seconds:.0f} s")
        self.echo(tail(log))
        if record.reason:
            self.echo(f"   reason: {record.reason}")
        self.write_summary()

    def call(self, command: list[str], log, timeout: float) -> int:
        """Run one command into `log` in its own process group; TimeoutExpired past `timeout`."""
        if timeout <= 0:
            raise subprocess.TimeoutExpired(command, 0)
        self.child = start(
            command, cwd=REPO, env=_environment(), stdout=log, stderr=subprocess.STDOUT
        )
        return self.wait(self.child, timeout)

    def wait(self, process: subprocess.Popen, timeout: float) -> int:
        """`process`'s exit code; stopped and TimeoutExpired past `timeout` seconds."""
        self.child = process
        try:
            return wait_or_stop(process, timeout)
        finally:
            self.child = None

    def stop_child(self) -> None:
        """SIGTERM the running stage's process group (runners checkpoint on it), then SIGKILL."""
        if self.child is not None:
            stop(self.child)

    def interrupt(self, signum: int, frame) -> None:
        """Signal handler: stop the running stage; run() records it as cut and stops."""
        self.cut_by = signal.Signals(signum).name
        self.stop_child()

    def summary(self) -> dict[str, object]:
        return {
            **self.device,
            "budget_s": self.budget_s,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "cut_by": self.cut_by,
            "stages": [asdict(r) for r in self.records],
        }

    def summary_text(self) -> str:
        d = self.device
        lines = [
            f"gpu-check {self.ctx.run_dir.name}: {d.get('device_name')} (driver "
            f"{d.get('driver')}), torch {d.get('torch_version')}, CUDA {d.get('cuda_version')}, "
            f"{time.monotonic() - self.started:.0f} s of a {self.budget_s:g} s budget",
            f"{'stage':<12} {'status':<8} {'seconds':>8} {'allotted':>8}  reason",
        ]
        for r in self.records:
            secs = "-" if r.seconds is None else f"{r.seconds:.0f}"
            allot = "-" if r.allotted_s is None else f"{r.allotted_s:.0f}"
            lines.append(f"{r.name:<12} {r.status:<8} {secs:>8} {allot:>8}  {r.reason or ''}")
        lines.append(f"rows: {self.ctx.out}; logs and summary: {self.ctx.run_dir}")
        return "\n".join(lines)

    def write_summary(self) -> None:
        write_json_atomic(self.ctx.run_dir / "summary.json", self.summary())
        text = self.summary_text() + "\n"
        write_text_atomic(self.ctx.run_dir / "summary.md", "```\n" + text + "```\n")
        if self.bundle is not None:
            write_bundle(self.bundle, self.ctx.out, self.started_wall, self.ctx.data_dir)


def _environment() -> dict[str, str]:
    """The stages' environment: the repository first on PYTHONPATH (then whatever it held:
    a lent machine's extra wheels), unbuffered output for the logs."""
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *extra]),
        "PYTHONUNBUFFERED": "1",
    }


def tail(log: Path, lines: int = 12) -> str:
    """The last `lines` lines of a stage's log, indented."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("   | " + line[:200] for line in text)


def last_error(log: Path) -> str | None:
    """The last line of `log` that reads like an error or a failure, for the summary."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    marks = ("Error", "error:", "FAILED", "failed", "Traceback", "bench: ")
    hits = [line.strip() for line in text if any(m in line for m in marks)]
    return hits[-1][:300] if hits else None


def write_bundle(bundle: Path, out: Path, since: float, exclude: Path) -> None:
    """tar.gz of every file under `out` written since `since`, paths relative to `out`,
    atomically (the previous bundle stays whole until the new one is complete)."""
    with atomic_path(bundle) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if exclude in path.parents or path.stat().st_mtime < since - 1:
                continue
            tar.add(path, arcname=str(path.relative_to(out)))
