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

This module is the command line: `plan` makes the cells, `launch` starts their jobs, the
job that runs on the node is `runners.grid.job`, and reading a grid's states is
`runners.grid.status`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import attention_zoo as zoo
from results.files import write_json_atomic
from runners.arguments import INTERRUPTED_EXIT
from runners.grid.launch import Slurm, jobs_to_submit, run_local, submit, wait
from runners.grid.plan import grid_folder, plan_lra, plan_sweep
from runners.grid.status import status_text
from runners.lra import args as lra_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runners.grid",
        allow_abbrev=False,  # --methods (the runner's) must not pass for --methods
        description="Fan the LRA grid or the scaling sweep out as one job per cell, on SLURM "
        "through submitit or on this machine; `status` shows each cell's state.",
        epilog="Options the grid does not know go to the runner (python -m runners.lra --help, "
        "python -m runners.sweep --help), e.g. --profile paper --data-dir /data/lra; "
        "--import MODULE_OR_FILE loads a plugin here and in every job.",
    )
    sub = p.add_subparsers(dest="kind", required=True)
    passed_on = p.epilog
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--methods", "--method", dest="methods", default="all",
        help=f"comma list of {zoo.names()} or all",
    )  # fmt: skip
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
    lra_args.add_tasks_and_seeds(lp, tasks_dest="tasks")
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
        if args.kind == "lra":
            cells, where = plan_lra(args.tasks, args.methods, args.seeds, rest)
        else:
            cells, where = plan_sweep(args.methods, args.slurm_partition, rest)
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
    jobs = jobs_to_submit(folder, args.launcher, Path.cwd(), threads)
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
            return INTERRUPTED_EXIT
        return 1 if failed else 0
    try:
        slurm = Slurm(
            cluster=args.submitit_cluster,
            partition=args.slurm_partition,
            gpus_per_job=args.gpus_per_job,
            timeout_min=args.timeout_min,
            cpus_per_task=args.cpus_per_task,
            mem_gb=args.mem_gb,
            signal_delay_s=args.signal_delay_s,
            array_parallelism=args.array_parallelism,
            max_requeues=args.max_requeues,
            constraint=args.slurm_constraint,
            account=args.slurm_account,
            qos=args.slurm_qos,
        )
        handles = submit(jobs, slurm, folder)
    except ValueError as exc:
        parser.error(str(exc))
    ids = ", ".join(str(h.job_id) for h in handles)
    print(f"submitted {len(handles)} jobs ({ids}); python -m runners.grid status {folder}")
    if args.wait:
        wait(folder, len(cells))
        print(status_text(folder))
    return 0
