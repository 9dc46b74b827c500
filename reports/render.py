"""A table of cells and its three renderings: Markdown, LaTeX and CSV, byte-stable.

    table = Table("title", ["listops", "avg"], ours={"softmax": [TableCell(36.2, 1.1, 3)]})
    to_markdown(table), to_latex(table), to_csv(table)

The table builders are in reports/accuracy.py and reports/speed.py (reports.tables holds
them all under one name).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace

import pandas as pd


@dataclass(frozen=True)
class TableCell:
    """A table's cell: the mean and sample std (None for one seed) of a value over `n` seeds."""

    mean: float | None
    std: float | None = None
    n: int = 0
    notes: tuple[int, ...] = ()  # footnote numbers
    best: bool = False
    extra: str = ""  # shown after the value, e.g. a speed-up "(3.2×)"
    interval: tuple[float, float] | None = None  # 95% Student t interval over the seeds
    collapsed: int = 0  # of the n runs, how many never left chance
    without_collapsed: float | None = None  # the mean over the runs that did not collapse
    tie: bool = False  # the best's interval overlaps another's: no single best


@dataclass
class Table:
    """Rows of cells under columns, ours first, then reported ones.

    `higher_is_better` (one per column, all True when empty) says which way bold points;
    `provenance` holds, per row, where its numbers come from (commits, devices, dates)."""

    title: str
    columns: list[str]
    ours: dict[str, list[TableCell]] = field(default_factory=dict)
    reported: dict[str, list[TableCell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    higher_is_better: list[bool] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # rows of a plugin mechanism: its source
    legend: str = ""  # one line under the table saying what a cell is
    reported_label: str = ""  # a line heading the reported rows (e.g. why they differ)
    row_label: str = "method"  # the first column's heading
    wrap: bool = False  # cells of words (a table of claims): wrapped, sorted as text


def add_note(table: Table, text: str) -> int:
    if text not in table.notes:
        table.notes.append(text)
    return table.notes.index(text) + 1


def describe(table: Table, name: str, runs: pd.DataFrame) -> None:
    """Record where row `name`'s numbers come from (`provenance`) and, for a mechanism that
    is not built in, its source (a plugin's distribution, or its file)."""
    table.provenance[name] = provenance(runs)
    if source := plugin_source(runs):
        table.sources[name] = source


def plugin_source(runs: pd.DataFrame) -> str:
    """The `mechanism_source` of rows that are not built in ('' for built-in mechanisms and
    for rows from before the column existed, which were all built in)."""
    if "mechanism_source" not in runs:
        return ""
    return "; ".join(sorted({str(s) for s in runs["mechanism_source"].dropna()} - {"built-in"}))


def provenance(runs: pd.DataFrame) -> str:
    """Where a row's numbers come from: its commits, devices and dates, in one line."""
    if runs.empty:
        return "no runs"
    commits = (
        sorted({str(c)[:8] for c in runs["git_commit"].dropna()}) if "git_commit" in runs else []
    )
    devices = (
        sorted({f"{n} ({d})" for n, d in zip(runs["device_name"], runs["device"], strict=True)})
        if {"device_name", "device"} <= set(runs.columns)
        else []
    )
    when = next((c for c in ("finished_at", "measured_at", "started_at") if c in runs), None)
    days = sorted({str(t)[:10] for t in runs[when].dropna()}) if when else []
    dates = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "?"
    source = plugin_source(runs)
    return (
        f"commit {', '.join(commits) or '?'} · {'; '.join(devices) or '?'} · {dates} · "
        f"{len(runs)} row(s)" + (f" · plugin: {source}" if source else "")
    )


def mark_best(table: Table) -> None:
    """Bold the best mean of our rows in each column (max or min as the column says)."""
    for i, _ in enumerate(table.columns):
        higher = table.higher_is_better[i] if table.higher_is_better else True
        means = [cells[i].mean for cells in table.ours.values() if cells[i].mean is not None]
        if not means:
            continue
        best = max(means) if higher else min(means)
        for cells in table.ours.values():
            if cells[i].mean == best:
                cells[i] = replace(cells[i], best=True)


def format_cell(cell: TableCell) -> str:
    """A cell as text: '-' (or its `extra` alone, a verdict in words), '36.37',
    '34.00 ± 4.00 (3) [24.1, 43.9]', '2.90 (12.3×)'; with '1/3 collapsed (without them
    36.00)' and '(tie)' where they apply."""
    if cell.mean is None:  # nothing measured, or a verdict in words ('>= 64', '3/3 never')
        return cell.extra or "-"
    if cell.n == 0:  # reported number, or an average
        text = f"{cell.mean:.2f}"
    else:
        spread = f" ± {cell.std:.2f}" if cell.std is not None else ""
        text = f"{cell.mean:.2f}{spread} ({cell.n})"
        if cell.interval is not None:
            text += f" [{cell.interval[0]:.1f}, {cell.interval[1]:.1f}]"
        if cell.collapsed:
            rest = (
                f"without them {cell.without_collapsed:.2f}"
                if cell.without_collapsed is not None
                else "all"
            )
            text += f", {cell.collapsed}/{cell.n} collapsed ({rest})"
        if cell.tie:
            text += " (tie)"
    return f"{text} {cell.extra}" if cell.extra else text


def to_markdown(table: Table) -> str:
    """GitHub Markdown: best of our rows in bold, footnotes as [n]."""
    header = [table.row_label, *table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|---|" + "---:|" * len(table.columns))
    for name, cells in [*table.ours.items(), *table.reported.items()]:
        if table.reported_label and name == next(iter(table.reported)):
            lines.append(f"| *{table.reported_label}* |" + " |" * len(table.columns))
        shown = []
        for c in cells:
            text = format_cell(c).replace("|", "\\|")  # a '|' in words would split the cell
            text = f"**{text}**" if c.best else text
            shown.append(text + "".join(f" [{i}]" for i in c.notes))
        lines.append("| " + " | ".join([name.replace("|", "\\|"), *shown]) + " |")
    lines.append("")
    lines += [f"[{i}] {n}" for i, n in enumerate(table.notes, 1)]
    lines.append(table.legend)
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    for a, b in [
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("×", r"$\times$"),
    ]:
        text = text.replace(a, b)
    return text


def to_latex(table: Table) -> str:
    """A booktabs tabular: best of our rows in bold, reported rows under a midrule."""
    lines = [
        f"% {table.title}",
        r"\begin{tabular}{"
        + ("p{4cm}" if table.wrap else "l")
        + ("p{3cm}" if table.wrap else "r") * len(table.columns)
        + "}",
        r"\toprule",
        " & ".join(
            [
                _tex(table.row_label.capitalize()),
                *(_tex(c[:1].upper() + c[1:]) for c in table.columns),
            ]
        )
        + r" \\",
        r"\midrule",
    ]

    def row(name: str, cells: list[TableCell]) -> str:
        shown = []
        for c in cells:
            text = _tex(format_cell(c)).replace("±", r"$\pm$")
            text = rf"\textbf{{{text}}}" if c.best else text
            marks = ",".join(str(i) for i in c.notes)
            shown.append(text + (rf"\textsuperscript{{[{marks}]}}" if marks else ""))
        return " & ".join([_tex(name), *shown]) + r" \\"

    lines += [row(n, c) for n, c in table.ours.items()]
    if table.reported:
        lines.append(r"\midrule")
        if table.reported_label:
            label, width = _tex(table.reported_label), len(table.columns) + 1
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\emph{{{label}}}}} \\")
        lines += [row(n, c) for n, c in table.reported.items()]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% [{i}] {_tex(n)}" for i, n in enumerate(table.notes, 1)]
    lines.append(f"% {_tex(table.legend)}")
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Long CSV: one line per (row, column) with mean, std, n, kind (ours | reported), note."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["row", "kind", "column", "mean", "std", "n", "extra", "note"])
    for kind, rows in (("ours", table.ours), ("reported", table.reported)):
        for name, cells in rows.items():
            for column, c in zip(table.columns, cells, strict=True):
                notes = [table.notes[i - 1] for i in c.notes]
                if kind == "reported" and table.reported_label:
                    notes.insert(0, table.reported_label)
                note = "; ".join(notes)
                mean = "" if c.mean is None else f"{c.mean:.4f}"
                std = "" if c.std is None or math.isnan(c.std) else f"{c.std:.4f}"
                w.writerow([name, kind, column, mean, std, c.n, c.extra, note])
    return out.getvalue()
