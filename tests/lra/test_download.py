"""`python -m lra.data download`, without internet: a server on 127.0.0.1 started by the
tests serves small archives in the real layouts (the LRA release nested as it is,
lra_release/lra_release/<folder>/; IMDb from the genuine aclImdb sample; CIFAR-10 batches
in the real pickle format), and drops connections or answers errors when told to."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lra import download as dl
from lra import listops, pathfinder_gen
from lra.cli import main as data_main
from lra.data import load
from tests.lra.test_image import META, write_batches
from tests.lra.test_text_retrieval import aan_row, write_aan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lra-real-samples"


class Server:
    """Files by path, with HTTP Range; `drop[path] = n` closes the next answer for `path`
    after n bytes; `fail[path] = code` answers that status. `requests`: (path, Range)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path, wanted = self.path, self.headers.get("Range")
                if body:
                    server.requests.append((path, wanted))
                if path in server.fail:
                    self.send_error(server.fail[path])
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[path], 0
                if wanted:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                cut = server.drop.pop(path, None) if body else None
                self.wfile.write(data[start : cut if cut is not None else len(data)])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def folder_members(root: Path, prefix: str) -> dict[str, bytes]:
    return {
        f"{prefix}/{p.relative_to(root)}": p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> bytes:
    """The LRA release's layout: listops-1000/, tsv_data/, pathfinder32/ with two levels."""
    root = tmp_path_factory.mktemp("release")
    listops.generate(root, {"train": 30, "val": 10, "test": 10}, seed=0, lengths=(10, 60))
    write_aan(
        root,
        {
            s: [aan_row(i % 2, b"left", b"right") for i in range(4)]
            for s in ("train", "val", "test")
        },
    )
    pathfinder_gen.generate(root, 32, ["curv_contour_length_14", "curv_baseline"], 20, workers=1)
    for generated in root.rglob("generated.json"):
        generated.unlink()  # the release has none
    return tar_gz(folder_members(root, "lra_release/lra_release"))


@pytest.fixture
def server(monkeypatch, release):
    serving = Server()
    serving.files["/lra_release.gz"] = release
    monkeypatch.setenv("LRA_RELEASE_URL", f"{serving.url}/lra_release.gz")
    monkeypatch.setenv("LRA_IMDB_URL", f"{serving.url}/aclImdb_v1.tar.gz")
    monkeypatch.setenv("LRA_CIFAR10_URL", f"{serving.url}/cifar-10-python.tar.gz")
    yield serving
    serving.close()


def quiet(tasks, data, **kw):
    said: list[str] = []
    fetched = dl.download(tasks, data, progress=False, say=said.append, **kw)
    return fetched, "\n".join(said)


def test_a_download_unpacks_only_what_the_tasks_read_and_they_load(server, tmp_path, release):
    data = tmp_path / "data"
    fetched, said = quiet(["listops", "pathfinder"], data)
    assert fetched == {"lra_release": len(release)}
    assert "no published checksum; recorded its SHA-256" in said
    assert sorted(p.name for p in data.iterdir()) == [".downloads", "listops-1000", "pathfinder32"]
    assert [p.name for p in (data / "pathfinder32").iterdir()] == ["curv_contour_length_14"]
    assert len(load("listops", "train", data)) == 30
    assert len(load("pathfinder", "test", data)) == 2
    manifest = dl.read_manifest(data)["lra_release.gz"]
    assert manifest["sha256"] == hashlib.sha256(release).hexdigest()
    # a second download fetches nothing, and a third task comes from the kept archive
    requests = len(server.requests)
    fetched, said = quiet(["listops", "retrieval"], data)
    assert fetched == {"lra_release": 0} and len(server.requests) == requests
    assert "already here" in said and "tsv_data/: 3 files" in said
    assert len(load("retrieval", "val", data)) == 4


def test_an_interrupted_download_resumes_with_a_range_request_byte_identical(
    server, tmp_path, release
):
    data = tmp_path / "data"
    cut = len(release) * 2 // 5
    server.drop["/lra_release.gz"] = cut  # the connection drops after 40%
    fetched, said = quiet(["listops"], data)
    assert server.requests == [("/lra_release.gz", None), ("/lra_release.gz", f"bytes={cut}-")]
    assert f"resuming at byte {cut:,}" in said and fetched["lra_release"] == len(release)
    assert (data / ".downloads" / "lra_release.gz").read_bytes() == release
    # a part file left by a run that was stopped (Ctrl-C): the next command goes on from it
    other = tmp_path / "other"
    (other / ".downloads").mkdir(parents=True)
    (other / ".downloads" / "lra_release.gz.part").write_bytes(release[:1000])
    fetched, _ = quiet(["listops"], other)
    assert server.requests[-1] == ("/lra_release.gz", "bytes=1000-")
    assert fetched["lra_release"] == len(release) - 1000
    assert (other / ".downloads" / "lra_release.gz").read_bytes() == release


def test_a_corrupted_archive_fails_its_checksum_and_is_set_aside(server, tmp_path):
    sample = FIXTURES / "imdb-aclImdb-sample"
    archive = tar_gz(folder_members(sample / "aclImdb", "aclImdb"))
    server.files["/aclImdb_v1.tar.gz"] = archive  # not the release: torchtext's MD5 fails
    with pytest.raises(dl.DownloadError) as caught:
        quiet(["text"], tmp_path)
    got = hashlib.md5(archive).hexdigest()
    message = str(caught.value)
    assert f"MD5 mismatch: expected {dl.SOURCES['imdb'].md5}" in message and f"got {got}" in message
    assert "published by torchtext" in message
    assert not (tmp_path / "aclImdb_v1.tar.gz").exists()
    assert not (tmp_path / "aclImdb_v1.tar.gz.part").exists()
    (aside,) = tmp_path.glob("aclImdb_v1.tar.gz.bad-*")
    assert aside.read_bytes() == archive
    # the same archive stated with --sha256 is taken, and the text task loads from it
    _, said = quiet(["text"], tmp_path, sha256=hashlib.sha256(archive).hexdigest())
    assert "matches (given with --sha256)" in said
    assert len(load("text", "test", tmp_path)) == 3  # the sample's test reviews


def test_a_changed_copy_of_the_release_fails_the_recorded_checksum(server, tmp_path, release):
    data = tmp_path / "data"
    quiet(["listops"], data)
    kept = data / ".downloads" / "lra_release.gz"
    kept.write_bytes(release[:-1] + bytes([release[-1] ^ 1]))
    with pytest.raises(dl.DownloadError, match="recorded at its first download"):
        quiet(["listops"], data)


def test_image_comes_as_the_archive_the_reader_reads(server, tmp_path):
    batches = tmp_path / "src" / "cifar-10-batches-py"
    write_batches(batches, per_batch=10)
    shutil.copy(META / "batches.meta", batches / "batches.meta")
    archive = tar_gz(folder_members(batches, "cifar-10-batches-py"))
    server.files["/cifar-10-python.tar.gz"] = archive
    data = tmp_path / "data"
    quiet(["image"], data, sha256=hashlib.sha256(archive).hexdigest())
    assert (data / "cifar-10-python.tar.gz").read_bytes() == archive
    assert len(load("image", "test", data)) == 10


def test_a_member_outside_the_data_directory_is_refused(server, tmp_path):
    evil = {
        "lra_release/listops-1000/basic_train.tsv": b"Source\tTarget\n",
        "lra_release/../../evil": b"x",
    }
    server.files["/lra_release.gz"] = tar_gz(evil)
    data = tmp_path / "a" / "data"
    with pytest.raises(
        dl.DownloadError, match=r"refused archive member 'lra_release/\.\./\.\./evil'"
    ):
        quiet(["listops"], data)
    assert not (tmp_path / "evil").exists() and not (data / "listops-1000").exists()
    assert not list((data / ".downloads").glob(".unpack-*"))
    with pytest.raises(dl.DownloadError, match="refused"):
        dl._relative("/listops-1000/x", ["listops-1000"])


@pytest.mark.parametrize("code", [404, 503])
def test_an_http_error_names_the_url_and_the_status_and_leaves_no_file(server, tmp_path, code):
    server.fail["/lra_release.gz"] = code
    with pytest.raises(dl.DownloadError) as caught:
        quiet(["listops"], tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{server.url}/lra_release.gz: HTTP {code}")
    assert (
        f"save https://storage.googleapis.com/long-range-arena/lra_release.gz as {tmp_path}"
        in message
    )
    assert not list(tmp_path.rglob("lra_release.gz*"))


def test_a_file_that_is_not_an_archive_is_refused(server, tmp_path):
    server.files["/lra_release.gz"] = b"<html>a login page, not the release</html>"
    with pytest.raises(dl.DownloadError, match="not a gzip or tar archive"):
        quiet(["listops"], tmp_path)
    assert not (tmp_path / ".downloads" / "lra_release.gz").exists()
    assert list((tmp_path / ".downloads").glob("lra_release.gz.bad-*"))


def test_a_full_disk_names_the_data_directory_and_the_bytes_needed(
    server, tmp_path, monkeypatch, release
):
    monkeypatch.setattr(
        dl.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100)
    )
    with pytest.raises(dl.DownloadError) as caught:
        quiet(["listops"], tmp_path)
    assert (
        f"{tmp_path / '.downloads'}: {len(release):,} more bytes are needed and 100 are free"
        in str(caught.value)
    )


def test_the_command_line_dry_run_and_status(server, tmp_path, capsys, release):
    assert data_main(["--data-dir", str(tmp_path), "download", "all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"lra_release.gz: {server.url}/lra_release.gz ({len(release) / 1e9:.2f} GB)" in out
    assert "unpack listops-1000/, tsv_data/, pathfinder32/curv_contour_length_14/" in out
    assert not server.requests and not (tmp_path / ".downloads").exists()  # HEAD only
    assert data_main(["--data-dir", str(tmp_path), "status"]) == 0
    status = capsys.readouterr().out
    for task in ("listops", "text", "retrieval", "image", "pathfinder", "pathx"):
        assert f"run `python -m lra.data download {task}`" in status
    with pytest.raises(SystemExit):
        data_main(["--data-dir", str(tmp_path), "download", "all", "--sha256", "0" * 64])
    assert "name one archive" in capsys.readouterr().err


def test_ctrl_c_keeps_the_part_file_and_the_same_command_resumes(
    server, tmp_path, capsys, monkeypatch, release
):
    real_open = dl._open

    def interrupted(url, start):  # Ctrl-C while the second block is being read
        response = real_open(url, start)
        read, blocks = response.read, []

        def once(n):
            blocks.append(n)
            if len(blocks) > 1:
                raise KeyboardInterrupt
            return read(n)

        response.read = once
        return response

    monkeypatch.setattr(dl, "CHUNK", 1000)
    monkeypatch.setattr(dl, "_open", interrupted)
    command = ["--data-dir", str(tmp_path), "download", "listops"]
    assert data_main(command) == 130
    assert "the part file stays, and the same command resumes" in capsys.readouterr().err
    assert (tmp_path / ".downloads" / "lra_release.gz.part").stat().st_size == 1000
    monkeypatch.setattr(dl, "_open", real_open)
    assert data_main(command) == 0
    assert server.requests[-1] == ("/lra_release.gz", "bytes=1000-")
    assert (tmp_path / ".downloads" / "lra_release.gz").read_bytes() == release
    assert "listops test: 10 examples" in capsys.readouterr().out


def test_no_server_is_one_line_naming_the_url_and_how_to_download_by_hand(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LRA_CIFAR10_URL", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
    with pytest.raises(dl.DownloadError) as caught:
        quiet(["image"], tmp_path)
    message = str(caught.value)
    assert message.startswith(f"http://127.0.0.1:{port}/cifar-10-python.tar.gz: cannot connect")
    assert "\n" not in message and f"as {tmp_path / 'cifar-10-python.tar.gz'}" in message
    assert not list(tmp_path.iterdir())
