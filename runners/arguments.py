"""What every runner's command line shares: lists of names where `all` means every one,
and the exit code of a run stopped by a signal.

    parse_names("softmax,lotformer", zoo.names(), "methods")   # ['softmax', 'lotformer']
    parse_names("all", lra.names(), "tasks")                   # every registered task
"""

from __future__ import annotations

import signal

# a runner stopped by a signal checkpoints and exits with this (128 + SIGTERM, as a shell
# reports it); the grid's job reads it as "interrupted", not "failed"
INTERRUPTED_EXIT = 128 + signal.SIGTERM


def parse_names(text: str, known: list[str], what: str) -> list[str]:
    """The names in comma list `text` (`all`: every one of `known`); ValueError naming the
    unknown ones and what exists."""
    if text == "all":
        return list(known)
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(
            f"--{what}: unknown {unknown or text!r}; expected 'all' or some of {known}"
        )
    return names
