"""LRA training profiles: TOML files in runners/lra/profiles/, layered, overridden, checked.

    profile = load_profile("paper")                      # or a path to a .toml file
    cfg = resolve(profile, "listops", "lotformer", ["train.steps=100"])
    cfg["train"]["batch"], cfg["method_options"], config_hash(cfg)

A profile has [model], [optim], [train] and [methods.<method>] sections, and
[tasks.<task>.<section>] / [tasks.<task>.methods.<method>] for one task's values;
`include = "paper.toml"` starts from another profile. The value for a (task, method) is,
later winning: the sections, the task's sections, then `--set KEY=VALUE` overrides
(`train.steps=100` for every task, `tasks.image.optim.lr=1e-3` for one). Every value is
checked before any training starts, and a bad one is a ConfigError naming its key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import attention_zoo as zoo
import lra

PROFILES = Path(__file__).resolve().parent / "profiles"
SECTIONS = ("model", "optim", "train")


class ConfigError(ValueError):
    """A profile or override that cannot be used; the message names the key."""


def _int(lo: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _real(lo: float, hi: float = float("inf"), open_lo: bool = False) -> Callable:
    def check(v: object) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return (v > lo if open_lo else v >= lo) and v < hi

    return check


def _choice(*options: str) -> Callable[[object], bool]:
    return lambda v: v in options


# key -> (check, what a good value is)
SPEC: dict[str, tuple[Callable[[object], bool], str]] = {
    "model.layers": (_int(1), "an integer >= 1"),
    "model.width": (_int(1), "an integer >= 1, a multiple of model.heads"),
    "model.heads": (_int(1), "an integer >= 1"),
    "model.ffn": (_int(1), "an integer >= 1"),
    "model.dropout": (_real(0.0, 1.0), "a number in [0, 1)"),
    "model.pooling": (_choice("mean", "cls"), "'mean' or 'cls'"),
    "optim.lr": (_real(0.0, open_lo=True), "a number > 0"),
    "optim.betas": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(_real(0.0, 1.0)(b) for b in v),
        "two numbers in [0, 1), e.g. [0.9, 0.98]",
    ),
    "optim.adam_eps": (_real(0.0, open_lo=True), "a number > 0"),
    "optim.weight_decay": (_real(0.0), "a number >= 0"),
    "optim.clip_norm": (_real(0.0), "a number >= 0 (0 = no clipping)"),
    "optim.warmup": (_int(0), "an integer >= 0"),
    "optim.schedule": (_choice("cosine", "linear", "constant"), "cosine, linear or constant"),
    "train.batch": (_int(1), "an integer >= 1"),
    "train.steps": (_int(1), "an integer >= 1"),
    "train.eval_every": (_int(1), "an integer >= 1"),
    "train.eval_examples": (_int(0), "an integer >= 0 (0 = the whole split)"),
    "train.amp": (_choice("bf16", "none"), "'bf16' or 'none'"),
    "train.length": (_int(0), "an integer >= 0 (0 = the task's length)"),
    "train.stop_at": (_real(0.0, 1.0 + 1e-9), "a validation accuracy in [0, 1]; 0 = never"),
    "train.diagnostics": (lambda v: isinstance(v, bool), "true or false"),
}
# keys a profile may leave out: absent, they are absent from the configuration too (the
# code reads their default), so that adding one leaves every earlier run's hash as it was
OPTIONAL = {"train.stop_at": 0, "train.diagnostics": False}
# keys that change what a run records, not what it trains (runners/lra/diagnostics.py): a
# run's identity leaves them out, so turning one on does not make a finished run new
UNRECORDED_IN_HASH = ("train.diagnostics",)
# [data] (usually per task): the parameters that make the task's data, declared by the task
# (`lra.task(name).data_params`, checked by its `check_data`). For a task read from disk
# they are the generator parameters its data must have been made with (`python -m lra.data
# generate`, which records them beside the files), and a run on other data is refused before
# training; a profile that sets none (paper, smoke) takes the data as it finds it, and its
# configurations carry no data section. A task made in memory (recall) is made from them.


def profile_names() -> list[str]:
    """The profiles shipped in runners/lra/profiles/."""
    return sorted(p.stem for p in PROFILES.glob("*.toml"))


def _merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profile(name_or_path: str | Path, _seen: tuple = ()) -> dict:
    """A profile by name (runners/lra/profiles/<name>.toml) or path, its `include` merged in:
    `include = "paper"` names a shipped profile, `include = "base.toml"` a file beside it."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PROFILES / f"{name_or_path}.toml"
        if not path.is_file():
            raise ConfigError(
                f"unknown profile {name_or_path!r}; expected one of {profile_names()} "
                "or a path to a .toml file"
            )
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: include loop through {[str(p) for p in _seen]}")
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read profile {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    include = data.pop("include", None)
    if include is not None:  # a shipped profile by name ("paper"), or a file beside this one
        where = include if Path(include).suffix != ".toml" else path.parent / include
        base = load_profile(where, (*_seen, path.resolve()))
        data = _merge({k: v for k, v in base.items() if k != "name"}, data)
    return data


def parse_override(item: str) -> tuple[list[str], object]:
    """'train.steps=100' -> (['train', 'steps'], 100); values are TOML (strings may be bare)."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set must look like SECTION.KEY=VALUE, got {item!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: a string
    return parts, value


def _nest(parts: list[str], value: object) -> dict:
    out: dict = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def resolve(profile: dict, task: str, method: str, overrides: Sequence[str] = ()) -> dict:
    """The configuration of one (task, method) run, checked; ConfigError names a bad key."""
    unknown = set(profile) - {"name", "description", *SECTIONS, "data", "methods", "tasks"}
    if unknown:
        raise ConfigError(
            f"profile {profile.get('name', '?')!r}: unknown top-level key(s) {sorted(unknown)}; "
            f"expected description, {', '.join(SECTIONS)}, data, methods, tasks"
        )
    cfg = {s: dict(profile.get(s, {})) for s in (*SECTIONS, "data")}
    methods = {m: dict(o) for m, o in profile.get("methods", {}).items()}
    file_tasks = profile.get("tasks", {})
    plain, own = [], []  # --set SECTION.KEY, then --set tasks.<task>.SECTION.KEY: specific wins
    for item in overrides:
        parts, value = parse_override(item)
        if parts[0] != "tasks":
            plain.append((item, parts, value))
        elif len(parts) >= 4 and parts[1] == task:
            own.append((item, parts[2:], value))
        elif len(parts) < 4 or parts[1] not in lra.names():
            raise ConfigError(
                f"--set {item!r}: expected tasks.TASK.SECTION.KEY=VALUE, TASK one of {lra.names()}"
            )
    layers = [("--set", plain), ("--set", own)]
    layers.insert(0, (f"tasks.{task}", _flatten(file_tasks.get(task, {}))))
    for where, items in layers:
        for item, parts, value in items:
            if parts[0] in (*SECTIONS, "data") and len(parts) == 2:
                cfg[parts[0]][parts[1]] = value
            elif parts[0] == "methods" and len(parts) == 3:
                methods.setdefault(parts[1], {})[parts[2]] = value
            else:
                raise ConfigError(
                    f"{where} {item!r}: expected SECTION.KEY with SECTION one of "
                    f"{[*SECTIONS, 'data']}, methods.METHOD.OPTION or tasks.TASK.SECTION.KEY"
                )
    _check(cfg, task)
    options = _method_options(methods, method, cfg["model"])
    data = cfg.pop("data")
    return {
        "profile": profile.get("name", "?"),
        "task": task,
        "method": method,
        **cfg,
        **({"data": data} if data else {}),  # absent when unset: older hashes stay the same
        "method_options": options,
    }


def _flatten(tree: dict, prefix: tuple = ()) -> list[tuple[str, list[str], object]]:
    """{'train': {'batch': 8}} -> [('train.batch', ['train', 'batch'], 8)]."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and len(prefix) < 2:
            out += _flatten(value, (*prefix, key))
        else:
            parts = [*prefix, key]
            out.append((".".join(parts), parts, value))
    return out


def _check(cfg: dict, task: str) -> None:
    try:  # the task checks its data's parameters (a task made in memory fills in defaults)
        cfg["data"] = lra.task(task).check_data(cfg["data"])
    except ValueError as exc:
        raise ConfigError(f"tasks.{task}.{exc}") from None
    for section in SECTIONS:
        for key, value in cfg[section].items():
            name = f"{section}.{key}"
            if name not in SPEC:
                known = [k for k in SPEC if k.startswith(section + ".")]
                raise ConfigError(f"{name}: unknown key; {section} has {known}")
            check, expected = SPEC[name]
            if not check(value):
                raise ConfigError(f"{name} = {value!r}: expected {expected}")
    missing = [k for k in SPEC if k not in OPTIONAL and k.split(".")[1] not in cfg[k.split(".")[0]]]
    if missing:
        raise ConfigError(f"the profile does not set {missing}")
    if cfg["model"]["width"] % cfg["model"]["heads"]:
        raise ConfigError(
            f"model.width = {cfg['model']['width']} is not a multiple of "
            f"model.heads = {cfg['model']['heads']}"
        )


def _method_options(methods: dict, method: str, model: dict) -> dict:
    """The options the mechanism runs with (its defaults + the profile's), checked by the zoo."""
    for name in methods:
        if name not in zoo.names():
            raise ConfigError(f"methods.{name}: unknown attention; expected one of {zoo.names()}")
    given = methods.get(method, {})
    try:
        attn = zoo.create(
            method, heads=model["heads"], head_dim=model["width"] // model["heads"], **given
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"methods.{method}: {exc}") from None
    if attn.timing_only:
        raise ConfigError(
            f"methods.{method}: {given} selects a timing reference for the sweep, not an "
            "attention; it cannot be trained"
        )
    return {**zoo.info(method).defaults, **given}


def identity(cfg: dict) -> dict:
    """What makes a run the run it is: the configuration less UNRECORDED_IN_HASH (the
    configs/<hash>.json beside the rows holds it)."""
    kept = copy.deepcopy(cfg)
    for key in UNRECORDED_IN_HASH:
        section, name = key.split(".")
        kept.get(section, {}).pop(name, None)
    return kept


def config_hash(cfg: dict) -> str:
    """Identity of a run's configuration (seed apart): 12 hex digits of `identity`."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:12]
