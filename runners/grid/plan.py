"""A grid's cells: one per (task, method, seed) of `runners.lra`, or per (method, partition)
of `runners.sweep`, each with the runner command its job runs.

    cells, where = plan_lra("all", "all", "0,1", ["--profile", "paper"])  # rest: the runner checks
    folder = grid_folder(Path("jobs"), "lra", cells)         # the same cells, the same folder
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attention_zoo as zoo
from runners.arguments import RaisingParser, parse_command, parse_names
from runners.grid.job import GridCell
from runners.lra import args as lra_args
from runners.lra.runs import plan
from runners.sweep import args as sweep_args


def plan_lra(tasks: str, methods: str, seeds: str, rest: list[str]) -> tuple[list[GridCell], dict]:
    """One cell per (task, method, seed) of the comma lists; the runner's own parser checks
    `rest`, the options passed on (its errors a ValueError). Returns the cells and where
    their results go."""
    for flag in ("--efficiency", "--dry-run"):
        if any(a == flag or a.startswith(flag + "=") for a in rest):
            raise ValueError(f"{flag} is not a grid's: a cell is one training run")
    ns = parse_command(
        lra_args.build_parser(RaisingParser),
        ["--tasks", tasks, "--methods", methods, "--seeds", seeds, *rest],
    )
    runs, _ = plan(ns.task, ns.method, ns.seeds, ns.profile, ns.overrides)
    cells = [
        GridCell(
            id=f"{r.task}-{r.method}-s{r.seed}",
            module="runners.lra",
            argv=["--tasks", r.task, "--methods", r.method, "--seeds", str(r.seed), *rest],
            label=[r.task, r.method, f"s{r.seed}"],
            run_name=r.name,
            key=[r.task, r.method, r.seed, r.config_hash],
            steps=r.cfg["train"]["steps"],
        )
        for r in runs
    ]
    where = {k: str(Path(v).resolve()) for k, v in (("results", ns.out), ("curves", ns.curves))}
    return cells, where


def plan_sweep(
    methods: str, partitions: str | None, rest: list[str]
) -> tuple[list[GridCell], dict]:
    """One cell per (method, comma-listed partition): each GPU kind measures every method."""
    parser = sweep_args.build_parser(RaisingParser)
    ns = sweep_args.resolve(parse_command(parser, ["--methods", methods, *rest]))
    names = parse_names(methods, zoo.names(), "methods")
    parts = [p for p in (partitions or "").split(",") if p] or [""]
    cells = [
        GridCell(
            id=f"{m}-{p}" if p else m,
            module="runners.sweep",
            argv=["--methods", m, *rest],
            label=[m, p or "-"],
            partition=p,
        )
        for m in names
        for p in parts
    ]
    return cells, {"results": str(Path(ns.out).resolve())}


def grid_folder(jobs: Path, kind: str, cells: list[GridCell]) -> Path:
    """`<jobs>/<kind>-<hash>`: the same grid command always maps to the same folder."""
    text = json.dumps([[c.id, c.argv, c.partition] for c in cells], sort_keys=True)
    return jobs / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
