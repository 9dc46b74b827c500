"""Test helpers: seeded random inputs in the zoo's (B, H, N, D) layout; a distribution with
entry points, installed on a folder as pip would leave it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch


def make_qkv(batch=2, heads=2, seq_len=32, head_dim=16, seed=0, dtype=torch.float32, scale=1.0):
    """Seeded q, k, v of shape (B, H, N, D) drawn from N(0, scale^2)."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, heads, seq_len, head_dim)
    return tuple(
        (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype) for _ in range(3)
    )


def lengths_mask(seq_len: int, *lengths: int) -> torch.Tensor:
    """(B, N) bool padding mask whose row b has its first lengths[b] tokens real."""
    return torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]


def distribution(
    root: Path, dist: str, version: str, modules: dict, points: dict, elsewhere: tuple = ()
) -> Path:
    """An installed distribution on `root`: its modules {name: source} and a dist-info folder
    declaring the entry points {group: {name: value}}, as pip would leave them; `elsewhere`
    names top-level packages it provides from another folder on sys.path (an editable
    install's)."""
    for module, text in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(text))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{m}.py,,\n" for m in modules))
    (info / "top_level.txt").write_text("".join(f"{m}\n" for m in (*modules, *elsewhere)))
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items())
            for group, names in points.items()
        )
    )
    return root
