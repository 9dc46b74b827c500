"""The shared Sinkhorn potentials: their lean backward is the exact gradient of the steps."""

import pytest
import torch

from attention_zoo.base import NEG
from attention_zoo.sinkhorn import sinkhorn_potentials


def unrolled(S, log_a, log_b, half_steps, rows_first, row_valid, col_valid):
    """The textbook half-steps with torch.logsumexp under plain autograd."""
    f = torch.zeros_like(S[..., :1])
    g = torch.zeros_like(S[..., :1, :])
    for t in range(half_steps):
        if (t % 2 == 0) == rows_first:
            f = log_a - torch.logsumexp(S + g, dim=-1, keepdim=True)
            f = f if row_valid is None else f.masked_fill(~row_valid, 0.0)
        else:
            g = log_b - torch.logsumexp(S + f, dim=-2, keepdim=True)
            g = g if col_valid is None else g.masked_fill(~col_valid, 0.0)
    return f, g


def case(masked):
    g = torch.Generator().manual_seed(50)
    S = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    log_a = torch.full((2, 1, 1, 1), -7.0, dtype=torch.float64).log_softmax(0).requires_grad_()
    log_b = torch.randn(1, 3, 1, 5, generator=g, dtype=torch.float64).log_softmax(-1)
    row_valid = col_valid = None
    if masked:
        row_valid = torch.ones(2, 1, 7, 1, dtype=torch.bool)
        row_valid[1, :, 5:] = False
        col_valid = torch.ones(2, 1, 1, 5, dtype=torch.bool)
        col_valid[0, :, :, 4:] = False
        S = S.masked_fill(~(row_valid & col_valid), NEG)
    return S.requires_grad_(), log_a, log_b.requires_grad_(), row_valid, col_valid


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(("half_steps", "rows_first"), [(1, True), (4, False), (7, True)])
def test_gradients_equal_autograd_through_the_unrolled_steps(masked, half_steps, rows_first):
    S, log_a, log_b, rv, cv = case(masked)
    w = torch.randn(2, 3, 7, 5, generator=torch.Generator().manual_seed(51), dtype=torch.float64)

    def loss(fn):
        f, g = fn(S, log_a, log_b, half_steps, rows_first, rv, cv)
        plan = torch.exp(S + f + g)
        return (plan * w).sum() + f.sin().sum() + g.cos().sum()

    kw = {"allow_unused": True, "materialize_grads": True}  # one half-step never reads log_b
    ours = torch.autograd.grad(loss(sinkhorn_potentials), (S, log_a, log_b), **kw)
    ref = torch.autograd.grad(loss(unrolled), (S, log_a, log_b), **kw)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def test_gradcheck():
    S, log_a, log_b, rv, cv = case(masked=True)

    def fn(S, log_a, log_b):
        f, g = sinkhorn_potentials(S, log_a, log_b, 5, True, rv, cv)
        return torch.exp(S + f + g).masked_fill(~(rv & cv), 0.0)

    S = (
        S.detach().masked_fill(~(rv & cv), -30.0).requires_grad_()
    )  # finite differences need finite S
    assert torch.autograd.gradcheck(fn, (S, log_a, log_b))
