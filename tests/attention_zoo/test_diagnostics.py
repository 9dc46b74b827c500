"""The attention diagnostics against numbers worked out by hand, and the causal forms:
Sinkhorn under a causal mask tends to the identity, lotformer refuses naming Appendix F."""

from __future__ import annotations

import math

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.diagnostics import QUANTILES, summarise


def test_a_doubly_stochastic_4x4_with_a_rank_one_block():
    # rows 0-1 share their mass over keys 0-1 (a rank-1 block); tokens 2 and 3 attend to
    # themselves: every row and column sums to 1, rank 3, entropies ln 2, ln 2, 0, 0
    A = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]).view(
        1, 1, 4, 4
    )
    s = summarise(A)
    assert s.colsum_dev == pytest.approx(0.0, abs=1e-12)
    assert s.rowsum_dev == pytest.approx(0.0, abs=1e-12)
    assert s.entropy == pytest.approx(math.log(2) / 2)
    assert s.rank == 3 and s.rank_max == 3
    assert s.colsum_quantiles == pytest.approx([1.0] * len(QUANTILES))


def test_every_query_on_the_first_key_and_padding_left_out():
    # column sums 4, 0, 0, 0: mean |sum - 1| = (3 + 1 + 1 + 1) / 4; one-hot rows: entropy 0
    A = torch.zeros(1, 1, 4, 4)
    A[..., 0] = 1.0
    s = summarise(A)
    assert s.colsum_dev == pytest.approx(1.5)
    assert s.rowsum_dev == pytest.approx(0.0, abs=1e-12)
    assert s.entropy == pytest.approx(0.0, abs=1e-12) and s.rank == 1
    # the last token padded: the real 3 x 3 block has column sums 3, 0, 0
    mask = torch.tensor([[True, True, True, False]])
    padded = summarise(A, mask)
    assert padded.colsum_dev == pytest.approx(4 / 3)
    assert padded.colsum_quantiles[2] == pytest.approx(0.0)  # the median of (3, 0, 0)


def test_batch_and_heads_are_averaged_and_the_rank_is_per_head():
    eye = torch.eye(4)
    uniform = torch.full((4, 4), 0.25)
    s = summarise(torch.stack([eye, uniform]).view(1, 2, 4, 4))
    assert s.rank == pytest.approx(2.5) and s.rank_max == 4  # (4 + 1) / 2
    assert s.entropy == pytest.approx(math.log(4) / 2)


def test_a_mask_without_real_tokens_or_a_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="no real tokens"):
        summarise(torch.ones(1, 1, 3, 3), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch, heads, N, N"):
        summarise(torch.ones(1, 3, 4))


def _qk(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2, n, 8, generator=g), torch.randn(1, 2, n, 8, generator=g)


def test_causal_softmax_is_lower_triangular_and_sinkhorn_at_one_step_equals_it():
    q, k = _qk(6)
    soft = zoo.create("softmax", heads=2, head_dim=8).causal_matrix(q, k)
    assert torch.all(soft.triu(1) == 0)
    assert torch.allclose(soft.sum(-1), torch.ones(1, 2, 6))
    one = zoo.create("sinkformer", heads=2, head_dim=8, iters=1).causal_matrix(q, k)
    assert torch.allclose(one, soft, atol=1e-6)


def test_causal_sinkhorn_tends_to_the_identity():
    q, k = _qk(4)
    eye = torch.eye(4)
    distances = []
    for iters in (2, 20, 200, 2000):
        A = zoo.create("sinkformer", heads=2, head_dim=8, iters=iters).causal_matrix(q, k)
        assert torch.all(A.triu(1) == 0)  # still causal
        distances.append(float((A - eye).norm()))
    assert distances == sorted(distances, reverse=True)  # every full iteration closer
    assert distances[-1] < 0.05 * distances[0]


def test_lotformer_refuses_a_causal_matrix_naming_appendix_f_and_performer_has_none():
    q, k = _qk(8)
    with pytest.raises(ValueError, match="Appendix F"):
        zoo.create("lotformer", heads=2, head_dim=8, r=4).causal_matrix(q, k)
    with pytest.raises(NotImplementedError, match="performer defines no causal form"):
        zoo.create("performer", heads=2, head_dim=8).causal_matrix(q, k)
