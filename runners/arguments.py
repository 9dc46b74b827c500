"""What every runner's command line shares: lists of names where `all` means every one.

parse_names("softmax,lotformer", zoo.names(), "methods")   # ['softmax', 'lotformer']
parse_names("all", lra.names(), "tasks")                   # every registered task
"""

from __future__ import annotations


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
