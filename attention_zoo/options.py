"""Mechanism options written as text: the one grammar of every command that takes them.

    parse_value("32", default=4)           # 32
    parse_value("1", default=1.0)          # 1.0 (a float option)
    parse_value("reference", default="fused")
    parse_value("[0.9, 0.98]")             # [0.9, 0.98] (no default: as TOML reads it)

Used by `python -m attention_zoo.check NAME --option NAME=VALUE`, the sweep's `--option
METHOD.NAME=V1,V2` (each of V1, V2), and the LRA runner's and the grid's `--set
methods.METHOD.NAME=VALUE` (and every other `--set` value). The rules:
- the text is read as a TOML value (`4`, `0.1`, `1e-3`, `true`, `"text"`, `[1, 2]`); a bare
  word that is not one (`reference`) is that string;
- an option with a default takes the default's kind: an integer for an int, any number for a
  float (`eps=1` is 1.0), true or false (or 1 or 0) for a bool, the text as written for a
  string (`impl=1` is "1"); a value of another kind is a ValueError saying what was expected.
The same typing applies to the options a profile's TOML gives (`typed`), so an option has one
type whichever way it was given.
"""

from __future__ import annotations

import tomllib


def parse_value(raw: str, default: object = None) -> object:
    """The value option text `raw` stands for, typed as `default` when there is one."""
    text = raw.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string
    return typed(value, default, text)


def typed(value: object, default: object, text: str | None = None) -> object:
    """`value` as the kind of `default` (unchanged where the default is None or another kind);
    ValueError where it cannot be. `text`: how it was written, for a string option."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if is_number and value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(default, int):
        if is_number and isinstance(value, int):
            return value
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(default, float):
        if is_number:
            return float(value)
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        return text if text is not None else str(value)
    return value
