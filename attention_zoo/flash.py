"""flash: fused attention kernels, recording which one ran.

On CUDA with fp16/bf16 and no padding mask the `flash-attn` package is used when it is
installed; otherwise `scaled_dot_product_attention` is asked for its flash backend first
(CUDA fp16/bf16, and the CPU flash kernel), then the memory-efficient, cuDNN and math ones.
`last_backend` says which ran: "flash-attn", "sdpa-flash_attention", "sdpa-efficient_attention",
"sdpa-cudnn_attention" or "sdpa-math". Results rows must carry it.

FLOPs: softmax's, 4·B·H·N²·D forward and 2.5x that backward, whichever kernel ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from attention_zoo.base import Attention
from attention_zoo.registry import register
from attention_zoo.softmax import DENSE_BACKWARD_RATIO, dense_attention_flops, softmax_matrix

try:  # optional CUDA package
    from flash_attn import flash_attn_func
except ImportError:
    flash_attn_func = None

PREFERENCE = [
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.MATH,
]


@register(
    "flash",
    complexity="quadratic",
    flops=dense_attention_flops,
    backward_ratio=DENSE_BACKWARD_RATIO,
)
class Flash(Attention):
    """Fused exact softmax attention (flash kernel where it exists); records the backend."""

    def __init__(self, heads: int, head_dim: int, use_flash_attn_package: bool = True) -> None:
        super().__init__(heads, head_dim)
        self.use_flash_attn_package = bool(use_flash_attn_package)
        self.last_backend: str | None = None

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        if (
            flash_attn_func is not None
            and self.use_flash_attn_package
            and mask is None
            and q.is_cuda
            and q.dtype in (torch.float16, torch.bfloat16)
        ):
            self.last_backend = "flash-attn"
            # the package takes (B, N, H, D)
            out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            return out.transpose(1, 2)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, N)
        with sdpa_kernel(PREFERENCE, set_priority=True):
            # the same selection function SDPA runs internally, so this is the kernel that runs
            chosen = SDPBackend(torch._fused_sdp_choice(q, k, v, attn_mask, 0.0, False))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        self.last_backend = f"sdpa-{chosen.name.lower()}"
        return out

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        return softmax_matrix(q, k, mask)
