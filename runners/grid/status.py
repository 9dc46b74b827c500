"""The state of each cell of a grid: done, running, failed or pending, and why.

Read from the results (an LRA cell is done when its test row is there), the job records
`<grid>/cells/<cell>.json` written by `runners.grid.job`, SLURM's `sacct` for SLURM jobs
and the process table for jobs of this host.
"""

from __future__ import annotations

import collections
import json
import shutil
import socket
import subprocess
from pathlib import Path

from results.schema import read_results
from runners.grid.job import GridCell
from runners.results import pid_alive

LIVE_SLURM = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
              "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}  # fmt: skip


def record_path(folder: Path, cell: GridCell) -> Path:
    """The job record of `cell` in the grid at `folder` (absent until it is submitted)."""
    return folder / "cells" / f"{cell.id}.json"


def load_grid(folder: Path) -> dict:
    manifest = json.loads((folder / "grid.json").read_text())
    manifest["cells"] = [GridCell(**c) for c in manifest["cells"]]
    return manifest


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


def _progress(manifest: dict, cell: GridCell) -> str:
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
    manifest: dict, cell: GridCell, record: dict | None, finished: dict, slurm: dict
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


def cell_states(folder: Path) -> tuple[dict, list[tuple[GridCell, str, str]]]:
    """(manifest, [(cell, done | running | failed | pending, detail)]) of the grid in
    `folder`, from the results (lra: an ok test row is done) and the job records."""
    manifest = load_grid(folder)
    records = {}
    for cell in manifest["cells"]:
        path = record_path(folder, cell)
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
