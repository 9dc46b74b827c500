"""Atomic writing: a reader sees the old file or the new one, and a failed write loses nothing."""

from __future__ import annotations

import pytest

from results.files import atomic_path, write_json_atomic, write_text_atomic


def test_a_write_that_raises_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "table.md", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_the_new_content_appears_only_when_the_block_ends(tmp_path):
    path = tmp_path / "deep" / "config.json"
    with atomic_path(path) as tmp:
        tmp.write_text("{}")
        assert not path.exists()
    write_json_atomic(path, {"b": 1, "a": 2})
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys


def test_a_folder_is_swapped_in_whole(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "old.npy").write_text("old")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "new.npy").write_text("new")
        assert (folder / "old.npy").exists()
    assert [p.name for p in folder.iterdir()] == ["new.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_a_new_writer_removes_what_a_dead_writer_left_and_keeps_a_live_ones(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from results.files import temporary_name, temporary_owner
    from results.schema import SWEEP
    from runners.results import PartWriter

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    dead = tmp_path / f".old.parquet.tmp-{host}-{int(ended.stdout)}"
    live = temporary_name(tmp_path / "mine.parquet")  # this process's: still running
    for path in (dead, live):
        path.write_text("half")
    assert temporary_owner(live.name) == ("mine.parquet", host, os.getpid())
    PartWriter(tmp_path, "new", SWEEP)
    assert not dead.exists() and live.exists()
