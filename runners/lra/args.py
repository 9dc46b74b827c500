"""The flags of `python -m runners.lra` (its parser; `runners.lra.cli` runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path

import attention_zoo as zoo
import lra
from runners.arguments import add_import_option
from runners.lra import config as lra_config
from runners.measure import allocator


def add_tasks_and_seeds(p: argparse.ArgumentParser, tasks_dest: str) -> None:
    """--tasks and --seeds, as the runner and the grid's `lra` (which passes them on) take them."""
    p.add_argument(
        "--tasks",
        "--task",
        dest=tasks_dest,
        default="all",
        help=f"comma list of {lra.names()}, or all (the LRA tasks: {', '.join(lra.suite())})",
    )
    p.add_argument("--seeds", "--seed", dest="seeds", default="0", help="comma list of seeds (0)")


def build_parser(kind: type[argparse.ArgumentParser] = argparse.ArgumentParser):
    p = kind(
        prog="python -m runners.lra",
        description="Train and evaluate LRA models for every (task, attention, seed): final "
        "rows to parquet, learning curves beside them, checkpoints; the same command resumes.",
        epilog=f"profiles: {', '.join(lra_config.profile_names())} (runners/profiles/*.toml). "
        f"Keys for --set: {', '.join(lra_config.SPEC)}, methods.METHOD.OPTION, "
        "tasks.TASK.SECTION.KEY, and tasks.TASK.data.PARAM for the parameters that make a "
        "task's data: "
        + "; ".join(
            f"{name}: {', '.join(p.name for p in lra.task(name).data_params)}"
            for name in lra.names()
            if lra.task(name).data_params
        )
        + ".",
    )
    add_tasks_and_seeds(p, tasks_dest="task")
    p.add_argument(
        "--methods",
        "--method",
        dest="method",
        default="all",
        help=f"comma list of {zoo.names()} or all",
    )
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
        choices=allocator.MODES,
        default="auto",
        help="on CPU: thp runs with glibc's malloc on transparent huge pages (the runner "
        "re-executes itself with GLIBC_TUNABLES=glibc.malloc.hugetlb=1), which cuts the time "
        "a training step spends faulting in fresh pages; system: malloc as it is; auto "
        "(default): thp where glibc >= 2.35 and the kernel allow it. Recorded in the rows' "
        "allocator column",
    )
    add_import_option(p)
    eff = p.add_argument_group("efficiency mode (LRA's efficiency table)")
    eff.add_argument(
        "--efficiency",
        action="store_true",
        help="training steps/s and peak memory of each method on the text task's model",
    )
    eff.add_argument(
        "--lengths",
        default="1024,2048,3072,4096",
        help="comma list (1024,2048,3072,4096), or LO:HI for the powers of two between",
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
