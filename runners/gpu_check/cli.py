"""The prepared GPU check: every GPU claim of the harness measured in one run of minutes.

    make gpu-check                                  # = python -m runners.gpu_check (a CUDA GPU)
    python -m runners.gpu_check --dry-run           # the plan and its predicted time, any machine
    python -m runners.gpu_check --budget-s 300 --stages sweep,training
    # on a lent GPU machine with no .venv (its own python3 and torch), from the repository root:
    PYTHONPATH=. ATTENTION_BENCH_GIT_COMMIT=<commit> python3 -m runners.gpu_check \\
        --bundle $OUT/gpu-check.tar.gz

Stages, in this order, each a subprocess whose rows are on disk as soon as it measures them:
    cuda-tests  the CUDA-only tests, and which kernel flash, the streaming sinkformer and
                lotformer's compiled solver ran (PyTorch's profiler lists the kernels)
    sweep       the `paper` sweep preset (bf16, N = 2^9..2^17, all five mechanisms and
                lotformer's reference solver beside its fused one), under a time budget
    ds-variants the doubly stochastic mechanisms' GPU variants against today's, at N = 2^9,
                2^14, 2^17, both passes: sinkformer kernel=flex vs sdpa, lotformer
                compiled=graphs vs auto and impl=triton (compile time in warmup_ms); then
                their LRA efficiency (batch 32, 1K and 4K). Predictions: docs/gpu-check.md
    bench       the gate's baseline for this device kind (one run) and one check against it
    efficiency  `runners.lra --efficiency`: training steps/s and memory, batch 32, 1K..4K
    training    a short bf16 training of softmax and lotformer on generated ListOps (the data
                is generated on the CPU cores while the first stages use the GPU)

`--budget-s` (630) is split between the stages in proportion to their predicted times; a
stage gets its share plus what earlier stages left unused, and is skipped (with the
reason in the summary) when less than its minimum is left. Rows go to `--out` (results/)
as every runner writes them: sweep/, lra_efficiency/, bench/baseline-<kind>.json; the
rest (logs, the test report, the kernels that ran, the training rows, summary.json and
summary.md with the device, driver, versions, each stage's time and verdict) to
`<out>/gpu_check/<run>/`. `--bundle FILE.tar.gz` re-packs everything this run wrote after
every stage, so a run killed at a time limit still hands over what finished.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from runners.gpu_check.stages import CUT_EXIT, Check, Context, Stage, shares
from runners.provenance import COMMIT_VARIABLE

__all__ = ["CUT_EXIT", "STAGES", "Check", "Context", "Stage", "main", "sweep_arguments"]

DEFAULT_BUDGET_S = 630.0
NO_CUDA_EXIT = 2

# the sweep stage: every cell of the paper preset, timed briefly, none longer than this
SWEEP_CELL_BUDGET_S = 6.0
SWEEP_MIN_TIME_S = 0.1
SWEEP_TAIL_S = 30.0  # process start, plus the last cell begun before its time budget ran out
TRAINING_STEPS = 300
# the ds-variants stage: each variant beside today's, at the lengths the claims quote
VARIANT_LENGTHS = "512,16384,131072"
VARIANT_OPTIONS = ("sinkformer.kernel=sdpa,flex", "lotformer.compiled=auto,graphs")
VARIANT_COMPILE_BUDGET_S = 60.0  # a compile longer than this is a timeout row
VARIANT_SETS = (
    ("sinkformer", "methods.sinkformer.kernel=flex"),
    ("lotformer", "methods.lotformer.compiled=graphs"),
    ("lotformer", "methods.lotformer.impl=triton"),
)
LISTOPS_ROWS = 6000  # 5,760 / 120 / 120: 300 steps of 32 see every training row 1.7 times
LISTOPS_MAX_LENGTH = 256


def _cuda_tests(ctx: Context, allotted: float) -> list[list[str]]:
    return [
        ctx.module(
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/attention_zoo/test_cuda.py",
            f"--junitxml={ctx.run_dir / 'cuda-tests.xml'}",
        ),
        ctx.module("runners.gpu_check.probe", str(ctx.run_dir / "backends.json")),
    ]


def _paper_sweep(ctx: Context, seconds: float, *flags: str) -> list[str]:
    """The paper preset with `flags`, cells timed briefly, `seconds` less the tail to start
    cells in, rows to <out>/sweep: what both sweeps of the check share."""
    timing = ["--min-time", str(SWEEP_MIN_TIME_S), "--cell-budget", str(SWEEP_CELL_BUDGET_S)]
    budget = ["--time-budget", f"{max(seconds - SWEEP_TAIL_S, 1.0):.0f}"]
    return [
        "--preset",
        "paper",
        *flags,
        *timing,
        *budget,
        "--out",
        str(ctx.out / "sweep"),
        "--quiet",
    ]


def sweep_arguments(ctx: Context, allotted: float) -> list[str]:
    """The sweep stage's flags: the paper preset, cells timed briefly, a time budget."""
    return _paper_sweep(ctx, allotted, "--option", "lotformer.impl=fused,reference")


def _sweep(ctx: Context, allotted: float) -> list[list[str]]:
    return [ctx.module("runners.sweep", *sweep_arguments(ctx, allotted))]


def variant_arguments(
    ctx: Context, allotted: float, methods: str = "sinkformer,lotformer", chosen=VARIANT_OPTIONS
) -> list[str]:
    """A ds-variants sweep's flags: the paper setting, the variants `chosen` beside today's,
    the compile budget, and a third of the stage's time (the efficiency runs take the last)."""
    chosen = (*chosen, "lotformer.r=32", "lotformer.iters=5")
    options = [x for o in chosen for x in ("--option", o)]
    flags = ["--methods", methods, "--lengths", VARIANT_LENGTHS, *options]
    return _paper_sweep(
        ctx, allotted / 3, *flags, "--compile-budget", str(VARIANT_COMPILE_BUDGET_S)
    )


def _variants(ctx: Context, allotted: float) -> list[list[str]]:
    """The variants' sweep, then each variant's efficiency on its own (one that cannot be
    made on this GPU stops its own command only)."""
    efficiency = []
    for method, setting in VARIANT_SETS:
        flags = ["--efficiency", "--methods", method, "--set", setting, "--batch", "32"]
        flags += ["--lengths", "1024,4096", "--min-time", "0.3", "--quiet"]
        flags += ["--efficiency-out", str(ctx.out / "lra_efficiency")]
        efficiency.append(ctx.module("runners.lra", *flags))
    triton = variant_arguments(ctx, allotted, "lotformer", ("lotformer.impl=triton",))
    return [
        ctx.module("runners.sweep", *variant_arguments(ctx, allotted)),
        ctx.module("runners.sweep", *triton),  # its own curve: no triton x graphs cross
        *efficiency,
    ]


def _bench(ctx: Context, allotted: float) -> list[list[str]]:
    baseline = str(ctx.out / "bench" / f"baseline-{ctx.device_kind}.json")
    return [
        ctx.module("runners.bench", "baseline", "--runs", "1", "--baseline", baseline),
        ctx.module(
            "runners.bench",
            "check",
            "--stored",  # against the baseline just made (the machine may have no git history)
            "--baseline",
            baseline,
            "--json",
            str(ctx.run_dir / "bench-check.json"),
        ),
    ]


def _efficiency(ctx: Context, allotted: float) -> list[list[str]]:
    return [
        ctx.module(
            "runners.lra",
            "--efficiency",
            "--methods",
            "all",
            "--batch",
            "32",
            "--lengths",
            "1024,2048,3072,4096",
            "--min-time",
            "0.3",
            "--efficiency-out",
            str(ctx.out / "lra_efficiency"),
            "--quiet",
        )
    ]


def data_command(ctx: Context) -> list[str]:
    """Generates the training stage's ListOps (started at once, on the CPU cores)."""
    return ctx.module(
        "lra.data",
        "--data-dir",
        str(ctx.data_dir),
        "generate",
        "listops",
        "--count",
        str(LISTOPS_ROWS),
        "--max-length",
        str(LISTOPS_MAX_LENGTH),
    )


def _training(ctx: Context, allotted: float) -> list[list[str]]:
    sets = [
        "train.amp=bf16",
        f"train.steps={TRAINING_STEPS}",
        "train.eval_every=100",
        "optim.warmup=30",
    ]
    return [
        ctx.module(
            "runners.lra",
            "--profile",
            "smoke",
            "--tasks",
            "listops",
            "--methods",
            "softmax,lotformer",
            "--seeds",
            "0",
            "--data-dir",
            str(ctx.data_dir),
            *(x for s in sets for x in ("--set", s)),
            "--out",
            str(ctx.run_dir / "lra"),
            "--curves",
            str(ctx.run_dir / "lra_curves"),
            "--checkpoints",
            str(ctx.data_dir / "checkpoints"),
            "--device",
            "cuda",
            "--quiet",
        )
    ]


STAGES = [
    Stage(
        "cuda-tests",
        "the CUDA-only tests; the kernels flash, the streaming sinkformer and lotformer ran",
        60,
        20,
        _cuda_tests,
    ),
    Stage(
        "sweep",
        "paper preset: 6 curves (lotformer fused and reference) x N=2^9..2^17 x 2 passes, "
        f"bf16, B=1 H=16 D=64; cells over {SWEEP_CELL_BUDGET_S:g} s skipped by prediction",
        120,
        60,
        _sweep,
    ),
    Stage(
        "ds-variants",
        "sinkformer kernel=flex vs sdpa, lotformer compiled=graphs vs auto and impl=triton at "
        "N=2^9, 2^14, 2^17, both passes (compiles counted in warmup_ms, 60 s each at most); "
        "then their LRA efficiency at batch 32, 1K and 4K",
        270,  # a guess: no GPU has compiled these yet (docs/gpu-check.md)
        60,
        _variants,
    ),
    Stage(
        "bench",
        "the gate's 30 benchmarks: baseline-<kind>.json from 1 run, then a check against it",
        80,
        45,
        _bench,
    ),
    Stage(
        "efficiency",
        "runners.lra --efficiency: 5 mechanisms x N=1K,2K,3K,4K, batch 32 (text model)",
        30,
        20,
        _efficiency,
    ),
    Stage(
        "training",
        f"bf16 training of softmax and lotformer, {TRAINING_STEPS} steps on generated ListOps "
        f"({LISTOPS_ROWS} rows under {LISTOPS_MAX_LENGTH} tokens)",
        70,
        30,
        _training,
        prepare=data_command,
    ),
]


def plan_text(stages: Sequence[Stage], ctx: Context, budget_s: float) -> str:
    """The stages in order with their predicted time, share of the budget and commands."""
    lines = [f"gpu-check plan: {len(stages)} stages, budget {budget_s:g} s (--budget-s)"]
    for stage, share in zip(stages, shares(stages, budget_s), strict=True):
        lines.append(
            f"{stage.name:<11} predicted {stage.predicted_s:>4.0f} s, share {share:>4.0f} s, "
            f"skipped under {stage.min_s:g} s: {stage.what}"
        )
        for command in stage.commands(ctx, share):
            lines.append("    $ " + " ".join(command))
    total = sum(s.predicted_s for s in stages)
    verdict = "fits" if total <= budget_s else "EXCEEDS the budget: later stages will be skipped"
    lines.append(f"predicted total {total:.0f} s of {budget_s:g} s: {verdict}")
    for stage in stages:
        if stage.prepare is not None:
            lines.append(f"from the start, on the CPU, for {stage.name}:")
            lines.append("    $ " + " ".join(stage.prepare(ctx)))
    return "\n".join(lines)


def select(names: str | None) -> list[Stage]:
    """The stages named in a comma list (in the check's order), or all."""
    if not names:
        return list(STAGES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = [s.name for s in STAGES]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(f"--stages: unknown {unknown or names!r}; expected some of {known}")
    return [s for s in STAGES if s.name in wanted]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runners.gpu_check",
        description="Every GPU claim of the harness measured in one run: CUDA tests and the "
        "kernels that ran, the paper sweep, the gate's baseline, LRA efficiency, bf16 "
        "training. Rows are written as each stage measures them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="stages, in order:\n"
        + "\n".join(f"  {s.name:<11} ~{s.predicted_s:.0f} s: {s.what}" for s in STAGES)
        + f"\n\nexit: 0 all passed, 1 a stage failed or was skipped, {NO_CUDA_EXIT} no CUDA "
        f"device, {CUT_EXIT} interrupted",
    )
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder (results/)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"seconds for all stages together ({DEFAULT_BUDGET_S:g}); split in proportion "
        "to their predicted times, a stage that cannot get its minimum is skipped",
    )
    p.add_argument("--stages", help="comma list of stages to run (default: all, in order)")
    p.add_argument(
        "--bundle",
        type=Path,
        help="also keep everything this run writes in this .tar.gz (paths relative to "
        "--out), re-packed after every stage: for a machine whose files come back by copy",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan; run nothing (any machine)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        stages = select(args.stages)
        if not args.budget_s > 0:
            raise ValueError(f"--budget-s must be > 0, got {args.budget_s}")
    except ValueError as exc:
        parser.error(str(exc))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = args.out / "gpu_check" / f"{stamp}-{uuid.uuid4().hex[:6]}"
    if args.dry_run:
        ctx = Context(args.out, run_dir, Path(tempfile.gettempdir()) / "gpu-check-data")
        print(plan_text(stages, ctx, args.budget_s))
        return 0
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device; `python -m runners.gpu_check --dry-run` shows the plan",
            file=sys.stderr,
        )
        return NO_CUDA_EXIT
    from runners.bench.gate import device_kind
    from runners.gpu_check.probe import device_facts

    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="gpu-check-data-"))
    ctx = Context(args.out, run_dir, data_dir, device_kind=device_kind(torch.device("cuda")))
    facts = device_facts()
    if facts["git_commit"] == "unknown":
        print(
            f"gpu-check: no git here; set {COMMIT_VARIABLE} to record the commit", file=sys.stderr
        )
    check = Check(stages, ctx, args.budget_s, facts, bundle=args.bundle)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, check.interrupt)
    print(plan_text(stages, ctx, args.budget_s), flush=True)
    try:
        return check.run()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)  # generated data and checkpoints
