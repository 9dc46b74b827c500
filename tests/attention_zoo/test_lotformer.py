"""lotformer: its two plans against POT, the glued matrix's marginals and rank, gradients."""

import numpy as np
import ot
import pytest
import torch
from torch.func import functional_call

import attention_zoo as zoo
from attention_zoo import lotformer_plans
from tests.helpers import lengths_mask, make_qkv


def lotformer(heads=2, head_dim=8, seed=0, **options):
    """A lotformer whose pivot masses are far from uniform, so sigma is really tested."""
    torch.manual_seed(seed)
    attn = zoo.create("lotformer", heads=heads, head_dim=head_dim, **options)
    with torch.no_grad():
        attn.mass_logits.normal_(0.0, 0.7)
    return attn


@pytest.mark.parametrize("eps", [1.0, 0.5])
def test_each_plan_equals_pots_plan_once_converged(eps):
    n, d, r = 40, 8, 6
    attn = lotformer(head_dim=d, r=r, eps=eps, iters=300)
    q, k, _ = make_qkv(batch=1, heads=2, seq_len=n, head_dim=d, seed=10)
    G1, G2, sigma = attn.transport_plans(q, k)
    Z = attn.pivots.detach().double()
    uniform = np.full(n, 1.0 / n)
    for h in range(2):
        s = sigma[h].detach().double().numpy()
        s = s / s.sum()  # POT wants the two marginals to agree in mass to float64 precision
        cost1 = -(q[0, h].double() @ Z[h].T).numpy() / np.sqrt(d)  # queries -> pivots
        cost2 = -(Z[h] @ k[0, h].double().T).numpy() / np.sqrt(d)  # pivots -> keys
        kw = {"reg": eps, "method": "sinkhorn_log", "numItermax": 20000, "stopThr": 1e-13}
        pot1 = ot.sinkhorn(uniform, s, cost1, **kw)
        pot2 = ot.sinkhorn(s, uniform, cost2, **kw)
        # compare on the scale of A's entries (the plans are O(1/n)): n * plan
        assert n * np.abs(G1[0, h].detach().double().numpy() - pot1).max() <= 1e-4
        assert n * np.abs(G2[0, h].detach().double().numpy() - pot2).max() <= 1e-4


def test_rows_sum_to_one_at_float_precision_with_default_iterations():
    attn = lotformer(head_dim=16)  # r=32, iters=5
    assert attn.iters == 5
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=64, head_dim=16, seed=11)
    A = attn.attention_matrix(q, k)
    assert (A.sum(-1) - 1).abs().max().item() <= 1e-5
    A64 = attn.double().attention_matrix(q.double(), k.double())
    assert (A64.sum(-1) - 1).abs().max().item() <= 1e-12


def test_columns_sum_to_one_once_converged():
    attn = lotformer(head_dim=16, r=8, iters=100)
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=64, head_dim=16, seed=12)
    A = attn.attention_matrix(q, k)
    assert (A.sum(-2) - 1).abs().max().item() <= 1e-3
    assert A.min().item() >= 0.0


def test_rank_is_at_most_r():
    attn = lotformer(head_dim=16, r=5).double()
    q, k, _ = make_qkv(batch=1, heads=2, seq_len=48, head_dim=16, seed=13, dtype=torch.float64)
    ranks = torch.linalg.matrix_rank(attn.attention_matrix(q, k))
    assert ranks.max().item() <= 5
    assert ranks.min().item() == 5  # and the bound is reached for generic inputs


@pytest.mark.parametrize("cls_tokens", [0, 1])
def test_factorised_output_equals_dense_matrix_times_v(cls_tokens):
    attn = lotformer(head_dim=16, r=8, cls_tokens=cls_tokens)
    q, k, v = make_qkv(batch=2, heads=2, seq_len=50, head_dim=16, seed=14)
    mask = lengths_mask(50, 50, 33)
    out = attn(q, k, v, padding_mask=mask)
    dense = attn.attention_matrix(q, k, padding_mask=mask) @ v
    assert (out - dense).abs().max().item() <= 1e-5


def test_gradients_reach_q_k_v_pivots_and_masses():
    attn = lotformer(head_dim=8, r=4)
    q, k, v = (t.requires_grad_() for t in make_qkv(seq_len=20, head_dim=8, seed=15))
    attn(q, k, v).square().sum().backward()
    for tensor in (q, k, v, attn.pivots, attn.mass_logits):
        assert tensor.grad is not None and tensor.grad.abs().sum().item() > 0


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_float64_gradcheck_on_a_tiny_case(impl):
    attn = lotformer(heads=2, head_dim=3, r=2, iters=3, impl=impl).double()
    q, k, v = (
        t.requires_grad_()
        for t in make_qkv(batch=1, heads=2, seq_len=5, head_dim=3, seed=16, dtype=torch.float64)
    )
    pivots = attn.pivots.detach().clone().requires_grad_()
    logits = attn.mass_logits.detach().clone().requires_grad_()
    mask = torch.tensor([[True, True, True, True, False]])

    def f(q, k, v, pivots, logits):
        params = {"pivots": pivots, "mass_logits": logits}
        return functional_call(attn, params, (q, k, v), {"padding_mask": mask})

    assert torch.autograd.gradcheck(f, (q, k, v, pivots, logits))


def test_cls_token_row_is_the_softmax_row():
    attn = lotformer(head_dim=16, r=8, cls_tokens=1)
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=30, head_dim=16, seed=17)
    A = attn.attention_matrix(q, k)
    soft = zoo.create("softmax", heads=2, head_dim=16).attention_matrix(q, k)
    assert (A[:, :, 0] - soft[:, :, 0]).abs().max().item() <= 1e-6
    assert (A.sum(-1) - 1).abs().max().item() <= 1e-5  # transported rows stay row-stochastic
    G1, _, _ = attn.transport_plans(q, k)
    assert G1[:, :, 0].abs().max().item() == 0.0  # the [CLS] query is not transported


def test_padded_tokens_get_zero_mass_and_marginals_are_uniform_over_real_tokens():
    attn = lotformer(head_dim=16, r=8, iters=200)
    q, k, _ = make_qkv(batch=2, heads=2, seq_len=32, head_dim=16, seed=18)
    mask = lengths_mask(32, 24, 32)
    G1, G2, sigma = attn.transport_plans(q, k, padding_mask=mask)
    assert G1[0, :, 24:].abs().max().item() == 0.0
    assert G2[0, :, :, 24:].abs().max().item() == 0.0
    assert (G1[0, :, :24].sum(-1) - 1 / 24).abs().max().item() <= 1e-6
    assert (G2[0, :, :, :24].sum(-2) - 1 / 24).abs().max().item() <= 1e-4
    assert (G2.sum(-1) - sigma).abs().max().item() <= 1e-6  # G2 ends on its pivot marginal
    A = attn.attention_matrix(q, k, padding_mask=mask)
    assert (A[0, :, :24, :24].sum(-2) - 1).abs().max().item() <= 1e-3


def test_seq_len_must_exceed_cls_tokens():
    attn = lotformer(head_dim=4, r=2, cls_tokens=3)
    q, k, v = make_qkv(seq_len=3, head_dim=4)
    with pytest.raises(ValueError, match="exceed cls_tokens=3"):
        attn(q, k, v)


def outputs_and_gradients(attn, q, k, v, mask):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = attn(q, k, v, padding_mask=mask)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=out.dtype)
    return [out, *torch.autograd.grad(out, [q, k, v, *attn.parameters()], upstream)]


def largest_relative_difference(xs, ys):
    return max(((x - y).abs().max() / y.abs().max()).item() for x, y in zip(xs, ys, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("iters", "cls_tokens", "masked"), [(1, 0, True), (2, 1, False), (5, 1, True)]
)
def test_fused_plans_equal_the_reference_solver_with_their_gradients(
    dtype, iters, cls_tokens, masked
):
    q, k, v = make_qkv(batch=2, heads=2, seq_len=40, head_dim=16, seed=20, dtype=dtype)
    mask = lengths_mask(40, 40, 27) if masked else None
    options = {"head_dim": 16, "r": 8, "iters": iters, "cls_tokens": cls_tokens}
    fused = outputs_and_gradients(lotformer(**options).to(dtype), q, k, v, mask)
    reference = lotformer(**options, impl="reference").to(dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert (
        largest_relative_difference(fused, outputs_and_gradients(reference, q, k, v, mask)) <= tol
    )


def test_solving_the_heads_in_chunks_changes_nothing(monkeypatch):
    attn = lotformer(heads=4, head_dim=16, r=8)
    q, k, v = make_qkv(batch=3, heads=4, seq_len=30, head_dim=16, seed=21)
    mask = lengths_mask(30, 30, 17, 9)
    together = outputs_and_gradients(attn, q, k, v, mask)
    monkeypatch.setattr(lotformer_plans, "CHUNK_BYTES", 1)  # one (batch, head) slice at a time
    assert len(lotformer_plans._chunks(torch.empty(12, 30, 8))) == 12
    assert largest_relative_difference(outputs_and_gradients(attn, q, k, v, mask), together) <= 1e-6


def test_a_pivot_far_from_every_token_keeps_rows_stochastic_and_gradients_finite():
    """Pivot 0 sits ~750 below every token's best pivot: its column sums underflow and are
    clamped, yet G2 ends exactly on its pivot marginal, so A stays row-stochastic."""
    attn = lotformer(head_dim=16, r=8)
    q, k, v = make_qkv(batch=2, heads=2, seq_len=40, head_dim=16, seed=22)
    q[..., 0] += 10.0
    k[..., 0] += 10.0
    with torch.no_grad():
        attn.pivots[:, 0] = 0.0
        attn.pivots[:, 0, 0] = -400.0
    outputs = outputs_and_gradients(attn, q, k, v, None)
    assert all(torch.isfinite(t).all() for t in outputs)
    A = attn.attention_matrix(q, k)
    assert (A.sum(-1) - 1).abs().max().item() <= 1e-5
    _, G2, sigma = attn.transport_plans(q, k)
    assert (G2.sum(-1) - sigma).abs().max().item() <= 1e-6


@pytest.mark.slow
def test_compiled_kernels_equal_the_eager_ones():
    q, k, v = make_qkv(batch=1, heads=2, seq_len=24, head_dim=8, seed=23, dtype=torch.float64)
    mask = lengths_mask(24, 19)
    eager = outputs_and_gradients(lotformer(r=4, compiled="off").double(), q, k, v, mask)
    compiled = lotformer(r=4, compiled="on").double()
    assert (
        largest_relative_difference(outputs_and_gradients(compiled, q, k, v, mask), eager) <= 1e-12
    )
    assert not lotformer_plans._COMPILE_FAILED


def test_products_times_the_unavoidable_matmuls_and_is_no_attention():
    attn = lotformer(head_dim=16, r=8, impl="products")
    assert attn.timing_only and not lotformer(head_dim=16).timing_only
    q, k, v = make_qkv(batch=1, heads=2, seq_len=20, head_dim=16, seed=24)
    Zt = (attn.pivots * 16**-0.5).transpose(-2, -1)
    sigma = attn.mass_logits.softmax(-1)
    expected = (q @ Zt) @ (((k @ Zt).transpose(-2, -1) @ v) * (20 / sigma)[..., None])
    assert (attn(q, k, v) - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()


@pytest.mark.parametrize("options", [{"impl": "fast"}, {"compiled": "yes"}])
def test_unknown_implementations_are_refused(options):
    with pytest.raises(ValueError, match="must be one of"):
        lotformer(**options)
