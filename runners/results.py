"""Result tables: each run appends rows to its own parquet part, rewritten atomically.

    writer = PartWriter(Path("results/sweep"), "sweep-20261123T1200-ab12cd", schema.SWEEP)
    writer.append(row)            # on disk when this returns; a kill never leaves half a file
    table = results.schema.read_results(Path("results/sweep"))   # the union of every part

A part is written through `results.files.atomic_path` (a hidden temporary beside it, moved
into place with `os.replace`, atomic on POSIX): readers see the old part or the new one, never
a torn one. Temporaries left by a killed writer are removed by the next writer.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from results.files import atomic_path, temporary_owner


def write_table_atomic(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    """Write `rows` as one parquet file at `path`, atomically and flushed to disk."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path, fsync=True) as tmp:
        pq.write_table(table, tmp)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host still runs (owned by anyone). A zombie (ended,
    not yet reaped by its parent: a killed job's for as long as its parent, or a
    container's init, takes) does not run."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    try:  # Linux: the state is the field after the parenthesised command name
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # it ended just now; or no /proc (macOS): it runs
        return not Path("/proc").is_dir()
    return state != "Z"


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporaries of writers on this host that no longer run; returns what went."""
    removed = []
    for path in directory.glob(".*.parquet.tmp-*"):
        owner = temporary_owner(path.name)
        if owner and owner[1] == socket.gethostname() and not pid_alive(owner[2]):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def part_name(prefix: str, env: dict) -> str:
    """A run's part name: `<prefix>-<UTC start, YYYYMMDDTHHMMSS>-<run id>` (the provenance's)."""
    stamp = env["started_at"].replace(":", "").replace("-", "")[:15]
    return f"{prefix}-{stamp}-{env['run_id']}"


class PartWriter:
    """The rows of one run, kept in `<directory>/<name>.parquet` after every append."""

    def __init__(self, directory: Path, name: str, schema: pa.Schema) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(directory)
        self.path = directory / f"{name}.parquet"
        self.schema = schema
        self.rows: list[dict] = []

    def append(self, row: dict) -> None:
        """Add one row and rewrite the part; unknown columns are an error, missing ones null."""
        self.extend([row])

    def extend(self, rows: list[dict]) -> None:
        """Add `rows` and rewrite the part once (append's checks, for each row)."""
        for row in rows:
            extra = set(row) - set(self.schema.names)
            if extra:
                raise ValueError(
                    f"columns {sorted(extra)} are not in the schema of {self.path.name}"
                )
        self.rows.extend(rows)
        write_table_atomic(self.rows, self.schema, self.path)
