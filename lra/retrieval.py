"""Retrieval: do two ACL Anthology papers cite each other? (AAN, byte level, 2 x 4000.)

Source: the LRA release's `tsv_data/new_aan_pairs.{train,eval,test}.tsv` (`eval` is our
`val`). No header; each row is `label<TAB>id1<TAB>id2<TAB>text1<TAB>text2` where the
texts are Python bytes literals (`b'...'`). The literal is decoded (so `\\n` is one
byte, not two), then byte b has id b + 1, 0 pads, 4000 bytes kept per document.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from lra.registry import (
    Examples,
    Reader,
    RowLog,
    TaskInfo,
    locate_split_files,
    pad_rows,
    register,
)
from lra.text import byte_ids

FOLDER = "tsv_data"
FILES = {
    "train": "new_aan_pairs.train.tsv",
    "val": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}

TASK = TaskInfo(
    "retrieval",
    order=3,
    length=4000,
    classes=2,
    vocab_size=257,
    padding_id=0,
    pair=True,
    obtain=(
        "run `python -m lra.data download retrieval` (the LRA release, "
        "https://storage.googleapis.com/long-range-arena/lra_release.gz, its "
        f"{FOLDER}/ of new_aan_pairs.*.tsv files)"
    ),
    params={"encoding": "decoded bytes literal, id = byte + 1"},
)


def bytes_literal(text: str) -> bytes:
    """The bytes of a Python bytes literal such as b'It\\'s', without evaluating code."""
    text = text.strip()
    if not (text[:2] in ("b'", 'b"') and len(text) >= 3 and text[-1] == text[1]):
        raise ValueError("a text is not a bytes literal b'...'")
    value = ast.literal_eval(text)
    if not isinstance(value, bytes):
        raise ValueError("a text is not a bytes literal b'...'")
    return value


def parse_row(line: str) -> tuple[int, bytes, bytes]:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 5:
        raise ValueError(f"expected 5 tab-separated fields, got {len(fields)}")
    label = float(fields[0])
    if label not in (0.0, 1.0):
        raise ValueError(f"label must be 0 or 1, got {fields[0]!r}")
    return int(label), bytes_literal(fields[3]), bytes_literal(fields[4])


@register(TASK)
class RetrievalReader(Reader):
    def locate(self, data_dir: Path) -> Path:
        return locate_split_files(data_dir, FOLDER, FILES, TASK)

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        path = self.locate(data_dir) / FILES[split]
        first, second, labels = [], [], []
        with open(path, encoding="utf-8", newline="") as fh:
            for line_number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                log.row()
                try:
                    label, text1, text2 = parse_row(line)
                except (ValueError, SyntaxError) as exc:
                    log.skip(f"{path.name}:{line_number}", str(exc))
                    continue
                first.append(byte_ids(text1))
                second.append(byte_ids(text2))
                labels.append(label)
        return Examples(
            pad_rows(first, TASK.length, np.int16),
            np.asarray(labels, np.int64),
            inputs2=pad_rows(second, TASK.length, np.int16),
            sources=[path],
        )
