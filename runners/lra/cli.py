"""LRA training: every (task, attention, seed) trained, validated and tested, rows to parquet.

    python -m runners.lra --tasks listops --methods lotformer --profile paper --seeds 0,1,2
    python -m runners.lra --tasks all --methods all --profile paper --seeds 0,1,2   # make lra-all
    python -m runners.lra --tasks listops,pathfinder --methods all --profile smoke \\
        --data-dir data/smoke                                                     # quickstart
    python -m runners.lra --tasks listops --methods softmax --set train.steps=2000 \\
        --set optim.lr=5e-4
    python -m runners.lra --efficiency --methods all    # LRA's efficiency table (text, 1K-4K)
    python -m runners.lra --tasks image --methods all --dry-run   # the resolved configs only

Each run keeps its best-validation weights and reports the test accuracy of those (the
original JAX code tested the last checkpoint). Final rows go to `<out>/lra-*.parquet`
(split val and test), learning curves to `results/lra_curves/`, the resolved configuration
to `<out>/configs/<config_hash>.json`. Runs checkpoint at every validation and on
SIGTERM/SIGINT/SIGUSR2 (SLURM's warning before a time limit or preemption); the same
command resumes them, and skips every (task, method, seed, config) already finished.

    torchrun --nproc_per_node=4 -m runners.lra --tasks text --methods performer --seeds 0

trains each run across 4 processes (one GPU each; gloo on CPU) with DistributedDataParallel:
the global batch stays the profile's, rank 0 alone writes rows, curves and checkpoints,
evaluation is summed over the ranks, and resume works as in one process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import attention_zoo as zoo
from lra.data import resolve_data_dir
from results.schema import read_results
from runners.arguments import INTERRUPTED_EXIT, parse_command, parse_lengths, parse_names
from runners.lra import config as lra_config
from runners.lra import distributed
from runners.lra.args import build_parser
from runners.lra.efficiency import run_efficiency
from runners.lra.runs import Where, finished, plan, train_runs
from runners.lra.session import checkpoint_path
from runners.measure import allocator
from runners.provenance import resolve_device

__all__ = ["INTERRUPTED_EXIT", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command(parser, argv)
    try:
        device = resolve_device(args.device)
        if args.efficiency:
            methods = parse_names(args.method, zoo.names(), "method")
            lengths = parse_lengths(args.lengths)
            if args.batch < 1:
                raise ValueError("--batch must be >= 1")
            profile = lra_config.load_profile(args.profile)
            cfgs = {m: lra_config.resolve(profile, "text", m, args.overrides) for m in methods}
        else:
            runs, _ = plan(args.task, args.method, args.seeds, args.profile, args.overrides)
        if args.stop_after_steps is not None and args.stop_after_steps < 1:
            raise ValueError("--stop-after-steps must be >= 1")
        relaunch = allocator.environment_for(args.cpu_allocator) if device.type == "cpu" else None
    except ValueError as exc:  # ConfigError included: before any training
        parser.error(str(exc))
    if argv is None:  # a command line, not a call from Python
        allocator.reexec(relaunch)
    if args.efficiency:
        if distributed.from_env().world > 1:
            parser.error("--efficiency measures one process; run it without torchrun")
        return run_efficiency(
            cfgs, lengths, args.batch, device, args.efficiency_out, args.min_time, not args.quiet
        )
    data_dir = resolve_data_dir(args.data_dir)
    existing = read_results(args.out)
    done = set() if args.force else finished(existing)
    if args.dry_run:
        for run in runs:
            state = (
                "finished"
                if (run.task, run.method, run.seed, run.config_hash) in done
                else ("resumes" if checkpoint_path(args.checkpoints, run).is_file() else "to train")
            )
            print(f"{run.name}: {state}\n  {json.dumps(run.cfg, sort_keys=True)}")
        return 0
    try:
        dist, device = distributed.setup(device)
    except ValueError as exc:
        parser.error(str(exc))
    where = Where(args.out, args.curves, args.checkpoints)
    try:
        return train_runs(
            runs,
            existing,
            done,
            data_dir,
            device,
            dist,
            where,
            overrides=args.overrides,
            stop_after_steps=args.stop_after_steps,
            progress=not args.quiet,
            every_task=args.task == "all",
        )
    except ValueError as exc:  # a run that cannot start; the rows before it are kept
        parser.error(str(exc))
    finally:
        distributed.teardown(dist)
