"""A set of LRA runs planned from a profile, trained one after another, each ending in rows.

    runs, profile = plan("listops", "all", "0,1,2", "mini")   # tasks x methods x seeds
    where = Where(Path("results/lra"), Path("results/lra_curves"), Path("checkpoints/lra"))
    code = train_runs(runs, existing, finished(existing), data_dir, device, SINGLE, where)

Each run's `val` and `test` rows (`result_rows`) go to one parquet part per process;
finished runs (same task, method, seed and config hash) are skipped, an interrupted one
resumes from its checkpoint. The command line is `runners.lra.cli`.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import attention_zoo as zoo
import lra
from lra import generators
from lra.data import load
from lra.registry import SPLITS, BadData, MissingData
from results import schema
from results.files import write_json_atomic
from runners.arguments import INTERRUPTED_EXIT, parse_names
from runners.lra import config as lra_config
from runners.lra.judge import collapse_reason, crop, data_identity
from runners.lra.session import Run, checkpoint_path
from runners.lra.train import STOP_SIGNALS, StopFlag, train
from runners.provenance import provenance
from runners.results import PartWriter, part_name

SCHEMA = schema.LRA


def plan(
    tasks: str, methods: str, seeds: str, profile: str | Path, overrides: Sequence[str] = ()
) -> tuple[list[Run], dict]:
    """The runs of comma lists `tasks` x `methods` x `seeds` (`all`: every registered one) at
    `profile` with `overrides`, and the profile; ValueError/ConfigError on bad input."""
    task_names = parse_names(tasks, lra.names(), "task", every=lra.suite("lra"))
    method_names = parse_names(methods, zoo.names(), "method")
    try:
        seed_values = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be a comma list of integers, got {seeds!r}") from None
    loaded = lra_config.load_profile(profile)
    runs = []
    for task in task_names:
        for method in method_names:
            cfg = lra_config.resolve(loaded, task, method, overrides)
            for seed in seed_values:
                runs.append(Run(task, method, seed, cfg, lra_config.config_hash(cfg)))
    return runs, loaded


def load_task(task: str, data_dir: Path, length: int, expected: dict | None = None) -> dict:
    """Every split of `task`, cropped to `length` (0 = as stored): made from the profile's
    [data] parameters (`expected`) for a task made in memory, else read from `data_dir`,
    BadData if it was generated with other parameters than `expected`."""
    made = lra.task(task)
    if made.made_from_params:
        return {split: crop(data, length) for split, data in made.make(expected or {}).items()}
    check_generated(task, data_dir, expected or {})
    return {split: crop(load(task, split, data_dir), length) for split in SPLITS}


def check_generated(task: str, data_dir: Path, expected: dict) -> None:
    """BadData naming the generate command unless `task`'s data under `data_dir` was
    generated with every parameter in `expected` (nothing expected: nothing checked)."""
    if not expected:
        return
    have = generators.generated_with(task, data_dir, expected)
    command = generators.generate_command(task, data_dir, expected)
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(expected.items()))
    if have is None:
        where = generators.data_folder(task, data_dir, expected)
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
    task = lra.task(run.task)
    why = None
    if outcome.status == "ok":
        why = collapse_reason(outcome.curve, task.majority_accuracy(splits["val"]), info.classes)
    base = {
        **env,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": outcome.status,
        "error": outcome.error,
        "task": run.task,
        "task_order": info.order,
        "data_params": json.dumps(run.cfg.get("data", {}), sort_keys=True),
        "method": run.method,
        "method_options": json.dumps(run.cfg["method_options"], sort_keys=True),
        "mechanism_source": zoo.info(run.method).source,
        "seed": run.seed,
        "profile": run.cfg["profile"],
        "config_hash": run.config_hash,
        "seq_len": splits["train"].inputs.shape[1],
        "batch": run.cfg["train"]["batch"],
        "steps": outcome.steps,
        "planned_steps": run.cfg["train"]["steps"],
        "stopped_early": outcome.stopped_early if outcome.status == "ok" else None,
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
            "majority_accuracy": task.majority_accuracy(splits[split]),
            "examples": len(splits[split]),
        }
        for split in ("val", "test")
    ]


def summary(rows: pd.DataFrame) -> str:
    """Test accuracy (mean over seeds) per task and method, beside the majority baseline.

    Different on purpose from the report's accuracy table (reports/accuracy.py: intervals,
    published rows, older configurations set aside): this is the runner's glance at what it
    just trained, printed where the report cannot be imported (runners do not import reports)."""
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


@dataclass(frozen=True)
class Where:
    """Where a set of runs writes: final rows, learning curves, checkpoints."""

    out: Path
    curves: Path
    checkpoints: Path


def train_runs(
    runs: list[Run],
    existing: pd.DataFrame,
    done: set[tuple],
    data_dir: Path,
    device,
    dist,
    where: Where,
    *,
    overrides: Sequence[str] = (),
    stop_after_steps: int | None = None,
    progress: bool = True,
    every_task: bool = False,
) -> int:
    """Train every run of `runs` not in `done`; rows, the summary and messages on rank 0.

    Returns the exit code: 0, 1 when a run failed (or a task named on purpose, not
    `every_task`, had no data), INTERRUPTED_EXIT when a signal stopped a run (checkpointed).
    ValueError when a run cannot start (a length that cuts real tokens, a batch smaller than
    the processes); the rows of the runs before it are kept."""

    say = _Say(dist.main)
    stop = StopFlag()
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    env = provenance(device)
    writer = PartWriter(where.out, part_name("lra", env), SCHEMA) if dist.main else None
    tasks = _Tasks(data_dir)
    failed = 0
    todo = [r for r in runs if (r.task, r.method, r.seed, r.config_hash) not in done]
    ranks = f" x {dist.world} processes" if dist.world > 1 else ""
    profile = runs[0].cfg["profile"] if runs else "-"
    say(
        f"lra: {len(runs)} runs ({len(runs) - len(todo)} already finished) on {device}{ranks}, "
        f"profile {profile!r}, data {data_dir} -> {where.out}"
    )
    for run in todo:
        if (splits := tasks.load(run, say)) is None:
            continue
        if dist.main:
            write_json_atomic(
                where.out / "configs" / f"{run.config_hash}.json", lra_config.identity(run.cfg)
            )
        try:
            outcome = train(
                run, splits, device, where.checkpoints, where.curves, stop=stop,
                stop_after_steps=stop_after_steps, progress=progress, dist=dist,
            )  # fmt: skip
        except ValueError as exc:  # a batch too small for the processes
            raise ValueError(f"{run.name}: {exc}") from None
        if outcome.status == "interrupted":
            say(
                f"{run.name}: {outcome.error}; checkpoint "
                f"{checkpoint_path(where.checkpoints, run)}; run the same command to resume"
            )
            return INTERRUPTED_EXIT
        if writer is not None:
            writer.extend(result_rows(run, outcome, splits, env, dist.world, overrides))
            checkpoint_path(where.checkpoints, run).unlink(missing_ok=True)
        failed += outcome.status != "ok"
        say(outcome_line(run, outcome))
    if writer is not None:
        _summarise(runs, existing, writer, tasks)
    return 1 if failed or (tasks.missing and not every_task) else 0


class _Say:
    """A message to stderr, from rank 0 only."""

    def __init__(self, main: bool) -> None:
        self.main = main

    def __call__(self, message: str) -> None:
        if self.main:
            print(message, file=sys.stderr)


def _summarise(runs: list[Run], existing: pd.DataFrame, writer: PartWriter, tasks) -> None:
    """After the grid: the test accuracy table of its runs, and the tasks that had no data."""
    print_summary(runs, pd.concat([existing, pd.DataFrame(writer.rows, columns=SCHEMA.names)]))
    if tasks.missing:
        print("\ntasks without data (not run):")
        for task, why in tasks.missing.items():
            print(f"  {task}: {why}")


class _Tasks:
    """The splits of the task being trained (one task in memory at a time), and the tasks
    whose data is missing or not what the profile expects."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.missing: dict[str, str] = {}
        self.loaded: dict[tuple[str, int], dict] = {}

    def load(self, run: Run, say: Callable[[str], None]) -> dict | None:
        """`run`'s splits, or None (said once per task) when its data is not there."""
        if run.task in self.missing:
            return None
        key = (run.task, run.cfg["train"]["length"], json.dumps(run.cfg.get("data", {})))
        try:
            if key not in self.loaded:
                self.loaded = {key: load_task(run.task, self.data_dir, key[1], run.cfg.get("data"))}
        except (MissingData, BadData) as exc:
            self.missing[run.task] = str(exc)
            say(f"{run.task}: not run: {exc}")
            return None
        except ValueError as exc:  # train.length cuts real tokens
            raise ValueError(f"{run.task}: {exc}") from None
        return self.loaded[key]


def outcome_line(run: Run, outcome) -> str:
    """What a finished run says: its accuracies, steps and time, or how it failed."""
    if outcome.status != "ok":
        return f"{run.name}: {outcome.status}: {outcome.error}"
    acc = outcome.accuracy
    return (
        f"{run.name}: val {100 * acc['val']:.1f}%  test {100 * acc['test']:.1f}%  "
        f"({outcome.steps} steps, best {outcome.best_step}, {outcome.train_seconds:.0f} s)"
    )


def print_summary(runs: list[Run], rows: pd.DataFrame) -> None:
    """The test accuracy table of `runs` among `rows` (earlier parts and this one's)."""
    if not rows.empty:
        keys = {(r.task, r.method, r.seed, r.config_hash) for r in runs}
        ident = zip(*(rows[c] for c in ("task", "method", "seed", "config_hash")), strict=True)
        rows = rows[[k in keys for k in ident]]
    print("test accuracy % (mean over seeds), best-validation weights:")
    print(summary(rows))
