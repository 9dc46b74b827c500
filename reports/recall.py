"""The recall section: associative recall as capacity curves, from results/recall.

    runs = recall_runs(read_results(Path("results/recall")))     # one row per finished test
    for name, part in recall_settings(runs):                     # one per data setting
        recall_accuracy(part), recall_vs_softmax(part), recall_capacity(part)
        recall_steps(part, curves), accuracy_vs_pairs(part), accuracy_vs_speed(part)

A variant is a mechanism with the `--set` items its run was given other than the data's
(`lotformer [r=4]`; the mechanism alone at the profile's options). Its x is the number of
key-value pairs (`data_params`); rows whose other data parameters differ (keys, values,
distractors, split sizes, seed) are different settings, never averaged together. The cells
follow the LRA tables: mean ± sample std over seeds, the 95% Student t interval, collapsed
runs counted and flagged, ties where intervals overlap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import matplotlib.ticker
import numpy as np
import pandas as pd

from reports import stats
from reports.accuracy import (
    _accuracy_cell,
    _mark_separated_best,
    latest_config,
    paired_cell,
    seed_accuracies,
)
from reports.data import slug, variant_label
from reports.render import Table, TableCell, add_note, describe
from reports.style import method_style, new_figure, style_order

X = "pairs"  # the difficulty on the x-axis, a data parameter
THRESHOLD = 0.9  # "holds": mean test accuracy at least this


def _variant(method: str, overrides: object) -> str:
    items = json.loads(overrides) if isinstance(overrides, str) and overrides else []
    own = [i for i in items if not (i.startswith("tasks.") and ".data." in i)]
    label = variant_label(json.dumps(own)) if own else ""
    return f"{method} [{label}]" if label else method


def recall_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """The test rows of `rows` with `variant`, `pairs` and `setting` (the other data
    parameters, JSON) added; rows without data parameters are left out."""
    if rows.empty or "data_params" not in rows:
        return rows.iloc[:0]
    test = rows[(rows["split"] == "test") & rows["data_params"].notna()].copy()
    params = [json.loads(p) for p in test["data_params"]]
    keep = [X in p for p in params]
    test, params = test[keep], [p for p, k in zip(params, keep, strict=True) if k]
    test[X] = [int(p[X]) for p in params]
    test["setting"] = [
        json.dumps({"profile": prof, **{k: v for k, v in p.items() if k != X}}, sort_keys=True)
        for prof, p in zip(test["profile"], params, strict=True)
    ]
    overrides = test["overrides"] if "overrides" in test else [None] * len(test)
    test["variant"] = [_variant(m, o) for m, o in zip(test["method"], overrides, strict=True)]
    return test


def recall_settings(runs: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(name, runs) per data setting: the profile, and the parameters that tell the settings
    apart (none when there is one)."""
    if runs.empty:
        return
    settings = {s: json.loads(s) for s in sorted(set(runs["setting"]))}
    differ = sorted(
        k
        for k in set().union(*settings.values())
        if len({str(p.get(k)) for p in settings.values()}) > 1
    )
    for key, params in settings.items():
        name = slug(params["profile"], *(f"{k}{params.get(k)}" for k in differ if k != "profile"))
        yield name, runs[runs["setting"] == key]


def _order(variants: set[str]) -> list[str]:
    """Mechanisms in the house order, each one's default before its variants, and those by
    their options with numbers as numbers (r=4 before r=16)."""

    def natural(text: str) -> list:
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]

    return sorted(variants, key=lambda v: (style_order(v.split(" [")[0]), "[" in v, natural(v)))


def _shown(table: Table, runs: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """(variant, pairs) -> the runs its cell shows (latest configuration, latest data)."""
    return {
        (variant, pairs): latest_config(table, part)[0]
        for (variant, pairs), part in runs.groupby(["variant", X])
    }


def _title(runs: pd.DataFrame, what: str) -> str:
    params = json.loads(runs["setting"].iloc[0])
    profile = params.pop("profile")
    shown = ", ".join(f"{k} {params[k]}" for k in ("keys", "values", "distractors") if k in params)
    return f"Recall: {what}, profile {profile!r} ({shown})"


def recall_accuracy(runs: pd.DataFrame) -> Table:
    """Variant x pairs: test accuracy (% of queries answered exactly) over seeds."""
    pairs = sorted(set(runs[X]))
    table = Table(
        _title(runs, "test accuracy (%) by the number of key-value pairs"),
        [f"{X} {p}" for p in pairs],
        legend="cells: mean ± sample std (seeds) of the best-validation checkpoint's test "
        "accuracy over every query, [its 95% Student t interval]; 'k/n collapsed': runs that "
        "never left chance (1 / values); bold: the best where its interval does not overlap "
        "the next one's, else '(tie)' on each overlapping cell; a variant is a mechanism with "
        "the --set options it ran with",
    )
    for variant in _order(set(runs["variant"])):
        cells = []
        for p in pairs:  # the latest configuration of each cell, older ones footnoted
            part, notes = latest_config(table, runs[(runs["variant"] == variant) & (runs[X] == p)])
            cells.append(_accuracy_cell(table, part, variant, f"{X} {p}", notes))
        table.ours[variant] = cells
        describe(table, variant, runs[runs["variant"] == variant])
    _mark_separated_best(table)
    return table


def recall_vs_softmax(runs: pd.DataFrame) -> Table:
    """Variant x pairs: the paired difference of test accuracy to softmax (points)."""
    pairs = sorted(set(runs[X]))
    table = Table(
        _title(runs, "difference to softmax in test accuracy (points), paired by seed"),
        [f"{X} {p}" for p in pairs],
        legend="cells: mean over the seeds both ran of (variant - softmax), [95% Student t "
        "interval], the number of pairs in brackets; an interval that excludes 0 is a "
        "difference the seeds support",
    )
    shown = _shown(Table("", []), runs)
    none = runs.iloc[:0]
    for variant in _order(set(runs["variant"]) - {"softmax"}):
        table.ours[variant] = [
            paired_cell(
                seed_accuracies(shown.get((variant, p), none)),
                seed_accuracies(shown.get(("softmax", p), none)),
            )
            for p in pairs
        ]
        describe(table, variant, runs[runs["variant"] == variant])
    return table


def recall_capacity(runs: pd.DataFrame, threshold: float = THRESHOLD) -> Table:
    """Per variant: the largest number of pairs at which its mean test accuracy holds
    `threshold`, the accuracy there and at the next number of pairs, with intervals."""
    pairs = sorted(set(runs[X]))
    table = Table(
        _title(runs, f"capacity: the most pairs recalled at >= {threshold:.0%}"),
        ["pairs held", "accuracy there (%)", "at the next pairs (%)"],
        legend=f"pairs held: the largest number of pairs at which the mean test accuracy over "
        f"seeds is >= {threshold:.0%} ('< {pairs[0]}' when none is, '>= {pairs[-1]}' when "
        "the largest measured still holds); the accuracies there and at the next measured "
        "number of pairs: mean ± std (seeds) [95% t interval]",
    )
    shown = _shown(table, runs)
    for variant in _order(set(runs["variant"])):
        cells = {}
        for p in pairs:
            part = shown.get((variant, p))
            if part is not None and len(part):
                cells[p] = _accuracy_cell(table, part, variant, f"{X} {p}", [])
        held = [p for p, c in cells.items() if c.mean is not None and c.mean >= 100 * threshold]
        last = max(held) if held else None
        after = [p for p in cells if last is None or p > last]
        nxt = min(after) if after else None
        if last is None:
            label = f"< {min(cells)}" if cells else "-"
        else:
            label = f">= {last}" if nxt is None else str(last)
        table.ours[variant] = [
            TableCell(None, extra=label),
            cells[last] if last is not None else TableCell(None),
            cells[nxt] if nxt is not None else TableCell(None),
        ]
        describe(table, variant, runs[runs["variant"] == variant])
    return table


def steps_to(curves: pd.DataFrame, threshold: float = THRESHOLD) -> dict[tuple, int | None]:
    """(config_hash, seed) -> the first validation step at which accuracy reached
    `threshold`, None for a curve that never did."""
    out = {}
    for (config, seed), curve in curves.groupby(["config_hash", "seed"]):
        reached = curve[curve["val_accuracy"] >= threshold].sort_values("step")
        out[(config, int(seed))] = int(reached["step"].iloc[0]) if len(reached) else None
    return out


def recall_steps(runs: pd.DataFrame, curves: pd.DataFrame, threshold: float = THRESHOLD) -> Table:
    """Variant x pairs: training steps until validation accuracy first reached `threshold`
    (learning speed), over the seeds that reached it."""
    pairs = sorted(set(runs[X]))
    table = Table(
        _title(runs, f"training steps to {threshold:.0%} validation accuracy"),
        [f"{X} {p}" for p in pairs],
        legend=f"cells: mean ± sample std over the seeds whose validation reached "
        f"{threshold:.0%} of the first validation step at which it did (validation every "
        "train.eval_every steps), [95% t interval], the seeds in brackets; 'k/n never' "
        "counts the runs that did not reach it",
        higher_is_better=[False] * len(pairs),
    )
    first = steps_to(curves, threshold) if len(curves) else {}
    shown = _shown(table, runs)
    for variant in _order(set(runs["variant"])):
        cells = []
        for p in pairs:
            part = shown.get((variant, p), runs.iloc[:0])
            ok = part[part["status"] == "ok"].drop_duplicates("seed", keep="last")
            found = [
                first.get((c, int(s))) for c, s in zip(ok["config_hash"], ok["seed"], strict=True)
            ]
            reached = [float(s) for s in found if s is not None]
            never = len(found) - len(reached)
            if not reached:
                cells.append(TableCell(None, extra=f"{never}/{len(found)} never" if found else ""))
                continue
            mean, std, interval = stats.mean_interval(reached)
            extra = f"{never}/{len(found)} never" if never else ""
            cells.append(TableCell(mean, std, len(reached), extra=extra, interval=interval))
        table.ours[variant] = cells
        describe(table, variant, runs[runs["variant"] == variant])
    if not first:
        add_note(table, "no learning curves in results/recall_curves")
    return table


def _summary(part: pd.DataFrame) -> tuple[float, float, float]:
    """Mean and 95% interval (as low, high) of a cell's test accuracy, in %."""
    ok = part[part["status"] == "ok"].drop_duplicates("seed", keep="last")
    values = [100 * float(a) for a in ok["accuracy"]]
    mean, _, interval = stats.mean_interval(values)
    low, high = interval if interval else (mean, mean)
    return mean, low, high


def accuracy_vs_pairs(runs: pd.DataFrame) -> object:
    """Test accuracy vs pairs (log2 x), a line per variant: the mean over seeds, its 95%
    interval as a band (clipped to 0-100%: a t interval over 3 seeds can leave the range),
    and each seed as a dot (an outcome that is all-or-nothing per seed shows as such); one
    panel for the mechanisms at the profile's options, one per mechanism that has option
    variants."""
    shown = _shown(Table("", []), runs)
    variants = _order({v for v, _ in shown})
    groups = [("at the profile's options", [v for v in variants if "[" not in v])]
    for method in dict.fromkeys(v.split(" [")[0] for v in variants if "[" in v):
        groups.append((f"{method}'s options", [v for v in variants if v.split(" [")[0] == method]))
    cols = min(2, len(groups))  # two panels a row: each stays readable
    rows = -(-len(groups) // cols)
    fig, axes = new_figure(rows, cols, 7.0 if cols == 1 else 11.0, 4.4 * rows, sharey=True)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax, (title, members) in zip(list(axes.flat)[: len(groups)], groups, strict=True):
        for i, variant in enumerate(members):
            points = sorted(
                (p, _summary(part))
                for (v, p), part in shown.items()
                if v == variant and len(part[part["status"] == "ok"])
            )
            if not points:
                continue
            x = [p for p, _ in points]
            mean, low, high = (np.array([s[j] for _, s in points]) for j in range(3))
            style = method_style(variant.split(" [")[0])
            if len(groups) > 1 and title != groups[0][0]:  # variants of one mechanism
                style = {
                    **style,
                    "linestyle": ["-", "--", ":", "-."][i % 4],
                    "marker": "osD^v"[i % 5],
                }
            ax.plot(x, mean, label=variant, markersize=4, **style)
            band = np.clip(low, 0, 100), np.clip(high, 0, 100)
            ax.fill_between(x, *band, color=style["color"], alpha=0.12, linewidth=0)
            nudge = 2 ** ((i - (len(members) - 1) / 2) * 0.04)  # seeds of lines side by side
            for p in x:
                seeds = seed_accuracies(shown[(variant, p)])
                ax.scatter([p * nudge] * len(seeds), list(seeds.values()), s=9, alpha=0.5,
                           color=style["color"], marker=style["marker"], linewidths=0)  # fmt: skip
        values = json.loads(runs["setting"].iloc[0]).get("values")
        if values:
            ax.axhline(100 / values, color="0.4", linestyle=":", linewidth=1, label="chance")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(runs[X])))
        ax.set_xticklabels([str(p) for p in sorted(set(runs[X]))])
        ax.set_xlabel("key-value pairs (log2)")
        ax.set_title(title)
        ax.set_ylim(-3, 103)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False, fontsize=7
        )
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle(
        _title(runs, "accuracy vs pairs")
        + "\nline: mean over seeds, dots: the seeds, band: 95% t interval (within 0-100%)"
    )
    fig.tight_layout()
    return fig


def accuracy_vs_speed(runs: pd.DataFrame, pairs: int | None = None) -> object:
    """Test accuracy vs training steps per second at one number of pairs (the largest
    measured unless given): what each capacity option costs. A variant's marker is at its
    median speed and mean accuracy over seeds, with the range of speeds and the 95% t
    interval of accuracy (in 0-100%) as bars; each seed is a dot. Speeds are the runs' own
    (steps / training seconds), so a run that shared the machine reads slower."""
    pairs = max(runs[X]) if pairs is None else pairs
    shown = _shown(Table("", []), runs[runs[X] == pairs])
    fig, axes = new_figure(1, 1, 7.0, 4.6)
    ax = axes[0][0]
    for variant in _order({v for v, _ in shown}):
        part = shown[(variant, pairs)]
        ok = part[(part["status"] == "ok") & (part["train_seconds"] > 0)]
        if ok.empty:
            continue
        speed = ok["steps"] / ok["train_seconds"]
        mean, low, high = _summary(ok)
        low, high = max(low, 0.0), min(high, 100.0)
        middle = float(speed.median())
        style = method_style(variant.split(" [")[0])
        ax.errorbar(
            middle,
            mean,
            xerr=[[middle - speed.min()], [speed.max() - middle]],
            yerr=[[mean - low], [high - mean]],
            color=style["color"],
            marker=style["marker"],
            capsize=2,
            linestyle="none",
            alpha=0.8,
        )
        ax.scatter(speed, 100 * ok["accuracy"], s=10, alpha=0.5, color=style["color"],
                   marker=style["marker"], linewidths=0)  # fmt: skip
        ax.annotate(variant, (middle, mean), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(-3, 103)
    ax.set_xlabel("training steps per second (log; the runs' own, steps / training seconds)")
    ax.set_ylabel("test accuracy (%)")
    fig.suptitle(_title(runs, f"accuracy vs training speed at {pairs} pairs"))
    fig.tight_layout()
    return fig
