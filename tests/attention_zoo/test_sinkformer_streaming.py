"""The O(N)-memory sinkformer: the dense version's outputs and exact gradients, without an
N x N tensor, forward and backward."""

from __future__ import annotations

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.memory import cpu_allocation_peak
from attention_zoo.sinkhorn_stream import streaming_sinkhorn_attention
from tests.helpers import lengths_mask, make_qkv


def pair(iters: int, **options):
    return [
        zoo.create("sinkformer", heads=3, head_dim=16, iters=iters, impl=impl, **options)
        for impl in ("dense", "streaming")
    ]


@pytest.mark.parametrize("iters", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("masked", [False, True])
def test_outputs_and_gradients_equal_the_dense_version(iters, masked):
    q, k, v = (t.requires_grad_() for t in make_qkv(2, 3, 40, 16, seed=iters))
    mask = lengths_mask(40, 40, 27) if masked else None
    w = torch.randn(2, 3, 40, 16, generator=torch.Generator().manual_seed(1))
    results = []
    for attn in pair(iters):
        out = attn(q, k, v, padding_mask=mask)
        results.append((out, *torch.autograd.grad((out * w).sum(), (q, k, v))))
    for dense, streamed in zip(*results, strict=True):
        assert (dense - streamed).abs().max().item() <= 1e-5


@pytest.mark.parametrize("iters", [2, 3])
def test_gradients_pass_gradcheck_in_float64(iters):
    q, k, v = (t.requires_grad_() for t in make_qkv(1, 2, 12, 4, seed=7, dtype=torch.float64))
    mask = lengths_mask(12, 9)

    def attention(q, k, v):
        return streaming_sinkhorn_attention(q, k, v, mask, iters, 0.5)[..., :9, :]

    assert torch.autograd.gradcheck(attention, (q, k, v), eps=1e-6, atol=1e-6, rtol=1e-4)


def peak_bytes(impl: str, n: int, heads: int = 4) -> int:
    """Peak tensor bytes of one forward and backward at length n."""
    attn = zoo.create("sinkformer", heads=heads, head_dim=16, impl=impl)
    q, k, v = (t.requires_grad_() for t in make_qkv(1, heads, n, 16, seed=3))
    return cpu_allocation_peak(lambda: attn(q, k, v).sum().backward())


def test_forward_and_backward_hold_no_n_by_n_tensor():
    one_matrix = 4 * 2048 * 2048 * 4  # one float32 N x N per head at N = 2048: 64 MiB
    assert peak_bytes("dense", 2048) > one_matrix  # the textbook version holds several
    streamed = {n: peak_bytes("streaming", n) for n in (1024, 2048)}
    assert streamed[2048] < one_matrix / 4
    assert streamed[2048] / streamed[1024] < 2.2  # linear in N (the dense one: ~4x)


def test_auto_streams_from_the_threshold_and_bad_options_are_refused():
    attn = zoo.create("sinkformer", heads=1, head_dim=8, streaming_from=64)
    assert not attn.streams(63) and attn.streams(64)
    assert zoo.create("sinkformer", heads=1, head_dim=8, impl="dense").streams(10**6) is False
    with pytest.raises(ValueError, match="impl must be one of"):
        zoo.create("sinkformer", heads=1, head_dim=8, impl="flash")


def test_zero_columns_that_align_the_kernels_rows_change_neither_output_nor_gradients():
    from attention_zoo.sinkhorn_stream import attend_lse

    x, y, _ = (t.requires_grad_() for t in make_qkv(heads=2, seq_len=40, head_dim=13))
    values = torch.randn(2, 2, 40, 14, requires_grad=True)  # D + 1 wide, as the callers'
    bias = torch.randn(2, 2, 40, requires_grad=True)
    results = []
    for align in (1, 8):
        out, lse = attend_lse(x, y, bias, values, 0.3, align=align)
        assert out.shape == values.shape and lse.shape == (2, 2, 40)
        grads = torch.autograd.grad((out * out).sum() + lse.sum(), (x, y, bias, values))
        results.append((out, lse, *grads))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
