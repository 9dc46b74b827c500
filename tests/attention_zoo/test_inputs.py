"""Malformed inputs raise ValueError saying what was expected."""

import pytest
import torch

import attention_zoo as zoo


@pytest.fixture(params=zoo.names())
def attn(request):
    return zoo.create(request.param, heads=2, head_dim=8)


def good(n=6):
    return torch.randn(1, 2, n, 8)


def test_wrong_rank(attn):
    with pytest.raises(ValueError, match="4 dims"):
        attn(torch.randn(2, 6, 8), good(), good())


def test_mismatched_shapes(attn):
    with pytest.raises(ValueError, match="same shape as q"):
        attn(good(6), good(7), good(6))


def test_head_dim_different_from_the_modules(attn):
    x = torch.randn(1, 2, 6, 16)
    with pytest.raises(ValueError, match="head_dim=8"):
        attn(x, x, x)


def test_heads_different_from_the_modules(attn):
    x = torch.randn(1, 3, 6, 8)
    with pytest.raises(ValueError, match="heads=2"):
        attn(x, x, x)


def test_mask_of_wrong_shape(attn):
    with pytest.raises(ValueError, match=r"\(batch, seq_len\) = \(1, 6\)"):
        attn(good(), good(), good(), padding_mask=torch.ones(1, 5, dtype=torch.bool))


def test_mask_of_wrong_dtype(attn):
    with pytest.raises(ValueError, match="bool tensor"):
        attn(good(), good(), good(), padding_mask=torch.ones(1, 6))


def test_mixed_dtypes(attn):
    with pytest.raises(ValueError, match="dtype"):
        attn(good(), good().double(), good())


def test_integer_inputs(attn):
    x = torch.ones(1, 2, 6, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="floating-point"):
        attn(x, x, x)


def test_attention_matrix_checks_too(attn):
    with pytest.raises(ValueError, match="4 dims"):
        attn.attention_matrix(torch.randn(6, 8), good())
