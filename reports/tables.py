"""Tables as pure functions of the result rows: the LRA accuracy table, rendered three ways.

    table = lra_accuracy(read_results(Path("results/lra")), profile="paper",
                         reported=published_accuracy())
    to_markdown(table), to_latex(table), to_csv(table)     # the same table, byte-stable

A cell is mean +- std over seeds (sample std) and the number of seeds, of the test accuracy
of finished runs (`status == ok`); failed runs are never averaged in and are footnoted,
as are cells with no finished run ("-", never zero). Published numbers are separate rows,
marked "reported (source)", never mixed with ours.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).resolve().parent / "reference"
TASK_ORDER = ["listops", "text", "retrieval", "image", "pathfinder", "pathx"]
AVERAGED = ["listops", "text", "retrieval", "image", "pathfinder"]  # LRA's Avg leaves Path-X out


@dataclass(frozen=True)
class Cell:
    """Mean and sample std (None for one seed) of an accuracy in %, over `n` seeds."""

    mean: float | None
    std: float | None = None
    n: int = 0
    notes: tuple[int, ...] = ()  # footnote numbers
    best: bool = False


@dataclass
class Table:
    """Rows of cells under task columns (+ Avg), ours first, then reported ones."""

    title: str
    columns: list[str]
    ours: dict[str, list[Cell]] = field(default_factory=dict)
    reported: dict[str, list[Cell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def published_accuracy() -> pd.DataFrame:
    """The published LRA accuracies shipped in reports/reference/ (source, model, task, %)."""
    return pd.read_csv(REFERENCE / "lra_published_accuracy.csv")


def _note(table: Table, text: str) -> int:
    if text not in table.notes:
        table.notes.append(text)
    return table.notes.index(text) + 1


def _average(cells: list[Cell], tasks: list[str]) -> Cell:
    """LRA's Avg: the mean over its five tasks, or missing when one of them is."""
    values = [c.mean for c, t in zip(cells, tasks, strict=True) if t in AVERAGED]
    if len(values) < len(AVERAGED) or any(v is None for v in values):
        return Cell(None)
    return Cell(sum(values) / len(values))


def lra_accuracy(
    rows: pd.DataFrame, profile: str = "paper", reported: pd.DataFrame | None = None
) -> Table:
    """Method x task test accuracy (%) of one profile's runs; see the module docstring."""
    test = rows[(rows["split"] == "test") & (rows["profile"] == profile)] if len(rows) else rows
    tasks = [t for t in TASK_ORDER if len(test) and t in set(test["task"])]
    if reported is not None:
        tasks = [t for t in TASK_ORDER if t in tasks or t in set(reported["task"])]
    columns = [*tasks, "avg"]
    table = Table(f"LRA test accuracy (%), profile {profile!r}", columns)
    methods = sorted(set(test["method"])) if len(test) else []
    for method in methods:
        cells = []
        for task in tasks:
            runs = test[(test["method"] == method) & (test["task"] == task)]
            cells.append(_cell(table, runs, method, task))
        table.ours[method] = [*cells, _average(cells, tasks)]
    for i, _ in enumerate(columns):  # bold: the best mean of our rows per column
        means = [cells[i].mean for cells in table.ours.values() if cells[i].mean is not None]
        for method, cells in table.ours.items():
            if means and cells[i].mean == max(means):
                table.ours[method][i] = Cell(**{**cells[i].__dict__, "best": True})
    if reported is not None:
        for (source, model), group in reported.groupby(["source", "model"], sort=False):
            values = dict(zip(group["task"], group["accuracy"], strict=True))
            cells = [Cell(float(values[t])) if t in values else Cell(None) for t in tasks]
            table.reported[f"{model}, reported ({source})"] = [*cells, _average(cells, tasks)]
    return table


def _cell(table: Table, runs: pd.DataFrame, method: str, task: str) -> Cell:
    notes: list[int] = []
    if len(runs) and runs["config_hash"].nunique() > 1:  # the latest configuration only
        latest = runs.sort_values("finished_at")["config_hash"].iloc[-1]
        others = runs["config_hash"].nunique() - 1
        notes.append(_note(table, f"{method} / {task}: {others} older configuration(s) not shown"))
        runs = runs[runs["config_hash"] == latest]
    ok = runs[runs["status"] == "ok"]
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        why = "; ".join(
            f"seed {s}: {st} ({str(e)[:80]})"
            for s, st, e in zip(failed["seed"], failed["status"], failed["error"], strict=True)
        )
        notes.append(_note(table, f"{method} / {task}: left out of the mean: {why}"))
    if ok.empty:
        notes.append(_note(table, f"{method} / {task}: no finished run"))
        return Cell(None, notes=tuple(notes))
    values = 100 * ok.sort_values("seed").drop_duplicates("seed", keep="last")["accuracy"]
    n = len(values)
    std = float(values.std(ddof=1)) if n > 1 else None
    return Cell(float(values.mean()), std, n, tuple(notes))


def _fmt(cell: Cell, plus_minus: str = "±") -> str:
    if cell.mean is None:
        text = "-"
    elif cell.n == 0:  # reported number, or an average
        text = f"{cell.mean:.2f}"
    else:
        spread = f" {plus_minus} {cell.std:.2f}" if cell.std is not None else ""
        text = f"{cell.mean:.2f}{spread} ({cell.n})"
    return text


def to_markdown(table: Table) -> str:
    """GitHub Markdown: best of our rows in bold, footnotes as [n]."""
    header = ["method", *table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|---|" + "---:|" * len(table.columns))
    for name, cells in [*table.ours.items(), *table.reported.items()]:
        shown = []
        for c in cells:
            text = _fmt(c)
            text = f"**{text}**" if c.best else text
            shown.append(text + "".join(f" [{i}]" for i in c.notes))
        lines.append("| " + " | ".join([name, *shown]) + " |")
    lines.append("")
    lines += [f"[{i}] {n}" for i, n in enumerate(table.notes, 1)]
    lines.append(
        "cells: mean ± sample std (seeds) of the best-validation checkpoint's test accuracy; "
        f"avg: the mean over {', '.join(AVERAGED)} ('-' when one is missing)"
    )
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in [
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
    ]:
        text = text.replace(a, b)
    return text


def to_latex(table: Table) -> str:
    """A booktabs tabular: best of our rows in bold, reported rows under a midrule."""
    lines = [
        f"% {table.title}",
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(["Method", *(_tex(c.capitalize()) for c in table.columns)]) + r" \\",
        r"\midrule",
    ]

    def row(name: str, cells: list[Cell]) -> str:
        shown = []
        for c in cells:
            text = _fmt(c, r"$\pm$")
            text = rf"\textbf{{{text}}}" if c.best else text
            marks = ",".join(str(i) for i in c.notes)
            shown.append(text + (rf"\textsuperscript{{{marks}}}" if marks else ""))
        return " & ".join([_tex(name), *shown]) + r" \\"

    lines += [row(n, c) for n, c in table.ours.items()]
    if table.reported:
        lines.append(r"\midrule")
        lines += [row(n, c) for n, c in table.reported.items()]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% [{i}] {_tex(n)}" for i, n in enumerate(table.notes, 1)]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Long CSV: one line per (row, column) with mean, std, n, kind (ours | reported), note."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["row", "kind", "column", "mean", "std", "n", "note"])
    for kind, rows in (("ours", table.ours), ("reported", table.reported)):
        for name, cells in rows.items():
            for column, c in zip(table.columns, cells, strict=True):
                note = "; ".join(table.notes[i - 1] for i in c.notes)
                mean = "" if c.mean is None else f"{c.mean:.4f}"
                std = "" if c.std is None or math.isnan(c.std) else f"{c.std:.4f}"
                w.writerow([name, kind, column, mean, std, c.n, note])
    return out.getvalue()
