"""lotformer impl="triton": the plans of every (batch x head) slice in one Triton launch.
Run by `make test-triton` (the triton extra, TRITON_INTERPRET=1 on the CPU): the kernel's
plans, marginals, outputs and gradients against the fused solver, with padding."""

from __future__ import annotations

import os

import pytest
import torch

import attention_zoo as zoo
from attention_zoo import lotformer_triton
from attention_zoo.lotformer_plans import token_pivot_plan
from attention_zoo.testing import CONTRACT, assert_property
from tests.helpers import lengths_mask, make_qkv

WHY = lotformer_triton.unavailable()
needs_triton = pytest.mark.skipif(WHY is not None, reason=f"{WHY} (make test-triton)")


@needs_triton
@pytest.mark.parametrize("iters", [1, 2, 5])
@pytest.mark.parametrize("end_on_tokens", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_the_plans_equal_the_fused_solvers_and_hold_their_marginals(iters, end_on_tokens, masked):
    g = torch.Generator().manual_seed(iters)
    S = torch.randn(2, 3, 200, 8, generator=g) * 2  # 200 tokens: two blocks of 128
    tokens = lengths_mask(200, 200, 131) if masked else None
    log_sigma = torch.log_softmax(torch.randn(3, 8, generator=g), -1)
    plan = lotformer_triton.triton_plan(S, tokens, log_sigma, iters, end_on_tokens)
    fused = token_pivot_plan(S, tokens, log_sigma, iters, end_on_tokens, compiled="off")
    assert (plan - fused).abs().max().item() < 1e-6
    n_real = torch.tensor([200.0, 131.0 if masked else 200.0])[:, None, None]
    if end_on_tokens:  # G1 ends on its token marginal: every real row sums to 1/n_real
        rows = plan.sum(-1)
        real = torch.ones(2, 1, 200, dtype=torch.bool) if tokens is None else tokens[:, None]
        assert ((rows - 1 / n_real) * real).abs().max().item() < 1e-6
        assert (rows * ~real).abs().max().item() == 0  # padded tokens carry nothing
    else:  # G2^T ends on the pivot marginal: every column sums to sigma
        assert (plan.sum(-2) - log_sigma.exp()).abs().max().item() < 1e-6


@needs_triton
@pytest.mark.parametrize("masked", [False, True])
def test_outputs_and_gradients_equal_the_fused_implementation(masked):
    q, k, v = (t.requires_grad_() for t in make_qkv(2, 2, 48, 16, seed=4))
    mask = lengths_mask(48, 48, 30) if masked else None
    results = []
    for impl in ("fused", "triton"):
        torch.manual_seed(0)
        attn = zoo.create("lotformer", heads=2, head_dim=16, r=8, iters=5, impl=impl)
        out = attn(q, k, v, padding_mask=mask)
        params = (q, k, v, attn.pivots, attn.mass_logits)
        results.append((out, *torch.autograd.grad((out * out).sum(), params)))
    for fused, triton in zip(*results, strict=True):
        assert (fused - triton).abs().max().item() < 1e-5


@needs_triton
@pytest.mark.parametrize("prop", CONTRACT)
def test_the_triton_implementation_honours_the_contract(prop):
    assert_property("lotformer", prop, {"impl": "triton"})


def test_without_triton_or_a_place_to_run_it_the_variant_is_refused(monkeypatch):
    monkeypatch.setattr(lotformer_triton, "installed", lambda: False)
    with pytest.raises(ValueError, match=r"impl='triton' cannot run here: the triton package"):
        zoo.create("lotformer", heads=1, head_dim=8, impl="triton")
    monkeypatch.setattr(lotformer_triton, "installed", lambda: True)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="TRITON_INTERPRET=1 on the CPU; use impl='fused'"):
            zoo.create("lotformer", heads=1, head_dim=8, impl="triton")
    assert os.environ.get("TRITON_INTERPRET") != "1"
