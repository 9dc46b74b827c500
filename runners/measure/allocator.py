"""How CPU memory is allocated while a sweep measures: what the `allocator` column records.

PyTorch's CPU tensors come straight from malloc. With glibc's defaults every block over
32 MiB is its own mmap, handed back to the kernel when freed, and faulted in again 4 KiB
at a time by the next call. At N = 2^12 a mechanism's blocks are smaller and are reused
from the heap for free, so without care CPU timings bend upwards with N because of page
faults, not because of the mechanism (lotformer forward_backward at N = 2^17 spent over a
second per call in the kernel on this project's 2-core machine).

`thp` (what the sweep's default `auto` picks where it is available) runs the sweep with
glibc's tunable `glibc.malloc.hugetlb=1`: malloc asks for transparent huge pages, so a
large block faults in 2 MiB at a time (a few hundred faults per GiB instead of 262,144).
Memory still goes back to the kernel when freed, and nothing else changes: the bytes a
mechanism allocates (what the peak-memory meter counts) and every result are the same.
glibc reads its tunables when a process starts, so `python -m runners.sweep` re-executes
itself once with `GLIBC_TUNABLES` set. `system` leaves malloc as it is.

Where no GPU driver is present, every command runs on the CPU, so `python -m runners.sweep`
and `python -m runners.lra` re-execute first thing (`reexec_early`, from their
`__main__`), before torch is imported: otherwise the import, about 2 s on 2 cores, is paid
twice by every command, every grid job and every torchrun worker. Elsewhere `main` decides
once it has resolved the device.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

MODES = ("auto", "thp", "system")
TUNABLE = "glibc.malloc.hugetlb=1"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
# a GPU driver's device nodes: NVIDIA's, AMD's ROCm, WSL's; with none, torch sees no GPU
GPU_NODES = (Path("/dev/nvidiactl"), Path("/dev/kfd"), Path("/dev/dxg"))


def glibc_version() -> tuple[int, int] | None:
    """(major, minor) of the process's glibc, or None where the C library is another one."""
    name = ctypes.util.find_library("c")
    try:
        version = ctypes.CDLL(name).gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return None
    version.restype = ctypes.c_char_p
    major, minor = version().decode().split(".")[:2]
    return int(major), int(minor)


def thp_unavailable() -> str | None:
    """Why `thp` cannot be used here (None if it can): glibc >= 2.35 and THP not 'never'."""
    version = glibc_version()
    if version is None or version < (2, 35):
        return f"glibc.malloc.hugetlb needs glibc >= 2.35 (found {version or 'no glibc'})"
    try:
        setting = THP_SETTING.read_text()
    except OSError:
        return f"{THP_SETTING} is not readable: transparent huge pages are unknown"
    if "[never]" in setting:
        return "transparent huge pages are disabled (never) on this machine"
    return None


def resolve(mode: str) -> str:
    """'auto' -> 'thp' where it is available, else 'system'; unknown modes are errors."""
    if mode not in MODES:
        raise ValueError(f"--cpu-allocator must be one of {list(MODES)}, got {mode!r}")
    if mode == "auto":
        return "system" if thp_unavailable() else "thp"
    if mode == "thp" and (why := thp_unavailable()):
        raise ValueError(f"--cpu-allocator thp: {why}; use --cpu-allocator system")
    return mode


def active() -> str:
    """What this process runs with, for the `allocator` column: 'glibc-thp' or 'system'."""
    tunables = os.environ.get("GLIBC_TUNABLES", "").split(":")
    return "glibc-thp" if TUNABLE in tunables and not thp_unavailable() else "system"


def environment_for(mode: str) -> dict[str, str] | None:
    """The environment to re-execute with so that `mode` takes effect, or None if it has."""
    if resolve(mode) != "thp" or active() == "glibc-thp":
        return None
    tunables = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t]
    return {**os.environ, "GLIBC_TUNABLES": ":".join([*tunables, TUNABLE])}


def early_environment(argv: Sequence[str]) -> dict[str, str] | None:
    """What a command line with `argv` re-executes with before its imports, or None: where
    no GPU driver is present (it then runs on the CPU, or fails whatever malloc does) the
    `--cpu-allocator` it asks for, `auto` by default, is known from `argv` alone. None
    where a GPU may be present, for a mode that is not one, and for an abbreviated
    `--cpu...` option (only the command's parser can tell what it means): `main` decides
    then, after its imports, as it always has."""
    if any(node.exists() for node in GPU_NODES):
        return None
    mode, args = "auto", list(argv)
    for i, arg in enumerate(args):
        if arg == "--cpu-allocator" and i + 1 < len(args):
            mode = args[i + 1]
        elif arg.startswith("--cpu-allocator="):
            mode = arg.split("=", 1)[1]
        elif arg.startswith("--cpu") and not (i > 0 and args[i - 1] == "--cpu-allocator"):
            return None
    if mode not in MODES:
        return None
    try:
        return environment_for(mode)
    except ValueError:  # thp asked where it cannot be had: the parser says so
        return None


def reexec_early() -> None:
    """`python -m runners.X`'s first act, before torch is imported: re-execute under the
    tunable where `early_environment` knows it is wanted (`main`'s own check then finds it
    active and goes on)."""
    reexec(early_environment(sys.argv[1:]))


def reexec(env: dict[str, str] | None) -> None:
    """Execute this process's command line again, interpreter options included, under
    `env` (from `environment_for`; None: nothing to do). glibc reads its tunables at
    start-up only."""
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
