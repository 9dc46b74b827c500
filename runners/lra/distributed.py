"""One training run across processes: torchrun's ranks, the global batch's shards, reductions.

    torchrun --nproc_per_node=4 -m runners.lra --tasks listops --methods lotformer --seeds 0

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup` joins the process group (NCCL with
one GPU per rank, gloo on CPU) and everything else asks the returned `Dist`. A step's
global batch is the profile's batch: every rank takes one contiguous shard of the same
indices, and each rank's loss is its shard's summed loss x world / batch, so that the
gradient DistributedDataParallel averages is exactly the gradient of the batch mean, with
shards of unequal size too. Without torchrun the same code runs with world = 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as tdist


@dataclass(frozen=True)
class Dist:
    """This process's place in the run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes rows, curves and checkpoints."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of `idx` (sizes differ by at most one)."""
        return idx if self.world == 1 else torch.tensor_split(idx, self.world)[self.rank]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over every rank (a float64 tensor; returned as is with one rank)."""
        if self.world == 1:
            return values
        on = values.cuda() if tdist.get_backend() == "nccl" else values  # NCCL: GPU tensors
        tdist.all_reduce(on, op=tdist.ReduceOp.SUM)
        return on.cpu()

    def gather(self, value: object) -> list[object]:
        """`value` of every rank, in rank order (on every rank)."""
        if self.world == 1:
            return [value]
        out: list[object] = [None] * self.world
        tdist.all_gather_object(out, value)
        return out

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """`model` under DistributedDataParallel (the model itself with one rank)."""
        if self.world == 1:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


SINGLE = Dist()  # one process: no torchrun


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not an integer (set by torchrun)") from None


def from_env() -> Dist:
    """The rank torchrun gave this process (rank 0 of 1 when not under torchrun)."""
    d = Dist(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if d.world < 1 or not 0 <= d.rank < d.world:
        raise ValueError(f"RANK={d.rank} and WORLD_SIZE={d.world}: expected 0 <= RANK < WORLD")
    return d


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join torchrun's process group, if any: (this rank, the device it trains on).

    On CUDA each rank takes GPU LOCAL_RANK and NCCL; on CPU the ranks share the device and
    talk over gloo."""
    d = from_env()
    if d.world == 1:
        return d, device
    if device.type == "cuda":
        if d.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={d.local_rank} but torch sees {torch.cuda.device_count()} GPU(s): "
                "use --nproc_per_node <= the GPUs of a node"
            )
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def teardown(d: Dist) -> None:
    """Leave the process group (after every rank is done with the run)."""
    if d.world > 1 and tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()
