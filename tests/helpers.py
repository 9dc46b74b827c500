"""Test helpers: seeded random inputs in the zoo's (B, H, N, D) layout."""

from __future__ import annotations

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
