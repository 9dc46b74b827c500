"""`python -m lra.data generate TASK`: the synthetic tasks' generators, and their records.

    generate("listops", Path("data/mini"), {"count": 50000, "max_length": 256})
    generated_with("listops", Path("data/mini"))    # {'task': 'listops', 'count': 50000, ...}
    generate_command("listops", Path("data/mini"), {"count": 50000})

A task with a generator declares its parameters (`data_params`) and writes its sources
(`generate`); this module writes beside them what they were made with (generated.json), so
that a profile naming the data it expects can check it and name the command that remakes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import lra
from results.files import write_json_atomic

RECORD = "generated.json"  # beside the generated files: the parameters they were made with


def names() -> list[str]:
    """The tasks that have a generator (and are read from disk: recall is made at load)."""
    return [n for n in lra.names() if lra.task(n).data_params and not lra.task(n).made_from_params]


def write_record(folder: Path, task: str, params: dict) -> Path:
    """Write `folder`/generated.json (atomically): what `task`'s files there were made with."""
    write_json_atomic(folder / RECORD, {"task": task, **params}, sort_keys=False)
    return folder / RECORD


def generate(task: str, root: Path, params: dict) -> list[Path]:
    """Generate `task` under `root` with `params` (the task's defaults for the rest) and
    record them; the records written. ValueError for parameters the task refuses."""
    made = lra.task(task)
    given = {k: v for k, v in params.items() if v is not None}
    made.check_data(given)
    full = {p.name: given.get(p.name, p.default) for p in made.data_params}
    records = []
    for folder, used in made.generate(root, full):
        records.append(write_record(folder, task, used))
        print(f"wrote {folder}; {records[-1]}")
    return records


def data_folder(task: str, root: Path, params: dict | None = None) -> Path:
    """Where the generator of `task` writes for `params` (and so where its record lies)."""
    return lra.task(task).data_folder(root, params or {})


def generated_with(task: str, root: Path, params: dict | None = None) -> dict | None:
    """The parameters `task`'s data under `root` was generated with; None without a record
    (not generated, or generated before records existed, or the release's files)."""
    try:
        return json.loads((data_folder(task, root, params) / RECORD).read_text())
    except (OSError, ValueError, KeyError):
        return None


def generate_command(task: str, root: Path, params: dict) -> str:
    """The command that generates `task` under `root` with `params`."""
    flags = {p.name: p.flag for p in lra.task(task).data_params}
    given = " ".join(f"{flags[k]} {v}" for k, v in sorted(params.items()) if k in flags)
    return f"python -m lra.data --data-dir {root} generate {task} {given}".rstrip()
