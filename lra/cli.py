"""`python -m lra.data`: the command line of the LRA data (the library is lra.data,
lra.download and lra.generators; only this module parses and reports).

    python -m lra.data status                      # each task: present or how to get it
    python -m lra.data prepare listops             # read + cache all splits (or: all)
    python -m lra.data download listops            # fetch, verify, unpack, cache
    python -m lra.data generate listops --seed 0   # synthetic tasks, offline
    python -m lra.data --data-dir data/mini generate pathfinder --count 20000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import lra
from lra import download, generators
from lra.data import prepare, resolve_data_dir, status
from lra.registry import Param, names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lra.data",
        description="LRA data: status of every task, preparing the caches, generating the "
        "synthetic tasks offline.",
    )
    data_dir_help = "data directory (default $LRA_DATA_DIR, else ./data)"
    parser.add_argument("--data-dir", help=data_dir_help)
    # the same option after the subcommand: `generate listops --data-dir D` as `--data-dir D
    # generate listops` (SUPPRESS: given there only, it does not reset the one given before)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "status", parents=[common], help="list every task as present or missing (and how to get it)"
    )
    prep = sub.add_parser(
        "prepare", parents=[common], help="read the sources and cache every split"
    )
    prep.add_argument("task", choices=[*names(), "all"])
    down = sub.add_parser(
        "download",
        parents=[common],
        help="fetch a task's sources from their official locations (resumable, checksummed), "
        "unpack what it reads, and cache it",
        description="Fetch, verify and unpack the sources of TASK (or all): the LRA release "
        "for listops, retrieval, pathfinder and pathx (only the folders they read are "
        "unpacked), IMDb for text, CIFAR-10 for image. An interrupted download resumes.",
    )
    down.add_argument("task", choices=[*download.TASKS, "all"])
    down.add_argument(
        "--url",
        help="fetch from this mirror instead (or set "
        + ", ".join(f"${s.env}" for s in download.SOURCES.values())
        + ")",
    )
    down.add_argument(
        "--sha256", help="the SHA-256 the archive must have (instead of the known checksum)"
    )
    down.add_argument(
        "--dry-run", action="store_true", help="list what would be fetched, with sizes"
    )
    gen = sub.add_parser(
        "generate",
        help="generate a synthetic task in the release layout (offline, seeded)",
        description="Generate a task's sources offline in the release's layout, and record "
        "the parameters beside them (generated.json). `generate TASK --help` lists TASK's.",
    )
    per_task = gen.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in generators.names():
        params = lra.task(name).data_params
        one = per_task.add_parser(name, parents=[common], help=f"{name}: " + ", ".join(
            p.flag for p in params))  # fmt: skip
        for p in params:
            default = f" (default {p.default})" if p.default is not None else ""
            one.add_argument(
                p.flag,
                dest=p.name,
                type=p.kind,
                choices=p.choices or None,
                default=None,
                help=p.help + ("" if "default" in p.help else default),
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    root = resolve_data_dir(args.data_dir)
    if args.command == "status":
        print(f"data directory: {root.resolve()}")
        print("\n".join(status(root)))
        return 0
    if args.command == "download":
        return _download(args, parser, root)
    if args.command == "generate":
        given = {p.name: getattr(args, p.name) for p in lra.task(args.task).data_params}
        try:
            generators.generate(args.task, root, given)
        except ValueError as exc:  # data.count = 2: must be ... -> --count 2: must be ...
            name, _, why = str(exc).removeprefix("data.").partition(" ")
            flag = Param(name, None, "").flag if why.startswith("=") else None
            parser.error(f"{flag} {why.removeprefix('= ')}" if flag else str(exc))
        return 0
    return prepare(names() if args.task == "all" else [args.task], root)


def _download(args: argparse.Namespace, parser: argparse.ArgumentParser, root: Path) -> int:
    """`download`: fetch into `root`, then read and cache every split, as `prepare` does."""
    tasks = list(download.TASKS) if args.task == "all" else [args.task]
    try:
        fetched = download.download(tasks, root, args.url, args.sha256, args.dry_run)
    except ValueError as exc:
        parser.error(str(exc))
    except download.DownloadError as exc:
        print(f"download: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ndownload: interrupted; the part file stays, and the same command resumes",
            file=sys.stderr,
        )
        return 130
    if args.dry_run:
        return 0
    print(f"fetched {sum(fetched.values()):,} bytes")
    return prepare(tasks, root)
