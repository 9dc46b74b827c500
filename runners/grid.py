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
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import attention_zoo as zoo
import lra
from runners import lra as lra_runner
from runners import sweep_args
from runners.results import pid_alive, read_results, write_json_atomic

LIVE_SLURM = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
              "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}  # fmt: skip
TAIL_LINES = 2  # of a failed job's stderr, kept as its error
_CHILDREN: set[subprocess.Popen] = set()  # runners running now (local launcher's signals)


class JobFailed(RuntimeError):
    """A grid job whose runner did not finish (submitit records it as the job's error)."""


@dataclass
class Cell:
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

    cell: Cell
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
        state = "interrupted" if rc == lra_runner.INTERRUPTED_EXIT else "failed"
        self._write(state, error=error, exit_code=rc, finished_at=_now())
        raise JobFailed(f"{self.cell.id}: {state}: {error}")

    def _run_child(self, env: dict) -> tuple[int, list[str], list[int], object]:
        """Run the runner; forward SIGUSR2/SIGTERM/SIGINT to it (main thread only).
        Returns (exit status, last stderr lines, signals forwarded, submitit's handler)."""
        cmd = [sys.executable, "-m", self.cell.module, *self.cell.argv]
        if self.log:
            Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        sink = open(self.log, "a") if self.log else sys.stderr  # noqa: SIM115
        proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,  # the runner's relative paths are the submitting directory's
            env=env,
            stdout=sink if self.log else None,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        _CHILDREN.add(proc)
        if Path(self.state_path).is_file() and self._record().get("state") == "running":
            self._write("running", runner_pid=proc.pid)
        signals: list[int] = []
        requeue, previous = None, {}
        if threading.current_thread() is threading.main_thread():
            requeue = signal.getsignal(signal.SIGUSR2)

            def forward(signum, _frame):
                signals.append(signum)
                proc.send_signal(signum)

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
            _CHILDREN.discard(proc)
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


def load_grid(folder: Path) -> dict:
    manifest = json.loads((folder / "grid.json").read_text())
    manifest["cells"] = [Cell(**c) for c in manifest["cells"]]
    return manifest


# --------------------------------------------------------------------------- states


def _slurm_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's state of each job id (sacct), {} where sacct is not available."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    try:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    states = {}
    for line in out.splitlines():
        if "|" in line:
            job, state = line.split("|", 1)
            states[job.strip()] = state.split()[0] if state.split() else "UNKNOWN"
    return states


def _alive(record: dict, slurm: dict[str, str]) -> bool | None:
    """Whether the job of a not-finished cell still exists (None: cannot tell from here)."""
    if record.get("executor") == "slurm":
        state = slurm.get(str(record.get("job_id")))
        return None if state is None else state in LIVE_SLURM
    if record.get("host") != socket.gethostname():
        return None
    return pid_alive(int(record["pid"]))


def _progress(manifest: dict, cell: Cell) -> str:
    """`step S/T, val A` from the run's learning curve (lra), else ''."""
    if not cell.run_name:
        return ""
    part = Path(manifest["where"]["curves"]) / f"{cell.run_name}.parquet"
    try:
        import pandas as pd

        curve = pd.read_parquet(part)
    except (OSError, ValueError):
        return "no validation yet"
    last = curve.sort_values("step").iloc[-1]
    return f"step {int(last['step'])}/{cell.steps}, val {100 * last['val_accuracy']:.1f}%"


def _finished_runs(manifest: dict) -> dict[tuple, float]:
    """(task, method, seed, config_hash) -> test accuracy of the runs with an ok test row."""
    results = read_results(Path(manifest["where"]["results"]))
    if manifest["kind"] != "lra" or results.empty:
        return {}
    ok = results[(results["status"] == "ok") & (results["split"] == "test")]
    return {(r.task, r.method, r.seed, r.config_hash): r.accuracy for r in ok.itertuples()}


def _cell_state(
    manifest: dict, cell: Cell, record: dict | None, finished: dict, slurm: dict
) -> tuple[str, str]:
    """(done | running | failed | pending, detail) of one cell."""
    if tuple(cell.key) in finished:
        return "done", f"test {100 * finished[tuple(cell.key)]:.1f}%"
    if record is None:
        return "pending", "not submitted"
    job = f"job {record['job_id']}: " if record.get("job_id") else ""
    state = record["state"]
    if state == "done":
        return "done", f"{job}finished {record.get('finished_at', '')}"
    resumes = "; submitting the grid again resumes it" if cell.run_name else ""
    if state in ("failed", "interrupted"):  # an interrupted runner says how to resume
        return "failed", f"{job}{state}: {record['error']}" + (resumes * (state == "failed"))
    # submitted, running or requeued: is the job still there?
    slurm_state = slurm.get(str(record.get("job_id")))
    if _alive(record, slurm) is False:
        why = slurm_state or "the process is gone"
        return "failed", (
            f"{job}ended without finishing ({why}: killed, out of memory or a node "
            f"failure?){resumes}"
        )
    if state == "running" or slurm_state == "RUNNING":
        return "running", job + _progress(manifest, cell)
    return "pending", job + ("requeued" if state == "requeued" else "queued")


def cell_states(folder: Path) -> tuple[dict, list[tuple[Cell, str, str]]]:
    """(manifest, [(cell, done | running | failed | pending, detail)]) of the grid in
    `folder`, from the results (lra: an ok test row is done) and the job records."""
    manifest = load_grid(folder)
    records = {}
    for cell in manifest["cells"]:
        path = folder / "cells" / f"{cell.id}.json"
        records[cell.id] = json.loads(path.read_text()) if path.is_file() else None
    slurm = _slurm_states(
        [str(r["job_id"]) for r in records.values() if r and r.get("executor") == "slurm"]
    )
    finished = _finished_runs(manifest)
    return manifest, [
        (cell, *_cell_state(manifest, cell, records[cell.id], finished, slurm))
        for cell in manifest["cells"]
    ]


def status_text(folder: Path) -> str:
    manifest, states = cell_states(folder)
    counts = collections.Counter(s for _, s, _ in states)
    head = (
        f"{folder} ({manifest['kind']}, launcher {manifest['launcher']}, {len(states)} cells): "
        + ", ".join(f"{counts[s]} {s}" for s in ("done", "running", "failed", "pending"))
    )
    labels = [" ".join(c.label) for c, _, _ in states]
    width = max(map(len, labels), default=0)
    lines = [
        f"  {label:<{width}}  {state:<8} {detail}"
        for label, (_, state, detail) in zip(labels, states, strict=True)
    ]
    return "\n".join([head, *lines])


# --------------------------------------------------------------------------- launching


def _jobs_to_submit(folder: Path, launcher: str, cwd: Path, threads: int) -> list[GridJob]:
    """A job for every cell neither done nor queued/running."""
    _, states = cell_states(folder)
    out = []
    for cell, state, _ in states:
        if state in ("done", "running") or (state == "pending" and _queued(folder, cell)):
            continue
        log = str(folder / "logs" / f"{cell.id}.log") if launcher == "local" else ""
        path = str(folder / "cells" / f"{cell.id}.json")
        out.append(GridJob(cell, path, str(cwd), "local-process", threads, log))
    return out


def _queued(folder: Path, cell: Cell) -> bool:
    path = folder / "cells" / f"{cell.id}.json"
    return path.is_file() and json.loads(path.read_text())["state"] in ("submitted", "requeued")


def run_local(jobs: list[GridJob], workers: int) -> tuple[int, bool]:
    """Run the jobs on this machine, `workers` at a time, each runner's output in its log.
    Returns (jobs that did not finish, whether a signal stopped the grid). SIGINT/SIGTERM
    reach the running runners, which checkpoint; the jobs not started are left pending."""
    from tqdm import tqdm

    stopping = threading.Event()

    def stop(signum, _frame):
        stopping.set()
        for proc in list(_CHILDREN):
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
