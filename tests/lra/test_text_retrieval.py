"""Byte-level tasks: IMDb from the real aclImdb layout and tarball, AAN pairs from the TSV."""

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lra import retrieval, text
from lra.data import load
from lra.registry import BadData

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lra-real-samples"
ACL = FIXTURES / "imdb-aclImdb-sample" / "aclImdb"


def acl_copy(root: Path) -> Path:
    shutil.copytree(ACL, root / "aclImdb")
    unsup = root / "aclImdb" / "train" / "unsup"  # unlabelled reviews must be ignored
    unsup.mkdir()
    (unsup / "0_0.txt").write_text("not a labelled review")
    return root / "aclImdb"


def test_real_aclimdb_reviews_become_byte_ids_with_their_labels(tmp_path):
    acl_copy(tmp_path)
    train, val = load("text", "train", tmp_path), load("text", "val", tmp_path)
    test = load("text", "test", tmp_path)
    assert len(train) + len(val) == 4 and len(test) == 3
    assert train.inputs.shape[1] == 4096 and train.info.vocab_size == 257
    expected = {}  # review bytes -> label, from the files themselves
    for path in ACL.glob("t*/*/*.txt"):
        expected[path.read_bytes()[:4096]] = int(path.parent.name == "pos")  # 4096 kept
    for d in (train, val, test):
        for ids, label in zip(d.inputs.numpy(), d.labels.tolist(), strict=True):
            real = ids[ids > 0]
            review = bytes((real - 1).astype(np.uint8).tolist())
            assert expected[review] == label  # id = byte + 1, 0 only as padding
    homeless = (ACL / "train" / "pos" / "10000_8.txt").read_bytes()
    assert homeless.startswith(b"Homelessness") and len(homeless) == 2366
    assert text.in_val(homeless) == any(  # the split is a function of the review alone
        bytes((r[r > 0] - 1).astype(np.uint8).tolist()) == homeless for r in val.inputs.numpy()
    )
    assert len(expected) == 7 and max(len(k) for k in expected) == 4096  # one was cut


def test_the_tarball_gives_the_same_arrays_as_the_folder(tmp_path):
    folder = acl_copy(tmp_path / "unpacked")
    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "aclImdb_v1.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="aclImdb")
    for split in ("train", "val", "test"):
        a, b = load("text", split, tmp_path / "unpacked"), load("text", split, tmp_path / "packed")
        assert (a.inputs == b.inputs).all() and (a.labels == b.labels).all()


def test_long_reviews_are_cut_at_4096_bytes(tmp_path):
    for part in ("train", "test"):
        for sentiment in ("pos", "neg"):
            folder = tmp_path / "aclImdb" / part / sentiment
            folder.mkdir(parents=True)
            for i in range(12):
                (folder / f"{i}_7.txt").write_bytes(bytes([65 + i]) * (5000 if i == 0 else 10))
    d = load("text", "test", tmp_path)
    longest = d.inputs[(d.inputs > 0).sum(1).argmax()]
    assert (longest > 0).sum() == 4096


def aan_row(label, left: bytes, right: bytes) -> str:
    return f"{label}\tacl-1\tacl-2\t{left!r}\t{right!r}"


def write_aan(root: Path, rows_by_split: dict) -> None:
    folder = root / "tsv_data"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        (folder / retrieval.FILES[split]).write_text("\n".join(rows) + "\n")


def test_aan_pairs_decode_bytes_literals(tmp_path):
    left = b'It\'s a "title"\nwith \\ escapes \xc3\xa9'
    rows = [aan_row(1, left, b"second doc"), aan_row("0.0", b"x" * 5000, b"")]
    write_aan(tmp_path, {s: rows for s in ("train", "val", "test")})
    d = load("retrieval", "val", tmp_path)  # val reads new_aan_pairs.eval.tsv
    assert d.info.pair and d.inputs.shape == d.inputs2.shape == (2, 4000)
    assert d.labels.tolist() == [1, 0]
    first = d.inputs[0][d.inputs[0] > 0].numpy() - 1
    assert bytes(first.astype(np.uint8).tolist()) == left  # "\n" is one byte, not two
    assert (d.inputs[1] > 0).sum() == 4000 and (d.inputs2[1] == 0).all()


def test_aan_rows_that_are_not_bytes_literals_are_counted(tmp_path):
    good = [aan_row(i % 2, b"a", b"b") for i in range(99)]
    bad = ["1\tacl-1\tacl-2\t__import__('os')\tb'x'"]
    write_aan(tmp_path, {s: good + bad for s in ("train", "val", "test")})
    with pytest.warns(UserWarning, match=r"new_aan_pairs.train.tsv:100: .*bytes literal"):
        assert load("retrieval", "train", tmp_path).skipped == 1
    write_aan(tmp_path, {"train": good + bad * 3})
    with pytest.raises(BadData):
        load("retrieval", "train", tmp_path)
