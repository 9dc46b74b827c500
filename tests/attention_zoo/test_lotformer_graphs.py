"""lotformer compiled='graphs': the whole attention compiled into CUDA graphs. What a CPU
can prove: the attention traces as one graph with no break (an `.item()`, a branch on a
tensor's value or a host copy would break it, and CUDA graphs with it), and the traced
forward and backward equal eager; creation without CUDA is refused."""

from __future__ import annotations

import pytest
import torch

import attention_zoo as zoo
from tests.helpers import lengths_mask, make_qkv


def build(compiled: str, **options):
    torch.manual_seed(0)
    return zoo.create("lotformer", heads=2, head_dim=16, r=8, compiled=compiled, **options)


@pytest.mark.parametrize("masked", [False, True])
def test_the_attention_traces_as_one_graph_and_equals_eager(masked):
    # compiled="off": the solver path "graphs" compiles (its kernels uncompiled inside)
    attn = build("off", iters=5)
    q, k, v = (t.requires_grad_() for t in make_qkv(2, 2, 64, 16, seed=3))
    mask = lengths_mask(64, 64, 41) if masked else None
    torch._dynamo.reset()
    explained = torch._dynamo.explain(attn.attend_eager)(q, k, v, mask)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    traced = torch.compile(attn.attend_eager, fullgraph=True, backend="aot_eager", dynamic=False)
    results = []
    for fn in (attn.attend_eager, traced):
        out = fn(q, k, v, mask)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v, attn.pivots, attn.mass_logits))
        results.append((out, *grads))
    for eager, graph in zip(*results, strict=True):
        assert (eager - graph).abs().max().item() < 1e-5


def test_a_host_sync_in_the_attention_would_break_the_graph(monkeypatch):
    """The mutation the test above guards against: an `.item()` inside the solver."""
    from attention_zoo import lotformer_plans

    real = lotformer_plans.token_pivot_plan

    def with_item(S, *args, **kwargs):
        if S.sum().item() > 1e30:  # a data-dependent branch on the host
            S = S * 1.0
        return real(S, *args, **kwargs)

    monkeypatch.setattr(lotformer_plans, "token_pivot_plan", with_item)
    attn = build("off")
    q, k, v = make_qkv(1, 2, 32, 16)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(attn.attend_eager)(q, k, v, None)
    assert explained.graph_break_count > 0


def test_graphs_are_refused_without_a_cuda_device_saying_what_to_use():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ValueError, match="no CUDA device; use compiled='auto'"):
        build("graphs")
