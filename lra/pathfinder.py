"""Pathfinder and Path-X: are the two dots joined by one dashed curve? (32x32, 128x128.)

Layout of the LRA release, which `lra.pathfinder_gen` writes too:
    pathfinder32/curv_contour_length_14/imgs/<batch>/sample_<i>.png
    pathfinder32/curv_contour_length_14/metadata/<batch>.npy
A metadata `.npy` file is text, one line per image, whitespace separated: field 0 the
image folder (`imgs/<batch>`), field 1 the file name, field 3 the label. Images are read
in metadata order (batches numerically); the first 80% are train, then 10% val, 10% test.
An empty or unreadable image (the release has one) is skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lra import pathfinder_gen
from lra.registry import (
    BadData,
    Examples,
    MissingData,
    Param,
    Reader,
    RowLog,
    TaskInfo,
    progress,
    register,
)

DIFFICULTY = "curv_contour_length_14"  # the level LRA benchmarks
COUNT = 200_000  # images per level, as in the release
SPLIT_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


def task_info(name: str, size: int, order: int) -> TaskInfo:
    return TaskInfo(
        name,
        order=order,
        length=size * size,
        classes=2,
        vocab_size=256,
        padding_id=None,
        pair=False,
        obtain=(
            f"run `python -m lra.data download {name}` (the LRA release, "
            "https://storage.googleapis.com/long-range-arena/lra_release.gz, its "
            f"pathfinder{size}/{DIFFICULTY}/), or generate it offline: "
            f"python -m lra.data generate {name}"
        ),
        params={"size": size, "difficulty": DIFFICULTY, "split": "80/10/10 in metadata order"},
    )


def metadata_rows(root: Path, log: RowLog) -> list[tuple[Path, int, str]]:
    """(image path, label, 'file:line') for every well-formed metadata line, in order."""
    files = sorted(
        (root / "metadata").glob("*.npy"),
        key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem),
    )
    rows = []
    for meta in files:
        for number, line in enumerate(meta.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            log.row()
            fields, where = line.split(), f"{meta.name}:{number}"
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                log.skip(where, "expected at least 4 fields with the label (0 or 1) in field 3")
                continue
            rows.append((root / fields[0] / fields[1], int(fields[3]), where))
    return rows


def read_image(path: Path, size: int) -> np.ndarray | None:
    """The image as (size*size,) uint8, or None if it is empty, unreadable or mis-sized."""
    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("L"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return pixels.reshape(-1) if pixels.shape == (size, size) else None


class PathfinderReader(Reader):
    size: int
    data_params = (
        Param("count", None, f"images per level (default the release's {COUNT:,})", lowest=3),
        Param("seed", 0, "seed of every random choice", lowest=0),
        Param("level", DIFFICULTY, "the difficulty (default the one LRA benchmarks); all = "
              "every one", kind=str, choices=(*pathfinder_gen.LEVELS, "all")),
    )  # fmt: skip

    def data_folder(self, root: Path, params: dict) -> Path:
        return root / f"pathfinder{self.size}" / (params.get("level") or DIFFICULTY)

    def generate(self, root: Path, params: dict) -> list[tuple[Path, dict]]:
        level = params.get("level") or DIFFICULTY
        levels = list(pathfinder_gen.LEVELS) if level == "all" else [level]
        count, seed = params.get("count") or COUNT, params.get("seed", 0)
        roots = pathfinder_gen.generate(root, self.size, levels, count, seed)
        return [
            (path, {"count": count, "seed": seed, "level": name}) for name, path in roots.items()
        ]

    def locate(self, data_dir: Path) -> Path:
        root = data_dir / f"pathfinder{self.size}" / DIFFICULTY
        if not (root / "metadata").is_dir():
            raise MissingData(
                f"{self.task.name}: {root / 'metadata'} is missing. {self.task.obtain}"
            )
        return root

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        rows = metadata_rows(self.locate(data_dir), log)
        lo, hi = SPLIT_FRACTIONS[split]
        rows = rows[int(lo * len(rows)) : int(hi * len(rows))]
        images, labels, sources = [], [], []
        for path, label, where in progress(rows, f"{self.task.name} {split}", unit="img"):
            pixels = read_image(path, self.size)
            if pixels is None:
                log.skip(where, f"{path.name}: empty, unreadable or not {self.size}x{self.size}")
                continue
            images.append(pixels)
            labels.append(label)
            sources.append(path)
        if not images:
            raise BadData(f"{self.task.name} {split}: no readable image")
        return Examples(np.stack(images), np.asarray(labels, np.int64), sources=sources)


@register(task_info("pathfinder", 32, 5))
class Pathfinder32(PathfinderReader):
    size = 32


@register(task_info("pathx", 128, 6))
class PathX(PathfinderReader):
    size = 128
