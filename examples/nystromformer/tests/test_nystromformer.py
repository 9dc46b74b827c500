"""The example plugin against what it did not write: softmax attention (m = N landmarks and
the exact pseudo-inverse give softmax exactly), the paper's pseudo-inverse iteration against
torch.linalg.pinv, and the zoo's contract (attention_zoo.testing)."""

from __future__ import annotations

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.testing import CONTRACT, assert_property

pytest.importorskip("nystromformer_attention")  # registers `nystromformer`

from nystromformer_attention import iterative_pinv, segments


def qkv(n: int, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 2, n, 16, generator=g, dtype=torch.float64).to(dtype) for _ in range(3)]


def test_as_many_landmarks_as_tokens_and_the_exact_pinv_give_softmax():
    q, k, v = qkv(64)
    mask = torch.arange(64)[None] < torch.tensor([[64], [41]])
    ours = zoo.create("nystromformer", heads=2, head_dim=16, landmarks=64, pinv="exact")
    softmax = zoo.create("softmax", heads=2, head_dim=16)
    got = ours.double()(q, k, v, padding_mask=mask)
    assert (got - softmax(q, k, v, padding_mask=mask)).abs().max().item() <= 1e-4


def test_fewer_landmarks_approximate_softmax_and_more_approximate_it_better():
    q, k, v = qkv(256, seed=1)
    exact = zoo.create("softmax", heads=2, head_dim=16)(q, k, v)
    errors = [
        (zoo.create("nystromformer", heads=2, head_dim=16, landmarks=m).double()(q, k, v) - exact)
        .abs()
        .mean()
        .item()
        for m in (8, 32, 128)
    ]
    assert errors[0] > errors[1] > errors[2]


def test_the_iteration_converges_to_the_moore_penrose_inverse():
    q, k, _ = qkv(32, seed=2)
    a = torch.softmax(q @ k.transpose(-2, -1) / 4, -1)
    z = iterative_pinv(a, 30)
    assert (z - torch.linalg.pinv(a)).abs().max().item() <= 1e-6 * torch.linalg.pinv(a).abs().max()


def test_landmarks_are_means_of_consecutive_segments_of_the_real_tokens():
    mask = torch.arange(12)[None] < torch.tensor([[12], [6]])
    weights, present = segments(mask, 3, torch.float64)
    assert weights[0].nonzero()[:, 1].tolist() == list(range(12))  # blocks of 4
    assert weights[0, 1].tolist() == [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0]
    assert weights[1, 2].tolist() == [0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0]  # 6 real: 2 each
    assert present.all()


@pytest.mark.parametrize("options", [{}, {"conv_kernel": 5}, {"landmarks": 8}])
@pytest.mark.parametrize("prop", CONTRACT)
def test_the_zoo_contract(prop, options):
    assert_property("nystromformer", prop, options)
