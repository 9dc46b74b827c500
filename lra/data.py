"""LRA data: every task as ready tensors, cached, from the sources a user has on disk.

Its command line (lra/cli.py):

    python -m lra.data status                      # each task: present or how to get it
    python -m lra.data prepare listops             # read + cache all splits (or: all)
    python -m lra.data download listops            # fetch, verify, unpack (lra.download)
    python -m lra.data generate listops --seed 0   # synthetic tasks, offline
    python -m lra.data generate pathfinder --count 20000

    from lra.data import load
    d = load("listops", "train")         # d.inputs (n, 2048) uint8, d.labels (n,), d.info

The data directory is `--data-dir` / `data_dir=`, else $LRA_DATA_DIR, else ./data.
Preprocessed arrays are cached in <data dir>/.cache/<task>/<split>/ with a manifest of
the preprocessing parameters and of the sources (size, mtime and a SHA-256 of their
contents): a second load reads the cache; a changed source or parameter rebuilds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lra.registry import SPLITS, BadData, MissingData, RowLog, TaskInfo, check_split, lookup, names
from results.files import atomic_path, write_json_atomic

CACHE_VERSION = 1


@dataclass
class TaskData:
    """One split of one task as tensors."""

    inputs: torch.Tensor  # (n, length) uint8 (listops, pixels) or int16 (bytes + 1)
    labels: torch.Tensor  # (n,) int64
    inputs2: torch.Tensor | None  # (n, length) for retrieval's second document
    info: TaskInfo
    split: str
    skipped: int  # malformed rows or unreadable images left out
    # identity of the data: the cache parameters and the sources' content (None: read from
    # tensorflow-datasets, no files of ours to fingerprint)
    data_hash: str | None = None

    def __len__(self) -> int:
        return len(self.labels)


def resolve_data_dir(path: str | Path | None = None) -> Path:
    """The data directory: `path`, else $LRA_DATA_DIR, else ./data."""
    return Path(path or os.environ.get("LRA_DATA_DIR") or "data")


def _stat_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _content_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(f"{p}\0".encode())
        with open(p, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _params(info: TaskInfo) -> dict:
    return json.loads(json.dumps({"version": CACHE_VERSION, **info.params}, default=str))


def _cache_valid(folder: Path, info: TaskInfo) -> bool:
    """Whether the cache at `folder` was made with these parameters from unchanged sources."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("params") != _params(info):
        return False
    sources = [Path(p) for p in manifest.get("sources", [])]
    if not all(p.is_file() for p in sources):
        return False
    if _stat_digest(sources) == manifest.get("stat_digest"):
        return True
    # touched (copied, re-extracted): the contents decide
    if _content_digest(sources) != manifest.get("content_digest"):
        return False
    manifest["stat_digest"] = _stat_digest(sources)
    write_json_atomic(folder / "manifest.json", manifest, sort_keys=False)
    return True


def _write_cache(folder: Path, info: TaskInfo, arrays: dict, sources: list[Path], log: RowLog):
    """Write arrays + manifest into a temporary folder, then swap it in (atomic per split)."""
    sources = [p.resolve() for p in sources]
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        write_json_atomic(
            tmp / "manifest.json",
            {
                "task": info.name,
                "params": _params(info),
                "rows": int(log.total),
                "skipped": len(log.bad),
                "skipped_examples": log.bad[:20],
                "sources": [str(p) for p in sources],
                "stat_digest": _stat_digest(sources),
                "content_digest": _content_digest(sources),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
            sort_keys=False,
        )


def load(task: str, split: str, data_dir: str | Path | None = None) -> TaskData:
    """One split of `task` as tensors; builds the cache on first use.

    Raises MissingData (how to get the sources) or BadData (too many malformed rows).
    """
    info, reader = lookup(task)
    check_split(split)
    root = resolve_data_dir(data_dir)
    folder = root / ".cache" / task / split
    if not _cache_valid(folder, info):
        log = RowLog()
        examples = reader.read(split, root, log)
        log.check(f"{task} {split}")
        arrays = {"inputs": examples.inputs, "labels": examples.labels}
        if examples.inputs2 is not None:
            arrays["inputs2"] = examples.inputs2
        if not examples.sources:  # tfds: no files of ours to fingerprint; read every time
            return _tensors(arrays, info, split, len(log.bad))
        _write_cache(folder, info, arrays, examples.sources, log)
    manifest = json.loads((folder / "manifest.json").read_text())
    arrays = {
        p.stem: np.load(p, mmap_mode="c")
        for p in folder.glob("*.npy")
        if not p.stem.startswith(".")
    }
    identity = json.dumps([manifest["params"], manifest["content_digest"]], sort_keys=True)
    data_hash = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return _tensors(arrays, info, split, manifest["skipped"], data_hash)


def _tensors(
    arrays: dict, info: TaskInfo, split: str, skipped: int, data_hash: str | None = None
) -> TaskData:
    def tensor(a):  # stored dtype (uint8 / int16): a batch is cast with .long() when used
        return None if a is None else torch.from_numpy(a)

    return TaskData(
        tensor(arrays["inputs"]),
        tensor(arrays["labels"]),
        tensor(arrays.get("inputs2")),
        info,
        split,
        skipped,
        data_hash,
    )


# command line ---------------------------------------------------------------------------


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def status(root: Path) -> list[str]:
    lines = []
    for name in names():
        reader = lookup(name)[1]
        if reader.made_from_params:  # no files: nothing to be present or missing
            lines.append(f"{name:<10} made      {reader.task.obtain}")
            continue
        try:
            source = reader.locate(root)
        except MissingData as exc:
            lines.append(f"{name:<10} missing   {str(exc).removeprefix(name + ': ')}")
            continue
        where = (
            str(source)
            if str(source).startswith("tfds:")
            else f"{source} ({_size(source) / 1e6:,.1f} MB)"
        )
        cached = [s for s in SPLITS if (root / ".cache" / name / s / "manifest.json").is_file()]
        lines.append(f"{name:<10} present   {where}; cached splits: {', '.join(cached) or 'none'}")
    return lines


def prepare(tasks: list[str], root: Path) -> int:
    """Read and cache every split of `tasks`, a line each; 1 if one could not be, else 0."""
    failed = 0
    for task in tasks:
        for split in SPLITS:
            try:
                d = load(task, split, root)
            except (MissingData, BadData) as exc:
                print(f"{task} {split}: {exc}", file=sys.stderr)
                failed += 1
                break
            shape = tuple(d.inputs.shape)
            print(f"{task} {split}: {len(d)} examples, inputs {shape}, {d.skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":  # `python -m lra.data`: the command line is lra/cli.py's
    from lra.cli import main

    sys.exit(main())
