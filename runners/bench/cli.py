"""The CI gate's command line (what it measures and how it judges: runners.bench.gate).

python -m runners.bench check                 # = make bench-check: table + exit 1 on regression
python -m runners.bench baseline              # = make bench-baseline: rewrite the baseline
python -m runners.bench check -k lotformer    # a subset (pytest -k expression)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runners.arguments import add_import_option, load_imports
from runners.bench.gate import (
    SPEED_THRESHOLD,
    Extra,
    GateError,
    check,
    default_baseline,
    write_baseline,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runners.bench",
        description="CI gate on speed and memory: run the benchmarks and compare them with a "
        "committed baseline (check), or write that baseline (baseline).",
    )
    parser.add_argument("command", choices=["check", "baseline"])
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="baseline JSON (default: results/bench/baseline-<device kind>.json)",
    )
    parser.add_argument("--json", type=Path, help="also keep this run's pytest-benchmark JSON")
    parser.add_argument("-k", dest="select", help="only benchmarks matching this pytest -k")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="baseline: runs whose per-benchmark median is stored (3; each ~2.5 min on CPU)",
    )
    parser.add_argument(
        "--speed-threshold",
        type=float,
        default=SPEED_THRESHOLD,
        help=f"fail when now/baseline normalised time exceeds this ({SPEED_THRESHOLD})",
    )
    add_import_option(parser)
    parser.add_argument(
        "--plugins",
        action="store_true",
        help="also gate every installed plugin mechanism (by default only the built-in ones, "
        "and those --import loads)",
    )
    args = parser.parse_args(argv)
    load_imports(parser, args.imports)  # a missing one fails here, before any benchmark
    extra = Extra(tuple(args.imports), args.plugins)
    baseline_path = args.baseline or default_baseline()
    if args.command == "check" and not baseline_path.is_file():
        print(
            f"bench: no baseline at {baseline_path}: make one on this device kind with "
            "`make bench-baseline` (and commit it on its own)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "baseline":
            write_baseline(baseline_path, args.select, args.runs, extra)
            return 0
        return check(baseline_path, args.select, args.speed_threshold, args.json, extra)
    except GateError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
