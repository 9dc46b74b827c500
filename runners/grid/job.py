"""A grid job: what runs on the node for one cell of `runners.grid`.

The cell's runner (`runners.lra` or `runners.sweep`) runs in a child process; its state
(submitted, running, requeued, done, failed, interrupted; with the error) is kept in the
cell's JSON record, which `runners.grid.status` reads. SIGUSR2/SIGTERM/SIGINT reach the
runner; after a SIGUSR2 (SLURM's warning before preemption or the time limit) submitit's
own handler requeues this job, which resumes from the runner's checkpoint.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from results.files import write_json_atomic
from runners.arguments import INTERRUPTED_EXIT
from runners.children import signal_group, start

TAIL_LINES = 2  # of a failed job's stderr, kept as its error
RUNNING: set[subprocess.Popen] = set()  # runners running now (the local launcher signals them)


class JobFailed(RuntimeError):
    """A grid job whose runner did not finish (submitit records it as the job's error)."""


@dataclass
class GridCell:
    """One job of the grid: the runner module and its arguments."""

    id: str
    module: str  # runners.lra | runners.sweep
    argv: list[str]
    label: list[str]  # task, method, seed (lra) or method, partition (sweep)
    run_name: str = ""  # lra: the run's name (checkpoint and curve files)
    key: list = field(default_factory=list)  # lra: (task, method, seed, config_hash)
    steps: int = 0  # lra: the run's training steps
    partition: str = ""  # sweep: where this cell's job runs


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the job


@dataclass
class GridJob:
    """What runs on the node: the cell's runner in a child process, its state on disk.

    Picklable (submitit sends it to the node) and checkpointable: submitit calls
    `checkpoint` when the job is preempted or times out, and requeues what it returns,
    this same job, whose runner resumes from its own checkpoint."""

    cell: GridCell
    state_path: str
    cwd: str
    executor: str  # local-process (--launcher local) | local | debug | slurm (submitit)
    threads: int = 0  # OMP_NUM_THREADS for the runner (0: leave as is)
    log: str = ""  # the runner's output goes here (local launcher); else to the job's own

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)

    def _record(self) -> dict:
        path = Path(self.state_path)
        return json.loads(path.read_text()) if path.is_file() else {}

    def _write(self, state: str, **extra) -> None:
        write_json_atomic(
            Path(self.state_path),
            {
                **self._record(),
                "state": state,
                "executor": self.executor,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "updated_at": _now(),
                "error": None,
                **extra,
            },
        )

    def __call__(self) -> str:
        env = dict(os.environ)
        rank = 0
        if os.environ.get("SUBMITIT_EXECUTOR"):  # on a submitit node: one task per GPU
            from submitit import JobEnvironment
            from submitit.helpers import TorchDistributedEnvironment

            job_env = JobEnvironment()
            rank = job_env.global_rank
            if job_env.num_tasks > 1:
                TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
                env = dict(os.environ)
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        if rank == 0:
            attempts = self._record().get("attempts", 0) + 1
            self._write("running", attempts=attempts, job_id=_job_id(), started_at=_now())
        rc, tail, signals, requeue = self._run_child(env)
        if rank != 0:
            return "rank done" if rc == 0 else f"rank exit {rc}"
        if rc == 0:
            self._write("done", finished_at=_now())
            return "done"
        error = " | ".join(tail) or f"exit status {rc}"
        if signal.SIGUSR2 in signals and callable(requeue):
            # preempted or timing out: the LRA runner has checkpointed, the sweep has kept
            # every cell it measured. submitit's handler calls self.checkpoint(), requeues
            # this job and exits; it raises when the job has timed out too often
            self._write("requeued", error=f"preempted or timed out: {error}")
            try:
                requeue(signal.SIGUSR2, None)
            except Exception as exc:
                error = f"not requeued ({exc}); {error}"
        state = "interrupted" if rc == INTERRUPTED_EXIT else "failed"
        self._write(state, error=error, exit_code=rc, finished_at=_now())
        raise JobFailed(f"{self.cell.id}: {state}: {error}")

    def _run_child(self, env: dict) -> tuple[int, list[str], list[int], object]:
        """Run the runner; forward SIGUSR2/SIGTERM/SIGINT to it (main thread only).
        Returns (exit status, last stderr lines, signals forwarded, submitit's handler)."""
        cmd = [sys.executable, "-m", self.cell.module, *self.cell.argv]
        if self.log:
            Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        sink = open(self.log, "a") if self.log else sys.stderr  # noqa: SIM115
        proc = start(
            cmd,
            cwd=self.cwd,  # the runner's relative paths are the submitting directory's
            env=env,
            stdout=sink if self.log else None,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        RUNNING.add(proc)
        if Path(self.state_path).is_file() and self._record().get("state") == "running":
            self._write("running", runner_pid=proc.pid)
        signals: list[int] = []
        requeue, previous = None, {}
        if threading.current_thread() is threading.main_thread():
            requeue = signal.getsignal(signal.SIGUSR2)

            def forward(signum, _frame):
                signals.append(signum)
                signal_group(proc, signum)

            for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, forward)
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # tee: the log keeps everything
                sink.write(line)
                sink.flush()
                text = line.split("\r")[-1].strip()
                if text:
                    tail.append(text)
            rc = proc.wait()
        finally:
            RUNNING.discard(proc)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.log:
                sink.close()
        return rc, list(tail), signals, requeue


def _job_id() -> str:
    return (
        os.environ.get("SLURM_ARRAY_JOB_ID", "") + "_" + os.environ["SLURM_ARRAY_TASK_ID"]
        if "SLURM_ARRAY_TASK_ID" in os.environ
        else os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or ""
    )
