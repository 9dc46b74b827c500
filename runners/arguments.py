"""What every runner's command line shares: `--import` of plugins that are not installed,
lists of names where `all` means every one, lists of lengths, the parser the grid checks a
runner's arguments with, and the exit code of a run stopped by a signal.

    parse_names("softmax,lotformer", zoo.names(), "methods")   # ['softmax', 'lotformer']
    parse_names("all", lra.names(), "tasks")                   # every registered task
"""

from __future__ import annotations

import argparse
import math
import signal
from collections.abc import Sequence

# a runner stopped by a signal checkpoints and exits with this (128 + SIGTERM, as a shell
# reports it); the grid's job reads it as "interrupted", not "failed"
INTERRUPTED_EXIT = 128 + signal.SIGTERM


def parse_names(
    text: str, known: list[str], what: str, every: list[str] | None = None
) -> list[str]:
    """The names in comma list `text` (`all`: every one of `every`, default `known`);
    ValueError naming the unknown ones and what exists."""
    if text == "all":
        return list(known if every is None else every)
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(
            f"--{what}: unknown {unknown or text!r}; expected 'all' or some of {known}"
        )
    return names


def parse_lengths(text: str) -> list[int]:
    """'512:4096' -> the powers of two from 512 to 4096; '100,200' -> [100, 200]."""
    try:
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            if not 1 <= lo <= hi:
                raise ValueError
            lengths = [2**p for p in range(math.ceil(math.log2(lo)), int(math.log2(hi)) + 1)]
        else:
            lengths = sorted({int(x) for x in text.split(",")})
    except ValueError:
        raise ValueError(
            f"--lengths must be LO:HI or a comma list of integers, got {text!r}"
        ) from None
    if not lengths or lengths[0] < 1:
        raise ValueError(f"--lengths {text!r} names no length >= 1")
    return lengths


def add_import_option(parser: argparse.ArgumentParser) -> None:
    """`--import MODULE_OR_FILE` (attention_zoo.plugins'; imported here only when called, so
    that the grid's jobs, which import this module for INTERRUPTED_EXIT, stay light)."""
    from attention_zoo.plugins import add_import_option as add

    add(parser)


def load_imports(specs: Sequence[str]) -> None:
    """Import each of `specs` (attention_zoo.import_plugin); ValueError naming a missing one,
    or one whose import raises, with its cause."""
    from attention_zoo import import_plugin  # here: see add_import_option

    for spec in specs:
        try:
            import_plugin(spec)
        except ValueError:
            raise
        except Exception as exc:  # the plugin's own failure, named with its cause
            raise ValueError(
                f"--import {spec}: its import failed: {type(exc).__name__}: {exc}"
            ) from exc


def parse_command(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """A runner's arguments, its `--import`s loaded before any work starts: a bad one is a
    usage error of `parser` (an exit, or a ValueError from a RaisingParser)."""
    args = parser.parse_args(argv)
    try:
        load_imports(args.imports)
    except ValueError as exc:
        parser.error(str(exc))
    return args


class RaisingParser(argparse.ArgumentParser):
    """A parser whose usage errors raise ValueError("PROG: message") instead of exiting: the
    grid checks a runner's arguments in its own process, as each of its jobs will parse them."""

    def error(self, message: str):  # type: ignore[override]
        raise ValueError(f"{self.prog}: {message}")
