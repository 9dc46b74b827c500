"""Figures as pure functions of the result rows; each returns a matplotlib Figure.

    fig = scaling(sweep_rows_of_one_setting)        # time and memory vs N, fwd | fwd+bwd
    fig = learning_curves(curve_rows_of_one_task, majority=0.54)
    fig = bubble(*bubble_points(accuracy_table, efficiency_rows), efficiency_rows, "paper")
    style.save(fig, Path("reports/out/scaling_cpu"))   # PNG + PDF

Nothing here measures: every point is a number read from a row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from reports import tables
from reports.data import latest
from reports.peaks import peak_tflops
from reports.style import method_style, new_figure, style_order
from results.schema import curve_names

PASSES = {"forward": "forward", "forward_backward": "forward + backward"}
STOPPED = {"oom": "OOM", "skipped": "skip", "timeout": "timeout", "error": "error"}


# the line styles of a mechanism's option variants, after its first configuration's own
VARIANT_LINES = [":", (0, (5, 2)), (0, (3, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 2, 2))]


def _tokens(n: float, _pos: object = None) -> str:
    return f"{int(n) // 1024}K" if n >= 1024 else f"{int(n)}"


def _line_names(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Legend name per (method, options), in drawing order (results.schema.curve_names)."""
    names = curve_names(rows)
    return {k: names[k] for k in sorted(names, key=lambda k: (style_order(k[0]), k[0], k[1]))}


def _line_style(key: tuple[str, str], names: dict[tuple[str, str], str]) -> dict[str, str]:
    """The method's style; its second and later option sets hollow markers, each with a
    line style of its own (dotted, dashed, dash-dot, ...)."""
    style = method_style(key[0])
    siblings = [k for k in names if k[0] == key[0]]
    if i := siblings.index(key):
        dashes = VARIANT_LINES[(i - 1) % len(VARIANT_LINES)]
        style = {**style, "linestyle": dashes, "markerfacecolor": "white"}
    return style


def _guides(ax, x0: float, y0: float, x1: float) -> None:
    """Faint O(N) and O(N^2) slopes through (x0, y0), inside the axes' current limits."""
    lo, hi = ax.get_ylim()
    xs = np.geomspace(x0, x1, 64)
    label_below = lo * (hi / lo) ** 0.7  # labels stay under the band of stopped markers
    for power, label in ((1, "∝ N"), (2, "∝ N²")):
        ys = y0 * (xs / x0) ** power
        ax.plot(xs, ys, color="0.55", linewidth=0.8, linestyle=(0, (6, 3)), alpha=0.6, zorder=1)
        inside = np.nonzero(ys <= label_below)[0]
        end = min(inside[-1] if len(inside) else 0, int(0.85 * (len(xs) - 1)))
        ax.annotate(
            label,
            (xs[end], ys[end]),
            xytext=(3, -9),
            textcoords="offset points",
            color="0.4",
            fontsize=7,
        )
    ax.set_ylim(lo, hi)


def _mark_stopped(ax, stopped: list[tuple[pd.Series, dict[str, str]]]) -> None:
    """Each line's first length that did not run: its hollow marker in a band at the top of
    the axes, stacked where several stop at one length, with the status beside it."""
    band = blended_transform_factory(ax.transData, ax.transAxes)
    height: dict[int, int] = {}
    for cell, style in stopped:
        k = height[cell["seq_len"]] = height.get(cell["seq_len"], -1) + 1
        y = 0.95 - 0.07 * k
        ax.plot(
            [cell["seq_len"]],
            [y],
            transform=band,
            marker=style["marker"],
            color=style["color"],
            markerfacecolor="white",
            markersize=6,
            linestyle="none",
            clip_on=False,
        )
        ax.annotate(
            STOPPED.get(cell["status"], cell["status"]),
            (cell["seq_len"], y),
            xycoords=band,
            xytext=(5, -3),
            textcoords="offset points",
            fontsize=7,
            color=style["color"],
        )


def scaling(rows: pd.DataFrame, title: str = "Attention scaling") -> object:
    """Time, peak memory and achieved TFLOP/s vs sequence length (log-log) of one setting.

    Columns: forward, forward + backward; rows: time per call, peak memory, and (where the
    rows carry FLOP counts) achieved TFLOP/s, with the device's dense bf16 peak drawn on a
    known GPU. A line stops at its last finished length; the first length that did not run
    (OOM, skipped, ...) is drawn as the mechanism's hollow marker at the top of the axes with
    the reason beside it."""
    first = rows.iloc[0]
    rows = latest(rows, ["method", "method_options", "seq_len", "pass"])
    metrics = [
        ("time_ms", 1.0, "time per call (ms)"),
        ("peak_mem_bytes", 2.0**-20, "peak memory (MiB)"),
    ]
    if "achieved_tflops" in rows and rows["achieved_tflops"].notna().any():
        metrics.append(("achieved_tflops", 1.0, "achieved TFLOP/s"))
    fig, axes = new_figure(
        len(metrics), 2, 10.5, 3.7 * len(metrics) + 0.4, sharex=True, sharey="row"
    )
    peak = peak_tflops(first["device_name"]) if first["device"] == "cuda" else None
    for col, (pass_, pass_title) in enumerate(PASSES.items()):
        for r, (metric, scale, label) in enumerate(metrics):
            ax = axes[r][col]
            _scaling_panel(ax, rows, rows[rows["pass"] == pass_], metric, scale, peak)
            if r == 0:
                ax.set_title(pass_title)
            if col == 0:
                ax.set_ylabel(label)
            if r == len(metrics) - 1:
                ax.set_xlabel("sequence length N (tokens)")
    legend_rows = _scaling_legend(fig, axes[0][0])
    fig.suptitle(
        f"{title} on {first['device_name']} ({first['device']}), {first['dtype']}, "
        f"batch {first['batch']}, {first['heads']} heads × head dim {first['head_dim']}"
    )
    fig.tight_layout(rect=(0, (0.3 + 0.2 * legend_rows) / fig.get_figheight(), 1, 1))
    return fig


def _scaling_panel(ax, rows: pd.DataFrame, part: pd.DataFrame, metric, scale, peak) -> None:
    """One panel of `scaling`: a line per mechanism over `part` (one pass), the first length
    each did not run, and the y limits shared with the other pass (from all of `rows`)."""
    names = _line_names(rows)
    stopped = []
    for key, name in names.items():
        line = part[(part["method"] == key[0]) & (part["method_options"] == key[1])]
        line = line.sort_values("seq_len")
        done = line[(line["status"] == "ok") & line[metric].notna()]
        style = _line_style(key, names)
        ax.plot(done["seq_len"], done[metric] * scale, label=name, markersize=5, **style)
        last = done["seq_len"].max() if len(done) else -math.inf
        after = line[(line["status"] != "ok") & (line["seq_len"] > last)]
        if len(after):
            stopped.append((after.iloc[0], style))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_tokens))
    ok = part[(part["status"] == "ok") & part[metric].notna()]
    if len(ok):  # the same limits for both passes: the row shares its y axis
        ok_all = rows[rows["status"] == "ok"]
        low, high = ok_all[metric].min() * scale / 2, ok_all[metric].max() * scale * 4
        if metric == "achieved_tflops" and peak is not None:
            high = max(high, peak * 2)
        ax.set_ylim(low, high)
        x0 = ok["seq_len"].min()
        y0 = float(np.exp(np.log(ok.loc[ok["seq_len"] == x0, metric] * scale).mean()))
        if metric != "achieved_tflops":
            _guides(ax, x0, y0, rows["seq_len"].max())
        elif peak is not None:
            ax.axhline(peak, color="0.3", linewidth=0.9, linestyle="--")
            ax.annotate(
                f"dense bf16 peak {peak:g}",
                (0.01, peak),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
    _mark_stopped(ax, stopped)


def _scaling_legend(fig, ax) -> int:
    """The figure-wide legend of `scaling` (the lines, the guides, the hollow marker): the
    rows it takes."""
    handles = ax.get_legend_handles_labels()[0]
    handles.append(Line2D([], [], color="0.55", linestyle=(0, (6, 3)), label="O(N), O(N²)"))
    handles.append(
        Line2D(
            [],
            [],
            color="0.3",
            marker="o",
            markerfacecolor="white",
            linestyle="none",
            label="hollow, at the top: first N not run (skip: over the time budget)",
        )
    )
    longest = max(len(h.get_label()) for h in handles[:-2]) if len(handles) > 2 else 0
    ncol = 4 if longest <= 24 else 3 if longest <= 36 else 2  # the legend stays figure-wide
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False)
    return -(-len(handles) // ncol)


def learning_curves(curves: pd.DataFrame, majority: float | None = None) -> object:
    """Validation accuracy and training loss vs step of one (profile, task), a line per method.

    Several seeds: the mean, and a band from the lowest to the highest seed."""
    first = curves.iloc[0]
    fig, axes = new_figure(1, 2, 10.5, 3.9)
    panels = [
        ("val_accuracy", 100.0, "validation accuracy (%)"),
        ("train_loss", 1.0, "training loss"),
    ]
    for ax, (metric, scale, label) in zip(axes[0], panels, strict=True):
        for method, group in sorted(curves.groupby("method"), key=lambda kv: style_order(kv[0])):
            by_step = group.pivot_table(index="step", columns="seed", values=metric) * scale
            style = method_style(method)
            ax.plot(by_step.index, by_step.mean(axis=1), label=method, markersize=4, **style)
            if by_step.shape[1] > 1:
                ax.fill_between(
                    by_step.index,
                    by_step.min(axis=1),
                    by_step.max(axis=1),
                    color=style["color"],
                    alpha=0.15,
                    linewidth=0,
                )
        if metric == "val_accuracy" and majority is not None:
            ax.axhline(
                100 * majority,
                color="0.4",
                linestyle=":",
                linewidth=1,
                label="majority class (val)",
            )
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
    seeds = curves["seed"].nunique()
    band = ", band: lowest to highest seed" if seeds > 1 else ""
    fig.suptitle(
        f"Learning curves: {first['task']}, profile {first['profile']!r} "
        f"(mean over {seeds} seed{'s' if seeds > 1 else ''}{band})"
    )
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(handles), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def bubble_points(accuracy: tables.Table, efficiency: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(method, steps_per_s, accuracy, memory_gb) per method with both, and what y averages.

    y is LRA's Avg where every plotted method has it, else the mean over the tasks that every
    plotted method finished (said in the label); speed and memory at the longest length."""
    ok = latest(efficiency, ["method", "seq_len"])
    ok = ok[ok["status"] == "ok"]
    n = int(ok["seq_len"].max())
    at_n = ok[ok["seq_len"] == n].set_index("method")
    methods = [m for m in accuracy.ours if m in at_n.index]
    tasks = [c for c in accuracy.columns if c != "avg"]
    full = [
        t for i, t in enumerate(tasks) if all(accuracy.ours[m][i].mean is not None for m in methods)
    ]
    if set(tables.AVERAGED) <= set(full):
        full, what = tables.AVERAGED, "LRA average test accuracy (%)"
    elif len(full) == 1:
        what = f"test accuracy on {full[0]} (%)"
    else:
        what = f"mean test accuracy over {', '.join(full)} (%)"

    def interval(m: str) -> tuple[float, float]:  # one task: that cell's 95% interval
        found = accuracy.ours[m][tasks.index(full[0])].interval if len(full) == 1 else None
        return found or (math.nan, math.nan)

    points = pd.DataFrame(
        [
            {
                "method": m,
                "steps_per_s": float(at_n.loc[m, "steps_per_s"]),
                "accuracy": float(np.mean([accuracy.ours[m][tasks.index(t)].mean for t in full])),
                "low": interval(m)[0],
                "high": interval(m)[1],
                "memory_gb": float(at_n.loc[m, "peak_mem_bytes"]) / 1e9,
                "seq_len": n,
            }
            for m in methods
        ]
    )
    if points["low"].notna().any():
        what += ", bars: 95% interval"
    return (points if full else points.iloc[0:0]), what


def bubble(points: pd.DataFrame, what: str, efficiency: pd.DataFrame, profile: str) -> object:
    """The LRA paper's chart: x = training speed, y = accuracy, bubble area = peak memory.

    `points, what` come from `bubble_points` (at least one point)."""
    first = efficiency.iloc[0]
    fig, axes = new_figure(1, 1, 8.0, 4.8)
    ax = axes[0][0]
    biggest = points["memory_gb"].max()

    def area(gb: float) -> float:  # points², proportional to memory above a visible floor
        return 40 + 1600 * gb / biggest

    for p in points.itertuples():
        style = method_style(p.method)
        ax.scatter(
            p.steps_per_s,
            p.accuracy,
            s=area(p.memory_gb),
            color=style["color"],
            alpha=0.4,
            edgecolors=style["color"],
            linewidths=1.2,
        )
        ax.scatter(p.steps_per_s, p.accuracy, s=16, color=style["color"], marker=style["marker"])
        if not math.isnan(getattr(p, "low", math.nan)):
            bar = [[p.accuracy - p.low], [p.high - p.accuracy]]
            ax.errorbar(p.steps_per_s, p.accuracy, yerr=bar, color=style["color"], capsize=3,
                        linewidth=1)  # fmt: skip
        radius = math.sqrt(area(p.memory_gb) / math.pi)
        ax.annotate(
            f"{p.method} ({p.memory_gb:.2f} GB)",
            (p.steps_per_s, p.accuracy),
            xytext=(radius + 3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    n = int(points["seq_len"].iloc[0])
    ax.set_xlabel(f"training steps per second at N = {_tokens(n)} (log scale)")
    ax.set_ylabel(what)
    ax.margins(x=0.3, y=0.2)
    handles = [
        ax.scatter([], [], s=area(gb), color="0.6", alpha=0.4, label=f"{gb:.2f} GB")
        for gb in (biggest / 4, biggest / 2, biggest)
    ]
    ax.legend(
        handles=handles,
        title="peak memory",
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        labelspacing=1.6,
        borderpad=1.1,
        frameon=False,
    )
    ax.set_title(
        f"Speed, accuracy and memory\naccuracy: profile {profile!r}; speed and memory: "
        f"{first['task']} model on {first['device_name']} ({first['device']}), "
        f"batch {first['batch']}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
