"""Properties every mechanism must hold: docs/design.md's contract, as attention_zoo.check
defines it, for every mechanism and the implementations its options select."""

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.testing import CONTRACT, assert_property
from tests.helpers import lengths_mask, make_qkv

# every mechanism, and the implementations an option selects: name -> (mechanism, options)
VARIANTS = {n: (n, {}) for n in zoo.names()} | {
    "sinkformer[streaming]": ("sinkformer", {"impl": "streaming"}),
    "lotformer[reference]": ("lotformer", {"impl": "reference"}),
    # forward only on CPU: the properties that need a backward are skipped, saying why
    "sinkformer[flex]": ("sinkformer", {"kernel": "flex"}),
}
ALL = list(VARIANTS)
TRAINABLE_HERE = [n for n in ALL if n != "sinkformer[flex]"]
DOUBLY_STOCHASTIC = [n for n in TRAINABLE_HERE if zoo.info(VARIANTS[n][0]).doubly_stochastic]


def build(variant, heads=2, head_dim=16, **options):
    name, chosen = VARIANTS[variant]
    torch.manual_seed(0)
    return zoo.create(name, heads=heads, head_dim=head_dim, **chosen, **options)


@pytest.mark.parametrize("variant", ALL)
@pytest.mark.parametrize("prop", CONTRACT)
def test_every_mechanism_honours_the_contract(variant, prop):
    """The properties of attention_zoo.check (the definition plugins are checked with)."""
    name, options = VARIANTS[variant]
    assert_property(name, prop, options)


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
