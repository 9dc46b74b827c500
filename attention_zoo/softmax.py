"""softmax: the textbook dense attention, A = softmax(QK^T / sqrt(d)). The reference.

FLOPs of one forward call: 4·B·H·N²·D, the two products QK^T and AV at 2 per multiply-add
(the softmax itself is elementwise and not counted); the backward counts 2.5x that, as
FlashAttention's benchmarks count it (its backward recomputes QK^T: five N x N x D
products against the forward's two)."""

from __future__ import annotations

import torch
from torch import Tensor

from attention_zoo.base import Attention, compute_dtype, future
from attention_zoo.registry import register

DENSE_BACKWARD_RATIO = 2.5


def dense_attention_flops(batch: int, heads: int, seq_len: int, head_dim: int, options) -> float:
    """4·B·H·N²·D: QK^T and AV, each B·H·N·N·D multiply-adds."""
    return 4.0 * batch * heads * seq_len**2 * head_dim


def softmax_matrix(q: Tensor, k: Tensor, mask: Tensor | None, causal: bool = False) -> Tensor:
    """softmax(QK^T / sqrt(d)) over the real keys (and with `causal` the keys up to each
    query's position), in q's dtype, the exponentials in float32 (float64 for float64
    inputs): (B, H, Nq, D) -> (B, H, Nq, N)."""
    scores = (q @ k.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5)  # (B, H, Nq, N)
    # the dtype's most negative finite value, not -inf: a sequence with no real token
    # gives a uniform row instead of NaN (and its outputs are zeroed by the base class)
    lowest = torch.finfo(scores.dtype).min
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], lowest)
    if causal:
        scores = scores.masked_fill(future(scores.shape[-1], scores.device), lowest)
    return torch.softmax(scores, dim=-1, dtype=compute_dtype(scores.dtype)).to(q.dtype)


@register(
    "softmax",
    complexity="quadratic",
    flops=dense_attention_flops,
    backward_ratio=DENSE_BACKWARD_RATIO,
)
class Softmax(Attention):
    """Dense softmax attention, O(N^2) time and memory; padded keys are masked."""

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        return softmax_matrix(q, k, mask) @ v  # (B, H, N, D)

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        return softmax_matrix(q, k, mask)

    def _causal_matrix(self, q: Tensor, k: Tensor) -> Tensor:
        return softmax_matrix(q, k, None, causal=True)
