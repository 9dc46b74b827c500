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
