"""Scaling sweep: wall-clock and peak memory of attention mechanisms against sequence length.

    python -m runners.sweep --preset cpu                      # a few minutes on a 2-core laptop
    python -m runners.sweep --preset paper                    # the published GPU setup
    python -m runners.sweep --methods softmax,flash,performer,sinkformer,lotformer \\
        --lengths 512:131072 --batch 1 --heads 16 --head-dim 64 --dtype bf16 \\
        --passes forward,forward_backward --option lotformer.r=32 --out results/sweep

Every cell (method x length x pass) becomes one row of `<out>/sweep-<time>-<run>.parquet`,
written as soon as it is measured. Re-running the same sweep resumes: cells already in
`<out>` for the same configuration and environment are not measured again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

import attention_zoo as zoo
from results import schema
from runners import cpu_allocator
from runners.cells import PASSES, Cell, Settings, measure_cell
from runners.provenance import provenance, resolve_device
from runners.results import PartWriter, read_results
from runners.sweep_args import build_parser, parse_lengths, parse_options, resolve

SCHEMA = schema.SWEEP


# the error of a cell the time budget left untried: not a result, so a re-run measures it
OUT_OF_TIME = "not tried: the sweep's time budget"


@dataclass
class Chain:
    """One curve (method, options, pass) as it is swept upwards in length."""

    points: list[tuple[int, float, int]] = field(default_factory=list)  # (N, ms, bytes) of ok cells
    failure: str | None = None  # "oom at N=..." once a cell failed
    min_slope: float = 1.0  # the log-log slope of time never assumed flatter than this

    def predict(self, n: int, column: int) -> float | None:
        """Extrapolate time (column 1) or memory (column 2) to length n along the log-log line
        through the last two points, never flatter than linear (time: than `min_slope`, 2
        for a quadratic mechanism, whose short lengths on a GPU are launch-bound and flat)."""
        if len(self.points) < 2:
            return None
        (n0, *a), (n1, *b) = self.points[-2:]
        y0, y1 = a[column - 1], b[column - 1]
        if n1 <= n0 or y0 <= 0 or y1 <= 0:
            return None
        floor = self.min_slope if column == 1 else 1.0
        slope = max(floor, math.log(y1 / y0) / math.log(n1 / n0))
        return y1 * (n / n1) ** slope


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


def available_memory_bytes() -> float:
    """MemAvailable from /proc/meminfo (inf where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = resolve(parser.parse_args(argv))
    try:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in methods:
            zoo.info(m)  # raises with the list of known names
        passes = [x.strip() for x in args.passes.split(",")]
        if unknown := set(passes) - set(PASSES):
            raise ValueError(
                f"--passes: unknown {sorted(unknown)}; expected some of {list(PASSES)}"
            )
        lengths = parse_lengths(args.lengths)
        options = parse_options(args.options, methods)
        device = resolve_device(args.device)
        relaunch = (
            cpu_allocator.environment_for(args.cpu_allocator) if device.type == "cpu" else None
        )
        for flag in ("batch", "heads", "head_dim", "min_repeats", "max_repeats"):
            if getattr(args, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
        if args.time_budget is not None and not args.time_budget > 0:
            raise ValueError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    except ValueError as exc:
        parser.error(str(exc))
    if argv is None:  # a command line, not a call from Python
        cpu_allocator.reexec("runners.sweep", relaunch)
    settings = Settings(
        batch=args.batch,
        heads=args.heads,
        head_dim=args.head_dim,
        dtype=args.dtype,
        device=device,
        min_time_s=args.min_time,
        min_repeats=args.min_repeats,
        max_repeats=args.max_repeats,
        cell_budget_s=args.cell_budget,
        seed=args.seed,
    )
    cells = [
        Cell(m, tuple(sorted({**zoo.info(m).defaults, **chosen}.items())), n, pass_)
        for n in lengths  # lengths outermost: mechanisms are measured side by side in time
        for m in methods
        for chosen in options[m]  # one curve per combination of the option values given
        for pass_ in passes
    ]
    if args.memory_budget_gib is not None:
        memory_budget = args.memory_budget_gib * 2**30
    else:
        memory_budget = 0.8 * available_memory_bytes() if device.type == "cpu" else math.inf
    curves = len({(c.method, c.options) for c in cells})
    print(
        f"sweep: {len(cells)} cells ({curves} curves x {len(lengths)} lengths x "
        f"{len(passes)} passes) on {device} [{settings.dtype}, B={settings.batch}, "
        f"H={settings.heads}, D={settings.head_dim}] -> {args.out}",
        file=sys.stderr,
    )
    rows, new = run_sweep(
        cells,
        settings,
        args.out,
        force=args.force,
        retry_failed=args.retry_failed,
        after_failure=not args.try_after_failure,
        memory_budget=memory_budget,
        progress=not args.quiet,
        time_budget_s=args.time_budget,
    )
    print("median ms per call (or the status) by length:")
    print(summary(rows))
    print(f"\n{new} new rows, {len(rows) - new} already measured, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
