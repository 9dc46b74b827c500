"""One training step and one evaluation of an LRA model: what training (runners.lra.train)
and the efficiency table (runners.lra.efficiency) share on purpose, so that the step the
table times is the step training takes.

    model, optimizer = build_training(cfg, lra.info("listops"), 2000, seed=0, device=device)
    loss = train_step(model, optimizer, cfg, device, x, None, y)  # forward ... optimizer step
    accuracy = evaluate(model, data, device, batch=32, amp="none")
"""

from __future__ import annotations

import contextlib
import math

import torch

from lra.data import TaskData
from lra.models import ModelConfig, build_model
from lra.registry import TaskInfo
from lra.registry import task as lra_task
from runners.lra.distributed import SINGLE, Dist
from runners.measure.meters import tensor_bytes


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


def batch_tensors(data: TaskData, idx: torch.Tensor, device: torch.device):
    """The examples `idx` of `data` on `device`: (inputs, second inputs or None, labels)."""
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
        x, x2, y = batch_tensors(data, mine[start : start + batch], device)
        with autocast_for(device, amp):
            right, scored = task.score(model(x, x2), y)
        hits, count = hits + right, count + scored
    model.train(was_training)
    hits, count = dist.sum(torch.tensor([hits, count], dtype=torch.float64)).tolist()
    return hits / max(count, 1)


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
