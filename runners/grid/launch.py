"""A grid's jobs started: on this machine, a few at a time, or through submitit (SLURM).

jobs = jobs_to_submit(folder, "local", Path.cwd(), threads=1)   # cells not done or under way
failed, stopped = run_local(jobs, workers=2)
handles = submit(jobs, args, folder)                          # one submitit job per cell
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from runners.children import signal_group
from runners.grid.job import RUNNING, GridJob, JobFailed
from runners.grid.status import cell_states, record_path


def jobs_to_submit(folder: Path, launcher: str, cwd: Path, threads: int) -> list[GridJob]:
    """A job for every cell neither done nor with a job queued or running."""
    _, states = cell_states(folder)
    out = []
    for cell, state, _ in states:
        path = record_path(folder, cell)
        if state in ("done", "running") or (state == "pending" and path.is_file()):
            continue  # a pending cell with a record has its job queued or requeued
        log = str(folder / "logs" / f"{cell.id}.log") if launcher == "local" else ""
        out.append(GridJob(cell, str(path), str(cwd), "local-process", threads, log))
    return out


def run_local(jobs: list[GridJob], workers: int) -> tuple[int, bool]:
    """Run the jobs on this machine, `workers` at a time, each runner's output in its log.
    Returns (jobs that did not finish, whether a signal stopped the grid). SIGINT/SIGTERM
    reach the running runners, which checkpoint; the jobs not started are left pending."""
    from tqdm import tqdm

    stopping = threading.Event()

    def stop(signum, _frame):
        stopping.set()
        for proc in list(RUNNING):
            signal_group(proc, signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    for job in jobs:
        job._write("submitted", job_id="")
    bar = tqdm(total=len(jobs), desc="grid", unit="job", dynamic_ncols=True)

    def one(job: GridJob) -> bool:
        if stopping.is_set():  # never started: back to pending
            Path(job.state_path).unlink(missing_ok=True)
            return False
        try:
            job()
            message, ok = "done", True
        except JobFailed as exc:
            message, ok = str(exc), False
        bar.write(f"{job.cell.id}: {message} (log {job.log})")
        bar.update()
        return ok

    try:
        with ThreadPoolExecutor(workers) as pool:
            failed = sum(not ok for ok in pool.map(one, jobs))
    finally:
        bar.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return failed, stopping.is_set()


@dataclass(frozen=True)
class Slurm:
    """What every job of a grid asks SLURM (or submitit's local and debug executors) for;
    the grid's flags of the same names set each (python -m runners.grid lra --help)."""

    cluster: str  # auto | slurm | local | debug (submitit's)
    partition: str | None  # a cell's own partition (sweeps) wins over this
    gpus_per_job: int
    timeout_min: int
    cpus_per_task: int
    mem_gb: float | None
    signal_delay_s: int  # SIGUSR2 this long before the time limit
    array_parallelism: int
    max_requeues: int
    constraint: str | None
    account: str | None
    qos: str | None


def submit(jobs: list[GridJob], slurm: Slurm, folder: Path) -> list:
    """Submit one submitit job per cell (a job array per partition); their handles.
    ValueError when submitit is missing or the cluster asked for is not there."""
    try:
        import submitit
    except ImportError:
        raise ValueError(
            "--launcher submitit needs the submitit package: pip install -e '.[slurm]'"
        ) from None
    cluster = None if slurm.cluster == "auto" else slurm.cluster
    try:
        executor = submitit.AutoExecutor(
            folder=folder / "submitit", cluster=cluster, slurm_max_num_timeout=slurm.max_requeues
        )
    except RuntimeError as exc:  # asked for SLURM where there is none
        raise ValueError(
            f"{exc} (--submitit-cluster {slurm.cluster}); on a machine without SLURM "
            "use --submitit-cluster local, or --launcher local"
        ) from None
    gpus = slurm.gpus_per_job
    extra = {"constraint": slurm.constraint, "account": slurm.account, "qos": slurm.qos}
    executor.update_parameters(
        timeout_min=slurm.timeout_min,
        gpus_per_node=gpus,
        tasks_per_node=max(1, gpus) if jobs and jobs[0].cell.module == "runners.lra" else 1,
        cpus_per_task=slurm.cpus_per_task,
        slurm_signal_delay_s=slurm.signal_delay_s,
        slurm_array_parallelism=slurm.array_parallelism,
        **{f"slurm_{k}": v for k, v in extra.items() if v},
    )
    if slurm.mem_gb:
        executor.update_parameters(mem_gb=slurm.mem_gb)
    kind = executor.cluster  # slurm | local | debug
    submitted = []
    by_partition = collections.defaultdict(list)
    for job in jobs:
        job.executor = kind
        by_partition[job.cell.partition or slurm.partition or ""].append(job)
    for partition, group in by_partition.items():
        executor.update_parameters(name=f"grid-{folder.name}")
        if partition and kind == "slurm":
            executor.update_parameters(slurm_partition=partition)
        with executor.batch():
            handles = [executor.submit(job) for job in group]
        for job, handle in zip(group, handles, strict=True):
            job._write("submitted", job_id=str(handle.job_id), pid=_pid_of(handle))
            submitted.append(handle)
    if kind == "debug":  # the debug executor runs a job when its result is asked for
        for handle in submitted:
            try:
                handle.result()
            except Exception as exc:
                print(f"grid: {exc}", file=sys.stderr)
    return submitted


def _pid_of(handle) -> int:
    """submitit's local jobs are a controller process (its pid is the job id)."""
    try:
        return int(handle.job_id)
    except ValueError:
        return os.getpid()


def wait(folder: Path, cells: int, poll_s: float = 2.0) -> None:
    from tqdm import tqdm

    with tqdm(total=cells, desc=folder.name, unit="cell") as bar:
        while True:
            _, states = cell_states(folder)
            ended = sum(s in ("done", "failed") for _, s, _ in states)
            bar.n = ended
            bar.refresh()
            if ended == cells:
                return
            time.sleep(poll_s)
