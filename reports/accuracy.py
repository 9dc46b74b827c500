"""The LRA accuracy tables: method x task test accuracy over seeds, and the paired
difference to softmax.

    table = lra_accuracy(rows, profile="paper", reported=published_accuracy())
    vs = lra_vs_softmax(rows, "mini")

A cell is mean +- std over seeds (sample std) with its 95% Student t interval and the
number of seeds, of the test accuracy of finished runs (`status == ok`), collapsed runs
counted; failed runs are never averaged in and are footnoted, as are cells with no
finished run ("-", never zero) and runs on other configurations or data. Published
numbers are separate rows, marked "reported (source)", never mixed with ours.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pandas as pd

from reports import data, stats
from reports.data import task_order, variant_label
from reports.render import Table, TableCell, add_note, describe

# heads the published rows in a table of another profile than `paper`
NOT_COMPARABLE = "published LRA results below: not comparable: different data sizes and budgets"
AVERAGED = ["listops", "text", "retrieval", "image", "pathfinder"]  # LRA's Avg leaves Path-X out


def published_accuracy() -> pd.DataFrame:
    """The published LRA accuracies shipped in reports/reference/ (source, model, task, %)."""
    return pd.read_csv(data.REFERENCE / "lra_published_accuracy.csv")


def _average(cells: list[TableCell], tasks: list[str]) -> TableCell:
    """LRA's Avg: the mean over its five tasks, or missing when one of them is."""
    values = [c.mean for c, t in zip(cells, tasks, strict=True) if t in AVERAGED]
    if len(values) < len(AVERAGED) or any(v is None for v in values):
        return TableCell(None)
    return TableCell(sum(values) / len(values))


def lra_accuracy(
    rows: pd.DataFrame,
    profile: str = "paper",
    reported: pd.DataFrame | None = None,
    comparable: bool = True,
) -> Table:
    """Method x task test accuracy (%) of one profile's runs; see the module docstring.
    Published rows that are not `comparable` (another profile's data and budgets) are
    headed so and shown only in our tasks' columns."""
    test = rows[(rows["split"] == "test") & (rows["profile"] == profile)] if len(rows) else rows
    tasks = task_order(test)
    if reported is not None and comparable:  # the published tasks in the file's (LRA's) order
        published = list(dict.fromkeys(reported["task"]))
        extra = [t for t in published if t not in tasks]
        tasks = sorted(
            [*tasks, *extra], key=lambda t: published.index(t) if t in published else len(published)
        )
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
        describe(table, method, pd.concat(used))
    _mark_mixed_data(table, shown)
    _mark_separated_best(table)
    if reported is not None:
        table.reported_label = "" if comparable else NOT_COMPARABLE
        for (source, model), group in reported.groupby(["source", "model"], sort=False):
            values = dict(zip(group["task"], group["accuracy"], strict=True))
            cells = [TableCell(float(values[t])) if t in values else TableCell(None) for t in tasks]
            name = f"{model}, reported ({source})"
            table.reported[name] = [*cells, _average(cells, tasks)]
            table.provenance[name] = f"published: {source}"
    return table


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
        notes.append(
            add_note(table, f"{method} / {task}: {others} older configuration(s) not shown")
        )
        runs = runs[runs["config_hash"] == latest]
    if "data_hash" in runs and runs["data_hash"].nunique() > 1:
        latest = runs.sort_values("finished_at")["data_hash"].iloc[-1]
        others = sorted(set(runs["data_hash"].dropna()) - {latest})
        notes.append(
            add_note(
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
        note = add_note(
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
    tasks = task_order(test)
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
        return seed_accuracies(shown.get((method, task), test.iloc[:0]))

    softmax = {task: by_seed("softmax", task) for task in tasks}
    for method in sorted(set(test["method"]) - {"softmax"}):
        table.ours[method] = [paired_cell(by_seed(method, t), softmax[t]) for t in tasks]
        used = [runs for (m, _), runs in shown.items() if m in (method, "softmax")]
        describe(table, method, pd.concat(used))
    return table


def seed_accuracies(runs: pd.DataFrame) -> dict[int, float]:
    """seed -> test accuracy (%) of the finished runs among `runs` (the latest per seed)."""
    ok = runs[runs["status"] == "ok"].sort_values("finished_at")
    return {int(s): 100 * float(a) for s, a in zip(ok["seed"], ok["accuracy"], strict=True)}


def paired_cell(ours: dict[int, float], base: dict[int, float]) -> TableCell:
    """The mean paired difference ours - base over the shared seeds, with its 95% interval
    and the number of pairs; '-' when no seed is shared."""
    found = stats.paired_difference(ours, base)
    if found is None:
        return TableCell(None)
    diff, interval, n = found
    return TableCell(diff, None, n, interval=interval)


def _accuracy_cell(
    table: Table, runs: pd.DataFrame, method: str, task: str, notes: list[int]
) -> TableCell:
    ok = runs[runs["status"] == "ok"]
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        why = "; ".join(
            f"seed {s}: {st} ({str(e)[:80]})"
            for s, st, e in zip(failed["seed"], failed["status"], failed["error"], strict=True)
        )
        notes.append(add_note(table, f"{method} / {task}: left out of the mean: {why}"))
    if ok.empty:
        notes.append(add_note(table, f"{method} / {task}: no finished run"))
        return TableCell(None, notes=tuple(notes))
    ok = ok.sort_values("finished_at").drop_duplicates("seed", keep="last")
    values = [100 * float(v) for v in ok["accuracy"]]
    mean, std, interval = stats.mean_interval(values)
    flags = ok["collapsed"].eq(True) if "collapsed" in ok else None  # missing: not flagged
    collapsed = int(flags.sum()) if flags is not None else 0
    kept = [v for v, c in zip(values, flags, strict=True) if not c] if collapsed else values
    without = statistics.fmean(kept) if collapsed and kept else None
    return TableCell(
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
    Columns of averages (no seeds) take the plain best. A cell whose every run collapsed
    is never the best: it never left chance."""
    for i, _ in enumerate(table.columns):
        ranked = sorted(
            (
                name
                for name, cells in table.ours.items()
                if cells[i].mean is not None
                and not (cells[i].n and cells[i].collapsed == cells[i].n)
            ),
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


def lra_ablation(ablation: pd.DataFrame, rows: pd.DataFrame, profile: str) -> Table:
    """Each ablation variant (a mechanism run with `--set` overrides, results/lra_ablation)
    beside the same mechanism at the profile's settings (results/lra): test accuracy over
    seeds and the paired difference to that base, per task. Softmax's base row is always
    shown, for scale."""
    ablation = ablation[(ablation["split"] == "test") & (ablation["profile"] == profile)]
    base = rows[(rows["split"] == "test") & (rows["profile"] == profile)] if len(rows) else rows
    tasks = task_order(ablation)
    columns = [c for t in tasks for c in (t, f"{t} vs base")]
    table = Table(
        f"LRA ablations, profile {profile!r}: test accuracy (%) and the paired difference to "
        "the same mechanism at the profile's settings (points)",
        columns,
        legend="'<task>': mean ± sample std (seeds) [95% Student t interval], collapsed runs "
        "counted, as in the accuracy table; '<task> vs base': mean over the shared seeds of "
        "(variant - the mechanism at the profile's settings) [95% interval] (pairs); a "
        "variant is named by the --set overrides it ran with",
    )
    labels = ablation["overrides"].map(variant_label)
    methods = sorted(set(ablation["method"]), key=lambda m: (m != "softmax", m))
    if "softmax" not in methods:
        methods.insert(0, "softmax")

    for method in methods:
        own = base[base["method"] == method] if len(base) else ablation.iloc[:0]
        variants = [("", own)] + [
            (label, ablation[(ablation["method"] == method) & (labels == label)])
            for label in sorted(set(labels[ablation["method"] == method]) - {""})
        ]
        reference = {
            t: seed_accuracies(latest_config(Table("", []), own[own["task"] == t])[0])
            for t in tasks
        }
        for label, runs in variants:
            name = f"{method} [{label}]" if label else f"{method} ({profile})"
            cells = []
            for task in tasks:
                shown, notes = latest_config(table, runs[runs["task"] == task])
                cells.append(_accuracy_cell(table, shown, name, task, notes))
                paired_with = reference[task] if label else {}  # the base row: none
                cells.append(paired_cell(seed_accuracies(shown), paired_with))
            table.ours[name] = cells
            describe(table, name, runs)
    return table
