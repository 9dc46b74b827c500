"""Training one LRA model: the loop, on one screen; what is around it lives elsewhere.

    outcome = train(run, splits, device, checkpoints=Path("checkpoints/lra"),
                    curves=Path("results/lra_curves"))

A step: the learning rate from the schedule, this rank's share of the batch, forward, the
task's loss, backward, clipping, the optimizer (runners.lra.step, the same step the
efficiency table times), then one host synchronisation for the loss and the stop signal.
Around it (runners.lra.session): the checkpoint and resuming from it, peak memory of the first
step on CPU, validation with the curve point and the best weights, the test at the end.

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

import math
import signal
import time
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from lra.data import TaskData
from runners.lra.distributed import SINGLE, Dist
from runners.lra.session import Outcome, Run, Session
from runners.lra.step import train_step

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)  # SLURM warns with SIGUSR2


class StopFlag:
    """Set from a signal handler; the training loop checkpoints and returns when it is."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.signum = signum
        self.reason = f"signal {signum}"


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
    session = Session(run, splits, device, checkpoints, curves, dist)
    session.resume()
    session.initial_point()
    state, t, start = session.state, run.cfg["train"], session.state.step
    bar = _Progress(run, t["steps"], start, progress and dist.main)
    try:
        while state.step < t["steps"] and not (t["stop_at"] and state.best_acc >= t["stop_at"]):
            step = state.step + 1
            lr = session.schedule(step)
            t0 = time.perf_counter()
            x, x2, y, scale = session.batch(step)
            net, optimizer = session.net, session.optimizer
            one_step = partial(train_step, net, optimizer, run.cfg, device, x, x2, y, scale)
            loss = session.metered(one_step, x, x2, y)
            loss, stopping = session.reduce(loss, stop is not None and stop.reason is not None)
            state.window_s += time.perf_counter() - t0
            if not math.isfinite(loss):
                return _diverged(step, loss, lr)
            state.losses.append(loss)
            state.step = step
            if step % t["eval_every"] == 0 or step == t["steps"]:
                bar.validated(session.validate(step, lr), state.best_acc)
            bar.stepped(loss)
            if stopping or (stop_after_steps and step - start >= stop_after_steps):
                session.checkpoint()
                return _interrupted(step, stop, stopping, stop_after_steps)
    finally:
        bar.close()
    return session.finish()


def _diverged(step: int, loss: float, lr: float) -> Outcome:
    return Outcome(
        "error",
        f"training loss is {loss} at step {step} (lr {lr:.3g}): the run stopped; lower "
        "optim.lr or change the mechanism's options",
        steps=step,
    )


def _interrupted(
    step: int, stop: StopFlag | None, signalled: bool, stop_after_steps: int | None
) -> Outcome:
    """A run checkpointed and stopped: by a signal (to this rank or another) or by
    --stop-after-steps."""
    if not signalled:
        why = f"--stop-after-steps {stop_after_steps}"
    else:
        why = stop.reason if stop and stop.reason else "a signal to another rank"
    return Outcome("interrupted", f"stopped at step {step} ({why})", steps=step)


class _Progress:
    """The run's progress bar (rank 0): steps, the loss, the last and best validation."""

    def __init__(self, run: Run, total: int, initial: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=f"{run.task} {run.method} s{run.seed}",
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            leave=False,
        )
        self.val = ""

    def validated(self, val: float, best: float) -> None:
        self.val = f"val {val:.3f} (best {best:.3f})"

    def stepped(self, loss: float) -> None:
        self.bar.set_postfix_str(f"loss {loss:.3f} {self.val}", refresh=False)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()
