"""Provenance: the columns every result row carries (results.schema.PROVENANCE), once a run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import uuid
from pathlib import Path

import torch

from runners.measure import allocator

REPO = Path(__file__).resolve().parents[1]
# the commit a copied tree came from, as the copier states it: it wins over what git says
# there (seen on a lent GPU machine: its copy carried the session's first .git, so rows said
# an older commit, dirty)
COMMIT_VARIABLE = "ATTENTION_BENCH_GIT_COMMIT"
DIRTY_VARIABLE = "ATTENTION_BENCH_GIT_DIRTY"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def provenance(device: torch.device) -> dict[str, object]:
    """run_id, started_at, git_commit, git_dirty, device, device_name, torch_version, threads,
    hostname and the allocator the process runs with."""
    commit = os.environ.get(COMMIT_VARIABLE)
    if commit:  # a copied tree (a lent GPU machine), whose .git may be absent or stale
        dirty = os.environ.get(DIRTY_VARIABLE, "") == "1"
    else:
        commit = _git("rev-parse", "HEAD") or "unknown"
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "run_id": uuid.uuid4().hex[:12],
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "hostname": platform.node(),
        "allocator": allocator.active() if device.type == "cpu" else "torch-cuda-caching",
    }
