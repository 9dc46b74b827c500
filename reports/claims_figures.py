"""The claims page's figures, pure functions of the rows that reports/claims.py judges.

    fig = column_sums(rows)       # Sinkformers' Figure 2 here (None without diagnostics)
    fig = causal_collapse(rows)   # Sinkhorn under a causal mask, towards the identity
    fig = capacity(rows)          # LOTFormer's r on recall, r and eps on ListOps

Each panel holds one data set (profile, task, data parameters); nothing is pooled across.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from reports.claims import COLLAPSED_DIAGONAL
from reports.claims_rows import Rows, ablation_seeds, diagnosed, newest_check, r_at_pairs, run_ends
from reports.recall import recall_runs
from reports.style import method_style, new_figure


def column_sums(rows: Rows) -> object | None:
    """Sinkformers' Figure 2 here: softmax's column sums (5-95% whiskers, quartile box,
    median; the median over seeds of each quantile) at initialisation and trained, per
    layer, one panel per data set; None without diagnostics rows."""
    points = diagnosed(rows)
    ends = run_ends(points[points["method"] == "softmax"]) if len(points) else pd.DataFrame()
    if ends.empty:
        return None
    panels = sorted(set(zip(ends["label"], ends["config_hash"], strict=True)))  # one data set
    fig, axes = new_figure(1, len(panels), 4.2 * len(panels), 3.2, sharey=True)
    for ax, (label, config) in zip(axes[0], panels, strict=True):
        part = ends[ends["config_hash"] == config]
        layers = len(part["attn_colsum_quantiles"].iloc[0])
        ticks = []
        for layer in range(layers):
            for j, when in enumerate(("init", "trained")):
                qs = np.median(
                    np.stack(
                        [
                            np.asarray(list(q[layer]))
                            for q in part[part["when"] == when]["attn_colsum_quantiles"]
                        ]
                    ),
                    0,
                )
                x = layer * 3 + j
                colour = "0.6" if when == "init" else method_style("softmax")["color"]
                ax.vlines(x, qs[0], qs[4], color=colour)
                ax.add_patch(_box(x, qs[1], qs[3], colour))
                ax.hlines(qs[2], x - 0.3, x + 0.3, color="white" if when == "trained" else "k")
                ticks.append((x, f"L{layer} {when}"))
        ax.axhline(1.0, color="0.3", linewidth=0.8, linestyle="--")
        ax.set_xticks([t for t, _ in ticks], [n for _, n in ticks], rotation=30, fontsize=7)
        seeds = part["seed"].nunique()
        ax.set_title(f"{label}, {seeds} seed{'s' if seeds > 1 else ''}")
        ax.set_xlim(-0.7, layers * 3 - 1.3)
    axes[0][0].set_ylabel("column sum of softmax attention")
    fig.text(0.5, -0.08, "box: quartiles, line: median, whiskers: 5-95% of the real tokens' "
             "column sums (the median over seeds of each); 1 = doubly stochastic",
             ha="center", fontsize=8)  # fmt: skip
    fig.suptitle("Column sums at initialisation and after training (Sinkformers, Fig. 2)", y=1.04)
    return fig


def _box(x: float, lo: float, hi: float, colour: str) -> Rectangle:
    return Rectangle((x - 0.3, lo), 0.6, hi - lo, facecolor=colour, edgecolor="k", linewidth=0.5)


def causal_collapse(rows: Rows) -> object | None:
    """Distance to the identity and mean diagonal entry vs Sinkhorn half-steps under a
    causal mask, a line per N (mean over seeds); None without rows."""
    part = newest_check(rows.get("claims", pd.DataFrame()), "causal")
    part = part[part["method"] == "sinkformer"] if len(part) else part
    if part.empty:
        return None
    fig, axes = new_figure(1, 2, 8.4, 3.0)
    for metric, ax, title in (
        ("distance_to_identity", axes[0][0], "||A - I||_F / sqrt(N)"),
        ("diagonal_mass", axes[0][1], "mean diagonal entry"),
    ):
        for i, (n, by_n) in enumerate(part[part["metric"] == metric].groupby("seq_len")):
            mean = by_n.groupby("iters")["value"].mean()
            ax.plot(mean.index, mean.values, marker="os^D"[i % 4], markersize=2.5, label=f"N = {n}")
        ax.set_xscale("log")
        ax.set_xlabel("Sinkhorn half-steps (1 = softmax)")
        ax.set_title(title)
    axes[0][1].axhline(COLLAPSED_DIAGONAL, color="0.4", linestyle="--", linewidth=0.8)
    axes[0][0].legend()
    fig.suptitle("Sinkhorn under a causal mask tends to the identity (LOTFormer, App. F)", y=1.04)
    return fig


def capacity(rows: Rows) -> object | None:
    """lotformer's r on recall (accuracy and time per step vs r, a line per pairs count,
    mean over seeds) and the ListOps ablations of r and eps (each seed a point); None
    without either."""
    runs = recall_runs(rows.get("recall", pd.DataFrame()))
    grid = r_at_pairs(runs[runs["status"] == "ok"]) if len(runs) else {}
    variants = {lab: ablation_seeds(rows, "lotformer", lab) for lab in ("", "r=32", "eps=1.0")}
    present = [set(v) for v in variants.values() if v]
    shared = sorted(set.intersection(*present)) if present else []
    key = shared[0] if shared else None  # one profile and data set for every variant
    listops = {lab: v.get(key, {}) for lab, v in variants.items()}
    if not grid and not any(listops.values()):
        return None
    fig, axes = new_figure(1, 3, 12.0, 3.2)
    acc, cost, abl = axes[0]
    for pairs, by_r in sorted(grid.items()):
        rs = sorted(by_r)
        acc.plot(
            rs,
            [np.mean(list(by_r[r]["acc"].values())) for r in rs],
            marker="o",
            label=f"{pairs} pairs",
        )
        cost.plot(rs, [1000 * by_r[r]["s"] for r in rs], marker="o", label=f"{pairs} pairs")
    for ax, what in ((acc, "test accuracy %"), (cost, "ms per training step (median)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("pivots r")
        ax.set_ylabel(what)
    acc.set_title("recall: lotformer accuracy vs r")
    cost.set_title("recall: cost vs r (2-core CPU)")
    if grid:
        acc.legend()
    names = {"": "r=4, eps=0.1\n(profile)", "r=32": "r=32", "eps=1.0": "eps=1"}
    for i, seeds in enumerate(listops.values()):
        abl.scatter(
            [i] * len(seeds), list(seeds.values()), color=method_style("lotformer")["color"]
        )
        if seeds:
            abl.hlines(np.mean(list(seeds.values())), i - 0.25, i + 0.25, color="k")
    abl.set_xticks(range(len(names)), list(names.values()), fontsize=7)
    abl.set_title("ListOps (mini): lotformer variants, seeds")
    abl.set_ylabel("test accuracy %")
    fig.suptitle(
        "LOTFormer's pivots r and entropic eps (LOTFormer, Table 7 and Sec. 4.5); times from "
        "the training runs themselves, on a shared 2-core CPU",
        y=1.04,
    )
    return fig
