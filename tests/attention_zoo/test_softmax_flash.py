"""softmax and flash against a float64 textbook computation written in numpy."""

import numpy as np
import pytest
import torch

import attention_zoo as zoo
from tests.helpers import lengths_mask, make_qkv


def textbook_attention(q, k, v, mask=None):
    """float64 numpy: softmax(q k^T / sqrt(d)) v over the real keys."""
    q, k, v = (t.double().numpy() for t in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask.numpy()[:, None, None, :], scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


@pytest.mark.parametrize("name", ["softmax", "flash"])
def test_fp32_matches_float64_textbook(name):
    q, k, v = make_qkv(batch=2, heads=4, seq_len=128, head_dim=32, seed=1)
    out = zoo.create(name, heads=4, head_dim=32)(q, k, v)
    err = np.abs(out.double().numpy() - textbook_attention(q, k, v)).max()
    assert err <= 1e-5, err


@pytest.mark.parametrize("name", ["softmax", "flash"])
def test_float64_inputs_are_computed_in_float64(name):
    """softmax once took its exponentials in float32 for any input: 1.1e-7 from the textbook
    here, where flash was at 9e-16."""
    q, k, v = make_qkv(batch=2, heads=2, seq_len=48, head_dim=16, seed=3, dtype=torch.float64)
    out = zoo.create(name, heads=2, head_dim=16)(q, k, v)
    assert out.dtype == torch.float64
    assert np.abs(out.numpy() - textbook_attention(q, k, v)).max() <= 1e-13


@pytest.mark.parametrize("name", ["softmax", "flash"])
def test_fp32_with_padding_matches_float64_textbook_on_real_tokens(name):
    q, k, v = make_qkv(batch=2, heads=2, seq_len=64, head_dim=16, seed=2)
    mask = lengths_mask(64, 64, 40)
    out = zoo.create(name, heads=2, head_dim=16)(q, k, v, padding_mask=mask)
    ref = textbook_attention(q, k, v, mask)
    real = mask.numpy()[:, None, :, None]
    err = np.abs(np.where(real, out.double().numpy() - ref, 0.0)).max()
    assert err <= 1e-5, err


def test_flash_records_the_cpu_flash_kernel():
    attn = zoo.create("flash", heads=2, head_dim=16)
    assert attn.last_backend is None
    q, k, v = make_qkv(seq_len=32)
    attn(q, k, v)
    assert attn.last_backend == "sdpa-flash_attention"


def test_flash_records_math_when_only_math_is_allowed(monkeypatch):
    from torch.nn.attention import SDPBackend

    import attention_zoo.flash as flash_module

    monkeypatch.setattr(flash_module, "PREFERENCE", [SDPBackend.MATH])
    attn = zoo.create("flash", heads=2, head_dim=16)
    q, k, v = make_qkv(seq_len=32)
    out = attn(q, k, v)
    assert attn.last_backend == "sdpa-math"
    assert np.abs(out.double().numpy() - textbook_attention(q, k, v)).max() <= 1e-5


def test_flash_gradients_match_softmax_gradients():
    q, k, v = (t.requires_grad_() for t in make_qkv(seq_len=48, seed=3))
    upstream = torch.randn(q.shape, generator=torch.Generator().manual_seed(9))
    grads = {}
    for name in ("softmax", "flash"):
        out = zoo.create(name, heads=2, head_dim=16)(q, k, v)
        grads[name] = torch.autograd.grad(out, (q, k, v), upstream)
    for a, b in zip(grads["softmax"], grads["flash"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
