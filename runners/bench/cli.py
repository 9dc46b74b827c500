"""The CI gate's command line (what it measures: runners.bench.gate; how it judges:
runners.bench.judge; the base measured beside the change: runners.bench.paired).

python -m runners.bench check                  # = make bench-check: the working tree (or the
                                               # last commit) against its base, both measured
python -m runners.bench check --against main   # against another base commit
python -m runners.bench check --stored         # against results/bench/baseline-<kind>.json
python -m runners.bench baseline               # = make bench-baseline: rewrite that baseline
python -m runners.bench check -k lotformer     # a subset (pytest -k expression)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runners.arguments import add_import_option, parse_command
from runners.bench.gate import SPEED_THRESHOLD, Extra, GateError, default_baseline, write_baseline
from runners.bench.judge import Request, check
from runners.bench.paired import BUDGET_S


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runners.bench",
        description="CI gate on speed and memory. check: measure the working tree and a "
        "base commit in the same run, in alternation, and judge each benchmark's time ratio "
        "by its 95% interval (FAIL only when the whole interval is over the threshold, ok "
        "only when it is under, inconclusive otherwise); without git history, against the "
        "stored baseline. baseline: rewrite the stored baseline. Exit codes: 0 ok, 1 a "
        "regression, 2 the check could not be made, 3 some benchmarks still inconclusive "
        "(the machine too noisy to judge them). docs/gate.md explains.",
    )
    parser.add_argument("command", choices=["check", "baseline"])
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="the stored baseline (default: results/bench/baseline-<device kind>.json)",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="check: the base commit measured beside the working tree (default: HEAD when the "
        "working tree's attention_zoo/ has changes, else HEAD~1)",
    )
    parser.add_argument(
        "--stored",
        action="store_true",
        help="check: compare with the stored baseline instead of measuring a base commit",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=BUDGET_S,
        help=f"check: seconds spent re-measuring inconclusive benchmarks ({BUDGET_S:g})",
    )
    parser.add_argument(
        "--json", type=Path, help="also keep this run's measurements (every pair's times)"
    )
    parser.add_argument(
        "-k", dest="select", help="only benchmarks matching this pytest -k expression"
    )
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
        help="fail when the whole 95%% interval of the time ratio lies above this "
        f"({SPEED_THRESHOLD})",
    )
    parser.add_argument(
        "--inconclusive-passes",
        action="store_true",
        help="check: exit 0, not 3, when nothing regressed but some benchmarks stayed "
        "inconclusive (the line naming them is still printed; .ci/run uses this)",
    )
    add_import_option(parser)
    parser.add_argument(
        "--plugins",
        action="store_true",
        help="also gate every installed plugin mechanism (by default only the built-in ones, "
        "and those --import loads)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parse_command(parser, argv)  # a missing --import fails here, before any benchmark
    extra = Extra(tuple(args.imports), args.plugins)
    baseline_path = args.baseline or default_baseline()
    if args.budget_s < 0:
        parser.error(f"--budget-s must be >= 0, not {args.budget_s:g}")
    try:
        if args.command == "baseline":
            write_baseline(baseline_path, args.select, args.runs, extra)
            return 0
        request = Request(
            baseline_path,
            args.select,
            args.speed_threshold,
            args.json,
            extra,
            args.against,
            args.stored,
            args.budget_s,
        )
        code = check(request)
        return 0 if code == 3 and args.inconclusive_passes else code
    except GateError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
