"""ListOps: the release's format and labels, the generator's statistics, loading and caching."""

import shutil
import warnings
from collections import Counter
from pathlib import Path

import pytest

from lra import listops
from lra.data import load
from lra.registry import BadData, MissingData, RowLog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lra-real-samples"
RELEASE_ROW = FIXTURES / "listops-lra-release-row" / "basic_train.head1.crlf.tsv"


def write_split_files(root: Path, rows_by_split: dict, newline: str = "\r\n") -> None:
    folder = root / listops.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        text = newline.join(["Source\tTarget", *(f"{s}\t{t}" for s, t in rows)]) + newline
        (folder / listops.FILES[split]).write_bytes(text.encode())


def small_rows(count: int, seed: int = 0) -> list[tuple[str, int]]:
    import random

    rng, rows = random.Random(seed), []
    while len(rows) < count:
        tree, length = listops.random_tree(rng)
        if 20 < length < 2000:
            rows.append((listops.to_source(tree), listops.value(tree)))
    return rows


@pytest.mark.parametrize("name", ["basic_train.head1.crlf.tsv", "basic_train.head1.tsv"])
def test_a_genuine_release_row_is_read_and_its_label_reproduced(name):
    log = RowLog()
    ids, labels = listops.read_tsv(RELEASE_ROW.parent / name, log)
    assert log.total == 1 and not log.bad  # the evaluator agrees with the release's label
    assert labels == [1] and len(ids[0]) == 1335  # the non-parenthesis tokens
    assert ids[0][:3].tolist() == [listops.TOKEN_ID["[MIN"], 4, 8]  # [MIN 3 7


def test_the_evaluator_follows_lra_semantics():
    ev = lambda text: listops.evaluate(text.split())  # noqa: E731
    assert ev("[MED 1 2 3 4 ]") == 2  # median 2.5, truncated
    assert ev("[MED 7 1 9 ]") == 7
    assert ev("[SM 9 9 5 ]") == 3
    assert ev("[MAX 1 [MIN 2 3 ] 4 ]") == 4
    assert ev("[MIN [MAX 0 8 ] [SM 5 6 ] ]") == 1
    for bad in ("[MAX 1 2", "1 2", "]", "[MAX ]", "[FOO 1 ]"):
        with pytest.raises(ValueError):
            ev(bad)


def test_the_release_text_format_wraps_every_argument():
    tree = ("[MAX", (2, 9))
    assert listops.to_source(tree) == "( ( ( [MAX 2 ) 9 ) ] )"
    nested = ("[SM", (("[MIN", (3, 4)), 5))
    text = listops.to_source(nested)
    assert listops.evaluate(listops.tokens(text)) == listops.value(nested) == 8


def test_generated_files_are_in_the_release_format_and_deterministic(tmp_path):
    counts = {"train": 40, "val": 5, "test": 5}
    paths = listops.generate(tmp_path / "a", counts, seed=3)
    again = listops.generate(tmp_path / "b", counts, seed=3)
    other = listops.generate(tmp_path / "c", counts, seed=4)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    assert paths[0].read_bytes() != other[0].read_bytes()
    raw = paths[0].read_bytes()
    assert raw.startswith(b"Source\tTarget\r\n") and raw.count(b"\r\n") == 41
    sources = []
    for path, n in zip(paths, counts.values(), strict=True):
        log = RowLog()
        ids, _ = listops.read_tsv(path, log)
        assert log.total == n and not log.bad  # every label is what the evaluator computes
        for row in ids:
            ops = sum(int(i) >= listops.TOKEN_ID["[MIN"] for i in row)  # operators and ']'
            assert listops.MIN_LENGTH < len(row) < listops.MAX_LENGTH and ops % 2 == 0
        sources += [line.split("\t")[0] for line in path.read_text().splitlines()[1:]]
    assert len(set(sources)) == len(sources)  # deduplicated across splits


def test_generator_labels_look_like_the_release():
    import random

    rng, labels, lengths = random.Random(0), Counter(), []
    while len(lengths) < 1500:
        tree, length = listops.random_tree(rng)
        if listops.MIN_LENGTH < length < listops.MAX_LENGTH:
            labels[listops.value(tree)] += 1
            lengths.append(length)
    share = {k: v / len(lengths) for k, v in labels.items()}
    top_two = sorted(share, key=share.get)[-2:]
    assert set(top_two) == {0, 9}  # MIN and MAX of many digits
    assert 0.12 < share[0] < 0.23 and 0.12 < share[9] < 0.23
    assert min(lengths) > 500 and max(lengths) < 2000


def test_load_reads_lf_and_crlf_alike_and_caches(tmp_path, monkeypatch):
    rows = small_rows(30)
    splits = {"train": rows[:20], "val": rows[20:25], "test": rows[25:]}
    write_split_files(tmp_path / "crlf", splits, "\r\n")
    write_split_files(tmp_path / "lf", splits, "\n")
    a, b = load("listops", "train", tmp_path / "crlf"), load("listops", "train", tmp_path / "lf")
    assert a.inputs.shape == (20, 2048) and a.info.classes == 10
    assert (a.inputs == b.inputs).all() and (a.labels == b.labels).all()
    assert a.labels.tolist() == [t for _, t in rows[:20]]
    assert (a.inputs[:, -1] == 0).all()  # short rows are padded with id 0

    # the second load reads the cache: the reader is not called
    def refuse(*args):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(listops.ListOpsReader, "read", refuse)
    assert (load("listops", "train", tmp_path / "lf").inputs == b.inputs).all()
    monkeypatch.undo()
    # a changed source is noticed
    write_split_files(tmp_path / "lf", {"train": rows[5:25]}, "\n")
    changed = load("listops", "train", tmp_path / "lf")
    assert changed.labels.tolist() == [t for _, t in rows[5:25]]


def test_malformed_rows_are_counted_with_their_line_and_too_many_fail(tmp_path):
    rows = small_rows(150)
    lines = [f"{s}\t{t}" for s, t in rows]
    lines[7] = lines[7].replace("\t", " ")  # one field
    write_split_files(tmp_path, {"train": []})
    path = tmp_path / listops.FOLDER / listops.FILES["train"]
    path.write_text("Source\tTarget\n" + "\n".join(lines) + "\n")
    for split in ("val", "test"):
        shutil.copy(path, path.with_name(listops.FILES[split]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load("listops", "train", tmp_path)
    assert len(d) == 149 and d.skipped == 1
    assert any("basic_train.tsv:9" in str(w.message) for w in caught)  # header is line 1
    lines[8] = lines[8].replace("\t", "\t1", 1) + "0"  # a wrong label: 2 of 150 > 1%
    path.write_text("Source\tTarget\n" + "\n".join(lines) + "\n")
    with pytest.raises(BadData, match="more than 1%"):
        load("listops", "train", tmp_path)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(MissingData, match=r"python -m lra\.data generate listops"):
        load("listops", "train", tmp_path)


def test_a_shorter_listops_keeps_its_rows_between_the_lengths_asked(tmp_path):
    from lra.cli import main

    argv = ["--data-dir", str(tmp_path), "generate", "listops", "--count", "300"]
    assert main([*argv, "--max-length", "64"]) == 0
    d = load("listops", "train", tmp_path)
    real = (d.inputs > 0).sum(1)
    assert int(real.max()) < 64 and int(real.min()) > 16  # min defaults to a quarter of max
    with pytest.raises(SystemExit):  # a pathfinder has no token lengths to choose
        main(["--data-dir", str(tmp_path), "generate", "pathfinder", "--max-length", "64"])
    with pytest.raises(ValueError, match="min < max"):
        listops.generate(tmp_path, {"train": 1, "val": 1, "test": 1}, lengths=(50, 40))
