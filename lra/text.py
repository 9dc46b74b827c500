"""Text: IMDb sentiment from raw bytes (LRA's byte-level text classification, 4K bytes).

Sources, first found wins: the unpacked `aclImdb/` folder, the `aclImdb_v1.tar.gz`
archive (both from https://ai.stanford.edu/~amaas/data/sentiment/), or the
tensorflow-datasets `imdb_reviews` already prepared on this machine (tfds extra).
A review is its UTF-8 bytes as stored; byte b has id b + 1, 0 pads, 4096 bytes kept.

Splits: IMDb has train and test (25,000 each). The LRA pipeline validates on the test
set; here `val` is the train reviews whose SHA-1 is 0 mod 10 (~2,500) and `train` is
the rest, so model selection never sees test. Within a split examples are ordered by
that hash, so every source gives the same arrays.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import numpy as np

from lra.registry import (
    Examples,
    MissingData,
    Reader,
    RowLog,
    TaskInfo,
    locate_raw_or_tfds,
    pad_rows,
    raw_or_tfds_howto,
    register,
)

FOLDER, ARCHIVE, TFDS_NAME = "aclImdb", "aclImdb_v1.tar.gz", "imdb_reviews"
MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
LABELS = {"neg": 0, "pos": 1}

TASK = TaskInfo(
    "text",
    order=2,
    length=4096,
    classes=2,
    vocab_size=257,
    padding_id=0,
    pair=False,
    obtain="IMDb: "
    + raw_or_tfds_howto(
        "text",
        f"https://ai.stanford.edu/~amaas/data/sentiment/{ARCHIVE}",
        ARCHIVE,
        FOLDER,
        TFDS_NAME,
    ),
    params={"encoding": "utf-8 bytes, id = byte + 1", "val": "train, sha1 % 10 == 0"},
)


def byte_ids(data: bytes) -> np.ndarray:
    """Byte b -> id b + 1 (0 is padding)."""
    return np.frombuffer(data, dtype=np.uint8).astype(np.int16) + 1


def _in_val(digest: bytes) -> bool:
    return int.from_bytes(digest[:8], "big") % 10 == 0


def in_val(data: bytes) -> bool:
    """Whether an IMDb train review belongs to our val split."""
    return _in_val(hashlib.sha1(data).digest())


def select(reviews: list[tuple[bytes, int]], split: str) -> tuple[list[bytes], list[int]]:
    """The reviews of `split` from IMDb's train (train/val) or test list, ordered by hash."""
    keyed = sorted((hashlib.sha1(r[0]).digest(), r) for r in reviews)
    if split != "test":
        keyed = [(d, r) for d, r in keyed if _in_val(d) == (split == "val")]
    return [r[0] for _, r in keyed], [r[1] for _, r in keyed]


@register(TASK)
class TextReader(Reader):
    def locate(self, data_dir: Path) -> Path:
        return locate_raw_or_tfds(data_dir, (FOLDER, ARCHIVE), TFDS_NAME, TASK)

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        source = self.locate(data_dir)
        part = "test" if split == "test" else "train"
        if source.name == FOLDER:
            reviews, sources = self._folder(source, part, log)
        elif source.name == ARCHIVE:
            reviews, sources = self._archive(source, part, log), [source]
        else:
            reviews, sources = self._tfds(part, log), []
        texts, labels = select(reviews, split)
        rows = [byte_ids(t) for t in texts]
        return Examples(
            pad_rows(rows, TASK.length, np.int16), np.asarray(labels, np.int64), sources=sources
        )

    def _folder(self, root: Path, part: str, log: RowLog):
        reviews, sources = [], []
        for sentiment, label in LABELS.items():
            folder = root / part / sentiment
            if not folder.is_dir():
                raise MissingData(f"text: {folder} is missing; is {root} a complete aclImdb?")
            for path in sorted(folder.glob("*.txt")):
                log.row()
                if not MEMBER.search(path.as_posix()):
                    log.skip(str(path), "not named <id>_<rating>.txt")
                    continue
                reviews.append((path.read_bytes(), label))
                sources.append(path)
        return reviews, sources

    def _archive(self, path: Path, part: str, log: RowLog):
        reviews = []
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                match = MEMBER.search(member.name)
                if not (member.isfile() and match and match[1] == part):
                    continue
                log.row()
                handle = archive.extractfile(member)
                if handle is None:
                    log.skip(f"{path.name}:{member.name}", "unreadable member")
                    continue
                reviews.append((handle.read(), LABELS[match[2]]))
        return reviews

    def _tfds(self, part: str, log: RowLog):
        import tensorflow_datasets as tfds

        reviews = []
        for example in tfds.as_numpy(tfds.load(TFDS_NAME, split=part, download=False)):
            log.row()
            reviews.append((bytes(example["text"]), int(example["label"])))
        return reviews
