"""The speed tables: LRA's efficiency table (training steps/s and memory) and the sweep's
achieved TFLOP/s, each for one setting (device, dtype, shape).

    table = lra_efficiency(efficiency_rows, published_efficiency())
    table = sweep_throughput(sweep_rows)      # with % of the GPU's dense bf16 peak
"""

from __future__ import annotations

import pandas as pd

from reports import data, peaks
from reports.render import Table, TableCell, add_note, describe, mark_best
from results import schema


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
        cells = [_measured(table, method, group, n, latest, base_speed) for n in lengths]
        table.ours[method] = [c[0] for c in cells] + [c[1] for c in cells]
        describe(table, method, group)
    mark_best(table)
    if reported is not None:
        _add_reported(table, reported, lengths)
    return table


def _measured(
    table: Table, method: str, group: pd.DataFrame, n: int, latest: pd.DataFrame, base: dict
) -> tuple[TableCell, TableCell]:
    """(steps/s with its speed-up over softmax, memory GB) of `method` at length `n`; a
    length it did not run is '-' in both, with a footnote saying why."""
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
        note = (add_note(table, text),)
        return TableCell(None, notes=note), TableCell(None, notes=note)
    s, r = float(hit["steps_per_s"].iloc[0]), hit.iloc[0]
    up = f"({s / base[n]:.1f}×)" if n in base else ""
    return TableCell(s, extra=up), TableCell(float(r["peak_mem_bytes"]) / 1e9)


def _add_reported(table: Table, reported: pd.DataFrame, lengths: list[int]) -> None:
    """The published rows, each with its speed-up over the published Transformer."""
    ref = reported[reported["model"] == "Transformer"]
    ref_speed = dict(zip(ref["seq_len"], ref["steps_per_second"], strict=True))
    for (source, model), group in reported.groupby(["source", "model"], sort=False):
        by_len = {int(r.seq_len): r for r in group.itertuples()}
        speed = [
            TableCell(
                float(by_len[n].steps_per_second),
                extra=f"({by_len[n].steps_per_second / ref_speed[n]:.1f}×)"
                if n in ref_speed
                else "",
            )
            if n in by_len
            else TableCell(None)
            for n in lengths
        ]
        memory = [
            TableCell(float(by_len[n].peak_memory_gb)) if n in by_len else TableCell(None)
            for n in lengths
        ]
        name = f"{model}, reported ({source})"
        table.reported[name] = speed + memory
        table.provenance[name] = f"published: {source}"


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
    names = schema.curve_names(latest)
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
                    cells.append(TableCell(None))
                    continue
                r = hit.iloc[0]
                rate = r.get("achieved_tflops")
                if r["status"] != "ok" or rate is None or pd.isna(rate):
                    what = r["status"] if r["status"] != "ok" else "no FLOP count declared"
                    note = add_note(
                        table, f"{what}: not measured (the row's error column says why)"
                    )
                    cells.append(TableCell(None, notes=(note,)))
                    continue
                extra = f"({100 * rate / peak:.1f}%)" if peak else ""
                cells.append(TableCell(float(rate), extra=extra))
            label = f"{name}, {'forward' if pass_ == 'forward' else 'forward+backward'}"
            table.ours[label] = cells
            describe(table, label, part)
    return table


def published_efficiency() -> pd.DataFrame:
    """The published LRA efficiency rows (source, model, seq_len, steps/s, peak memory GB)."""
    return pd.read_csv(data.REFERENCE / "lra_published_efficiency.csv")
