"""Reports from parquet: `python -m reports build --results results --out reports/out`.

    python -m reports build                 # = make report
    python -m reports build --results results --out /tmp/report

Writes what the results allow, each a pure function of the rows (the same rows give the
same bytes), the recall section first (it is the table that separates the mechanisms):
- recall_accuracy_<setting>.{md,tex,csv}, recall_vs_softmax_<setting>, recall_capacity_<setting>,
  recall_steps_<setting>: associative recall from results/recall (reports/recall.py), and
  the figures recall_pairs_<setting>.{png,pdf} (accuracy vs pairs) and recall_speed_<setting>
  (accuracy vs training steps/s at the largest number of pairs)
- lra_accuracy_<profile>.{md,tex,csv}: test accuracy, mechanism x task, from results/lra, with
  the published rows apart (for other profiles than `paper` headed "not comparable")
- lra_vs_softmax_<profile>.{md,tex,csv}: each mechanism's paired difference to softmax
  (same seeds) with its 95% interval, from results/lra
- lra_ablation_<profile>.{md,tex,csv}: ablation variants (runs with --set overrides, from
  results/lra_ablation) beside the mechanism at the profile's settings, paired by seed
- curves_ablation_<profile>_<task>.{png,pdf}: their learning curves beside the mechanism's
- lra_efficiency_<setting>.{md,tex,csv}: steps/s (speed-up over softmax) and peak memory at
  each length, published rows alongside, from results/lra_efficiency
- scaling_<setting>.{png,pdf}: time, memory and achieved TFLOP/s vs N, forward |
  forward+backward, from results/sweep: each mechanism's default configuration
- scaling_variants_<setting>.{png,pdf}: the option variants swept (lotformer's impl, ...),
  each mechanism's curves labelled by the options that differ
- sweep_tflops_<setting>.{md,tex,csv}: achieved TFLOP/s by length (and the fraction of the
  GPU's dense bf16 peak, reports/peaks.py), for sweep rows that carry FLOP counts
- curves_<profile>_<task>.{png,pdf}: validation accuracy and loss vs step, results/lra_curves
- bubble_<profile>_<setting>.{png,pdf}: speed x accuracy x memory (accuracy + efficiency rows)
- leaderboard.html: every table (sortable, provenance on hover) and figure in one file
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from reports import figures, leaderboard, recall, style, tables
from reports.data import (
    EFFICIENCY_SETTING,
    SWEEP_SETTING,
    ablation_curves,
    configurations,
    current_curves,
    marked_defaults,
    read_results,
    settings,
)

RENDERERS = ((".md", tables.to_markdown), (".tex", tables.to_latex), (".csv", tables.to_csv))


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


SOURCES = ("recall", "recall_curves", "lra", "lra_ablation", "lra_ablation_curves",
           "lra_curves", "lra_efficiency", "sweep")  # fmt: skip
MAKES_THEM = "`make quickstart` or `make lra-all` makes them"


class _Report:
    """What a build has written so far: files, the page's tables and figures (and those
    shown under a table of theirs), and what it left out with how to get it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []
        self.tables: list[tuple[str, tables.Table]] = []
        self.figures: list[tuple[str, Path]] = []
        self.beside: dict[str, list[tuple[str, Path]]] = {}
        self.left_out: list[str] = []  # "what: why"
        self.hints: list[str] = []  # the same, with the command that makes them

    def table(self, table: tables.Table, stem: str) -> None:
        self.written += [
            _write(self.out / f"{stem}{suffix}", render(table)) for suffix, render in RENDERERS
        ]
        self.tables.append((stem, table))

    def figure(self, fig: object, stem: str, caption: str, under: str | None = None) -> None:
        paths = style.save(fig, self.out / stem)
        self.written += paths
        shown = self.beside.setdefault(under, []) if under else self.figures
        shown.append((caption, paths[0]))

    def missing(self, what: str, how: str = MAKES_THEM) -> None:
        self.left_out.append(what)
        self.hints.append(f"{what} ({how})")


def _recall(rep: _Report, rows: dict) -> None:
    """The recall section, first: per data setting its tables, figures under them."""
    runs = recall.recall_runs(rows["recall"])
    for name, part in recall.recall_settings(runs):
        rep.table(recall.recall_accuracy(part), f"recall_accuracy_{name}")
        rep.figure(
            recall.accuracy_vs_pairs(part),
            f"recall_pairs_{name}",
            f"Recall: accuracy vs pairs: recall_pairs_{name}.pdf",
            under=f"recall_accuracy_{name}",
        )
        rep.table(recall.recall_capacity(part), f"recall_capacity_{name}")
        rep.table(recall.recall_vs_softmax(part), f"recall_vs_softmax_{name}")
        rep.table(recall.recall_steps(part, rows["recall_curves"]), f"recall_steps_{name}")
        rep.figure(
            recall.accuracy_vs_speed(part),
            f"recall_speed_{name}",
            f"Recall: accuracy vs training speed: recall_speed_{name}.pdf",
            under=f"recall_steps_{name}",
        )
    if runs.empty:
        rep.missing("recall section: no rows in results/recall", "`make recall` makes them")


def _accuracy(rep: _Report, rows: dict) -> dict[str, tables.Table]:
    """The LRA accuracy, difference and ablation tables; the accuracy tables by profile."""
    lra, ablation = rows["lra"], rows["lra_ablation"]
    accuracy = {}
    for profile in sorted(set(lra["profile"])) if len(lra) else []:
        accuracy[profile] = tables.lra_accuracy(
            lra, profile, tables.published_accuracy(), comparable=profile == "paper"
        )
        rep.table(accuracy[profile], f"lra_accuracy_{profile}")
        rep.table(tables.lra_vs_softmax(lra, profile), f"lra_vs_softmax_{profile}")
    for profile in sorted(set(ablation["profile"])) if len(ablation) else []:
        rep.table(tables.lra_ablation(ablation, lra, profile), f"lra_ablation_{profile}")
    if lra.empty:
        rep.missing("LRA accuracy table and bubble chart: no rows in results/lra")
    return accuracy


def _efficiency(rep: _Report, rows: dict) -> list[tuple[str, object]]:
    """LRA's efficiency tables, one per setting; the settings."""
    found = list(settings(rows["lra_efficiency"], EFFICIENCY_SETTING))
    for name, part in found:
        rep.table(
            tables.lra_efficiency(part, tables.published_efficiency()), f"lra_efficiency_{name}"
        )
    if rows["lra_efficiency"].empty:
        rep.missing("LRA efficiency table: no rows in results/lra_efficiency")
    return found


def _sweep(rep: _Report, rows: dict) -> None:
    """The scaling figures (defaults, option variants) and the throughput tables."""
    sweep = rows["sweep"]
    defaults = marked_defaults(sweep)
    for name, part in settings(sweep, SWEEP_SETTING):
        main, variants = configurations(part, defaults)
        rep.figure(figures.scaling(main), f"scaling_{name}", f"Scaling sweep: scaling_{name}.pdf")
        if len(variants):
            stem = f"scaling_variants_{name}"
            fig = figures.scaling(variants, "Option variants")
            rep.figure(fig, stem, f"Option variants, each mechanism beside its default: {stem}.pdf")
        if "flops" in part and part["flops"].notna().any():
            rep.table(tables.sweep_throughput(part), f"sweep_tflops_{name}")
    if sweep.empty:
        rep.missing("scaling figures: no rows in results/sweep")


def _curves(rep: _Report, rows: dict) -> None:
    """Learning curves of the shown runs, and of the ablations beside their mechanisms."""
    lra, ablation, curves = rows["lra"], rows["lra_ablation"], rows["lra_curves"]
    shown = current_curves(curves, lra)
    for (profile, task), part in shown.groupby(["profile", "task"]) if len(shown) else []:
        val = lra[(lra["profile"] == profile) & (lra["task"] == task) & (lra["split"] == "val")]
        majority = float(val["majority_accuracy"].iloc[0]) if len(val) else None
        caption = f"Learning curves: curves_{profile}_{task}.pdf"
        rep.figure(figures.learning_curves(part, majority), f"curves_{profile}_{task}", caption)
    variants = ablation_curves(ablation, rows["lra_ablation_curves"], lra, curves)
    for (profile, task), part in variants.groupby(["profile", "task"]) if len(variants) else []:
        val = ablation[(ablation["profile"] == profile) & (ablation["split"] == "val")]
        majority = float(val["majority_accuracy"].iloc[0]) if len(val) else None
        caption = f"Ablation learning curves: curves_ablation_{profile}_{task}.pdf"
        fig = figures.learning_curves(part, majority)
        rep.figure(fig, f"curves_ablation_{profile}_{task}", caption)
    if curves.empty:
        rep.missing("learning curves: no rows in results/lra_curves")


def _bubbles(rep: _Report, accuracy: dict, efficiency: list) -> None:
    """Speed x accuracy x memory for every (profile, efficiency setting) with both."""
    for profile, table in accuracy.items():
        for name, part in efficiency:
            points, what = figures.bubble_points(table, part)
            if points.empty:
                rep.missing(f"bubble {profile} x {name}: no mechanism has both")
                continue
            stem = f"bubble_{profile}_{name}"
            fig = figures.bubble(points, what, part, profile)
            rep.figure(fig, stem, f"Speed, accuracy and memory: {stem}.pdf")


def build(results: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Every artefact the tables under `results` allow: (files written, what was left out)."""
    skipped: list[str] = []  # parts that are not readable parquet or lack a needed column
    rows = {name: read_results(results / name, skipped) for name in SOURCES}
    for line in skipped:
        print(f"warning: {line}", file=sys.stderr)
    if all(rows[n].empty for n in ("lra", "lra_curves", "lra_efficiency", "sweep", "recall")):
        raise FileNotFoundError(
            f"no result rows under {results}/(recall, lra, lra_curves, lra_efficiency, sweep): run "
            "`make quickstart` (CPU smoke: training + sweep) or `make lra-all` first, or point "
            "--results at a results folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    rep = _Report(out)
    _recall(rep, rows)
    accuracy = _accuracy(rep, rows)
    efficiency = _efficiency(rep, rows)
    _sweep(rep, rows)
    _curves(rep, rows)
    _bubbles(rep, accuracy, efficiency)
    summary = (
        f"Built from {len(rows['recall'])} recall rows, {len(rows['lra'])} LRA rows, "
        f"{len(rows['lra_curves'])} curve points, {len(rows['lra_efficiency'])} efficiency rows "
        f"and {len(rows['sweep'])} sweep rows."
    )
    page = leaderboard.page(
        rep.tables,
        [(caption, png.read_bytes()) for caption, png in rep.figures],
        summary,
        rep.hints,
        {name: [(c, png.read_bytes()) for c, png in figs] for name, figs in rep.beside.items()},
    )
    rep.written.append(_write(out / "leaderboard.html", page))
    return rep.written, rep.left_out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Tables, figures and the leaderboard page from the parquet results.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write every artefact the results allow")
    b.add_argument("--results", type=Path, default=Path("results"), help="results (results)")
    b.add_argument("--out", type=Path, default=Path("reports/out"), help="output (reports/out)")
    args = parser.parse_args(argv)
    try:
        written, left_out = build(args.results, args.out)
    except FileNotFoundError as exc:
        print(f"reports: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    for what in left_out:
        print(f"not built: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
