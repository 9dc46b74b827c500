"""The sweep's cells measured in order, each a row the moment it is measured; resumable.

    rows, new = run_sweep(cells, settings, Path("results/sweep"))   # (every row, rows added)

A cell already in the output for the same configuration and environment (`cell_key`) is
not measured again; one predicted to exceed its time or memory budget is recorded as
skipped (`skip_reason`). The command line is `runners.sweep.cli`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

import attention_zoo as zoo
from results import schema
from runners.measure.cases import Cell, Settings, measure_cell
from runners.measure.loop import Chain
from runners.provenance import provenance
from runners.results import PartWriter, read_results

SCHEMA = schema.SWEEP


# the error of a cell the time budget left untried: not a result, so a re-run measures it
OUT_OF_TIME = "not tried: the sweep's time budget"


def skip_reason(
    chain: Chain, cell: Cell, s: Settings, memory_budget: float, after_failure: bool
) -> str | None:
    """Why `cell` should not be tried, or None."""
    if chain.failure and after_failure:
        return f"not tried: {chain.failure} (use --try-after-failure to try anyway)"
    calls = 2 + s.min_repeats  # warm-up, memory, timed repeats
    time_ms = chain.predict(cell.seq_len, 1)
    if time_ms is not None and calls * time_ms / 1e3 > s.cell_budget_s:
        return (
            f"predicted {time_ms / 1e3:.1f} s per call from shorter lengths: {calls} calls "
            f"exceed the cell budget of {s.cell_budget_s:g} s (--cell-budget)"
        )
    peak = chain.predict(cell.seq_len, 2)
    if peak is not None and peak > memory_budget:
        return (
            f"predicted peak memory {peak / 2**30:.1f} GiB exceeds the memory budget of "
            f"{memory_budget / 2**30:.1f} GiB (--memory-budget-gib)"
        )
    return None


def cell_key(cell: Cell, s: Settings, env: dict[str, object]) -> str:
    """Identity of a measurement: configuration and environment, not the run."""
    ident = {
        "method": cell.method,
        "options": dict(cell.options),
        "seq_len": cell.seq_len,
        "pass": cell.pass_,
        "batch": s.batch,
        "heads": s.heads,
        "head_dim": s.head_dim,
        "dtype": s.dtype,
        **{
            k: env[k]
            for k in (
                "device",
                "device_name",
                "torch_version",
                "git_commit",
                "git_dirty",
                "threads",
                "allocator",
            )
        },
    }
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_sweep(
    cells: list[Cell],
    s: Settings,
    out: Path,
    *,
    force: bool = False,
    retry_failed: bool = False,
    after_failure: bool = True,
    memory_budget: float = math.inf,
    progress: bool = True,
    time_budget_s: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """Measure every cell not already in `out`; returns the rows of all cells and how many
    of them are new. With `time_budget_s`, cells not started within that many seconds are
    recorded as skipped."""
    started = time.monotonic()
    env = provenance(s.device)
    existing = read_results(out)
    done: dict[str, dict] = {}
    if not force and len(existing) and "cell_key" in existing:
        for row in existing.sort_values("measured_at").to_dict("records"):
            untried = str(row.get("error") or "").startswith(OUT_OF_TIME)
            if not untried and not (retry_failed and row["status"] != "ok"):
                done[row["cell_key"]] = row
    stamp = env["started_at"].replace(":", "").replace("-", "")[:15]
    writer = PartWriter(out, f"sweep-{stamp}-{env['run_id']}", SCHEMA)
    chains: dict[tuple, Chain] = {}
    rows = []
    bar = tqdm(total=len(cells), unit="cell", disable=not progress, dynamic_ncols=True)
    for cell in cells:
        info = zoo.info(cell.method)
        curve = (cell.method, cell.options, cell.pass_)
        if curve not in chains:
            chains[curve] = Chain(min_slope=2.0 if info.complexity == "quadratic" else 1.0)
        chain = chains[curve]
        key = cell_key(cell, s, env)
        label = f"{cell.method} {cell.pass_} N={cell.seq_len}"
        bar.set_description(label)
        if key in done:
            row = done[key]
        else:
            reason = skip_reason(chain, cell, s, memory_budget, after_failure)
            if time_budget_s is not None and time.monotonic() - started > time_budget_s:
                reason = f"{OUT_OF_TIME} of {time_budget_s:g} s ran out (--time-budget)"
            measured = {"status": "skipped", "error": reason} if reason else measure_cell(cell, s)
            flops = info.flops(
                s.batch, s.heads, cell.seq_len, s.head_dim, cell.pass_, **dict(cell.options)
            )
            if flops is not None and measured.get("status") == "ok":
                measured["achieved_tflops"] = flops / (measured["time_ms"] * 1e-3) / 1e12
            row = {
                **env,
                "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "method": cell.method,
                "method_options": json.dumps(dict(cell.options), sort_keys=True),
                "seq_len": cell.seq_len,
                "batch": s.batch,
                "heads": s.heads,
                "head_dim": s.head_dim,
                "dtype": s.dtype,
                "pass": cell.pass_,
                "min_time_s": s.min_time_s,
                "cell_budget_s": s.cell_budget_s,
                "seed": s.seed,
                "cell_key": key,
                "flops": flops,
                **measured,
            }
            writer.append(row)
            if row["status"] not in ("ok", "skipped"):
                bar.write(f"{label}: {row['status']}: {row['error']}")
        rows.append(row)
        if row["status"] == "ok":
            chain.points.append((cell.seq_len, row["time_ms"], row["peak_mem_bytes"]))
        elif row["status"] != "skipped":
            chain.failure = chain.failure or f"{row['status']} at N={cell.seq_len}"
        bar.update()
    bar.close()
    return pd.DataFrame(rows, columns=SCHEMA.names), len(writer.rows)


def curve_labels(rows: pd.DataFrame) -> list[str]:
    """Per row, its configuration's name (`results.schema.curve_names`): 'lotformer
    [impl=fused]' where lotformer was swept with several impl values."""
    names = schema.curve_names(rows)
    return [names[key] for key in zip(rows["method"], rows["method_options"], strict=True)]


def summary(rows: pd.DataFrame) -> str:
    """Median ms (or the status) per curve/pass and length, as printed after a sweep."""
    if rows.empty:
        return "(no cells)"
    shown = rows.assign(
        curve=curve_labels(rows),
        value=[
            f"{t:.1f}" if st == "ok" else st
            for t, st in zip(rows["time_ms"], rows["status"], strict=True)
        ],
    )
    table = shown.pivot_table(
        index=["curve", "pass"], columns="seq_len", values="value", aggfunc="first"
    )
    return table.fillna("").to_string()
