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
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from reports import data, peaks, stats

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
    ours: dict[str, list[Cell]] = field(default_factory=dict)
    reported: dict[str, list[Cell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    higher_is_better: list[bool] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    legend: str = ""  # one line under the table saying what a cell is


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
    table = Table(
        f"LRA test accuracy (%), profile {profile!r}",
        columns,
        legend="cells: mean ± sample std (seeds) of the best-validation checkpoint's test "
        "accuracy, [its 95% Student t interval]; 'k/n collapsed': runs whose validation "
        "accuracy ended within 1 point of the majority class or whose training loss never "
        "left ln(classes) ± 0.01, with the mean without them; bold: the best, where its "
        "interval does not overlap the next one's, else '(tie)' on each overlapping cell; "
        f"avg: the mean over {', '.join(AVERAGED)} ('-' when one is missing)",
    )
    methods = sorted(set(test["method"])) if len(test) else []
    shown: dict[tuple[str, str], pd.DataFrame] = {}
    for method in methods:
        cells, used = [], []
        for task in tasks:
            runs, notes = latest_config(
                table, test[(test["method"] == method) & (test["task"] == task)]
            )
            cells.append(_accuracy_cell(table, runs, method, task, notes))
            used.append(runs)
            shown[(method, task)] = runs
        table.ours[method] = [*cells, _average(cells, tasks)]
        table.provenance[method] = provenance(pd.concat(used))
    _mark_mixed_data(table, shown)
    _mark_separated_best(table)
    if reported is not None:
        for (source, model), group in reported.groupby(["source", "model"], sort=False):
            values = dict(zip(group["task"], group["accuracy"], strict=True))
            cells = [Cell(float(values[t])) if t in values else Cell(None) for t in tasks]
            name = f"{model}, reported ({source})"
            table.reported[name] = [*cells, _average(cells, tasks)]
            table.provenance[name] = f"published: {source}"
    return table


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
    return (
        f"commit {', '.join(commits) or '?'} · {'; '.join(devices) or '?'} · {dates} · "
        f"{len(runs)} row(s)"
    )


def latest_config(table: Table, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """The runs of the most recent configuration on the most recent data (older ones
    footnoted, never averaged in), and the notes."""
    notes: list[int] = []
    if len(runs) == 0:
        return runs, notes
    method, task = runs["method"].iloc[0], runs["task"].iloc[0]
    if runs["config_hash"].nunique() > 1:
        latest = runs.sort_values("finished_at")["config_hash"].iloc[-1]
        others = runs["config_hash"].nunique() - 1
        notes.append(_note(table, f"{method} / {task}: {others} older configuration(s) not shown"))
        runs = runs[runs["config_hash"] == latest]
    if "data_hash" in runs and runs["data_hash"].nunique() > 1:
        latest = runs.sort_values("finished_at")["data_hash"].iloc[-1]
        others = sorted(set(runs["data_hash"].dropna()) - {latest})
        notes.append(
            _note(
                table,
                f"{method} / {task}: runs on other data ({', '.join(others)}) not averaged in: "
                f"shown, the data {latest}",
            )
        )
        runs = runs[runs["data_hash"] == latest]
    return runs, notes


def _mark_mixed_data(table: Table, used: dict[tuple[str, str], pd.DataFrame]) -> None:
    """Footnote every cell of a task whose methods ran on different data."""
    for i, task in enumerate(table.columns):
        hashes = {
            m: frozenset(r["data_hash"].dropna())
            for (m, t), r in used.items()
            if t == task and "data_hash" in r and len(r)
        }
        if len(set(hashes.values())) < 2:
            continue
        note = _note(
            table,
            f"{task}: the methods ran on different data (hashes "
            f"{', '.join(sorted({h for v in hashes.values() for h in v}))}): compare only cells "
            "of one data set",
        )
        for method in hashes:
            cell = table.ours[method][i]
            table.ours[method][i] = replace(cell, notes=(*cell.notes, note))


def lra_vs_softmax(rows: pd.DataFrame, profile: str) -> Table:
    """Method x task: the mean paired difference of test accuracy to softmax (points), over
    the seeds both ran, with its 95% Student t interval. The runs are those the accuracy
    table shows (latest configuration and data, finished)."""
    test = rows[(rows["split"] == "test") & (rows["profile"] == profile)]
    tasks = [t for t in TASK_ORDER if t in set(test["task"])]
    table = Table(
        f"Difference to softmax in test accuracy (points), profile {profile!r}, paired by seed",
        tasks,
        legend="cells: mean over the seeds both ran of (method - softmax), [95% Student t "
        "interval], the number of pairs in brackets; an interval that excludes 0 is a "
        "difference the seeds support",
    )
    shown = {
        (method, task): latest_config(Table("", []), part)[0]
        for (method, task), part in test.groupby(["method", "task"])
    }

    def by_seed(method: str, task: str) -> dict[int, float]:
        runs = shown.get((method, task), test.iloc[:0])
        ok = runs[runs["status"] == "ok"].sort_values("finished_at")
        return {int(s): 100 * float(a) for s, a in zip(ok["seed"], ok["accuracy"], strict=True)}

    softmax = {task: by_seed("softmax", task) for task in tasks}
    for method in sorted(set(test["method"]) - {"softmax"}):
        cells = []
        for task in tasks:
            found = stats.paired_difference(by_seed(method, task), softmax[task])
            if found is None:
                cells.append(Cell(None))
                continue
            diff, interval, n = found
            cells.append(Cell(diff, None, n, interval=interval))
        table.ours[method] = cells
        used = [runs for (m, _), runs in shown.items() if m in (method, "softmax")]
        table.provenance[method] = provenance(pd.concat(used))
    return table


def _accuracy_cell(
    table: Table, runs: pd.DataFrame, method: str, task: str, notes: list[int]
) -> Cell:
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
    ok = ok.sort_values("finished_at").drop_duplicates("seed", keep="last")
    values = [100 * float(v) for v in ok["accuracy"]]
    mean, std, interval = stats.mean_interval(values)
    flags = ok["collapsed"].fillna(False).astype(bool) if "collapsed" in ok else None
    collapsed = int(flags.sum()) if flags is not None else 0
    kept = [v for v, c in zip(values, flags, strict=True) if not c] if collapsed else values
    without = statistics.fmean(kept) if collapsed and kept else None
    return Cell(
        mean,
        std,
        len(values),
        tuple(notes),
        interval=interval,
        collapsed=collapsed,
        without_collapsed=without,
    )


def _mark_separated_best(table: Table) -> None:
    """Per column: bold the best mean only where its 95% interval does not overlap the
    next one's; otherwise the best and every cell whose interval overlaps it are a tie.
    Columns of averages (no seeds) take the plain best."""
    for i, _ in enumerate(table.columns):
        ranked = sorted(
            (name for name, cells in table.ours.items() if cells[i].mean is not None),
            key=lambda name: -table.ours[name][i].mean,
        )
        if not ranked:
            continue
        best = table.ours[ranked[0]][i]
        if best.n == 0:  # an average over tasks
            table.ours[ranked[0]][i] = replace(best, best=True)
            continue
        if len(ranked) == 1 or not stats.overlap(best.interval, table.ours[ranked[1]][i].interval):
            table.ours[ranked[0]][i] = replace(best, best=True)
            continue
        for name in ranked:
            if stats.overlap(best.interval, table.ours[name][i].interval):
                table.ours[name][i] = replace(table.ours[name][i], tie=True)


def _mark_best(table: Table) -> None:
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


def lra_efficiency(
    rows: pd.DataFrame, reported: pd.DataFrame | None = None, lengths: list[int] | None = None
) -> Table:
    """The LRA paper's Table 2 for one setting: steps/s (speed-up over softmax) and peak memory.

    `rows` are the efficiency rows of one (device, batch, amp, task) setting; the latest row per
    (method, seq_len) counts. Cells that did not run (oom, skipped) are '-' with a footnote.
    Published rows get their speed-up over the published Transformer."""
    lengths = lengths or sorted(
        {
            *map(int, rows["seq_len"]),
            *(map(int, reported["seq_len"]) if reported is not None else []),
        }
    )
    k = [f"{n // 1024}K" if n % 1024 == 0 else str(n) for n in lengths]
    columns = [f"steps/s {x}" for x in k] + [f"memory GB {x}" for x in k]
    first = rows.iloc[0] if len(rows) else None
    setting = (
        f"{first['device_name']} ({first['device']}), {first['task']} model, batch "
        f"{first['batch']}, amp {first['amp']}, profile {first['profile']!r}"
        if first is not None
        else "no measured rows"
    )
    table = Table(
        f"LRA efficiency: training steps per second and peak memory, {setting}",
        columns,
        higher_is_better=[True] * len(lengths) + [False] * len(lengths),
        legend="steps/s: training steps per second (forward, backward, optimizer step), in "
        "brackets the speed-up over softmax at the same length; memory: peak GB during a step; "
        "reported rows were measured by their authors on their own hardware and batch size: "
        "compare speed-ups, not absolute numbers",
    )
    latest = data.latest(rows, ["method", "seq_len"])
    base = latest[(latest["method"] == "softmax") & (latest["status"] == "ok")]
    base_speed = dict(zip(base["seq_len"], base["steps_per_s"], strict=True))
    for method, group in sorted(latest.groupby("method"), key=lambda kv: kv[0]):
        speed, memory = [], []
        for n in lengths:
            hit = group[group["seq_len"] == n]
            if hit.empty or hit["status"].iloc[0] != "ok":
                if n not in set(latest["seq_len"]):
                    text = f"N = {n}: not in our measured lengths"
                elif hit.empty:
                    text = f"{method} at N = {n}: not measured"
                else:
                    error = hit["error"].iloc[0]
                    detail = f" ({error[:80]})" if isinstance(error, str) else ""
                    text = f"{method} at N = {n}: {hit['status'].iloc[0]}{detail}"
                note = (_note(table, text),)
                speed.append(Cell(None, notes=note))
                memory.append(Cell(None, notes=note))
                continue
            s, r = float(hit["steps_per_s"].iloc[0]), hit.iloc[0]
            up = f"({s / base_speed[n]:.1f}×)" if n in base_speed else ""
            speed.append(Cell(s, extra=up))
            memory.append(Cell(float(r["peak_mem_bytes"]) / 1e9))
        table.ours[method] = speed + memory
        table.provenance[method] = provenance(group)
    _mark_best(table)
    if reported is not None:
        ref = reported[reported["model"] == "Transformer"]
        ref_speed = dict(zip(ref["seq_len"], ref["steps_per_second"], strict=True))
        for (source, model), group in reported.groupby(["source", "model"], sort=False):
            by_len = {int(r.seq_len): r for r in group.itertuples()}
            speed = [
                Cell(
                    float(by_len[n].steps_per_second),
                    extra=f"({by_len[n].steps_per_second / ref_speed[n]:.1f}×)"
                    if n in ref_speed
                    else "",
                )
                if n in by_len
                else Cell(None)
                for n in lengths
            ]
            memory = [
                Cell(float(by_len[n].peak_memory_gb)) if n in by_len else Cell(None)
                for n in lengths
            ]
            name = f"{model}, reported ({source})"
            table.reported[name] = speed + memory
            table.provenance[name] = f"published: {source}"
    return table


def sweep_throughput(rows: pd.DataFrame) -> Table:
    """Achieved TFLOP/s of every curve and pass of one sweep setting, by length; on a known
    GPU in bf16/fp16, with the fraction of its dense bf16 peak (reports.peaks) in brackets.

    TFLOP/s = the mechanism's declared FLOPs (formula in its docstring: matrix products
    only) over the median time; the latest row per cell that carries a FLOP count counts."""
    counted = rows[rows["flops"].notna()]  # rows from before FLOP counts existed: left out
    latest = data.latest(counted, ["method", "method_options", "seq_len", "pass"])
    lengths = sorted(map(int, latest["seq_len"].unique()))
    first = latest.iloc[0]
    peak = None
    if first["device"] == "cuda" and first["dtype"] in ("bf16", "fp16"):
        peak = peaks.peak_tflops(first["device_name"])
    setting = (
        f"{first['device_name']} ({first['device']}), {first['dtype']}, batch {first['batch']}, "
        f"{first['heads']} heads × head dim {first['head_dim']}"
    )
    fraction = f"; in brackets, % of its dense bf16 peak of {peak:g} TFLOP/s" if peak else ""
    table = Table(
        f"Achieved TFLOP/s by sequence length, {setting}",
        [f"{n // 1024}K" if n % 1024 == 0 else str(n) for n in lengths],
        legend="TFLOP/s: the mechanism's declared FLOPs for one call (matrix products at 2 per "
        "multiply-add; the backward of dense attention counted 2.5x its forward, as "
        f"FlashAttention counts it) over the median time per call{fraction}. Elementwise work "
        "(softmax, Sinkhorn iterations, feature exponentials) is not counted, so a mechanism "
        "that spends its time there shows a low rate",
    )
    names = data.curve_names(latest)
    for (method, options), name in sorted(names.items(), key=lambda kv: kv[1]):
        for pass_ in ("forward", "forward_backward"):
            part = latest[
                (latest["method"] == method)
                & (latest["method_options"] == options)
                & (latest["pass"] == pass_)
            ]
            if part.empty:
                continue
            cells = []
            for n in lengths:
                hit = part[part["seq_len"] == n]
                if hit.empty:
                    cells.append(Cell(None))
                    continue
                r = hit.iloc[0]
                rate = r.get("achieved_tflops")
                if r["status"] != "ok" or rate is None or pd.isna(rate):
                    what = r["status"] if r["status"] != "ok" else "no FLOP count declared"
                    note = _note(table, f"{what}: not measured (the row's error column says why)")
                    cells.append(Cell(None, notes=(note,)))
                    continue
                extra = f"({100 * rate / peak:.1f}%)" if peak else ""
                cells.append(Cell(float(rate), extra=extra))
            label = f"{name}, {'forward' if pass_ == 'forward' else 'forward+backward'}"
            table.ours[label] = cells
            table.provenance[label] = provenance(part)
    return table


def published_efficiency() -> pd.DataFrame:
    """The published LRA efficiency rows (source, model, seq_len, steps/s, peak memory GB)."""
    return pd.read_csv(REFERENCE / "lra_published_efficiency.csv")


def format_cell(cell: Cell) -> str:
    """A cell as text: '-', '36.37', '34.00 ± 4.00 (3) [24.1, 43.9]', '2.90 (12.3×)';
    with '1/3 collapsed (without them 36.00)' and '(tie)' where they apply."""
    if cell.mean is None:
        text = "-"
    elif cell.n == 0:  # reported number, or an average
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
    header = ["method", *table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|---|" + "---:|" * len(table.columns))
    for name, cells in [*table.ours.items(), *table.reported.items()]:
        shown = []
        for c in cells:
            text = format_cell(c)
            text = f"**{text}**" if c.best else text
            shown.append(text + "".join(f" [{i}]" for i in c.notes))
        lines.append("| " + " | ".join([name, *shown]) + " |")
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
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(["Method", *(_tex(c[:1].upper() + c[1:]) for c in table.columns)]) + r" \\",
        r"\midrule",
    ]

    def row(name: str, cells: list[Cell]) -> str:
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
                note = "; ".join(table.notes[i - 1] for i in c.notes)
                mean = "" if c.mean is None else f"{c.mean:.4f}"
                std = "" if c.std is None or math.isnan(c.std) else f"{c.std:.4f}"
                w.writerow([name, kind, column, mean, std, c.n, c.extra, note])
    return out.getvalue()
