"""The synthetic tasks' generators behind `python -m lra.data generate TASK`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lra import listops, pathfinder_gen
from lra.pathfinder import DIFFICULTY

# (data_dir, count, seed, level, listops lengths) -> None
Generator = Callable[[Path, int | None, int, str, tuple[int, int] | None], None]
PATHFINDER_COUNT = 200_000  # images per difficulty level, as in the release


def _listops(root: Path, count: int | None, seed: int, level: str, lengths=None) -> None:
    counts = None
    if count is not None:  # the release's proportions, 96 / 2 / 2
        val = test = max(1, round(count * 0.02))
        counts = {"train": count - val - test, "val": val, "test": test}
    lengths = lengths or (listops.MIN_LENGTH, listops.MAX_LENGTH)
    for path in listops.generate(root, counts, seed, lengths):
        print(f"wrote {path}")


def _pathfinder(size: int) -> Generator:
    def run(root: Path, count: int | None, seed: int, level: str, lengths=None) -> None:
        if lengths is not None:
            raise ValueError("--min-length/--max-length are ListOps options")
        levels = list(pathfinder_gen.LEVELS) if level == "all" else [level]
        roots = pathfinder_gen.generate(root, size, levels, count or PATHFINDER_COUNT, seed)
        for path in roots.values():
            print(f"wrote {path}")

    return run


GENERATORS: dict[str, Generator] = {
    "listops": _listops,
    "pathfinder": _pathfinder(32),
    "pathx": _pathfinder(128),
}
LEVEL_CHOICES = [*pathfinder_gen.LEVELS, "all"]
DEFAULT_LEVEL = DIFFICULTY
