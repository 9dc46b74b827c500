"""The zoo on CUDA in bf16: runs only where a GPU is present (skipped on CPU-only machines)."""

import pytest
import torch

import attention_zoo as zoo
from tests.helpers import lengths_mask, make_qkv

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name", zoo.names())
def test_bf16_on_cuda_matches_float64_on_cpu(name):
    torch.manual_seed(0)
    attn = zoo.create(name, heads=4, head_dim=64)
    q, k, v = make_qkv(batch=2, heads=4, seq_len=256, head_dim=64, seed=40)
    mask = lengths_mask(256, 256, 200)
    ref = attn.double()(q.double(), k.double(), v.double(), padding_mask=mask)
    gpu = attn.float().cuda()
    out = gpu(*(t.cuda().bfloat16() for t in (q, k, v)), padding_mask=mask.cuda())
    assert out.dtype == torch.bfloat16
    assert (out.double().cpu() - ref).abs().max().item() <= 5e-2


def test_flash_runs_a_flash_kernel_on_cuda_bf16():
    attn = zoo.create("flash", heads=4, head_dim=64)
    q, k, v = (t.cuda().bfloat16() for t in make_qkv(heads=4, seq_len=1024, head_dim=64))
    attn(q, k, v)
    assert attn.last_backend in ("flash-attn", "sdpa-flash_attention")


def test_streaming_sinkformer_on_cuda_equals_the_dense_one_and_says_which_kernel_ran():
    q, k, v = (t.cuda() for t in make_qkv(heads=4, seq_len=512, head_dim=64, seed=41))
    mask = lengths_mask(512, 512, 400).cuda()
    streaming = zoo.create("sinkformer", heads=4, head_dim=64, impl="streaming")
    dense = zoo.create("sinkformer", heads=4, head_dim=64, impl="dense")
    out = streaming(q, k, v, padding_mask=mask)
    assert streaming.last_backend == "streaming/sdpa-efficient_attention"
    assert (out - dense(q, k, v, padding_mask=mask)).abs().max().item() <= 1e-4


def test_lotformer_compiled_kernels_on_cuda_equal_the_eager_ones_with_gradients():
    q, k, v = (t.cuda().requires_grad_() for t in make_qkv(heads=2, seq_len=4096, head_dim=64))
    grads = []
    for compiled in ("on", "off"):
        torch.manual_seed(1)
        attn = zoo.create("lotformer", heads=2, head_dim=64, compiled=compiled).cuda()
        out = attn(q, k, v)
        grads.append((out, *torch.autograd.grad(out.square().sum(), (q, k, v, attn.pivots))))
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())


def test_a_sweep_cell_on_cuda_is_timed_with_events_and_counts_its_flops(tmp_path):
    from runners.measure.cases import AttentionCase, Settings
    from runners.sweep.run import run_sweep

    s = Settings(batch=1, heads=4, head_dim=64, dtype="bf16", device=torch.device("cuda"))
    cells = [AttentionCase("flash", (("use_flash_attn_package", True),), 2048, "forward_backward")]
    rows, new = run_sweep(cells, s, tmp_path, progress=False)
    row = rows.iloc[0]
    assert new == 1 and row["status"] == "ok", row["error"]
    assert row["flops"] == 3.5 * 4 * 4 * 2048**2 * 64
    assert row["achieved_tflops"] == row["flops"] / (row["time_ms"] * 1e-3) / 1e12
    assert row["peak_mem_bytes"] > 3 * 4 * 2048 * 64 * 2  # at least q, k, v in bf16


def _outputs_and_grads(attn, q, k, v, mask):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = attn(q, k, v, padding_mask=mask)
    return (out, *torch.autograd.grad(out.float().square().sum(), (q, k, v)))


def test_sinkformer_on_flex_in_bf16_trains_and_stays_near_the_fp32_sdpa_path():
    """The first GPU's proof of kernel=flex: forward and backward through the compiled
    FlexAttention in bf16 against the fp32 SDPA path (CPU proved fp32 equality, eagerly)."""
    q, k, v = (t.cuda() for t in make_qkv(heads=4, seq_len=512, head_dim=64, seed=42))
    mask = lengths_mask(512, 512, 400).cuda()
    flex = zoo.create("sinkformer", heads=4, head_dim=64, kernel="flex")
    sdpa = zoo.create("sinkformer", heads=4, head_dim=64, impl="streaming")
    bf16 = _outputs_and_grads(flex, *(t.bfloat16() for t in (q, k, v)), mask)
    assert flex.last_backend == "streaming/flex-triton" and bf16[0].dtype == torch.bfloat16
    for got, want in zip(bf16, _outputs_and_grads(sdpa, q, k, v, mask), strict=True):
        scale = want.abs().max().item()
        assert (got.float() - want).abs().max().item() <= 5e-2 * max(scale, 1.0)


def test_lotformer_in_cuda_graphs_and_in_triton_equal_the_fused_solver_with_gradients():
    q, k, v = (t.cuda() for t in make_qkv(heads=4, seq_len=512, head_dim=64, seed=43))
    mask = lengths_mask(512, 512, 300).cuda()
    results = {}
    for name, options in (("fused", {}), ("graphs", {"compiled": "graphs"}),
                          ("triton", {"impl": "triton"})):  # fmt: skip
        torch.manual_seed(0)
        attn = zoo.create("lotformer", heads=4, head_dim=64, r=8, **options).cuda()
        _outputs_and_grads(attn, q, k, v, mask)  # graphs: the first calls record
        results[name] = _outputs_and_grads(attn, q, k, v, mask)
    for variant in ("graphs", "triton"):
        for got, want in zip(results[variant], results["fused"], strict=True):
            assert (got - want).abs().max().item() <= 1e-4, variant
