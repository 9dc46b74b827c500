"""A training setup small enough for tests: the smoke profile shrunk to seconds per run."""

from __future__ import annotations

from pathlib import Path

from lra import listops
from lra.data import load

TINY = [
    "--set=model.width=16",
    "--set=model.ffn=32",
    "--set=train.batch=8",
    "--set=train.eval_every=4",
    "--set=train.length=64",
    "--set=optim.warmup=2",
    "--set=optim.lr=1e-3",
    "--set=methods.lotformer.iters=3",
]


def make_listops(root: Path) -> Path:
    """A small generated ListOps (96 / 24 / 24 examples, up to 60 tokens), cached once."""
    listops.generate(root, {"train": 96, "val": 24, "test": 24}, seed=0, lengths=(10, 60))
    for split in ("train", "val", "test"):
        load("listops", split, root)
    return root


def lra_args(data: Path, out: Path, *extra: str, steps: int = 12) -> list[str]:
    """runners.lra arguments of a tiny ListOps run writing under `out`."""
    return [
        "--profile=smoke",
        f"--data-dir={data}",
        f"--out={out / 'lra'}",
        f"--curves={out / 'curves'}",
        f"--checkpoints={out / 'ckpt'}",
        "--quiet",
        *TINY,
        f"--set=train.steps={steps}",
        *extra,
    ]
