"""LRA training: every (task, attention, seed) trained, validated and tested, rows to parquet.

    python -m runners.lra --task listops --method lotformer --profile paper --seeds 0,1,2
    python -m runners.lra --task all --method all --profile paper --seeds 0,1,2   # make lra-all
    python -m runners.lra --task listops,pathfinder --method all --profile smoke \\
        --data-dir data/smoke                                                     # quickstart
    python -m runners.lra --task listops --method softmax --set train.steps=2000 --set optim.lr=5e-4
    python -m runners.lra --efficiency --method all    # LRA's efficiency table (text, 1K-4K)
    python -m runners.lra --task image --method all --dry-run   # the resolved configs only

Each run keeps its best-validation weights and reports the test accuracy of those (the
original JAX code tested the last checkpoint). Final rows go to `<out>/lra-*.parquet`
(split val and test), learning curves to `results/lra_curves/`, the resolved configuration
to `<out>/configs/<config_hash>.json`. Runs checkpoint at every validation and on
SIGTERM/SIGINT/SIGUSR2 (SLURM's warning before a time limit or preemption); the same
command resumes them, and skips every (task, method, seed, config) already finished.

    torchrun --nproc_per_node=4 -m runners.lra --task text --method performer --seeds 0

trains each run across 4 processes (one GPU each; gloo on CPU) with DistributedDataParallel:
the global batch stays the profile's, rank 0 alone writes rows, curves and checkpoints,
evaluation is summed over the ranks, and resume works as in one process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

import attention_zoo as zoo
import lra
from lra import generators
from lra.data import load, resolve_data_dir
from lra.registry import SPLITS, BadData, MissingData
from results import schema
from runners import cpu_allocator, distributed, lra_config
from runners.lra_efficiency import run_efficiency
from runners.lra_train import (
    Run,
    StopFlag,
    checkpoint_path,
    collapse_reason,
    crop,
    data_identity,
    majority_accuracy,
    train,
)
from runners.provenance import provenance, resolve_device
from runners.results import PartWriter, read_results, write_json_atomic

SCHEMA = schema.LRA
INTERRUPTED_EXIT = 128 + signal.SIGTERM
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


def parse_names(text: str, known: list[str], what: str) -> list[str]:
    if text == "all":
        return list(known)
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(
            f"--{what}: unknown {unknown or text!r}; expected 'all' or some of {known}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runners.lra",
        description="Train and evaluate LRA models for every (task, attention, seed): final "
        "rows to parquet, learning curves beside them, checkpoints; the same command resumes.",
        epilog=f"profiles: {', '.join(lra_config.profile_names())} (runners/profiles/*.toml). "
        f"Keys for --set: {', '.join([*lra_config.SPEC, *lra_config.DATA_SPEC])}, "
        "methods.METHOD.OPTION, "
        "tasks.TASK.SECTION.KEY.",
    )
    p.add_argument("--task", default="all", help=f"comma list of {lra.names()} or all")
    p.add_argument("--method", default="all", help=f"comma list of {zoo.names()} or all")
    p.add_argument("--seeds", default="0", help="comma list of seeds (default 0)")
    p.add_argument("--profile", default="paper", help="profile name or .toml path (paper)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile value, e.g. train.steps=100 (repeatable)",
    )
    p.add_argument("--data-dir", help="LRA data directory (default $LRA_DATA_DIR, else ./data)")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    p.add_argument("--out", type=Path, default=Path("results/lra"), help="final rows (results/lra)")
    p.add_argument(
        "--curves",
        type=Path,
        default=Path("results/lra_curves"),
        help="learning curves (results/lra_curves)",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=Path("checkpoints/lra"),
        help="checkpoints and best weights (checkpoints/lra)",
    )
    p.add_argument("--force", action="store_true", help="train runs already finished again")
    p.add_argument(
        "--stop-after-steps",
        type=int,
        metavar="N",
        help="train at most N steps per run in this process, checkpoint and stop "
        "(time-sliced jobs); the same command resumes",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved runs; train none")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--cpu-allocator",
        choices=cpu_allocator.MODES,
        default="auto",
        help="on CPU: thp runs with glibc's malloc on transparent huge pages (the runner "
        "re-executes itself with GLIBC_TUNABLES=glibc.malloc.hugetlb=1), which cuts the time "
        "a training step spends faulting in fresh pages; system: malloc as it is; auto "
        "(default): thp where glibc >= 2.35 and the kernel allow it. Recorded in the rows' "
        "allocator column",
    )
    eff = p.add_argument_group("efficiency mode (LRA's efficiency table)")
    eff.add_argument(
        "--efficiency",
        action="store_true",
        help="training steps/s and peak memory of each method on the text task's model",
    )
    eff.add_argument(
        "--lengths", default="1024,2048,3072,4096", help="comma list (1024,2048,3072,4096)"
    )
    eff.add_argument("--batch", type=int, default=32, help="batch size (32, as LRA)")
    eff.add_argument("--min-time", type=float, default=2.0, help="seconds of timed steps (2)")
    eff.add_argument(
        "--efficiency-out",
        type=Path,
        default=Path("results/lra_efficiency"),
        help="rows (results/lra_efficiency)",
    )
    return p


def plan(args: argparse.Namespace) -> tuple[list[Run], dict]:
    """The runs to consider and the profile; ValueError/ConfigError on bad input."""
    tasks = parse_names(args.task, lra.names(), "task")
    methods = parse_names(args.method, zoo.names(), "method")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from None
    profile = lra_config.load_profile(args.profile)
    runs = []
    for task in tasks:
        for method in methods:
            cfg = lra_config.resolve(profile, task, method, args.overrides)
            for seed in seeds:
                runs.append(Run(task, method, seed, cfg, lra_config.config_hash(cfg)))
    return runs, profile


def load_task(task: str, data_dir: Path, length: int, expected: dict | None = None) -> dict:
    """Every split of `task`, cropped to `length` (0 = as stored); BadData if the profile
    `expected` data generated with other parameters (its [data] section)."""
    check_generated(task, data_dir, expected or {})
    return {split: crop(load(task, split, data_dir), length) for split in SPLITS}


def check_generated(task: str, data_dir: Path, expected: dict) -> None:
    """BadData naming the generate command unless `task`'s data under `data_dir` was
    generated with every parameter in `expected` (nothing expected: nothing checked)."""
    if not expected:
        return
    have = generators.generated_with(task, data_dir, expected.get("level"))
    command = generators.generate_command(task, data_dir, expected)
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(expected.items()))
    if have is None:
        where = generators.data_folder(task, data_dir, expected.get("level"))
        raise BadData(
            f"the profile expects data generated with {wanted}, but {where} has no "
            f"{generators.RECORD} (not generated, or not by `python -m lra.data generate`); "
            f"run `{command}`"
        )
    differ = {k: v for k, v in sorted(expected.items()) if have.get(k) != v}
    if differ:
        found = ", ".join(f"{k}={have.get(k)}" for k in differ)
        raise BadData(
            f"the data under {data_dir} was generated with {found}; the profile expects "
            f"{', '.join(f'{k}={v}' for k, v in differ.items())}; run `{command}` "
            "(it rewrites the files)"
        )


def finished(rows: pd.DataFrame) -> set[tuple]:
    """(task, method, seed, config_hash) of the runs among `rows` that ended ok."""
    if rows.empty:
        return set()
    ok = rows[rows["status"] == "ok"]
    return set(zip(ok["task"], ok["method"], ok["seed"], ok["config_hash"], strict=True))


def result_rows(
    run: Run, outcome, splits: dict, env: dict, world_size: int = 1, overrides: Sequence = ()
) -> list[dict]:
    info = splits["train"].info
    why = None
    if outcome.status == "ok":
        why = collapse_reason(outcome.curve, majority_accuracy(splits["val"].labels), info.classes)
    base = {
        **env,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": outcome.status,
        "error": outcome.error,
        "task": run.task,
        "method": run.method,
        "method_options": json.dumps(run.cfg["method_options"], sort_keys=True),
        "seed": run.seed,
        "profile": run.cfg["profile"],
        "config_hash": run.config_hash,
        "seq_len": splits["train"].inputs.shape[1],
        "batch": run.cfg["train"]["batch"],
        "steps": outcome.steps,
        "best_step": outcome.best_step,
        "train_seconds": outcome.train_seconds,
        "tokens_per_s": outcome.tokens_per_s,
        "peak_mem_bytes": outcome.peak_mem_bytes,
        "world_size": world_size,
        "data_hash": data_identity(splits),
        "classes": info.classes,
        "collapsed": None if outcome.status != "ok" else why is not None,
        "collapse_reason": why,
        "overrides": json.dumps(list(overrides)),
    }
    return [
        {
            **base,
            "split": split,
            "accuracy": outcome.accuracy.get(split),
            "majority_accuracy": majority_accuracy(splits[split].labels),
            "examples": len(splits[split]),
        }
        for split in ("val", "test")
    ]


def summary(rows: pd.DataFrame) -> str:
    """Test accuracy (mean over seeds) per task and method, beside the majority baseline."""
    if rows.empty:
        return "(no runs)"
    test = rows[(rows["split"] == "test") & (rows["status"] == "ok")]
    if test.empty:
        return "(no finished runs)"
    table = test.pivot_table(index="method", columns="task", values="accuracy", aggfunc="mean")
    majority = test.groupby("task")["majority_accuracy"].first().rename("majority")
    return (
        table.map(lambda v: f"{100 * v:.1f}").to_string()
        + "\n"
        + "majority   "
        + "  ".join(f"{t}: {100 * v:.1f}" for t, v in majority.items())
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        if args.efficiency:
            methods = parse_names(args.method, zoo.names(), "method")
            try:
                lengths = sorted({int(x) for x in args.lengths.split(",")})
            except ValueError:
                raise ValueError(
                    f"--lengths must be a comma list of integers, got {args.lengths!r}"
                ) from None
            if lengths[0] < 1 or args.batch < 1:
                raise ValueError("--lengths and --batch must be >= 1")
            profile = lra_config.load_profile(args.profile)
            cfgs = {m: lra_config.resolve(profile, "text", m, args.overrides) for m in methods}
        else:
            runs, profile = plan(args)
        if args.stop_after_steps is not None and args.stop_after_steps < 1:
            raise ValueError("--stop-after-steps must be >= 1")
        relaunch = (
            cpu_allocator.environment_for(args.cpu_allocator) if device.type == "cpu" else None
        )
    except ValueError as exc:  # ConfigError included: before any training
        parser.error(str(exc))
    if argv is None:  # a command line, not a call from Python
        cpu_allocator.reexec("runners.lra", relaunch)
    if args.efficiency:
        if distributed.from_env().world > 1:
            parser.error("--efficiency measures one process; run it without torchrun")
        return run_efficiency(cfgs, lengths, args.batch, device, args, progress=not args.quiet)
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
    try:
        return train_all(args, runs, profile, existing, done, data_dir, device, dist, parser)
    finally:
        distributed.teardown(dist)


def train_all(args, runs, profile, existing, done, data_dir, device, dist, parser) -> int:
    """Train every run of `runs` not in `done`; rows, the summary and messages on rank 0."""

    def say(message: str) -> None:
        if dist.main:
            print(message, file=sys.stderr)

    stop = StopFlag()
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    env = provenance(device)
    stamp = env["started_at"].replace(":", "").replace("-", "")[:15]
    writer = PartWriter(args.out, f"lra-{stamp}-{env['run_id']}", SCHEMA) if dist.main else None
    missing: dict[str, str] = {}
    loaded: dict[tuple[str, int], dict] = {}
    failed = 0
    todo = [r for r in runs if (r.task, r.method, r.seed, r.config_hash) not in done]
    ranks = f" x {dist.world} processes" if dist.world > 1 else ""
    say(
        f"lra: {len(runs)} runs ({len(runs) - len(todo)} already finished) on {device}{ranks}, "
        f"profile {profile['name']!r}, data {data_dir} -> {args.out}"
    )
    for run in todo:
        if run.task in missing:
            continue
        length = run.cfg["train"]["length"]
        try:
            if (run.task, length) not in loaded:
                loaded = {
                    (run.task, length): load_task(run.task, data_dir, length, run.cfg.get("data"))
                }
        except (MissingData, BadData) as exc:
            missing[run.task] = str(exc)
            say(f"{run.task}: not run: {exc}")
            continue
        except ValueError as exc:  # train.length cuts real tokens
            parser.error(f"{run.task}: {exc}")
        splits = loaded[(run.task, length)]
        if dist.main:
            write_json_atomic(args.out / "configs" / f"{run.config_hash}.json", run.cfg)
        try:
            outcome = train(
                run,
                splits,
                device,
                args.checkpoints,
                args.curves,
                stop=stop,
                stop_after_steps=args.stop_after_steps,
                progress=not args.quiet,
                dist=dist,
            )
        except ValueError as exc:  # a batch too small for the processes
            parser.error(f"{run.name}: {exc}")
        if outcome.status == "interrupted":
            say(
                f"{run.name}: {outcome.error}; checkpoint "
                f"{checkpoint_path(args.checkpoints, run)}; run the same command to resume"
            )
            return INTERRUPTED_EXIT
        if writer is not None:
            for row in result_rows(run, outcome, splits, env, dist.world, args.overrides):
                writer.append(row)
            checkpoint_path(args.checkpoints, run).unlink(missing_ok=True)
        if outcome.status != "ok":
            failed += 1
            say(f"{run.name}: {outcome.status}: {outcome.error}")
        else:
            acc = outcome.accuracy
            say(
                f"{run.name}: val {100 * acc['val']:.1f}%  test {100 * acc['test']:.1f}%  "
                f"({outcome.steps} steps, best {outcome.best_step}, "
                f"{outcome.train_seconds:.0f} s)"
            )
    if writer is not None:
        rows = pd.concat([existing, pd.DataFrame(writer.rows, columns=SCHEMA.names)])
        if not rows.empty:
            keys = {(r.task, r.method, r.seed, r.config_hash) for r in runs}
            ident = zip(*(rows[c] for c in ("task", "method", "seed", "config_hash")), strict=True)
            rows = rows[[k in keys for k in ident]]
        print("test accuracy % (mean over seeds), best-validation weights:")
        print(summary(rows))
        if missing:
            print("\ntasks without data (not run):")
            for task, why in missing.items():
                print(f"  {task}: {why}")
    explicit = args.task != "all"
    return 1 if failed or (missing and explicit) else 0


if __name__ == "__main__":
    sys.exit(main())
