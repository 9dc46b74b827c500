"""The sweep's cells measured in order, each a row the moment it is measured; resumable.

    rows, new = run_sweep(cells, settings, Path("results/sweep"))   # (every row, rows added)

A cell already in the output for the same configuration and environment (`cell_key`) is
not measured again; one predicted to exceed its time or memory budget is recorded as
skipped (`skip_reason`). The command line is `runners.sweep.cli`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

import attention_zoo as zoo
from results import schema
from results.schema import read_results
from runners.measure import loop
from runners.measure.cases import AttentionCase, Settings, measure_cell
from runners.measure.loop import OUT_OF_TIME, Budgets, Case, Chain, run_cases
from runners.provenance import provenance
from runners.results import PartWriter, part_name

SCHEMA = schema.SWEEP


# what the sweep's budgets are set by, named in a skipped cell's reason
HINTS = {
    "total_s": "--time-budget",
    "after_failure": "use --try-after-failure to try anyway",
    "case_s": "--cell-budget",
    "memory_bytes": "--memory-budget-gib",
}


def skip_reason(
    chain: Chain, cell: AttentionCase, s: Settings, memory_budget: float, after_failure: bool
) -> str | None:
    """Why `cell` should not be tried, or None (measure.loop.skip_reason at the sweep's
    budgets)."""
    return loop.skip_reason(chain, cell.seq_len, budgets(s, memory_budget, after_failure))


def budgets(
    s: Settings, memory_budget: float, after_failure: bool, time_budget_s: float | None = None
) -> Budgets:
    """The measurement loop's budgets for a sweep at settings `s`."""
    return Budgets(
        memory_bytes=memory_budget,
        case_s=s.cell_budget_s,
        calls=2 + s.min_repeats,  # warm-up, memory, timed repeats
        total_s=time_budget_s,
        after_failure=after_failure,
        hints=HINTS,
    )


def cell_key(cell: AttentionCase, s: Settings, env: dict[str, object]) -> str:
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
    cells: list[AttentionCase],
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
    env = provenance(s.device)
    done = {} if force else measured_before(read_results(out), retry_failed)
    writer = PartWriter(out, part_name("sweep", env), SCHEMA)
    cases = [case(cell, s, env, done) for cell in cells]
    rows = run_cases(
        cases, writer, budgets(s, memory_budget, after_failure, time_budget_s), progress
    )
    return pd.DataFrame(rows, columns=SCHEMA.names), len(writer.rows)


def measured_before(existing: pd.DataFrame, retry_failed: bool) -> dict[str, dict]:
    """cell_key -> the latest row of each cell in `existing` that a re-run keeps (not a cell
    the time budget left untried; with `retry_failed`, only ok cells)."""
    done: dict[str, dict] = {}
    if len(existing) and "cell_key" in existing:
        for row in existing.sort_values("measured_at").to_dict("records"):
            untried = str(row.get("error") or "").startswith(OUT_OF_TIME)
            if not untried and not (retry_failed and row["status"] != "ok"):
                done[row["cell_key"]] = row
    return done


def case(cell: AttentionCase, s: Settings, env: dict, done: dict[str, dict]) -> Case:
    """`cell` as a case of the measurement loop: its row's columns, and its FLOPs counted."""
    info = zoo.info(cell.method)
    key = cell_key(cell, s, env)
    flops = info.flops(s.batch, s.heads, cell.seq_len, s.head_dim, cell.pass_, **dict(cell.options))

    def measure() -> dict:
        measured = measure_cell(cell, s)
        if flops is not None and measured.get("status") == "ok":
            measured["achieved_tflops"] = flops / (measured["time_ms"] * 1e-3) / 1e12
        return measured

    columns = {
        **env,
        "method": cell.method,
        "method_options": json.dumps(dict(cell.options), sort_keys=True),
        "default_options": dict(cell.options) == info.defaults,
        "mechanism_source": info.source,
        "seq_len": cell.seq_len,
        "batch": s.batch,
        "heads": s.heads,
        "head_dim": s.head_dim,
        "dtype": s.dtype,
        "pass": cell.pass_,
        "min_time_s": s.min_time_s,
        "cell_budget_s": s.cell_budget_s,
        "compile_budget_s": s.compile_budget_s,
        "seed": s.seed,
        "cell_key": key,
        "flops": flops,
    }
    return Case(
        curve=(cell.method, cell.options, cell.pass_),
        length=cell.seq_len,
        label=f"{cell.method} {cell.pass_} N={cell.seq_len}",
        columns=columns,
        measure=measure,
        min_slope=2.0 if info.complexity == "quadratic" else 1.0,
        done=done.get(key),
    )


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
