"""Reports from parquet: `python -m reports build --results results --out reports/out`.

    python -m reports build                 # = make report
    python -m reports build --results results --out /tmp/report

Writes what the results allow, each a pure function of the rows (the same rows give the
same bytes), the recall section first (it is the table that separates the mechanisms):
- recall_accuracy_<setting>.{md,tex,csv}, recall_vs_softmax_<setting>, recall_capacity_<setting>,
  recall_steps_<setting>: associative recall from results/recall (reports/recall.py), and
  the figures recall_pairs_<setting>.{png,pdf} (accuracy vs pairs) and recall_speed_<setting>
  (accuracy vs training steps/s at the largest number of pairs)
- claims.{md,tex,csv}: the LOTFormer and Sinkformers claims, a verdict each (reports/claims.py),
  with claims_column_sums, claims_causal and claims_pivots.{png,pdf} under it
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports import claims, claims_figures, figures, leaderboard, recall, style, tables
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
from results.files import write_text_atomic

RENDERERS = ((".md", tables.to_markdown), (".tex", tables.to_latex), (".csv", tables.to_csv))


MAKES_THEM = "`make quickstart` or `make lra-all` makes them"


@dataclass(frozen=True)
class TableOut:
    """A table a section writes (md, tex, csv) and shows, with the figures shown under it."""

    stem: str
    table: tables.Table


@dataclass(frozen=True)
class FigureOut:
    """A figure a section writes (png, pdf), shown under table `under` or with the others."""

    stem: str
    fig: object
    caption: str
    under: str | None = None


@dataclass(frozen=True)
class Left:
    """Something a section could not build, why, and the command that makes its rows."""

    what: str
    how: str = MAKES_THEM


Output = TableOut | FigureOut | Left


@dataclass(frozen=True)
class Section:
    """One part of the report: the results folders it reads, a pure function from their
    rows to its outputs, and what the page says when none of those folders has rows."""

    name: str
    reads: tuple[str, ...]
    build: Callable[[dict[str, pd.DataFrame]], list[Output]]
    missing: Left | None  # None: the sections it draws on say it
    needs: tuple[str, ...] = ()  # built when one of these has rows (default: `reads`)


def _recall(rows: dict) -> list[Output]:
    """Per recall data setting: its tables, its figures under them."""
    out: list[Output] = []
    for name, part in recall.recall_settings(recall.recall_runs(rows["recall"])):
        out += [
            TableOut(f"recall_accuracy_{name}", recall.recall_accuracy(part)),
            FigureOut(
                f"recall_pairs_{name}",
                recall.accuracy_vs_pairs(part),
                f"Recall: accuracy vs pairs: recall_pairs_{name}.pdf",
                under=f"recall_accuracy_{name}",
            ),
            TableOut(f"recall_capacity_{name}", recall.recall_capacity(part)),
            TableOut(f"recall_vs_softmax_{name}", recall.recall_vs_softmax(part)),
            TableOut(f"recall_steps_{name}", recall.recall_steps(part, rows["recall_curves"])),
            FigureOut(
                f"recall_speed_{name}",
                recall.accuracy_vs_speed(part),
                f"Recall: accuracy vs training speed: recall_speed_{name}.pdf",
                under=f"recall_steps_{name}",
            ),
        ]
    return out


def _claims(rows: dict) -> list[Output]:
    """The claims table, and its figures under it where their rows exist."""
    out: list[Output] = [TableOut("claims", claims.claims_table(rows))]
    for stem, make, caption in (
        ("claims_column_sums", claims_figures.column_sums, "Sinkformers' Figure 2 here"),
        ("claims_causal", claims_figures.causal_collapse, "Sinkhorn under a causal mask"),
        ("claims_pivots", claims_figures.capacity, "LOTFormer's r and eps"),
    ):
        fig = make(rows)
        if fig is None:
            out.append(Left(f"{caption}: no rows", "`make claims`, `make claims-training`"))
        else:
            out.append(FigureOut(stem, fig, f"{caption}: {stem}.pdf", under="claims"))
    return out


def _accuracy_tables(rows: dict) -> dict[str, tables.Table]:
    """profile -> its LRA accuracy table (read by the accuracy and the bubble sections)."""
    lra = rows["lra"]
    return {
        profile: tables.lra_accuracy(
            lra, profile, tables.published_accuracy(), comparable=profile == "paper"
        )
        for profile in (sorted(set(lra["profile"])) if len(lra) else [])
    }


def _accuracy(rows: dict) -> list[Output]:
    """The LRA accuracy, difference and ablation tables, by profile."""
    lra, ablation = rows["lra"], rows["lra_ablation"]
    out: list[Output] = []
    for profile, table in _accuracy_tables(rows).items():
        out.append(TableOut(f"lra_accuracy_{profile}", table))
        out.append(TableOut(f"lra_vs_softmax_{profile}", tables.lra_vs_softmax(lra, profile)))
    for profile in sorted(set(ablation["profile"])) if len(ablation) else []:
        out.append(TableOut(f"lra_ablation_{profile}", tables.lra_ablation(ablation, lra, profile)))
    return out


def _efficiency(rows: dict) -> list[Output]:
    """LRA's efficiency tables, one per setting."""
    return [
        TableOut(
            f"lra_efficiency_{name}",
            tables.lra_efficiency(part, tables.published_efficiency()),
        )
        for name, part in settings(rows["lra_efficiency"], EFFICIENCY_SETTING)
    ]


def _sweep(rows: dict) -> list[Output]:
    """The scaling figures (defaults, option variants) and the throughput tables."""
    sweep, out = rows["sweep"], []
    defaults = marked_defaults(sweep)
    for name, part in settings(sweep, SWEEP_SETTING):
        main, variants = configurations(part, defaults)
        out.append(
            FigureOut(
                f"scaling_{name}", figures.scaling(main), f"Scaling sweep: scaling_{name}.pdf"
            )
        )
        if len(variants):
            stem = f"scaling_variants_{name}"
            fig = figures.scaling(variants, "Option variants")
            caption = f"Option variants, each mechanism beside its default: {stem}.pdf"
            out.append(FigureOut(stem, fig, caption))
        if "flops" in part and part["flops"].notna().any():
            out.append(TableOut(f"sweep_tflops_{name}", tables.sweep_throughput(part)))
    return out


def _majority(rows: pd.DataFrame, profile: str, task: str | None = None) -> float | None:
    val = rows[(rows["profile"] == profile) & (rows["split"] == "val")]
    if task is not None:
        val = val[val["task"] == task]
    return float(val["majority_accuracy"].iloc[0]) if len(val) else None


def _curves(rows: dict) -> list[Output]:
    """Learning curves of the shown runs, and of the ablations beside their mechanisms."""
    lra, ablation, curves = rows["lra"], rows["lra_ablation"], rows["lra_curves"]
    out: list[Output] = []
    shown = current_curves(curves, lra)
    for (profile, task), part in shown.groupby(["profile", "task"]) if len(shown) else []:
        fig = figures.learning_curves(part, _majority(lra, profile, task))
        caption = f"Learning curves: curves_{profile}_{task}.pdf"
        out.append(FigureOut(f"curves_{profile}_{task}", fig, caption))
    variants = ablation_curves(ablation, rows["lra_ablation_curves"], lra, curves)
    for (profile, task), part in variants.groupby(["profile", "task"]) if len(variants) else []:
        caption = f"Ablation learning curves: curves_ablation_{profile}_{task}.pdf"
        fig = figures.learning_curves(part, _majority(ablation, profile))
        out.append(FigureOut(f"curves_ablation_{profile}_{task}", fig, caption))
    return out


def _bubbles(rows: dict) -> list[Output]:
    """Speed x accuracy x memory for every (profile, efficiency setting) with both."""
    out: list[Output] = []
    efficiency = list(settings(rows["lra_efficiency"], EFFICIENCY_SETTING))
    for profile, table in _accuracy_tables(rows).items():
        for name, part in efficiency:
            points, what = figures.bubble_points(table, part)
            if points.empty:
                out.append(Left(f"bubble {profile} x {name}: no mechanism has both"))
                continue
            stem = f"bubble_{profile}_{name}"
            fig = figures.bubble(points, what, part, profile)
            out.append(FigureOut(stem, fig, f"Speed, accuracy and memory: {stem}.pdf"))
    return out


# the report, in the page's order: adding a section is one entry here
SECTIONS = (
    Section("recall", ("recall", "recall_curves"), _recall,
            Left("recall section: no rows in results/recall", "`make recall` makes them")),
    Section("claims", ("claims", "diagnostics", "diagnostics_curves", "lra", "lra_ablation",
                       "recall", "sweep"), _claims,
            Left("claims page: no rows in results/claims", "`make claims` makes them"),
            needs=("claims", "diagnostics", "diagnostics_curves")),
    Section("accuracy", ("lra", "lra_ablation"), _accuracy,
            Left("LRA accuracy table and bubble chart: no rows in results/lra"), needs=("lra",)),
    Section("efficiency", ("lra_efficiency",), _efficiency,
            Left("LRA efficiency table: no rows in results/lra_efficiency")),
    Section("sweep", ("sweep",), _sweep, Left("scaling figures: no rows in results/sweep")),
    Section("curves", ("lra", "lra_ablation", "lra_curves", "lra_ablation_curves"), _curves,
            Left("learning curves: no rows in results/lra_curves"), needs=("lra_curves",)),
    Section("bubbles", ("lra", "lra_efficiency"), _bubbles, None,
            needs=("lra_efficiency",)),
)  # fmt: skip
SOURCES = tuple(dict.fromkeys(name for s in SECTIONS for name in s.reads))
# the folders of which one must have rows for a report to be worth building
ANY_OF = ("lra", "lra_curves", "lra_efficiency", "sweep", "recall", "claims")


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

    def add(self, item: Output) -> None:
        if isinstance(item, TableOut):
            self.written += [
                write_text_atomic(self.out / f"{item.stem}{suffix}", render(item.table))
                for suffix, render in RENDERERS
            ]
            self.tables.append((item.stem, item.table))
        elif isinstance(item, FigureOut):
            paths = style.save(item.fig, self.out / item.stem)
            self.written += paths
            shown = self.beside.setdefault(item.under, []) if item.under else self.figures
            shown.append((item.caption, paths[0]))
        else:
            self.left_out.append(item.what)
            self.hints.append(f"{item.what} ({item.how})")


def build(results: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Every artefact the tables under `results` allow: (files written, what was left out)."""
    skipped: list[str] = []  # parts that are not readable parquet or lack a needed column
    rows = {name: read_results(results / name, skipped) for name in SOURCES}
    for line in skipped:
        print(f"warning: {line}", file=sys.stderr)
    if all(rows[n].empty for n in ANY_OF):
        raise FileNotFoundError(
            f"no result rows under {results}/({', '.join(ANY_OF)}): run "
            "`make quickstart` (CPU smoke: training + sweep) or `make lra-all` first, or point "
            "--results at a results folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    rep = _Report(out)
    for section in SECTIONS:
        if all(rows[name].empty for name in section.needs or section.reads):
            if section.missing:
                rep.add(section.missing)
            continue
        for item in section.build(rows):
            rep.add(item)
    summary = (
        f"Built from {len(rows['recall'])} recall rows, {len(rows['lra'])} LRA rows, "
        f"{len(rows['lra_curves'])} curve points, {len(rows['lra_efficiency'])} efficiency rows, "
        f"{len(rows['sweep'])} sweep rows and {len(rows['claims'])} claim measurements."
    )
    page = leaderboard.page(
        rep.tables,
        [(caption, png.read_bytes()) for caption, png in rep.figures],
        summary,
        rep.hints,
        {name: [(c, png.read_bytes()) for c, png in figs] for name, figs in rep.beside.items()},
    )
    rep.written.append(write_text_atomic(out / "leaderboard.html", page))
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
