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

import math
import sys
from collections.abc import Sequence

import attention_zoo as zoo
from attention_zoo.registry import PASSES
from runners.arguments import parse_command, parse_lengths, parse_names
from runners.measure import allocator
from runners.measure.cases import AttentionCase, Settings
from runners.measure.loop import available_memory_bytes
from runners.provenance import resolve_device
from runners.sweep.args import build_parser, parse_options, resolve
from runners.sweep.run import run_sweep, summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command(parser, argv)
    args = resolve(args)
    try:
        methods = parse_names(args.methods, zoo.names(), "methods")
        passes = [x.strip() for x in args.passes.split(",")]
        if unknown := set(passes) - set(PASSES):
            raise ValueError(
                f"--passes: unknown {sorted(unknown)}; expected some of {list(PASSES)}"
            )
        lengths = parse_lengths(args.lengths)
        options = parse_options(args.options, methods)
        device = resolve_device(args.device)
        relaunch = allocator.environment_for(args.cpu_allocator) if device.type == "cpu" else None
        for flag in ("batch", "heads", "head_dim", "min_repeats", "max_repeats"):
            if getattr(args, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
        if args.time_budget is not None and not args.time_budget > 0:
            raise ValueError(f"--time-budget must be > 0 seconds, got {args.time_budget}")
    except ValueError as exc:
        parser.error(str(exc))
    if argv is None:  # a command line, not a call from Python
        allocator.reexec(relaunch)
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
        compile_budget_s=args.compile_budget,
        seed=args.seed,
    )
    cells = [
        AttentionCase(m, tuple(sorted({**zoo.info(m).defaults, **chosen}.items())), n, pass_)
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
