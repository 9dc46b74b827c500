"""The run grid on a cluster: one job per cell through submitit (SLURM), or on this machine.

    python -m runners.grid lra --tasks all --methods all --seeds 0,1,2 --profile paper \\
        --launcher submitit --slurm-partition gpu --gpus-per-job 1 --timeout-min 720
    python -m runners.grid sweep --methods all --preset paper \\
        --launcher submitit --slurm-partition a100,h100          # one job per (method, partition)
    python -m runners.grid lra --tasks listops --methods all --seeds 0 --profile smoke \\
        --data-dir data/smoke --launcher local --workers 2 --wait
    python -m runners.grid status                                # every grid under jobs/

A cell is one (task, method, seed) of `runners.lra` or one (method, partition) of
`runners.sweep`; its job runs that runner's command in a child process, with every option
the grid does not know passed on (checked before anything is submitted). Every job writes
its own parquet part, so no two writers share a file; readers see the union.

Preemption and time limits: SLURM sends SIGUSR2 shortly before (submitit asks for it); the
job forwards it to the runner, which checkpoints and exits, and submitit requeues the job,
which resumes from the checkpoint. A job killed outright resumes from its last checkpoint
(at the last validation) when the grid is submitted again. Cells already done, and cells
whose job is still queued or running, are not submitted again.

The grid's folder, `<jobs>/<kind>-<hash of its cells>/`, holds `grid.json` (the cells and
their commands), `cells/<cell>.json` (each job's state: submitted, running, requeued,
done, failed, interrupted; with the error) and `submitit/` (submitit's logs).

This module plans the cells, launches them and is the command line; the job that runs on
the node is `runners.grid_job`, and reading a grid's states is `runners.grid_status`.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import attention_zoo as zoo
import lra
from runners import lra as lra_runner
from runners import sweep_args
from runners.grid_job import RUNNING, Cell, GridJob, JobFailed
from runners.grid_status import cell_states, record_path, status_text
from runners.results import write_json_atomic

__all__ = ["Cell", "GridJob", "cell_states", "main", "plan_lra", "plan_sweep", "status_text"]


# --------------------------------------------------------------------------- planning


def plan_lra(args: argparse.Namespace, rest: list[str]) -> tuple[list[Cell], dict]:
    """One cell per (task, method, seed); the runner's own parser checks `rest`."""
    for flag in ("--task", "--method", "--seeds", "--efficiency", "--dry-run"):
        if any(a == flag or a.startswith(flag + "=") for a in rest):
            raise ValueError(f"{flag} is the grid's to set (use --tasks, --methods, --seeds)")
    ns = _parse(
        lra_runner.build_parser(),
        ["--task", args.tasks, "--method", args.methods, "--seeds", args.seeds, *rest],
    )
    runs, _ = lra_runner.plan(ns)
    cells = [
        Cell(
            id=f"{r.task}-{r.method}-s{r.seed}",
            module="runners.lra",
            argv=["--task", r.task, "--method", r.method, "--seeds", str(r.seed), *rest],
            label=[r.task, r.method, f"s{r.seed}"],
            run_name=r.name,
            key=[r.task, r.method, r.seed, r.config_hash],
            steps=r.cfg["train"]["steps"],
        )
        for r in runs
    ]
    where = {k: str(Path(v).resolve()) for k, v in (("results", ns.out), ("curves", ns.curves))}
    return cells, where


def plan_sweep(args: argparse.Namespace, rest: list[str]) -> tuple[list[Cell], dict]:
    """One cell per (method, partition): each GPU kind measures every method."""
    if any(a == "--methods" or a.startswith("--methods=") for a in rest):
        raise ValueError("--methods is the grid's to set")
    methods = lra_runner.parse_names(args.methods, zoo.names(), "methods")
    ns = sweep_args.resolve(
        _parse(sweep_args.build_parser(), ["--methods", ",".join(methods), *rest])
    )
    partitions = [p for p in (args.slurm_partition or "").split(",") if p] or [""]
    cells = [
        Cell(
            id=f"{m}-{p}" if p else m,
            module="runners.sweep",
            argv=["--methods", m, *rest],
            label=[m, p or "-"],
            partition=p,
        )
        for m in methods
        for p in partitions
    ]
    return cells, {"results": str(Path(ns.out).resolve())}


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse with a runner's parser; its errors become ValueError (not an exit)."""

    def error(message: str):
        raise ValueError(f"{parser.prog}: {message}")

    parser.error = error  # type: ignore[method-assign]
    return parser.parse_args(argv)


def grid_folder(jobs: Path, kind: str, cells: list[Cell]) -> Path:
    """`<jobs>/<kind>-<hash>`: the same grid command always maps to the same folder."""
    text = json.dumps([[c.id, c.argv, c.partition] for c in cells], sort_keys=True)
    return jobs / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


# --------------------------------------------------------------------------- launching


def _jobs_to_submit(folder: Path, launcher: str, cwd: Path, threads: int) -> list[GridJob]:
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
            proc.send_signal(signum)

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


def submit(jobs: list[GridJob], args: argparse.Namespace, folder: Path) -> list:
    """Submit one submitit job per cell (a job array per partition); their records."""
    try:
        import submitit
    except ImportError:
        raise ValueError(
            "--launcher submitit needs the submitit package: pip install -e '.[slurm]'"
        ) from None
    cluster = None if args.submitit_cluster == "auto" else args.submitit_cluster
    try:
        executor = submitit.AutoExecutor(
            folder=folder / "submitit", cluster=cluster, slurm_max_num_timeout=args.max_requeues
        )
    except RuntimeError as exc:  # asked for SLURM where there is none
        raise ValueError(
            f"{exc} (--submitit-cluster {args.submitit_cluster}); on a machine without SLURM "
            "use --submitit-cluster local, or --launcher local"
        ) from None
    gpus = args.gpus_per_job
    executor.update_parameters(
        timeout_min=args.timeout_min,
        gpus_per_node=gpus,
        tasks_per_node=max(1, gpus) if jobs and jobs[0].cell.module == "runners.lra" else 1,
        cpus_per_task=args.cpus_per_task,
        slurm_signal_delay_s=args.signal_delay_s,
        slurm_array_parallelism=args.array_parallelism,
        **{f"slurm_{k}": v for k, v in _slurm_extra(args).items()},
    )
    if args.mem_gb:
        executor.update_parameters(mem_gb=args.mem_gb)
    kind = executor.cluster  # slurm | local | debug
    submitted = []
    by_partition = collections.defaultdict(list)
    for job in jobs:
        job.executor = kind
        by_partition[job.cell.partition or args.slurm_partition or ""].append(job)
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


def _slurm_extra(args: argparse.Namespace) -> dict:
    extra = {"constraint": args.slurm_constraint, "account": args.slurm_account}
    extra["qos"] = args.slurm_qos
    return {k: v for k, v in extra.items() if v}


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runners.grid",
        allow_abbrev=False,  # --method (the runner's) must not pass for --methods
        description="Fan the LRA grid or the scaling sweep out as one job per cell, on SLURM "
        "through submitit or on this machine; `status` shows each cell's state.",
        epilog="Options the grid does not know go to the runner (python -m runners.lra --help, "
        "python -m runners.sweep --help), e.g. --profile paper --data-dir /data/lra.",
    )
    sub = p.add_subparsers(dest="kind", required=True)
    passed_on = p.epilog
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("--methods", default="all", help=f"comma list of {zoo.names()} or all")
    common.add_argument("--jobs-dir", type=Path, default=Path("jobs"), help="grids' folder (jobs)")
    common.add_argument(
        "--launcher", choices=["local", "submitit"], default="local", help="local (default)"
    )
    common.add_argument("--dry-run", action="store_true", help="print the cells; submit nothing")
    common.add_argument(
        "--wait", action="store_true", help="submitit: wait for the jobs, showing progress"
    )
    loc = common.add_argument_group("local launcher")
    loc.add_argument("--workers", type=int, default=1, help="jobs at a time on this machine (1)")
    slurm = common.add_argument_group("submitit launcher (SLURM)")
    slurm.add_argument(
        "--submitit-cluster",
        choices=["auto", "slurm", "local", "debug"],
        default="auto",
        help="auto: SLURM where sbatch exists, else submitit's local executor; debug runs "
        "the jobs in this process (for debugging)",
    )
    slurm.add_argument("--slurm-partition", help="partition; sweep: a comma list, one job each")
    slurm.add_argument("--slurm-constraint", help="node constraint, e.g. a100")
    slurm.add_argument("--slurm-account", help="account to charge")
    slurm.add_argument("--slurm-qos", help="quality of service")
    slurm.add_argument(
        "--gpus-per-job",
        type=int,
        default=1,
        help="GPUs per job (1); lra: >1 trains each run across them (one rank per GPU)",
    )
    slurm.add_argument("--cpus-per-task", type=int, default=8, help="CPUs per rank (8)")
    slurm.add_argument("--mem-gb", type=int, help="memory per node in GB (cluster default)")
    slurm.add_argument("--timeout-min", type=int, default=720, help="time limit per job (720)")
    slurm.add_argument(
        "--signal-delay-s",
        type=int,
        default=120,
        help="seconds before the limit at which SLURM sends SIGUSR2 to checkpoint (120)",
    )
    slurm.add_argument(
        "--max-requeues", type=int, default=10, help="time-outs a job may be requeued after (10)"
    )
    slurm.add_argument(
        "--array-parallelism", type=int, default=64, help="jobs of the array running at once (64)"
    )
    lp = sub.add_parser(
        "lra",
        parents=[common],
        allow_abbrev=False,
        epilog=passed_on,
        help="one job per (task, method, seed) of runners.lra",
    )
    lp.add_argument("--tasks", default="all", help=f"comma list of {lra.names()} or all")
    lp.add_argument("--seeds", default="0", help="comma list of seeds (0)")
    sub.add_parser(
        "sweep",
        parents=[common],
        allow_abbrev=False,
        epilog=passed_on,
        help="one job per (method, partition) of the sweep",
    )
    sp = sub.add_parser("status", help="each cell of each grid: done, running, failed, pending")
    sp.add_argument("folders", nargs="*", type=Path, help="grid folders (default: every one)")
    sp.add_argument("--jobs-dir", type=Path, default=Path("jobs"), help="grids' folder (jobs)")
    return p


def status(args: argparse.Namespace) -> int:
    folders = args.folders or sorted(p.parent for p in args.jobs_dir.glob("*/grid.json"))
    if not folders:
        print(
            f"no grids in {args.jobs_dir}/; start one with python -m runners.grid lra ... "
            "(see --help)",
            file=sys.stderr,
        )
        return 1
    for folder in folders:
        if not (folder / "grid.json").is_file():
            print(f"{folder}: not a grid folder (no grid.json)", file=sys.stderr)
            return 2
        print(status_text(folder))
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.kind == "status":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return status(args)
    try:
        if args.workers < 1 or args.gpus_per_job < 0:
            raise ValueError("--workers must be >= 1 and --gpus-per-job >= 0")
        if args.kind == "sweep" and args.gpus_per_job > 1:
            raise ValueError("a sweep job measures on one GPU: use --gpus-per-job 1")
        cells, where = (plan_lra if args.kind == "lra" else plan_sweep)(args, rest)
    except ValueError as exc:  # ConfigError included
        parser.error(str(exc))
    folder = grid_folder(args.jobs_dir.resolve(), args.kind, cells)
    write_json_atomic(
        folder / "grid.json",
        {
            "kind": args.kind,
            "launcher": args.launcher,
            "command": ["python", "-m", "runners.grid", *(sys.argv[1:] if argv is None else argv)],
            "where": where,
            "cells": [asdict(c) for c in cells],
        },
    )
    threads = max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else 0
    jobs = _jobs_to_submit(folder, args.launcher, Path.cwd(), threads)
    print(
        f"grid {folder}: {len(cells)} cells, {len(cells) - len(jobs)} done or under way, "
        f"{len(jobs)} to {'run' if args.launcher == 'local' else 'submit'}",
        file=sys.stderr,
    )
    if args.dry_run:
        print(status_text(folder))
        return 0
    if args.launcher == "local":
        failed, stopped = run_local(jobs, args.workers)
        print(status_text(folder))
        if stopped:
            print("grid: stopped by a signal; the same command resumes it", file=sys.stderr)
            return lra_runner.INTERRUPTED_EXIT
        return 1 if failed else 0
    try:
        handles = submit(jobs, args, folder)
    except ValueError as exc:
        parser.error(str(exc))
    ids = ", ".join(str(h.job_id) for h in handles)
    print(f"submitted {len(handles)} jobs ({ids}); python -m runners.grid status {folder}")
    if args.wait:
        wait(folder, len(cells))
        print(status_text(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
