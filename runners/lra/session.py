"""A training run's state around the loop of runners.lra.train: the run and its outcome, the
checkpoint (weights, optimizer, every rank's random state, curve, TrainingState), resuming
from it, the learning-curve points with their attention diagnostics, validation, and the
test of the best-validation weights.

    session = Session(run, splits, device, Path("checkpoints/lra"), curves, dist)
    session.resume()                       # from the run's checkpoint, if there is one
    lr = session.schedule(step); x, x2, y, scale = session.batch(step)
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from attention_zoo.memory import cpu_allocation_peak
from results import schema
from results.files import atomic_path
from runners.lra.diagnostics import Probe
from runners.lra.distributed import Dist
from runners.lra.step import (
    batch_indices,
    batch_tensors,
    build_training,
    evaluate,
    lr_factor,
    state_bytes,
)
from runners.results import PartWriter

CURVE_SCHEMA = schema.LRA_CURVES


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


class Session:
    """One run on this rank around the training loop: its model and optimizer, the
    schedule, its share of each batch, the checkpoint, the curve and the outcome."""

    def __init__(self, run: Run, splits, device, checkpoints: Path, curves: Path, dist: Dist):
        self.run, self.splits, self.device, self.dist = run, splits, device, dist
        self.cfg, self.t, self.o = run.cfg, run.cfg["train"], run.cfg["optim"]
        data = splits["train"]
        self.global_batch = min(self.t["batch"], len(data))
        if self.global_batch < dist.world:
            raise ValueError(
                f"train.batch = {self.global_batch} is smaller than the {dist.world} processes: "
                "every rank needs a share of the global batch; use fewer processes or a "
                "larger batch"
            )
        length = data.inputs.shape[1]
        self.tokens_per_step = self.global_batch * length * (1 + data.info.pair)
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
        self.peak: int | None = None  # bytes, of the first step on CPU
        wanted = self.t["diagnostics"] and dist.main
        self.probe = Probe(self.model, splits["val"], device) if wanted else None

    def resume(self) -> None:
        """Load the run's checkpoint, if there is one: weights, optimizer, random state, curve;
        then the model is put in training mode (DDP-wrapped where there are several ranks)."""
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
        self.model.train()
        if self.device.type == "cuda":  # the run's peak, from here
            torch.cuda.reset_peak_memory_stats(self.device)

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

    def schedule(self, step: int) -> float:
        """Set and return the learning rate of training step `step` (1-based)."""
        o = self.o
        lr = o["lr"] * lr_factor(step, o["warmup"], self.t["steps"], o["schedule"])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def batch(self, step: int):
        """This rank's share of step `step`'s global batch: x, x2, y and the loss scale
        (world / global batch: runners.lra.distributed says why)."""
        idx = batch_indices(self.run.seed, step - 1, len(self.splits["train"]), self.t["batch"])
        x, x2, y = batch_tensors(self.splits["train"], self.dist.shard(idx), self.device)
        return x, x2, y, self.dist.world / len(idx)

    def metered(self, step: Callable[[], torch.Tensor], *batch: torch.Tensor | None):
        """`step()`; the first one on CPU runs under the allocator's events, for the run's
        peak memory: the state and the `batch` alive before, plus the step's own peak."""
        if self.peak is not None or self.device.type != "cpu":
            return step()
        before = state_bytes(self.model, self.optimizer, *(t for t in batch if t is not None))
        holder: list[torch.Tensor] = []
        self.peak = before + cpu_allocation_peak(lambda: holder.append(step()))
        return holder[0]

    def reduce(self, loss: torch.Tensor, stopping: bool) -> tuple[float, bool]:
        """The step's one host synchronisation: the mean loss over the global batch, and
        whether any rank was asked to stop."""
        both = torch.stack([loss.double().cpu(), torch.tensor(float(stopping))])
        reduced = self.dist.sum(both)
        return float(reduced[0]) / self.global_batch, bool(reduced[1])

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

    def finish(self) -> Outcome:
        """The best-validation weights tested and saved: the run's outcome."""
        s, t, peak = self.state, self.t, self.peak
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
