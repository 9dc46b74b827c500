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
    bench       the gate's baseline for this device kind (one run) and one check against it
    efficiency  `runners.lra --efficiency`: training steps/s and memory, batch 32, 1K..4K
    training    a short bf16 training of softmax and lotformer on generated ListOps (the data
                is generated on the CPU cores while the first stages use the GPU)

`--budget-s` (480) is split between the stages in proportion to their predicted times; a
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
import os
import platform
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runners.provenance import COMMIT_VARIABLE, REPO, provenance
from runners.results import write_json_atomic

DEFAULT_BUDGET_S = 480.0
NO_CUDA_EXIT = 2
CUT_EXIT = 128 + signal.SIGTERM

# the sweep stage: every cell of the paper preset, timed briefly, none longer than this
SWEEP_CELL_BUDGET_S = 6.0
SWEEP_MIN_TIME_S = 0.1
SWEEP_TAIL_S = 30.0  # process start, plus the last cell begun before its time budget ran out
TRAINING_STEPS = 300
LISTOPS_ROWS = 6000  # 5,760 / 120 / 120: 300 steps of 32 see every training row 1.7 times
LISTOPS_MAX_LENGTH = 256


@dataclass(frozen=True)
class Context:
    """Where a run writes and what it runs with."""

    out: Path  # the results folder: sweep/, lra_efficiency/, bench/
    run_dir: Path  # <out>/gpu_check/<run>: logs, summary, training rows
    data_dir: Path  # generated ListOps (not kept)
    python: str = sys.executable
    device_kind: str = "cuda-<gpu>"  # the gate's baseline name: cuda-nvidia-h200, ...

    def module(self, name: str, *args: str) -> list[str]:
        return [self.python, "-m", name, *args]


@dataclass(frozen=True)
class Stage:
    """One step of the check: what it runs, how long it should take, the least it needs."""

    name: str
    what: str
    # seconds on one H200, from its first two runs (results/gpu_check/): cuda-tests 24 s of
    # tests + 21 s of kernel probe, sweep 90-99 s, bench 48-72 s, efficiency 22 s, training 60 s
    predicted_s: float
    min_s: float  # skipped when less than this is left
    commands: Callable[[Context, float], list[list[str]]]  # given the seconds allotted
    # started in the background when the check starts (CPU work), waited for before the stage
    prepare: Callable[[Context], list[str]] | None = None


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
        ctx.module("runners.gpu_check", "--probe-backends", str(ctx.run_dir / "backends.json")),
    ]


def sweep_arguments(ctx: Context, allotted: float) -> list[str]:
    """The sweep stage's flags: the paper preset, cells timed briefly, a time budget."""
    return [
        "--preset",
        "paper",
        "--option",
        "lotformer.impl=fused,reference",
        "--min-time",
        str(SWEEP_MIN_TIME_S),
        "--cell-budget",
        str(SWEEP_CELL_BUDGET_S),
        "--time-budget",
        f"{max(allotted - SWEEP_TAIL_S, 1.0):.0f}",
        "--out",
        str(ctx.out / "sweep"),
        "--quiet",
    ]


def _sweep(ctx: Context, allotted: float) -> list[list[str]]:
    return [ctx.module("runners.sweep", *sweep_arguments(ctx, allotted))]


def _bench(ctx: Context, allotted: float) -> list[list[str]]:
    baseline = str(ctx.out / "bench" / f"baseline-{ctx.device_kind}.json")
    return [
        ctx.module("runners.bench", "baseline", "--runs", "1", "--baseline", baseline),
        ctx.module(
            "runners.bench",
            "check",
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
            "--method",
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
            "--task",
            "listops",
            "--method",
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


@dataclass
class StageRecord:
    """What happened to one stage (summary.json)."""

    name: str
    status: str = "pending"  # pending | running | passed | failed | skipped | cut
    reason: str | None = None
    allotted_s: float | None = None
    seconds: float | None = None
    returncodes: list[int] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    log: str | None = None


def shares(stages: Sequence[Stage], budget_s: float) -> list[float]:
    """Each stage's share of the budget, in proportion to its predicted time."""
    total = sum(s.predicted_s for s in stages)
    return [budget_s * s.predicted_s / total for s in stages]


class Check:
    """Runs the stages in order within the budget, keeping summary.json current."""

    def __init__(
        self,
        stages: Sequence[Stage],
        ctx: Context,
        budget_s: float,
        device: dict[str, object],
        bundle: Path | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.stages, self.ctx, self.budget_s = list(stages), ctx, budget_s
        self.device, self.bundle, self.echo = device, bundle, echo
        self.records = [StageRecord(s.name) for s in stages]
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.child: subprocess.Popen | None = None
        self.cut_by: str | None = None
        self.prepared: dict[str, subprocess.Popen] = {}

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def run(self) -> int:
        """Every stage in order; 0 if all passed, 1 if one failed or was skipped."""
        try:
            self.start_preparations()
            return self._run()
        finally:
            for process in self.prepared.values():
                if process.poll() is None:
                    process.kill()

    def start_preparations(self) -> None:
        """Start every stage's `prepare` command in the background, its output to a log."""
        for stage in self.stages:
            if stage.prepare is not None:
                with open(self.ctx.run_dir / f"{stage.name}-prepare.log", "w") as fh:
                    self.prepared[stage.name] = subprocess.Popen(
                        stage.prepare(self.ctx),
                        cwd=REPO,
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        env=_environment(),
                        start_new_session=True,
                    )

    def _run(self) -> int:
        deadline = 0.0
        for stage, share, record in zip(
            self.stages, shares(self.stages, self.budget_s), self.records, strict=True
        ):
            if self.cut_by:
                record.status, record.reason = "skipped", f"interrupted by {self.cut_by}"
                continue
            deadline += share  # a stage may use what earlier ones left unused
            allotted = min(deadline - (time.monotonic() - self.started), self.remaining())
            if allotted < stage.min_s:
                record.status = "skipped"
                record.reason = (
                    f"needs at least {stage.min_s:g} s; {max(allotted, 0):.0f} s of the "
                    f"{self.budget_s:g} s budget were left for it (--budget-s)"
                )
                self.echo(f"== {stage.name}: skipped: {record.reason}")
                self.write_summary()
                continue
            self.run_stage(stage, record, allotted)
        self.write_summary()
        self.echo(self.summary_text())
        if self.cut_by:
            return CUT_EXIT
        return 0 if all(r.status == "passed" for r in self.records) else 1

    def run_stage(self, stage: Stage, record: StageRecord, allotted: float) -> None:
        commands = stage.commands(self.ctx, allotted)
        log = self.ctx.run_dir / f"{stage.name}.log"
        record.status, record.allotted_s = "running", round(allotted, 1)
        record.commands = [" ".join(c) for c in commands]
        record.log = log.name
        self.echo(f"== {stage.name} ({allotted:.0f} s allotted): {stage.what}")
        self.write_summary()
        t0 = time.monotonic()
        try:
            with open(log, "w") as fh:
                preparation = self.prepared.get(stage.name)
                if preparation is not None:  # its data, made in the background meanwhile
                    fh.write(f"waiting for: {' '.join(preparation.args)}\n")
                    fh.flush()
                    left = allotted - (time.monotonic() - t0)
                    record.returncodes.append(self.wait(preparation, left))
                for command in commands:  # each runs even if the one before failed
                    if self.cut_by or (preparation is not None and record.returncodes[0]):
                        break
                    left = allotted - (time.monotonic() - t0)
                    fh.write(f"$ {' '.join(command)}\n")
                    fh.flush()
                    record.returncodes.append(self.call(command, fh, left))
            failed = [rc for rc in record.returncodes if rc != 0]
            if self.cut_by:
                record.status, record.reason = "cut", f"interrupted by {self.cut_by}"
            else:
                record.status = "failed" if failed else "passed"
            if failed and not self.cut_by:
                record.reason = last_error(log) or f"exit codes {record.returncodes}"
        except subprocess.TimeoutExpired:
            record.status = "cut"
            record.reason = f"still running after its {allotted:.0f} s; stopped"
        record.seconds = round(time.monotonic() - t0, 1)
        self.echo(f"== {stage.name}: {record.status} in {record.seconds:.0f} s")
        self.echo(tail(log))
        if record.reason:
            self.echo(f"   reason: {record.reason}")
        self.write_summary()

    def call(self, command: list[str], log, timeout: float) -> int:
        """Run one command into `log` in its own process group; TimeoutExpired past `timeout`."""
        if timeout <= 0:
            raise subprocess.TimeoutExpired(command, 0)
        self.child = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(),
            start_new_session=True,
        )
        return self.wait(self.child, timeout)

    def wait(self, process: subprocess.Popen, timeout: float) -> int:
        """`process`'s exit code; stopped and TimeoutExpired past `timeout` seconds."""
        self.child = process
        try:
            return process.wait(timeout=max(timeout, 0.001))
        except subprocess.TimeoutExpired:
            self.stop_child()
            raise
        finally:
            self.child = None

    def stop_child(self) -> None:
        """SIGTERM the running stage's process group (runners checkpoint on it), then SIGKILL."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        except ProcessLookupError:
            pass

    def interrupt(self, signum: int, frame) -> None:
        """Signal handler: stop the running stage; run() records it as cut and stops."""
        self.cut_by = signal.Signals(signum).name
        self.stop_child()

    def summary(self) -> dict[str, object]:
        return {
            **self.device,
            "budget_s": self.budget_s,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "cut_by": self.cut_by,
            "stages": [asdict(r) for r in self.records],
        }

    def summary_text(self) -> str:
        d = self.device
        lines = [
            f"gpu-check {self.ctx.run_dir.name}: {d.get('device_name')} (driver "
            f"{d.get('driver')}), torch {d.get('torch_version')}, CUDA {d.get('cuda_version')}, "
            f"{time.monotonic() - self.started:.0f} s of a {self.budget_s:g} s budget",
            f"{'stage':<12} {'status':<8} {'seconds':>8} {'allotted':>8}  reason",
        ]
        for r in self.records:
            secs = "-" if r.seconds is None else f"{r.seconds:.0f}"
            allot = "-" if r.allotted_s is None else f"{r.allotted_s:.0f}"
            lines.append(f"{r.name:<12} {r.status:<8} {secs:>8} {allot:>8}  {r.reason or ''}")
        lines.append(f"rows: {self.ctx.out}; logs and summary: {self.ctx.run_dir}")
        return "\n".join(lines)

    def write_summary(self) -> None:
        write_json_atomic(self.ctx.run_dir / "summary.json", self.summary())
        text = self.summary_text() + "\n"
        tmp = self.ctx.run_dir / ".summary.md.tmp"
        tmp.write_text("```\n" + text + "```\n")
        os.replace(tmp, self.ctx.run_dir / "summary.md")
        if self.bundle is not None:
            write_bundle(self.bundle, self.ctx.out, self.started_wall, self.ctx.data_dir)


def _environment() -> dict[str, str]:
    """The stages' environment: the repository first on PYTHONPATH (then whatever it held:
    a lent machine's extra wheels), unbuffered output for the logs."""
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *extra]),
        "PYTHONUNBUFFERED": "1",
    }


def tail(log: Path, lines: int = 12) -> str:
    """The last `lines` lines of a stage's log, indented."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("   | " + line[:200] for line in text)


def last_error(log: Path) -> str | None:
    """The last line of `log` that reads like an error or a failure, for the summary."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    marks = ("Error", "error:", "FAILED", "failed", "Traceback", "bench: ")
    hits = [line.strip() for line in text if any(m in line for m in marks)]
    return hits[-1][:300] if hits else None


def write_bundle(bundle: Path, out: Path, since: float, exclude: Path) -> None:
    """tar.gz of every file under `out` written since `since`, paths relative to `out`,
    atomically (the previous bundle stays whole until the new one is complete)."""
    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = bundle.with_name(f".{bundle.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if exclude in path.parents or path.stat().st_mtime < since - 1:
                continue
            tar.add(path, arcname=str(path.relative_to(out)))
    os.replace(tmp, bundle)


def device_facts() -> dict[str, object]:
    """Device name, driver, torch / CUDA / cuDNN / Triton / Python versions, provenance."""
    import torch

    facts: dict[str, object] = {
        "device_name": torch.cuda.get_device_name(0),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version(),
        "python_version": platform.python_version(),
        "hostname": platform.node(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        import triton

        facts["triton_version"] = triton.__version__
    except ImportError:
        facts["triton_version"] = None
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        driver, memory = (x.strip() for x in smi.stdout.splitlines()[0].split(","))
        facts.update(driver=driver, memory_total=memory)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        facts.update(driver=None, memory_total=None)
    env = provenance(torch.device("cuda"))
    facts.update(git_commit=env["git_commit"], git_dirty=env["git_dirty"])
    return facts


def probe_backends(path: Path) -> int:
    """Which kernels ran, by PyTorch's profiler: flash (bf16, with and without a padding
    mask), the streaming sinkformer, lotformer's compiled solver. Written to `path`."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    import attention_zoo as zoo
    from attention_zoo import lotformer_plans

    def kernels(fn) -> list[str]:
        fn()  # warm-up: compilation and autotuning stay out of the listing
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = {e.name for e in prof.events() if e.device_type == DeviceType.CUDA}
        wanted = ("flash", "fmha", "attention", "cudnn", "triton", "sdpa", "mem_eff")
        return sorted(n for n in names if any(w in n.lower() for w in wanted))[:20]

    def case(name: str, n: int, masked: bool, **options) -> dict[str, object]:
        torch.manual_seed(0)
        attn = zoo.create(name, heads=8, head_dim=64, **options).cuda()
        q, k, v = (
            torch.randn(2, 8, n, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            for _ in range(3)
        )
        mask = None
        if masked:
            mask = torch.ones(2, n, dtype=torch.bool, device="cuda")
            mask[1, n // 2 :] = False

        def step() -> None:
            attn(q, k, v, padding_mask=mask).float().sum().backward()

        listed = kernels(step)
        return {
            "method": name,
            "options": options,
            "seq_len": n,
            "masked": masked,
            "last_backend": getattr(attn, "last_backend", None),
            "kernels": listed,
        }

    cases = [
        ("flash", 4096, False, {}),
        ("flash", 4096, True, {}),
        ("sinkformer", 4096, False, {"impl": "streaming"}),
        ("lotformer", 16384, False, {"compiled": "on"}),
    ]
    found = []
    for name, n, masked, options in cases:
        try:
            found.append(case(name, n, masked, **options))
        except Exception as exc:  # a probe that fails is reported, the others still run
            found.append({"method": name, "seq_len": n, "error": f"{type(exc).__name__}: {exc}"})
    compile_failed = list(lotformer_plans._COMPILE_FAILED)
    result = {"cases": found, "lotformer_compile_failed": compile_failed}
    write_json_atomic(path, result)
    for c in found:
        what = c.get("error") or f"last_backend={c['last_backend']} kernels={c['kernels']}"
        print(f"{c['method']} N={c['seq_len']} masked={c.get('masked')}: {what}")
    print(f"lotformer torch.compile: {'failed: ' + compile_failed[0] if compile_failed else 'ok'}")
    return 1 if any("error" in c for c in found) or compile_failed else 0


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
    p.add_argument("--probe-backends", type=Path, metavar="JSON", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.probe_backends:
        return probe_backends(args.probe_backends)
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
    from runners.bench import device_kind

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
    return check.run()


if __name__ == "__main__":
    sys.exit(main())
