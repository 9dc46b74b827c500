"""Reading the parquet tables and cutting them into the settings a figure or table shows.

    rows = read_results(Path("results/sweep"))
    for slug, part in settings(rows, SWEEP_SETTING):   # one figure per device/dtype/shape
        ...

Reports read parquet and nothing else: no import from the runners; the columns they read
are checked against results/schema.py, the contract the runners write with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from results import schema

# published numbers shown beside ours (reports/reference/*.csv)
REFERENCE = Path(__file__).resolve().parent / "reference"

# what makes two measurements comparable: one figure or table per value of these columns
SWEEP_SETTING = ["device", "device_name", "dtype", "batch", "heads", "head_dim"]
EFFICIENCY_SETTING = ["device", "device_name", "task", "batch", "amp", "profile"]


# the columns the reports use, per folder under results/ (their types: results/schema.py);
# a part without one of them is left out, and the build says which file and which column
NEEDED = {
    "sweep": [
        *SWEEP_SETTING,
        *("measured_at", "method", "method_options", "seq_len", "pass", "time_ms"),
        *("peak_mem_bytes", "status"),
    ],
    "lra": [
        *("task", "method", "seed", "profile", "config_hash", "split", "accuracy"),
        *("majority_accuracy", "status", "finished_at"),
    ],
    "lra_curves": [
        *("task", "method", "seed", "profile", "config_hash", "step", "train_loss"),
        "val_accuracy",
    ],
    "lra_efficiency": [
        *EFFICIENCY_SETTING,
        *("measured_at", "method", "seq_len", "steps_per_s", "peak_mem_bytes", "status"),
    ],
}
NEEDED["lra_ablation"] = [*NEEDED["lra"], "overrides"]
NEEDED["lra_ablation_curves"] = NEEDED["lra_curves"]
NEEDED["recall"] = [*NEEDED["lra"], "data_params", "overrides", "steps", "train_seconds"]
NEEDED["recall_curves"] = NEEDED["lra_curves"]


def task_order(rows: pd.DataFrame) -> list[str]:
    """The tasks of `rows` in their declared order (the `task_order` the runner wrote from
    the task); a task without one (a plugin that declares none, or rows from before the
    column) after them, by name. Nothing is dropped."""
    if rows.empty:
        return []
    declared = rows.groupby("task")["task_order"].max() if "task_order" in rows else {}
    tasks = sorted(set(rows["task"]))
    missing = [t for t in tasks if pd.isna(declared.get(t, None))]
    return sorted((t for t in tasks if t not in missing), key=lambda t: (declared[t], t)) + missing


def read_results(folder: Path, problems: list[str] | None = None) -> pd.DataFrame:
    """Every row of the parquet parts in `folder` (hidden temporaries skipped); empty if none.

    A part that is not readable parquet, or lacks a column the reports use (`NEEDED`), is left
    out; a line naming it goes to `problems` (to stderr when that is None)."""
    return schema.read_results(folder, NEEDED.get(Path(folder).name, ()), problems=problems)


def slug(*values: object) -> str:
    """A file-name-safe name: ('NVIDIA H100 80GB', 'bf16') -> 'nvidia-h100-80gb-bf16'."""
    return re.sub(r"[^a-z0-9]+", "-", " ".join(map(str, values)).lower()).strip("-")


def settings(rows: pd.DataFrame, keys: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """(slug, rows) per distinct value of `keys`, in a stable order."""
    if rows.empty:
        return
    for values, part in rows.groupby(keys, sort=True, dropna=False):
        yield slug(*values), part


def latest(rows: pd.DataFrame, cell: list[str], time_column: str = "measured_at") -> pd.DataFrame:
    """The most recent row of each cell (a re-run replaces an older measurement)."""
    return rows.sort_values(time_column, kind="stable").drop_duplicates(cell, keep="last")


def current_curves(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The curve points of the configuration each accuracy cell shows.

    That is the latest finished configuration per (profile, task, method) in `runs` (the LRA
    rows); a run with no row yet (interrupted) shows its configuration with the most steps."""
    if curves.empty:
        return curves
    shown = {}
    if not runs.empty:
        last = latest(runs, ["profile", "task", "method"], "finished_at")
        shown = {
            (p, t, m): h
            for p, t, m, h in zip(
                last["profile"], last["task"], last["method"], last["config_hash"], strict=True
            )
        }
    keep = []
    for key, group in curves.groupby(["profile", "task", "method"], sort=True):
        config = shown.get(key)
        if config not in set(group["config_hash"]):
            config = group.groupby("config_hash")["step"].max().idxmax()
        keep.append(group[group["config_hash"] == config])
    return pd.concat(keep, ignore_index=True)


def variant_label(overrides: object) -> str:
    """The `--set` items an ablation run was given, shortened: '["methods.lotformer.r=32",
    "model.pooling=cls"]' -> 'r=32, pooling=cls'; none (or unknown) -> ''."""
    if not isinstance(overrides, str) or not overrides:
        return ""
    short = [  # methods.M.OPTION -> OPTION, SECTION.KEY -> KEY
        item.split(".", 2 if item.startswith("methods.") else 1)[-1]
        for item in json.loads(overrides)
    ]
    return ", ".join(short)


def ablation_curves(
    ablation: pd.DataFrame, ablation_points: pd.DataFrame, rows: pd.DataFrame, points: pd.DataFrame
) -> pd.DataFrame:
    """The curve points of every finished ablation run, `method` renamed to its variant
    ('lotformer [cls_tokens=1]'), beside the curves of the same mechanisms and softmax at
    their profile's settings (named by the mechanism alone, so they keep its style)."""
    if ablation.empty or ablation_points.empty:
        return ablation_points.iloc[:0]
    columns = ("profile", "config_hash", "method", "overrides")
    names = {
        (p, h): f"{m} [{variant_label(o)}]"
        for p, h, m, o in zip(*(ablation[c] for c in columns), strict=True)
    }
    keys = zip(ablation_points["profile"], ablation_points["config_hash"], strict=True)
    variants = ablation_points.assign(method=[names.get(k) for k in keys]).dropna(subset="method")
    base = current_curves(points, rows)
    if len(base):
        wanted = set(zip(ablation["profile"], ablation["method"], strict=True))
        wanted |= {(p, "softmax") for p in set(ablation["profile"])}
        mine = [k in wanted for k in zip(base["profile"], base["method"], strict=True)]
        base = base[mine]
    return pd.concat([base, variants], ignore_index=True)


def marked_defaults(rows: pd.DataFrame) -> dict[str, dict]:
    """method -> the options of its newest sweep rows that the sweep marked as the
    mechanism's defaults (any setting); empty where no row carries the mark."""
    if "default_options" not in rows:
        return {}
    marked = latest(rows[rows["default_options"].eq(True)], ["method"])
    return {
        m: json.loads(o) for m, o in zip(marked["method"], marked["method_options"], strict=True)
    }


def configurations(
    rows: pd.DataFrame, defaults: dict[str, dict]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(main, variants) of one setting's sweep rows.

    main: one curve per mechanism, its default configuration: a curve the sweep marked so,
    or, in rows from before the mark, one that agrees on every option it has with the
    mechanism's newest marked `defaults` (a mechanism never marked: any curve); the newest
    such curve where there are several. variants: every curve of the mechanisms that have
    other curves too, their main one included, for a figure of the option variants."""
    curves = latest(rows, ["method", "method_options"])
    chosen: dict[str, tuple[str, str]] = {}  # method -> (options, measured_at) of its main
    for curve in curves.to_dict("records"):
        method, options, flag = (
            curve["method"],
            curve["method_options"],
            curve.get("default_options"),
        )
        if flag is None or pd.isna(flag):  # measured before the sweep marked defaults
            base, mine = defaults.get(method), json.loads(options)
            flag = base is None or all(base.get(k, v) == v for k, v in mine.items())
        if flag and (method not in chosen or curve["measured_at"] > chosen[method][1]):
            chosen[method] = (options, curve["measured_at"])
    keys = list(zip(rows["method"], rows["method_options"], strict=True))
    main = rows[[chosen.get(m, (None,))[0] == o for m, o in keys]]
    several = {m for m, n in curves.groupby("method").size().items() if n > 1}
    several |= set(curves["method"]) - set(chosen)
    return main, rows[[m in several for m, _ in keys]]
