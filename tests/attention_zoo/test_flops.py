"""The FLOP counts the mechanisms declare: equal to a direct count of their matrix products."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import attention_zoo as zoo
from tests.helpers import make_qkv

B, H, N, D = 2, 2, 256, 16
# implementations whose products are plain torch ops, so FlopCounterMode sees every one
# (flash and the streaming sinkformer run fused kernels it does not count)
COUNTABLE = [
    ("softmax", {}),
    ("sinkformer", {"impl": "dense", "iters": 5}),
    ("performer", {"nb_features": 32}),
    ("lotformer", {"r": 8}),
    ("lotformer", {"r": 8, "impl": "reference", "iters": 9}),
    ("lotformer", {"r": 8, "cls_tokens": 3}),
]


def counted(name, options, backward=False):
    """(forward, backward) FLOPs of one call as torch's FlopCounterMode counts them."""
    torch.manual_seed(0)
    attn = zoo.create(name, heads=H, head_dim=D, **options)
    q, k, v = (t.requires_grad_() for t in make_qkv(B, H, N, D))
    with FlopCounterMode(display=False) as forward:
        out = attn(q, k, v)
    with FlopCounterMode(display=False) as backward:
        out.square().sum().backward()
    return forward.get_total_flops(), backward.get_total_flops()


def test_softmax_forward_is_four_b_h_n_squared_d():
    assert zoo.info("softmax").flops(B, H, N, D) == 4 * B * H * N**2 * D
    assert counted("softmax", {})[0] == 4 * B * H * N**2 * D


@pytest.mark.parametrize(("name", "options"), COUNTABLE, ids=lambda x: str(x))
def test_declared_forward_flops_equal_a_direct_count(name, options):
    assert zoo.info(name).flops(B, H, N, D, **options) == counted(name, options)[0]


@pytest.mark.parametrize(
    ("name", "options"),
    [("performer", {"nb_features": 32}), ("lotformer", {"r": 8, "impl": "reference"})],
)
def test_declared_backward_of_the_linear_mechanisms_matches_a_direct_count(name, options):
    forward, backward = counted(name, options)
    info = zoo.info(name)
    declared = info.flops(B, H, N, D, "forward_backward", **options) - forward
    assert declared == pytest.approx(backward, rel=0.01)


def test_dense_attention_backward_is_counted_as_flash_counts_it():
    for name in ("softmax", "flash", "sinkformer"):
        info = zoo.info(name)
        assert info.flops(1, 1, 64, 8, "forward_backward") == 3.5 * info.flops(1, 1, 64, 8)


@pytest.mark.parametrize("name", zoo.names())
def test_count_grows_with_the_declared_complexity(name):
    info = zoo.info(name)
    growth = info.flops(1, 4, 8192, 64) / info.flops(1, 4, 4096, 64)
    assert growth == pytest.approx(2.0 if info.complexity == "linear" else 4.0, rel=1e-3)
    assert info.flops(3, 4, 4096, 64) == 3 * info.flops(1, 4, 4096, 64)


def test_options_change_the_count_and_an_unknown_pass_is_refused():
    info = zoo.info("lotformer")
    assert info.flops(1, 1, 1024, 64, r=64) == 2 * info.flops(1, 1, 1024, 64, r=32)
    with pytest.raises(ValueError, match="pass_"):
        info.flops(1, 1, 1024, 64, "backward")


def test_a_mechanism_that_declares_no_count_gets_none():
    from attention_zoo.registry import CATALOGUE, register
    from attention_zoo.softmax import Softmax

    with CATALOGUE.scratch():

        @register("uncounted", complexity="quadratic")
        class Uncounted(Softmax):
            """Softmax without a FLOP count."""

        assert zoo.info("uncounted").flops(1, 1, 64, 8) is None
