"""The streaming sinkformer on FlexAttention (kernel="flex"): on CPU, eager flex proves the
numbers (outputs, log-sum-exps, the hand-written backward that only needs flex's forward);
its speed waits for a GPU (docs/zoo.md)."""

from __future__ import annotations

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.base import NotOnThisDevice
from attention_zoo.sinkhorn import plan, sinkhorn_potentials
from attention_zoo.sinkhorn_stream import (
    _StreamingPotentials,
    attend_lse,
    attend_lse_flex,
    flex_missing,
)
from tests.helpers import lengths_mask, make_qkv

pytestmark = pytest.mark.skipif(flex_missing() is not None, reason=str(flex_missing()))


def textbook(q, k, v, mask, iters, scale):
    """Sinkhorn on the dense float64 log-kernel, rows first, padded tokens left out."""
    S = (q.double() @ k.double().transpose(-2, -1)) * scale
    rows, cols = mask[:, None, :, None], mask[:, None, None, :]
    S = S.masked_fill(~(rows & cols), -1e30)
    zero = S.new_zeros(())
    f, g = sinkhorn_potentials(S, zero, zero, iters, True, rows, cols)
    return plan(S, f, g) @ v.double()


def test_one_half_step_matches_the_folded_sdpa_kernel_output_and_lse():
    x, y, values = make_qkv(2, 3, 40, 16, seed=1)
    bias = torch.randn(2, 3, 40, generator=torch.Generator().manual_seed(2))
    out, lse = attend_lse_flex(x, y, bias, values, 0.25)
    ref_out, ref_lse = attend_lse(x, y, bias, values, 0.25)
    assert (out - ref_out).abs().max() < 1e-5 and (lse - ref_lse).abs().max() < 1e-5
    dense = (x @ y.transpose(-2, -1)) * 0.25 + bias[..., None, :]
    assert (lse - torch.logsumexp(dense, -1)).abs().max() < 1e-5


@pytest.mark.parametrize("iters", [1, 2, 3, 4])
def test_forward_equals_sdpa_and_the_textbook_float64_sinkhorn_with_padding(iters):
    q, k, v = make_qkv(2, 3, 40, 16, seed=iters)
    mask = lengths_mask(40, 40, 27)
    ref = textbook(q, k, v, mask, iters, 16**-0.5)
    outs = {}
    for kernel in ("sdpa", "flex"):
        attn = zoo.create("sinkformer", heads=3, head_dim=16, iters=iters, impl="streaming",
                          kernel=kernel)  # fmt: skip
        with torch.no_grad():
            outs[kernel] = attn(q, k, v, padding_mask=mask)
        assert attn.last_backend.endswith("flex-eager" if kernel == "flex" else "flash_attention")
    real = mask[:, None, :, None]
    err = ((outs["flex"].double() - ref) * real).abs().max().item()
    assert err < 1e-5, err
    assert (outs["flex"] - outs["sdpa"]).abs().max().item() < 1e-5


def test_bf16_inputs_stay_bf16_through_flex_and_stay_near_float64():
    q, k, v = make_qkv(1, 2, 32, 16, seed=5)
    mask = lengths_mask(32, 32)
    attn = zoo.create("sinkformer", heads=2, head_dim=16, kernel="flex")
    with torch.no_grad():
        out = attn(q.bfloat16(), k.bfloat16(), v.bfloat16(), padding_mask=mask)
    assert out.dtype == torch.bfloat16
    assert (out.double() - textbook(q, k, v, mask, 3, 16**-0.5)).abs().max().item() < 5e-2


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_the_hand_written_backward_with_flex_forward_calls_gives_the_sdpa_gradients(steps):
    """The potentials' backward makes every backward half-step a forward attention call: with
    flex serving it (on detached tensors), dq and dk equal the sdpa kernel's, in float64."""
    q, k, _ = make_qkv(2, 2, 24, 8, seed=steps, dtype=torch.float64)
    mask = lengths_mask(24, 24, 17)
    valid = mask[:, None, :]
    pad_bias = torch.zeros(2, 1, 24, dtype=torch.float64).masked_fill(~valid, -1e30)
    weights = [torch.randn(2, 2, 24, dtype=torch.float64) for _ in range(steps)]
    grads = []
    for attend in (attend_lse, attend_lse_flex):
        qq, kk = q.clone().requires_grad_(), k.clone().requires_grad_()
        history = _StreamingPotentials.apply(qq, kk, pad_bias, valid, steps, 0.3, attend)
        loss = sum((w * u).sum() for w, u in zip(weights, history, strict=True))
        grads.append(torch.autograd.grad(loss, (qq, kk)))
    for sdpa, flex in zip(*grads, strict=True):
        assert (sdpa - flex).abs().max().item() < 1e-9


def test_training_on_cpu_is_refused_saying_why_and_what_to_use():
    q, k, v = (t.requires_grad_() for t in make_qkv(1, 2, 16, 8))
    attn = zoo.create("sinkformer", heads=2, head_dim=8, kernel="flex")
    with pytest.raises(NotOnThisDevice, match=r"no backward on CPU.*kernel=sdpa"):
        attn(q, k, v)


def test_flex_with_the_dense_implementation_is_refused_at_creation():
    with pytest.raises(ValueError, match="kernel='flex' runs the streaming implementation"):
        zoo.create("sinkformer", heads=1, head_dim=8, impl="dense", kernel="flex")
    assert zoo.create("sinkformer", heads=1, head_dim=8, kernel="flex").streams(8)
