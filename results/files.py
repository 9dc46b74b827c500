"""Writing a file (or a folder) so that no reader and no crash ever sees half of it.

    with atomic_path(Path("results/sweep/part.parquet")) as tmp:
        pq.write_table(table, tmp)          # at the path only once the block ends without error
    write_json_atomic(Path("results/lra/configs/ab12.json"), config)
    write_text_atomic(Path("reports/out/table.md"), text)

The new content is written to a hidden temporary name beside the target (`.NAME.tmp-HOST-PID`,
so two processes, or two machines on one file system, never share one) and moved into place
with `os.replace`, atomic on POSIX: a reader sees the old file or the new one. A block that
raises leaves the old file as it was and removes the temporary. A folder is swapped in the same
way (the old one is moved aside first, then removed). Standard library only: the data (`lra`),
the runners and the reports all write through it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """The hidden name beside `path` that `atomic_path` writes to."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def temporary_owner(name: str) -> tuple[str, str, int] | None:
    """(target name, host, pid) of a `temporary_name` (None for any other name), so that a
    writer can remove what a killed one left."""
    if not name.startswith(".") or ".tmp-" not in name:
        return None
    target, _, owner = name[1:].rpartition(".tmp-")
    host, _, pid = owner.rpartition("-")  # a host name may hold dashes; the pid does not
    return (target, host, int(pid)) if host and pid.isdigit() else None


@contextmanager
def atomic_path(path: Path, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to (a file, or a folder the block makes);
    swapped in when the block ends, removed if it raises. `fsync`: flush a file to disk first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir():
            old = path.with_name(f".{path.name}.old-{socket.gethostname()}-{os.getpid()}")
            _remove(old)
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            _remove(old)
            return
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` at `path`, atomically (parents created)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path, value: object, *, sort_keys: bool = True) -> Path:
    """Write `value` as indented JSON at `path`, atomically (parents created)."""
    return write_text_atomic(path, json.dumps(value, indent=1, sort_keys=sort_keys))
