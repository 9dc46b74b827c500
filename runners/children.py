"""Child processes the runners supervise: a grid's job runs a runner, the GPU check runs its
stages. Each is started in a session of its own, so that a signal reaches its whole process
group (torchrun's workers, a stage's compiler), and stopped the way a runner expects to be:
SIGTERM first (it checkpoints and exits), SIGKILL only after a grace period.

    proc = start([sys.executable, "-m", "runners.lra", ...], cwd=REPO, env=env, stdout=log)
    code = wait_or_stop(proc, timeout_s=300)    # TimeoutExpired, the group stopped, past it
    signal_group(proc, signal.SIGUSR2)          # SLURM's warning, passed on
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


def start(command: Sequence[str], *, cwd: Path | str, env: dict, **popen) -> subprocess.Popen:
    """`command` in a new session (its own process group); `popen`: Popen's stdout, stderr..."""
    return subprocess.Popen(list(command), cwd=cwd, env=env, start_new_session=True, **popen)


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Send `signum` to `proc`'s process group (nothing if it has ended)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> int | None:
    """SIGTERM `proc`'s group, then SIGKILL if it still runs after `grace_s`; its exit code."""
    if proc.poll() is not None:
        return proc.returncode
    signal_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        return proc.wait()


def wait_or_stop(proc: subprocess.Popen, timeout_s: float, grace_s: float = 10.0) -> int:
    """`proc`'s exit code; past `timeout_s` it is stopped (`stop`) and TimeoutExpired raised."""
    try:
        return proc.wait(timeout=max(timeout_s, 0.001))
    except subprocess.TimeoutExpired:
        stop(proc, grace_s)
        raise
