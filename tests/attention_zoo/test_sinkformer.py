"""sinkformer against softmax (1 iteration) and POT's log-domain Sinkhorn (converged)."""

import numpy as np
import ot
import pytest
import torch

import attention_zoo as zoo
from tests.helpers import lengths_mask, make_qkv


def test_one_iteration_is_exactly_softmax():
    q, k, v = make_qkv(batch=2, heads=3, seq_len=64, head_dim=16, seed=4)
    sink = zoo.create("sinkformer", heads=3, head_dim=16, iters=1)(q, k, v)
    soft = zoo.create("softmax", heads=3, head_dim=16)(q, k, v)
    assert (sink - soft).abs().max().item() <= 1e-6


@pytest.mark.parametrize("eps", [1.0, 0.5])
def test_converged_plan_equals_pots_sinkhorn_log(eps):
    n, d = 24, 8
    q, k, _ = make_qkv(batch=1, heads=2, seq_len=n, head_dim=d, seed=5)
    A = zoo.create("sinkformer", heads=2, head_dim=d, iters=301, eps=eps).attention_matrix(q, k)
    uniform = np.full(n, 1.0 / n)
    for h in range(2):
        cost = -(q[0, h].double() @ k[0, h].double().T).numpy() / np.sqrt(d)
        plan = ot.sinkhorn(
            uniform, uniform, cost, reg=eps, method="sinkhorn_log", numItermax=20000, stopThr=1e-13
        )
        # A is the plan scaled to unit row sums: A = n P
        err = np.abs(A[0, h].double().numpy() - n * plan).max()
        assert err <= 1e-4, err


def test_many_iterations_give_rows_and_columns_summing_to_one():
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=40, head_dim=16, seed=6)
    A = zoo.create("sinkformer", heads=2, head_dim=16, iters=101).attention_matrix(q, k)
    assert (A.sum(-1) - 1).abs().max().item() <= 1e-4
    assert (A.sum(-2) - 1).abs().max().item() <= 1e-4


@pytest.mark.parametrize(("iters", "exact"), [(3, "rows"), (4, "cols")])
def test_odd_iteration_count_ends_row_stochastic(iters, exact):
    q, k, _ = make_qkv(seq_len=32, seed=7)
    A = zoo.create("sinkformer", heads=2, head_dim=16, iters=iters).attention_matrix(q, k)
    dim = -1 if exact == "rows" else -2
    assert (A.sum(dim) - 1).abs().max().item() <= 1e-5


def test_padded_block_is_doubly_stochastic_over_real_tokens():
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=32, head_dim=16, seed=8)
    mask = lengths_mask(32, 20, 32)
    A = zoo.create("sinkformer", heads=2, head_dim=16, iters=101).attention_matrix(q, k, mask)
    real = A[0, :, :20, :20]
    assert (real.sum(-1) - 1).abs().max().item() <= 1e-4
    assert (real.sum(-2) - 1).abs().max().item() <= 1e-4
    assert A[0, :, 20:, :].abs().max().item() == 0.0  # padded queries carry no mass
    assert A[0, :, :, 20:].abs().max().item() == 0.0  # padded keys receive none


def test_float64_gradcheck_with_padding():
    attn = zoo.create("sinkformer", heads=2, head_dim=3, iters=4).double()
    q, k, v = (
        t.requires_grad_()
        for t in make_qkv(batch=2, heads=2, seq_len=5, head_dim=3, seed=19, dtype=torch.float64)
    )
    mask = lengths_mask(5, 5, 3)
    assert torch.autograd.gradcheck(lambda q, k, v: attn(q, k, v, padding_mask=mask), (q, k, v))
