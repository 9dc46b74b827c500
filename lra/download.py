"""`python -m lra.data download TASK|all`: the LRA sources from their official locations.

    python -m lra.data download listops             # the LRA release, listops-1000/ from it
    python -m lra.data download all --dry-run       # what would be fetched, with sizes
    LRA_RELEASE_URL=https://mirror/lra_release.gz python -m lra.data download pathfinder

Three archives serve the six tasks:
- the LRA release `lra_release.gz` (a gzipped tar, about 7.7 GB): listops, retrieval,
  pathfinder and pathx. It is kept in `<data dir>/.downloads/` and only the members the
  asked tasks read are unpacked from it, streaming through it once: `listops-1000/`,
  `tsv_data/`, `pathfinder32/curv_contour_length_14/`, `pathfinder128/...` (the same
  level), wherever the release nests them;
- IMDb's `aclImdb_v1.tar.gz` (text) and CIFAR-10's `cifar-10-python.tar.gz` (image),
  which the readers read as archives: saved into the data directory as they are.

Each file is fetched into `<name>.part` and renamed only once complete and verified; an
interrupted download (a dropped connection, Ctrl-C, a crash) resumes from the part file's
length with an HTTP Range request, in the same command (up to RETRIES times) or the next.
Checksums: IMDb's and CIFAR-10's are the MD5s torchtext and torchvision publish (cited at
SOURCES); the LRA release has none published, so the SHA-256 of the first complete download
is recorded in `.downloads/manifest.json`, said, and later copies are checked against it.
`--sha256` states the expected SHA-256 of any of them instead. A mismatch keeps the file
aside as `<name>.bad-<sha256 prefix>` and names expected and got.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from results.files import write_json_atomic

CHUNK = 1 << 20
RETRIES = 3  # reconnections after a dropped connection, each resuming with a Range request
TIMEOUT_S = 60.0  # of one socket read
DOWNLOADS = ".downloads"  # under the data directory: the LRA release and the manifest


@dataclass(frozen=True)
class Source:
    """One archive: where it comes from, what it is saved as, what it must hash to."""

    name: str
    url: str
    filename: str
    env: str  # the environment variable that names a mirror
    md5: str | None = None  # published checksum (None: recorded at the first download)
    cite: str = ""  # where the checksum is published
    unpack: bool = False  # members are taken out of it (else the readers read it whole)


SOURCES = {
    "lra_release": Source(
        "lra_release",
        "https://storage.googleapis.com/long-range-arena/lra_release.gz",
        "lra_release.gz",
        "LRA_RELEASE_URL",
        unpack=True,
    ),
    "imdb": Source(
        "imdb",
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        "aclImdb_v1.tar.gz",
        "LRA_IMDB_URL",
        md5="7c2ac02c03563afcf9b574c7e56c153a",
        cite="torchtext, torchtext/datasets/imdb.py (MD5)",
    ),
    "cifar10": Source(
        "cifar10",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "LRA_CIFAR10_URL",
        md5="c58f30108f718f92721af3b95e74349a",
        cite="torchvision, torchvision/datasets/cifar.py (CIFAR10.tgz_md5)",
    ),
}
# task -> (its source, the release's folders it reads: where they land in the data directory)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "listops": ("lra_release", ("listops-1000",)),
    "text": ("imdb", ()),
    "retrieval": ("lra_release", ("tsv_data",)),
    "image": ("cifar10", ()),
    "pathfinder": ("lra_release", ("pathfinder32/curv_contour_length_14",)),
    "pathx": ("lra_release", ("pathfinder128/curv_contour_length_14",)),
}


class DownloadError(RuntimeError):
    """A download or an unpacking that cannot go on; the message says what to do."""


def by_hand(source: Source, data_dir: Path) -> str:
    where = data_dir / DOWNLOADS if source.unpack else data_dir
    return f"to download it by hand, save {source.url} as {where / source.filename}"


def url_of(source: Source, override: str | None = None) -> str:
    return override or os.environ.get(source.env) or source.url


# the manifest ---------------------------------------------------------------------------


def _manifest_path(data_dir: Path) -> Path:
    return data_dir / DOWNLOADS / "manifest.json"


def read_manifest(data_dir: Path) -> dict:
    try:
        return json.loads(_manifest_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(data_dir: Path, manifest: dict) -> None:
    write_json_atomic(_manifest_path(data_dir), manifest, sort_keys=False)


def _digests(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


# fetching -------------------------------------------------------------------------------


def _open(url: str, start: int):
    request = urllib.request.Request(url, headers={"User-Agent": "attention-bench lra.data"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def remote_size(url: str) -> int | None:
    """The size the server gives for `url` (a HEAD request), or None."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length is not None else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _unreachable(url: str, exc: Exception, source: Source, data_dir: Path) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        why = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        why = f"cannot connect ({exc.reason})"
    else:
        why = f"{type(exc).__name__}: {exc}"
    return DownloadError(f"{url}: {why}; {by_hand(source, data_dir)}")


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(
            f"{folder}: {needed:,} more bytes are needed and {free:,} are free; free some "
            "space or use another --data-dir"
        )


def fetch(
    url: str,
    dest: Path,
    source: Source,
    data_dir: Path,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> int:
    """Download `url` to `dest` through `dest.part`, resuming what is there; the bytes
    fetched by this call. The part file is left for the next call on any failure."""
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for attempt in range(RETRIES + 1):
        start = part.stat().st_size if part.exists() else 0
        try:
            response = _open(url, start)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start:  # nothing after `start`: the part is whole
                return fetched
            raise _unreachable(url, exc, source, data_dir) from None
        except (urllib.error.URLError, OSError) as exc:
            if attempt < RETRIES and start:
                time.sleep(min(2**attempt, 10))
                continue
            raise _unreachable(url, exc, source, data_dir) from None
        with response:
            resumed = response.status == 206
            if start and not resumed:  # the server ignored the Range: from the start again
                start = 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            if length is not None:
                _check_space(dest.parent, int(length))
            if start:
                say(f"{dest.name}: resuming at byte {start:,}")
            mode = "ab" if start else "wb"
            try:
                with (
                    open(part, mode) as fh,
                    tqdm(
                        total=total,
                        initial=start,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=dest.name,
                        disable=not progress or None,
                        leave=False,
                    ) as bar,
                ):
                    while block := response.read(CHUNK):
                        fh.write(block)
                        fetched += len(block)
                        bar.update(len(block))
                    fh.flush()
                    os.fsync(fh.fileno())
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    needed = (total or 0) - part.stat().st_size
                    raise DownloadError(
                        f"{dest.parent}: the disk is full with {part.stat().st_size:,} bytes "
                        f"of {dest.name} written ({needed:,} more needed); free some space "
                        "and run the same command to resume"
                    ) from None
                if attempt < RETRIES:  # a dropped connection: resume with a Range request
                    continue
                raise _unreachable(url, exc, source, data_dir) from None
        size = part.stat().st_size
        if total is None or size >= total:
            return fetched
        if attempt < RETRIES:  # the server closed early without an error
            continue
    raise DownloadError(
        f"{url}: the connection kept closing early ({part.stat().st_size:,} bytes in "
        f"{part}); run the same command to resume"
    )


def _verify(source: Source, path: Path, data_dir: Path, sha256: str | None, say: Callable) -> dict:
    """Check `path` (the complete part file) against what it must hash to; its record."""
    got_sha, got_md5 = _digests(path)
    recorded = read_manifest(data_dir).get(source.filename, {}).get("sha256")
    if sha256:
        expected, got, kind, why = sha256.lower(), got_sha, "SHA-256", "given with --sha256"
    elif source.md5:
        expected, got, kind, why = source.md5, got_md5, "MD5", f"published by {source.cite}"
    elif recorded:
        expected, got, kind, why = recorded, got_sha, "SHA-256", "recorded at its first download"
    else:
        expected = None
    if expected is not None and got != expected:
        aside = path.with_name(f"{source.filename}.bad-{got_sha[:12]}")
        path.replace(aside)
        raise DownloadError(
            f"{source.filename}: {kind} mismatch: expected {expected} ({why}), got {got}; "
            f"the file is kept aside as {aside}; run the same command to download it again"
        )
    if expected is None:
        say(
            f"{source.filename}: no published checksum; recorded its SHA-256 {got_sha} in "
            f"{_manifest_path(data_dir)}, later copies are checked against it"
        )
    else:
        say(f"{source.filename}: {kind} {got} matches ({why})")
    return {"sha256": got_sha, "md5": got_md5}


def _check_archive(path: Path) -> None:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"\x1f\x8b" and not tarfile.is_tarfile(path):
        raise DownloadError(f"{path}: not a gzip or tar archive (it starts {magic!r})")


def obtain(
    source: Source,
    data_dir: Path,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> tuple[Path, int]:
    """The archive of `source` complete and verified on disk: (its path, bytes fetched now)."""
    folder = data_dir / DOWNLOADS if source.unpack else data_dir
    dest = folder / source.filename
    manifest = read_manifest(data_dir)
    record = manifest.get(source.filename, {})
    if dest.is_file():
        if record.get("stat") == _stat(dest) and (
            not sha256 or record.get("sha256") == sha256.lower()
        ):
            say(f"{source.filename}: already here ({dest}), verified")
            return dest, 0
        part = dest.with_name(dest.name + ".part")  # checked again as a part would be
        dest.replace(part)
        fetched = 0
    else:
        fetched = fetch(url_of(source, url), dest, source, data_dir, progress, say)
        part = dest.with_name(dest.name + ".part")
    digests = _verify(source, part, data_dir, sha256, say)
    try:
        _check_archive(part)
    except DownloadError:
        part.replace(part.with_name(f"{source.filename}.bad-{digests['sha256'][:12]}"))
        raise
    # not results.files.atomic_path, on purpose: the part file outlives a failed run so that
    # the next one resumes it, and only a complete, verified part becomes `dest`
    part.replace(dest)
    manifest = read_manifest(data_dir)
    manifest[source.filename] = {
        **digests,
        "url": url_of(source, url),
        "bytes": dest.stat().st_size,
        "stat": _stat(dest),
    }
    _write_manifest(data_dir, manifest)
    return dest, fetched


# unpacking ------------------------------------------------------------------------------


def _relative(name: str, wanted: Iterable[str]) -> str | None:
    """Where member `name` lands under the data directory, if it lies in a wanted folder
    (found wherever the archive nests it: `lra_release/listops-1000/...` ->
    `listops-1000/...`); None for the members nobody asked for. Absolute paths and `..`
    are refused."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise DownloadError(
            f"refused archive member {name!r}: it would be written outside the data directory"
        )
    parts = path.parts
    for folder in wanted:
        want = PurePosixPath(folder).parts
        for i in range(len(parts) - len(want) + 1):
            if parts[i : i + len(want)] == want:
                return str(PurePosixPath(*parts[i:]))
    return None


def unpack(archive: Path, data_dir: Path, wanted: tuple[str, ...], progress: bool = True) -> dict:
    """Stream through `archive` once and write the members under the `wanted` folders into
    the data directory: each folder through a temporary one, swapped in at the end, so an
    interrupted or refused unpacking leaves none half-written. Member counts per folder."""
    from tqdm import tqdm

    staging = data_dir / DOWNLOADS / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    counts = dict.fromkeys(wanted, 0)
    try:
        with (
            tarfile.open(archive, "r|*") as tar,
            tqdm(
                desc=f"unpacking {archive.name}",
                unit=" members",
                disable=not progress or None,
                leave=False,
            ) as bar,
        ):
            for member in tar:
                bar.update(1)
                relative = _relative(member.name, wanted)
                if relative is None or not member.isfile():
                    continue
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                folder = next(f for f in wanted if relative.startswith(f + "/") or relative == f)
                counts[folder] += 1
        empty = [f for f, n in counts.items() if n == 0]
        if empty:
            raise DownloadError(
                f"{archive}: has no members under {', '.join(f + '/' for f in empty)}"
            )
        for folder in wanted:  # one pass through the archive filled them all in `staging`
            final = data_dir / folder
            if final.exists():
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            (staging / folder).replace(final)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(
            f"{archive}: cannot be unpacked ({exc}); it is not a readable tar archive"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


# the command ----------------------------------------------------------------------------


def plan(tasks: list[str]) -> dict[str, tuple[str, ...]]:
    """source name -> the release folders the tasks need from it, in SOURCES order."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"download knows {sorted(TASKS)}; not {unknown}")
    needed: dict[str, tuple[str, ...]] = {}
    for task in tasks:
        name, folders = TASKS[task]
        needed[name] = tuple(dict.fromkeys([*needed.get(name, ()), *folders]))
    return {name: needed[name] for name in SOURCES if name in needed}


def download(
    tasks: list[str],
    data_dir: Path,
    url: str | None = None,
    sha256: str | None = None,
    dry_run: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, int]:
    """Fetch, verify and unpack what `tasks` need; bytes fetched per source."""
    needed = plan(tasks)
    if (url or sha256) and len(needed) > 1:
        raise ValueError(
            f"--url and --sha256 name one archive, and {', '.join(tasks)} need "
            f"{len(needed)} ({', '.join(SOURCES[n].filename for n in needed)}): ask for "
            "the tasks of one archive"
        )
    fetched = {}
    for name, folders in needed.items():
        source = SOURCES[name]
        where = url_of(source, url)
        if dry_run:
            folder = data_dir / DOWNLOADS if source.unpack else data_dir
            here = (folder / source.filename).is_file()
            size = None if here else remote_size(where)
            shown = "already here" if here else (f"{size / 1e9:.2f} GB" if size else "size unknown")
            part = folder / f"{source.filename}.part"
            if not here and part.exists():
                shown += f", {part.stat().st_size:,} bytes of it in {part.name}"
            unpacked = f"; unpack {', '.join(f + '/' for f in folders)}" if folders else ""
            say(f"{source.filename}: {where} ({shown}){unpacked}")
            continue
        path, fetched[name] = obtain(source, data_dir, url, sha256, progress, say)
        if folders:
            missing = [f for f in folders if not (data_dir / f).is_dir()]
            if missing:
                counts = unpack(path, data_dir, tuple(missing), progress)
                for folder, count in counts.items():
                    say(f"{folder}/: {count:,} files from {path.name}")
            else:
                say(f"{', '.join(f + '/' for f in folders)}: already unpacked")
    return fetched
