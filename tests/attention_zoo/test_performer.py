"""performer: FAVOR+ error against exact softmax attention, and against performer-pytorch."""

import numpy as np
import pytest
import torch
from performer_pytorch import FastAttention

import attention_zoo as zoo
from tests.helpers import make_qkv

B, H, N, D = 1, 4, 256, 32
DRAWS = 8  # feature draws averaged per estimate


def mean_relative_error(out, ref):
    return ((out - ref).norm(dim=-1) / ref.norm(dim=-1)).mean().item()


@pytest.fixture(scope="module")
def inputs_and_exact():
    # scores q.k/sqrt(d) of standard deviation ~0.25: the regime FAVOR+ is built for
    q, k, v = make_qkv(B, H, N, D, seed=20, scale=0.5)
    exact = zoo.create("softmax", heads=H, head_dim=D)(q.double(), k.double(), v.double())
    return q, k, v, exact.float()


def ours(q, k, v, exact, m):
    errors = [
        mean_relative_error(
            zoo.create("performer", heads=H, head_dim=D, nb_features=m, seed=s)(q, k, v), exact
        )
        for s in range(DRAWS)
    ]
    return float(np.mean(errors))


def performer_pytorch(q, k, v, exact, m):
    errors = []
    for s in range(DRAWS):
        torch.manual_seed(s)  # the package draws its features from the global generator
        attn = FastAttention(dim_heads=D, nb_features=m, ortho_scaling=0, causal=False)
        errors.append(mean_relative_error(attn(q, k, v), exact))
    return float(np.mean(errors))


def test_error_shrinks_as_features_grow(inputs_and_exact):
    errors = [ours(*inputs_and_exact, m) for m in (64, 256, 1024)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.5 * errors[0], errors  # ~1/sqrt(m): 16x the features, ~1/4 the error


@pytest.mark.parametrize("m", [64, 256, 1024])
def test_error_no_worse_than_performer_pytorch(inputs_and_exact, m):
    mine, theirs = ours(*inputs_and_exact, m), performer_pytorch(*inputs_and_exact, m)
    assert mine <= 1.1 * theirs, (mine, theirs)


def test_features_are_orthogonal_within_blocks_and_seeded():
    attn = zoo.create("performer", heads=2, head_dim=16, nb_features=40, seed=3)
    W = attn.projection.double()  # (H, m, D)
    block = W[0, :16] / W[0, :16].norm(dim=1, keepdim=True)
    torch.testing.assert_close(
        block @ block.T, torch.eye(16, dtype=torch.float64), atol=1e-6, rtol=0
    )
    again = zoo.create("performer", heads=2, head_dim=16, nb_features=40, seed=3).projection
    other = zoo.create("performer", heads=2, head_dim=16, nb_features=40, seed=4).projection
    assert torch.equal(W.float(), again)
    assert not torch.equal(again, other)
    assert not torch.equal(W[0], W[1])  # each head draws its own features


def test_redraw_interval_redraws_in_training_only():
    attn = zoo.create("performer", heads=2, head_dim=8, nb_features=16, redraw_interval=2)
    q, k, v = make_qkv(head_dim=8)
    first = attn.projection.clone()
    attn.eval()
    for _ in range(3):
        attn(q, k, v)
    assert torch.equal(attn.projection, first)
    attn.train()
    attn(q, k, v)
    attn(q, k, v)
    assert torch.equal(attn.projection, first)
    attn(q, k, v)  # the third training call starts a new interval
    assert not torch.equal(attn.projection, first)
    assert attn.draws == 1
