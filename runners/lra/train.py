"""Training one LRA model: batches by step, periodic validation, checkpoints, resume.

    outcome = train(run, splits, device, checkpoints=Path("checkpoints/lra"),
                    curves=Path("results/lra_curves"))

A run is (task, method, seed, resolved config). Its batches are a function of (seed, step)
and its dropout draws come from the global generator, whose state is checkpointed with the
weights and the optimizer: a run stopped and resumed on the same machine gives the same
numbers as one that never stopped. The best-validation weights are kept (in memory and in
the checkpoint) and the test split is evaluated with them.

Under torchrun (`dist`, runners.lra.distributed) every rank trains on its shard of the same
global batch through DistributedDataParallel and evaluates a shard of each split; the
counts and the logged loss are summed over ranks, the ranks agree on stopping, and only
rank 0 writes the curve, the checkpoints (holding every rank's random state) and the
best weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from attention_zoo.memory import cpu_allocation_peak
from lra.data import TaskData
from lra.models import ModelConfig, build_model
from lra.registry import TaskInfo
from lra.registry import task as lra_task
from results import schema
from results.files import atomic_path
from runners.lra.diagnostics import Probe
from runners.lra.distributed import SINGLE, Dist
from runners.measure.meters import tensor_bytes
from runners.results import PartWriter

CURVE_SCHEMA = schema.LRA_CURVES
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)  # SLURM warns with SIGUSR2


@dataclass(frozen=True)
class Run:
    """One training run: a task, a mechanism, a seed and the resolved configuration."""

    task: str
    method: str
    seed: int
    cfg: dict
    config_hash: str

    @property
    def name(self) -> str:
        return f"{self.task}-{self.method}-s{self.seed}-{self.config_hash}"


@dataclass
class Outcome:
    """How a run ended (ok | error | interrupted) and what it measured."""

    status: str
    error: str | None = None
    steps: int = 0
    best_step: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)  # split -> best-val weights
    train_seconds: float = 0.0
    tokens_per_s: float | None = None
    peak_mem_bytes: int | None = None
    curve: list[dict] = field(default_factory=list)  # the learning curve's points
    stopped_early: bool = False  # validation reached train.stop_at before train.steps


class StopFlag:
    """Set from a signal handler; the training loop checkpoints and returns when it is."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.signum = signum
        self.reason = f"signal {signum}"


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at `step` (1-based): linear warm-up, then decay."""
    if step <= warmup:
        return step / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def batch_indices(seed: int, step: int, n: int, batch: int) -> torch.Tensor:
    """Example indices of training step `step` (0-based): epochs of seeded permutations."""
    batch = min(batch, n)
    per_epoch = n // batch
    epoch, i = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[i * batch : (i + 1) * batch]


def autocast_for(device: torch.device, amp: str):
    """bf16 autocast on CUDA when the profile asks for it; nothing otherwise."""
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batch(data: TaskData, idx: torch.Tensor, device: torch.device):
    x2 = None if data.inputs2 is None else data.inputs2[idx].to(device)
    return data.inputs[idx].to(device), x2, data.labels[idx].long().to(device)


@torch.no_grad()
def evaluate(
    model, data: TaskData, device, batch: int, amp: str, limit: int = 0, dist: Dist = SINGLE
) -> float:
    """Accuracy of `model` on the first `limit` examples of `data` (0 = all): the answers
    right over the answers scored, as the task scores them (a label per example, or per
    token); with several ranks each evaluates its shard and the counts are summed."""
    n = len(data) if limit == 0 else min(limit, len(data))
    mine = dist.shard(torch.arange(n))
    task = lra_task(data.info.name)
    was_training = model.training
    model.eval()
    hits = count = 0
    for start in range(0, len(mine), batch):
        x, x2, y = _batch(data, mine[start : start + batch], device)
        with autocast_for(device, amp):
            right, scored = task.score(model(x, x2), y)
        hits, count = hits + right, count + scored
    model.train(was_training)
    hits, count = dist.sum(torch.tensor([hits, count], dtype=torch.float64)).tolist()
    return hits / max(count, 1)


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(saved: dict | list[dict], dist: Dist) -> None:
    """This rank's saved random state (a checkpoint holds one per rank); a rank the
    checkpoint did not have (more ranks than when it was written) keeps its seeded state."""
    states = saved if isinstance(saved, list) else [saved]
    if dist.rank >= len(states):
        return
    state = states[dist.rank]
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_training(
    cfg: dict, task: TaskInfo, length: int, seed: int, device: torch.device, rank: int = 0
):
    """The model of `cfg` (initialised from `seed`, the same on every rank) and its AdamW
    optimizer; ranks other than 0 then draw dropout from a generator of their own."""
    o = cfg["optim"]
    torch.manual_seed(seed)
    model = build_model(
        task, ModelConfig(**cfg["model"]), cfg["method"], cfg["method_options"], length
    ).to(device)
    if rank:
        torch.manual_seed(seed * 1_000_003 + rank)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=o["lr"],
        betas=tuple(o["betas"]),
        eps=o["adam_eps"],
        weight_decay=o["weight_decay"],
    )
    return model, optimizer


def train_step(
    model, optimizer, cfg: dict, device: torch.device, x, x2, y, scale: float | None = None
) -> torch.Tensor:
    """One optimizer step on a batch (autocast and gradient clipping as `cfg` says); returns
    the batch's loss summed over examples, as the task computes it (`cfg["task"]`). The
    gradient is that of the summed loss x `scale` (default 1 / batch, the mean;
    runners.lra.distributed says why a shard uses world / global batch)."""
    with autocast_for(device, cfg["train"]["amp"]):
        loss = lra_task(cfg["task"]).loss(model(x, x2), y)
    optimizer.zero_grad(set_to_none=True)
    (loss * (1 / len(y) if scale is None else scale)).backward()
    if cfg["optim"]["clip_norm"] > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["optim"]["clip_norm"])
    optimizer.step()
    return loss.detach()


def state_bytes(model, optimizer, *extra: torch.Tensor) -> int:
    """Bytes of the weights, buffers and optimizer state (and `extra`) alive between steps."""
    alive = [*model.parameters(), *model.buffers(), *extra]
    alive += [v for s in optimizer.state.values() for v in s.values() if v.dim()]
    return tensor_bytes(alive)


def _with_cpu_peak(step: Callable[[], torch.Tensor], model, optimizer) -> tuple[torch.Tensor, int]:
    """Run `step` once under the allocator's events: its result and the peak tensor bytes
    (the state alive before, plus the step's own peak)."""
    before = state_bytes(model, optimizer)
    holder: list[torch.Tensor] = []
    peak = cpu_allocation_peak(lambda: holder.append(step()))
    return holder[0], before + peak


def checkpoint_path(checkpoints: Path, run: Run) -> Path:
    return checkpoints / f"{run.name}.pt"


class _CurveRows:
    """The curve's points on a rank that writes nothing (ranks other than 0)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def append(self, row: dict) -> None:
        self.rows.append(row)


@dataclass
class TrainingState:
    """Where a run is between steps: what its checkpoint holds beside the weights."""

    step: int = 0
    best_acc: float = -1.0
    best_step: int = 0
    best: dict | None = None  # the best-validation weights
    train_seconds: float = 0.0  # at the last curve point
    losses: list[float] = field(default_factory=list)  # of the steps since the last point
    window_s: float = 0.0  # their training time

    def saved(self) -> dict:
        """The fields as a checkpoint stores them (not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_saved(cls, saved: dict) -> TrainingState:
        """The state a checkpoint holds; a field added since it was written takes its default."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


class _Training:
    """One run's model, optimizer, curve and state on this rank, with the steps of `train`."""

    def __init__(self, run: Run, splits, device, checkpoints: Path, curves: Path, dist: Dist):
        self.run, self.splits, self.device, self.dist = run, splits, device, dist
        self.cfg, self.t, self.o = run.cfg, run.cfg["train"], run.cfg["optim"]
        data = splits["train"]
        self.batch = min(self.t["batch"], len(data))
        if self.batch < dist.world:
            raise ValueError(
                f"train.batch = {self.batch} is smaller than the {dist.world} processes: "
                "every rank needs a share of the global batch; use fewer processes or a "
                "larger batch"
            )
        length = data.inputs.shape[1]
        self.tokens_per_step = self.batch * length * (1 + data.info.pair)
        self.model, self.optimizer = build_training(
            run.cfg, data.info, length, run.seed, device, dist.rank
        )
        self.checkpoints, self.path = checkpoints, checkpoint_path(checkpoints, run)
        if dist.main:
            checkpoints.mkdir(parents=True, exist_ok=True)
            self.curve = PartWriter(curves, run.name, CURVE_SCHEMA)
        else:
            self.curve = _CurveRows()
        self.state = TrainingState()
        self.net = None  # what trains (DDP-wrapped); `model` is evaluated and saved
        wanted = self.t["diagnostics"] and dist.main
        self.probe = Probe(self.model, splits["val"], device) if wanted else None

    def resume(self) -> None:
        """Load the run's checkpoint, if there is one: weights, optimizer, random state, curve."""
        if self.path.is_file():
            saved = torch.load(self.path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            _set_rng_state(saved["rng"], self.dist)
            self.curve.rows = saved["curve"]
            self.state = TrainingState.from_saved(saved)
            if self.dist.main:
                print(
                    f"{self.run.name}: resuming from {self.path} at step {self.state.step}",
                    file=sys.stderr,
                )
        self.net = self.dist.wrap(self.model, self.device)

    def checkpoint(self) -> None:
        """Every rank's random state gathered; rank 0 writes the checkpoint atomically."""
        rng = self.dist.gather(_rng_state())
        if self.dist.main:
            _save(
                self.path,
                {
                    **self.state.saved(),
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "rng": rng,
                    "curve": list(self.curve.rows),
                    "config": self.cfg,
                    "world_size": self.dist.world,
                },
            )

    def step(self, step: int, measure_peak: bool, stop: StopFlag | None):
        """Training step `step` (1-based): (lr, mean loss, whether any rank stops, peak bytes
        of the step's tensors when `measure_peak` on CPU, else None)."""
        lr = self.o["lr"] * lr_factor(step, self.o["warmup"], self.t["steps"], self.o["schedule"])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        idx = batch_indices(self.run.seed, step - 1, len(self.splits["train"]), self.t["batch"])

        def one() -> torch.Tensor:
            x, x2, y = _batch(self.splits["train"], self.dist.shard(idx), self.device)
            scale = self.dist.world / len(idx)
            return train_step(self.net, self.optimizer, self.cfg, self.device, x, x2, y, scale)

        t0 = time.perf_counter()
        peak = None
        if measure_peak:  # the allocator's events of one step
            loss, peak = _with_cpu_peak(one, self.model, self.optimizer)
        else:
            loss = one()
        # one host synchronisation per step: the batch's loss, and whether any rank stops
        stopping = stop is not None and stop.reason is not None
        both = torch.stack([loss.double().cpu(), torch.tensor(float(stopping))])
        reduced = self.dist.sum(both)
        self.state.window_s += time.perf_counter() - t0
        return lr, float(reduced[0]) / len(idx), bool(reduced[1]), peak

    def _point(self, step: int, **values) -> None:
        """A learning-curve point, with the attention diagnostics when they are on."""
        run = self.run
        diagnostics = self.probe.columns() if self.probe else {}
        self.curve.append(
            {
                "task": run.task,
                "method": run.method,
                "seed": run.seed,
                "profile": self.cfg["profile"],
                "config_hash": run.config_hash,
                "step": step,
                **values,
                **diagnostics,
            }
        )

    def initial_point(self) -> None:
        """Before the first step, with diagnostics on: a step-0 point holding only them (the
        attention at initialisation; no loss or accuracy yet)."""
        if self.probe and self.state.step == 0 and not self.curve.rows:
            nan = float("nan")
            self._point(0, train_loss=nan, val_accuracy=nan, lr=0.0, train_seconds=0.0)

    def validate(self, step: int, lr: float) -> float:
        """Validation accuracy at `step`: a curve point, the best weights kept, a checkpoint."""
        t, s = self.t, self.state
        data, limit = self.splits["val"], t["eval_examples"]
        val = evaluate(self.model, data, self.device, t["batch"], t["amp"], limit, self.dist)
        s.train_seconds += s.window_s
        self._point(
            step,
            train_loss=float(np.mean(s.losses)),
            val_accuracy=val,
            lr=lr,
            tokens_per_s=len(s.losses) * self.tokens_per_step / max(s.window_s, 1e-9),
            train_seconds=s.train_seconds,
        )
        s.losses, s.window_s = [], 0.0
        if val > s.best_acc:
            s.best_acc, s.best_step = val, step
            s.best = copy.deepcopy(self.model.state_dict())
        self.checkpoint()
        return val

    def finish(self, peak: int | None) -> Outcome:
        """The best-validation weights tested and saved: the run's outcome."""
        s, t = self.state, self.t
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        self.model.load_state_dict(s.best)
        test = evaluate(
            self.model, self.splits["test"], self.device, t["batch"], t["amp"], 0, self.dist
        )
        if self.dist.main:
            best = self.checkpoints / f"{self.run.name}.best.pt"
            _save(best, {"model": s.best, "config": self.cfg})
        seconds = s.train_seconds
        return Outcome(
            "ok",
            steps=s.step,
            best_step=s.best_step,
            accuracy={"val": s.best_acc, "test": test},
            train_seconds=seconds,
            tokens_per_s=s.step * self.tokens_per_step / seconds if seconds else None,
            peak_mem_bytes=peak,
            curve=list(self.curve.rows),
            stopped_early=s.step < t["steps"],
        )


def train(
    run: Run,
    splits: dict[str, TaskData],
    device: torch.device,
    checkpoints: Path,
    curves: Path,
    *,
    stop: StopFlag | None = None,
    stop_after_steps: int | None = None,
    progress: bool = True,
    dist: Dist = SINGLE,
) -> Outcome:
    """Train `run` (resuming from its checkpoint if there is one) and evaluate it."""
    training = _Training(run, splits, device, checkpoints, curves, dist)
    training.resume()
    training.initial_point()
    state, steps, every = training.state, run.cfg["train"]["steps"], run.cfg["train"]["eval_every"]
    training.model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak = None
    start_step, shown_val = state.step, ""
    bar = tqdm(
        total=steps,
        initial=start_step,
        desc=f"{run.task} {run.method} s{run.seed}",
        unit="step",
        disable=not (progress and dist.main),
        dynamic_ncols=True,
        leave=False,
    )
    stop_at = run.cfg["train"]["stop_at"]  # 0: train every step
    try:
        while state.step < steps and not (stop_at and state.best_acc >= stop_at):
            step = state.step + 1
            measure = peak is None and device.type == "cpu"
            lr, loss, stopping, step_peak = training.step(step, measure, stop)
            peak = step_peak if measure else peak
            if not math.isfinite(loss):
                return Outcome(
                    "error",
                    f"training loss is {loss} at step {step} (lr {lr:.3g}): the run "
                    "stopped; lower optim.lr or change the mechanism's options",
                    steps=step,
                )
            state.losses.append(loss)
            state.step = step
            if step % every == 0 or step == steps:
                val = training.validate(step, lr)
                shown_val = f"val {val:.3f} (best {state.best_acc:.3f})"
            bar.set_postfix_str(f"loss {loss:.3f} {shown_val}", refresh=False)
            bar.update()
            if stopping or (stop_after_steps and step - start_step >= stop_after_steps):
                training.checkpoint()
                why = (
                    (stop.reason if stop and stop.reason else "a signal to another rank")
                    if stopping
                    else f"--stop-after-steps {stop_after_steps}"
                )
                return Outcome("interrupted", f"stopped at step {step} ({why})", steps=step)
    finally:
        bar.close()
    return training.finish(peak)
