"""Properties every mechanism must hold: docs/design.md's contract."""

import pytest
import torch

import attention_zoo as zoo
from tests.helpers import lengths_mask, make_qkv

# every mechanism, and the implementations an option selects: name -> (mechanism, options)
VARIANTS = {n: (n, {}) for n in zoo.names()} | {
    "sinkformer[streaming]": ("sinkformer", {"impl": "streaming"}),
    "lotformer[reference]": ("lotformer", {"impl": "reference"}),
}
ALL = list(VARIANTS)
DOUBLY_STOCHASTIC = [n for n in ALL if zoo.info(VARIANTS[n][0]).doubly_stochastic]


def build(variant, heads=2, head_dim=16, **options):
    name, chosen = VARIANTS[variant]
    torch.manual_seed(0)
    return zoo.create(name, heads=heads, head_dim=head_dim, **chosen, **options)


@pytest.mark.parametrize("name", ALL)
def test_output_equals_attention_matrix_times_v(name):
    attn = build(name)
    q, k, v = make_qkv(seq_len=40, seed=30)
    mask = lengths_mask(40, 25, 40)
    out = attn(q, k, v, padding_mask=mask)
    dense = attn.attention_matrix(q, k, padding_mask=mask) @ v
    assert out.shape == v.shape
    assert (out - dense).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ALL)
def test_real_outputs_do_not_depend_on_padded_content(name):
    attn = build(name)
    q, k, v = make_qkv(seq_len=48, seed=31)
    mask = lengths_mask(48, 30, 41)
    out = attn(q, k, v, padding_mask=mask)
    pad = ~mask[:, None, :, None]
    junk = [torch.where(pad, 1e3 * torch.randn_like(t), t) for t in (q, k, v)]
    out_junk = attn(*junk, padding_mask=mask)
    assert torch.isfinite(out_junk).all()
    assert (out - out_junk).abs().max().item() <= 1e-6
    assert out.masked_select(pad).abs().max().item() == 0.0  # padded positions output zero


@pytest.mark.parametrize("name", ALL)
def test_padded_sequence_equals_the_unpadded_sequence(name):
    attn = build(name)
    q, k, v = make_qkv(batch=1, seq_len=50, seed=32)
    mask = torch.zeros(1, 50, dtype=torch.bool)
    mask[0, :37] = True
    padded = attn(q, k, v, padding_mask=mask)[:, :, :37]
    alone = attn(q[:, :, :37], k[:, :, :37], v[:, :, :37])
    assert (padded - alone).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", DOUBLY_STOCHASTIC)
@pytest.mark.parametrize("case", ["scores x100", "eps 0.05"])
def test_no_nan_or_inf_under_extreme_scores(name, case):
    options = {"eps": 0.05} if case == "eps 0.05" else {}
    attn = build(name, **options)
    scale = 10.0 if case == "scores x100" else 1.0  # q and k x10 each: scores x100
    q, k, v = make_qkv(seq_len=64, seed=33, scale=scale)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    mask = lengths_mask(64, 64, 50)
    out = attn(q, k, v, padding_mask=mask)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for t in (q, k, v, *attn.parameters()):
        assert torch.isfinite(t.grad).all()
    A = attn.attention_matrix(q, k, padding_mask=mask)
    assert torch.isfinite(A).all()
    assert (A[0].sum(-1) - 1).abs().max().item() <= 1e-4  # still row-stochastic


@pytest.mark.parametrize("name", ALL)
def test_a_sequence_with_no_real_token_gives_zeros_and_finite_gradients(name):
    attn = build(name)
    q, k, v = (t.requires_grad_() for t in make_qkv(seq_len=16, seed=34))
    mask = lengths_mask(16, 16, 0)
    out = attn(q, k, v, padding_mask=mask)
    assert out[1].abs().max().item() == 0.0
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_runs_in_every_dtype_and_returns_it(name, dtype):
    attn = build(name).to(dtype) if dtype == torch.float64 else build(name)
    q, k, v = make_qkv(seq_len=32, seed=35, dtype=dtype)
    out = attn(q, k, v)
    ref = build(name).double()(*(t.double() for t in (q, k, v)))
    assert out.dtype == dtype
    tol = {torch.bfloat16: 5e-2, torch.float16: 1e-2, torch.float64: 1e-12}[dtype]
    assert (out.double() - ref).abs().max().item() <= tol


@pytest.mark.parametrize("name", ALL)
def test_forward_makes_no_host_synchronisation(name, monkeypatch):
    """.item(), bool() and friends stall a GPU; the forward pass must not call them."""
    attn = build(name)
    q, k, v = make_qkv(seq_len=24, seed=36)
    mask = lengths_mask(24, 20, 24)

    def sync(*_args, **_kwargs):
        raise AssertionError("host synchronisation inside forward")

    for method in ("item", "tolist", "__bool__", "__int__", "__float__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, method, sync)
    attn(q, k, v, padding_mask=mask)
