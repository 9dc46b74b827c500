"""The synthetic tasks' generators behind `python -m lra.data generate TASK`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from lra import listops, pathfinder_gen
from lra.data import write_json
from lra.pathfinder import DIFFICULTY

# (data_dir, count, seed, level, listops lengths) -> None
Generator = Callable[[Path, int | None, int, str, tuple[int, int] | None], None]
PATHFINDER_COUNT = 200_000  # images per difficulty level, as in the release
RECORD = "generated.json"  # beside the generated files: the parameters they were made with
# the command-line flag of each recorded parameter, to name the command that remakes the data
FLAGS = {"count": "--count", "seed": "--seed", "level": "--level", "min_length": "--min-length",
         "max_length": "--max-length"}  # fmt: skip


def write_record(folder: Path, task: str, params: dict) -> Path:
    """Write `folder`/generated.json (atomically): what `task`'s files there were made with."""
    write_json(folder / RECORD, {"task": task, **params})
    return folder / RECORD


def data_folder(task: str, root: Path, level: str | None = None) -> Path:
    """Where the generator of `task` writes (and so where its record lies)."""
    if task == "listops":
        return root / listops.FOLDER
    size = {"pathfinder": 32, "pathx": 128}[task]
    return root / f"pathfinder{size}" / (level or DIFFICULTY)


def generated_with(task: str, root: Path, level: str | None = None) -> dict | None:
    """The parameters `task`'s data under `root` was generated with; None without a record
    (not generated, or generated before records existed, or the release's files)."""
    try:
        return json.loads((data_folder(task, root, level) / RECORD).read_text())
    except (OSError, ValueError, KeyError):
        return None


def generate_command(task: str, root: Path, params: dict) -> str:
    """The command that generates `task` under `root` with `params`."""
    flags = " ".join(f"{FLAGS[k]} {v}" for k, v in sorted(params.items()) if k in FLAGS)
    return f"python -m lra.data --data-dir {root} generate {task} {flags}".rstrip()


def _listops(root: Path, count: int | None, seed: int, level: str, lengths=None) -> None:
    counts = None
    if count is not None:  # the release's proportions, 96 / 2 / 2
        val = test = max(1, round(count * 0.02))
        counts = {"train": count - val - test, "val": val, "test": test}
    lengths = lengths or (listops.MIN_LENGTH, listops.MAX_LENGTH)
    for path in listops.generate(root, counts, seed, lengths):
        print(f"wrote {path}")
    total = sum((counts or listops.COUNTS).values())
    params = {"count": total, "seed": seed, "min_length": lengths[0], "max_length": lengths[1]}
    print(f"wrote {write_record(data_folder('listops', root), 'listops', params)}")


def _pathfinder(size: int) -> Generator:
    def run(root: Path, count: int | None, seed: int, level: str, lengths=None) -> None:
        if lengths is not None:
            raise ValueError("--min-length/--max-length are ListOps options")
        levels = list(pathfinder_gen.LEVELS) if level == "all" else [level]
        count = count or PATHFINDER_COUNT
        roots = pathfinder_gen.generate(root, size, levels, count, seed)
        task = "pathfinder" if size == 32 else "pathx"
        for name, path in roots.items():
            params = {"count": count, "seed": seed, "level": name}
            print(f"wrote {path}; {write_record(path, task, params)}")

    return run


GENERATORS: dict[str, Generator] = {
    "listops": _listops,
    "pathfinder": _pathfinder(32),
    "pathx": _pathfinder(128),
}
LEVEL_CHOICES = [*pathfinder_gen.LEVELS, "all"]
DEFAULT_LEVEL = DIFFICULTY
