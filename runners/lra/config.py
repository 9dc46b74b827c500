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
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import attention_zoo as zoo
import lra
from attention_zoo.options import parse_value, typed
from lra.models import ModelConfig

PROFILES = Path(__file__).resolve().parent / "profiles"


class ConfigError(ValueError):
    """A profile or override that cannot be used; the message names the key."""


@dataclass(frozen=True)
class OptimConfig:
    """A profile's [optim]: AdamW, linear warm-up, then `schedule` decay to 0 at the last step."""

    lr: float = field(default=1e-4, metadata={"above": 0.0})
    betas: tuple[float, float] = field(
        default=(0.9, 0.98), metadata={"lowest": 0.0, "below": 1.0, "help": "e.g. [0.9, 0.98]"}
    )
    adam_eps: float = field(default=1e-6, metadata={"above": 0.0})
    weight_decay: float = field(default=0.01, metadata={"lowest": 0.0})
    clip_norm: float = field(default=1.0, metadata={"lowest": 0.0, "help": "0 = no clipping"})
    warmup: int = field(default=5000, metadata={"lowest": 0})
    schedule: str = field(default="cosine", metadata={"choices": ("cosine", "linear", "constant")})


@dataclass(frozen=True)
class TrainConfig:
    """A profile's [train]: batches, steps, validation, precision and when to stop."""

    batch: int = field(default=32, metadata={"lowest": 1})
    steps: int = field(default=50000, metadata={"lowest": 1})
    eval_every: int = field(default=1000, metadata={"lowest": 1})
    eval_examples: int = field(default=0, metadata={"lowest": 0, "help": "0 = the whole split"})
    amp: str = field(default="bf16", metadata={"choices": ("bf16", "none")})
    length: int = field(default=0, metadata={"lowest": 0, "help": "0 = the task's length"})
    stop_at: float = field(
        default=0.0,
        metadata={"lowest": 0.0, "at_most": 1.0, "help": "a validation accuracy; 0 = never"},
    )
    # attention diagnostics at every validation (runners/lra/diagnostics.py)
    diagnostics: bool = False


# a profile's sections, each declared once: its keys, types, defaults and limits
SCHEMA: dict[str, type] = {"model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}
SECTIONS = tuple(SCHEMA)


@dataclass(frozen=True)
class Key:
    """One profile key, read off its section's dataclass field: the value's type, default and
    limits (metadata `lowest` >=, `above` >, `below` <, `at_most` <=, `choices`, `help`)."""

    name: str
    kind: object
    default: object
    lowest: float | None = None
    above: float | None = None
    below: float | None = None
    at_most: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def accepts(self, value: object) -> bool:
        if self.choices:
            return value in self.choices
        if self.kind is bool:
            return isinstance(value, bool)
        if typing.get_origin(self.kind) is tuple:  # a fixed number of numbers
            size = len(typing.get_args(self.kind))
            return (
                isinstance(value, list | tuple)
                and len(value) == size
                and all(self._number(v, float) for v in value)
            )
        return self._number(value, self.kind)

    def _number(self, value: object, kind: object) -> bool:
        allowed = int if kind is int else int | float
        if isinstance(value, bool) or not isinstance(value, allowed):
            return False
        return not (
            (self.lowest is not None and value < self.lowest)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
            or (self.at_most is not None and value > self.at_most)
        )

    def expected(self) -> str:
        """What a good value is, in words ("an integer >= 1", "a number in [0, 1)")."""
        if self.choices:
            *most, last = [repr(c) for c in self.choices]
            words = f"{', '.join(most)} or {last}" if most else last
        elif self.kind is bool:
            words = "true or false"
        else:
            lo = self.lowest if self.lowest is not None else self.above
            hi = self.below if self.below is not None else self.at_most
            if lo is not None and hi is not None:
                shut = "[" if self.lowest is not None else "("
                limit = f" in {shut}{lo:g}, {hi:g}{')' if self.below is not None else ']'}"
            elif lo is not None:
                limit = f" {'>=' if self.lowest is not None else '>'} {lo:g}"
            else:
                limit = ""
            if typing.get_origin(self.kind) is tuple:
                words = f"{len(typing.get_args(self.kind))} numbers{limit}"
            else:
                words = ("an integer" if self.kind is int else "a number") + limit
        return f"{words} ({self.help})" if self.help else words


def _keys() -> dict[str, Key]:
    out = {}
    for section, cls in SCHEMA.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            name = f"{section}.{f.name}"
            out[name] = Key(name, hints[f.name], f.default, **f.metadata)
    return out


SPEC: dict[str, Key] = _keys()
# keys that change what a run records, not what it trains (runners/lra/diagnostics.py): a
# run's identity leaves them out, so turning one on does not make a finished run new
UNRECORDED_IN_HASH = ("train.diagnostics",)
# The keys every run's identity carried before keys at their default were left out of it
# (2026-12-07). They stay in it whatever their value, so that every earlier run keeps its hash.
# Frozen: a key declared later (a profile key, a mechanism's option, a task's data parameter)
# enters a run's identity only when its value differs from its default, so adding a key with a
# default changes no run's hash (tests/runners/lra/test_identity.py).
ALWAYS_IN_HASH = {
    "model": ("layers", "width", "heads", "ffn", "dropout", "pooling"),
    "optim": ("lr", "betas", "adam_eps", "weight_decay", "clip_norm", "warmup", "schedule"),
    "train": ("batch", "steps", "eval_every", "eval_examples", "amp", "length"),
    "method_options": {
        "flash": ("use_flash_attn_package",),
        "lotformer": ("r", "eps", "iters", "cls_tokens", "impl", "compiled"),
        "performer": ("nb_features", "seed", "redraw_interval", "stabilizer"),
        "sinkformer": ("iters", "eps", "impl", "streaming_from"),
    },
    "data": {
        "recall": ("pairs", "keys", "values", "distractors", "seed", "train", "val", "test"),
        "listops": ("count", "seed", "max_length", "min_length"),
        "pathfinder": ("count", "seed", "level"),
        "pathx": ("count", "seed", "level"),
    },
}
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
    """'train.steps=100' -> (['train', 'steps'], 100); values are read as attention_zoo.options
    reads them (TOML; a bare word is a string), a mechanism's option later typed by its default."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set must look like SECTION.KEY=VALUE, got {item!r}")
    return parts, parse_value(raw)


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
            if not SPEC[name].accepts(value):
                raise ConfigError(f"{name} = {value!r}: expected {SPEC[name].expected()}")
        for name, key in SPEC.items():  # a key the profile leaves out has its default
            if name.startswith(section + "."):
                cfg[section].setdefault(name.split(".")[1], copy.deepcopy(key.default))
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
    defaults, given = zoo.info(method).defaults, {}
    for key, value in methods.get(method, {}).items():  # typed as attention_zoo.options says
        try:
            given[key] = typed(value, defaults.get(key))
        except ValueError as exc:
            raise ConfigError(f"methods.{method}.{key} = {value!r}: {exc}") from None
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
    return {**defaults, **given}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _defaults(cfg: dict, part: str) -> dict:
    """The declared defaults of a configuration's `part`: a section, the options or the data."""
    if part == "method_options":
        return zoo.info(cfg["method"]).defaults
    if part == "data":
        return {p.name: p.default for p in lra.task(cfg["task"]).data_params}
    return {name.split(".")[1]: key.default for name, key in SPEC.items() if name.startswith(part)}


def identity(cfg: dict) -> dict:
    """What makes a run the run it is (the configs/<hash>.json beside the rows holds it): the
    configuration less UNRECORDED_IN_HASH and less every key outside ALWAYS_IN_HASH that is
    at its declared default."""
    kept = copy.deepcopy(cfg)
    for part in (*SECTIONS, "method_options", "data"):
        if part not in kept:
            continue
        always = ALWAYS_IN_HASH[part]
        if part in ("method_options", "data"):
            always = always.get(cfg["method" if part == "method_options" else "task"], ())
        defaults = _defaults(cfg, part)
        for key in list(kept[part]):
            unrecorded = f"{part}.{key}" in UNRECORDED_IN_HASH
            at_default = key in defaults and _plain(kept[part][key]) == _plain(defaults[key])
            if unrecorded or (key not in always and at_default):
                del kept[part][key]
    return kept


def config_hash(cfg: dict) -> str:
    """Identity of a run's configuration (seed apart): 12 hex digits of `identity`."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:12]
