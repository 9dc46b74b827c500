"""Sinkhorn attention in O(N) memory: every step is a fused attention kernel call.

A row half-step of Sinkhorn on the log-kernel S = scale * Q K^T needs, per query i,
    f_i = -logsumexp_j(S_ij + g_j),
the log-sum-exp of an attention row whose keys carry a bias g_j. Fused attention kernels
return exactly that (their softmax normaliser) without forming S, and a per-key bias is
folded into the keys by one extra head dimension: q' = [q, 1], k' = [k, g / scale], so
that scale * q'.k' = S_ij + g_j. A column half-step is the same with queries and keys
swapped. The output is then an ordinary attention with the last key potential folded in.

Backward, exactly, in O(N) memory: a half-step u = -lse(S + b) has the adjoints
    dS_ij = -u_bar_i p_ij,   b_bar_j = -sum_i u_bar_i p_ij,   p_ij = exp(S_ij + b_j + u_i),
so dq needs sum_j p_ij k_j (an attention with values k) and dk, b_bar need
sum_i u_bar_i p_ij [q_i, 1]: rows of p are normalised, its columns are not, so this is a
kernel call with queries and keys swapped (keys biased by u) whose output is rescaled by
exp(b_j + its own log-sum-exp). The forward call of a half-step takes the keys as its
values, so it leaves sum_j p_ij k_j behind (kept: O(N D)); every half-step then costs one
kernel call forward and one backward. The final attention goes through the kernel's own
backward.

Kernels (`KERNELS`): "sdpa", the CPU flash kernel of scaled_dot_product_attention (fp32
here) or CUDA's memory-efficient kernel (fp32, with its log-sum-exp), the bias folded in as
above; "flex", FlexAttention (torch.nn.attention.flex_attention), the bias entering as a
`score_mod` (no extra dimension, so a head dimension of 64 stays 64) and q, k, v kept in
their own dtype (bf16 on a GPU) while the potentials and the log-sum-exp stay fp32. On CUDA
flex is compiled (a Triton kernel per shape); on CPU it runs eagerly (it forms each N x N
score block: a proof of the numbers, not of speed) and has no backward, so a CPU call that
needs gradients is refused (`NotOnThisDevice`). Padding: padded keys get the bias
`base.NEG`, padded queries' potentials stay 0 (as in the dense version).
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from attention_zoo.base import NEG, NotOnThisDevice

KERNELS = ("sdpa", "flex")


def fold(x: Tensor, y: Tensor, bias: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """(x', y') with scale * x'_i.y'_j = scale * x_i.y_j + bias_j: one extra dimension."""
    return (
        torch.cat([x, x.new_ones((*x.shape[:-1], 1))], dim=-1),
        torch.cat([y, (bias / scale)[..., None]], dim=-1),
    )


def kernel_name(device: torch.device, kernel: str = "sdpa") -> str:
    """The fused kernel every half-step runs on `device` (what a result row records)."""
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"streaming sinkhorn runs on cpu and cuda, got {device.type}")
    if kernel == "flex":
        return "flex-triton" if device.type == "cuda" else "flex-eager"
    return {"cpu": "sdpa-cpu_flash_attention", "cuda": "sdpa-efficient_attention"}[device.type]


def flex_missing() -> str | None:
    """Why FlexAttention cannot be used with this torch (None when it can)."""
    try:
        from torch.nn.attention.flex_attention import AuxRequest, flex_attention  # noqa: F401
    except ImportError as exc:
        return f"this torch ({torch.__version__}) has no FlexAttention with AuxRequest ({exc})"
    return None


# the memory-efficient CUDA kernel wants every row of q, k, v to start on 16 bytes: the
# folded width D + 1 (and values of width D + 1) are padded with zero columns to a multiple
# of 8, which changes no dot product and no output (seen on an H200: "query is not
# correctly aligned (strideM)" for D + 1 = 65 in fp32)
ALIGN = {"cuda": 8}


def pad_to_multiple(t: Tensor, multiple: int) -> Tensor:
    """`t` (..., W) with zero columns up to the next multiple of `multiple` (itself if none)."""
    extra = -t.shape[-1] % multiple
    return F.pad(t, (0, extra)) if extra else t


def attend_lse(
    x: Tensor, y: Tensor, bias: Tensor, values: Tensor, scale: float, align: int | None = None
):
    """(out, lse) of softmax_j(scale x_i.y_j + bias_j) over keys y, in O(N) memory.

    x (B, H, Nx, D), y (B, H, Ny, D), bias (B, H, Ny), values (B, H, Ny, Dv <= D + 1),
    float32. out (B, H, Nx, Dv) = sum_j softmax_ij values_j; lse (B, H, Nx). `align`: pad
    the head dimensions to a multiple of it (default: what the device's kernel needs)."""
    xq, yk = fold(x, y, bias, scale)
    width = values.shape[-1]
    values = F.pad(values, (0, max(xq.shape[-1] - width, 0)))  # the kernels want Dv = Dq
    align = ALIGN.get(x.device.type, 1) if align is None else align
    xq, yk, values = (pad_to_multiple(t, align) for t in (xq, yk, values))
    if x.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            xq, yk, values, 0.0, False, attn_mask=None, scale=scale
        )
        return out[..., :width], lse
    if x.device.type == "cuda":  # the memory-efficient kernel keeps fp32 and returns lse
        out, lse, *_ = torch.ops.aten._scaled_dot_product_efficient_attention(
            xq, yk, values, None, True, 0.0, False, scale=scale
        )
        return out[..., :width], lse[..., : x.shape[-2]]  # lse padded to 32 rows on some versions
    raise ValueError(f"streaming sinkhorn runs on cpu and cuda, got {x.device.type}")


def _flex_call(x: Tensor, y: Tensor, bias: Tensor, values: Tensor):
    """One FlexAttention call, scores x.y (x already scaled) plus `bias` (B, H, Ny): (out,
    lse). The score_mod is made in here, so that compiled (CUDA) the bias is an input of
    the graph, not a new closure to guard on at every call; and no float reaches the
    compiler (a float it makes symbolic is read back with .item(), a host sync)."""
    from torch.nn.attention.flex_attention import AuxRequest, flex_attention

    def add_bias(score, b, h, i, j):
        return score + bias[b, h, j]

    out, aux = flex_attention(
        x, y, values, score_mod=add_bias, scale=1.0, return_aux=AuxRequest(lse=True)
    )
    return out, aux.lse


@functools.cache
def _flex(device_type: str):
    """`_flex_call` as it runs on `device_type`: compiled on CUDA (a Triton kernel per
    shape), eager on CPU."""
    return torch.compile(_flex_call, dynamic=False) if device_type == "cuda" else _flex_call


def attend_lse_flex(x: Tensor, y: Tensor, bias: Tensor, values: Tensor, scale: float):
    """`attend_lse` through FlexAttention: the bias (fp32 at least) is added to each score by
    a `score_mod`; x, y and values in x's dtype; lse in fp32 (fp64 for fp64 inputs)."""
    if (
        x.device.type == "cpu"
        and torch.is_grad_enabled()
        and (x.requires_grad or y.requires_grad or values.requires_grad)
    ):
        raise NotOnThisDevice(
            "sinkformer kernel=flex: FlexAttention has no backward on CPU (torch refuses it); "
            "train with kernel=sdpa on CPU, or on a CUDA device"
        )
    if not torch.is_grad_enabled():  # the hand-written steps: flex checks the flags alone
        x, y, values = x.detach(), y.detach(), values.detach()
    bias = bias.to(torch.promote_types(x.dtype, torch.float32)).expand(*y.shape[:-1])  # (B, H, Ny)
    with warnings.catch_warnings():  # eager on CPU by design: the numbers, not the speed
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return _flex(x.device.type)(x * scale, y, bias, values.to(x.dtype))


ATTEND = {"sdpa": attend_lse, "flex": attend_lse_flex}


class _StreamingPotentials(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, pad_bias, valid, half_steps, scale, attend):
        # pad_bias (B, 1, N): 0 for real tokens, NEG for padded ones; valid (B, 1, N) bool
        history, rows = [], []  # each half-step's potential and sum_j p_ij y_j
        prev = torch.zeros_like(q[..., 0])  # the other axis' potential: none yet
        for t in range(half_steps):
            x, y = (q, k) if t % 2 == 0 else (k, q)  # rows first
            out, lse = attend(x, y, prev + pad_bias, y, scale)
            u = -lse.to(pad_bias.dtype)
            if valid is not None:
                u = u.masked_fill(~valid, 0.0)
            history.append(u)
            rows.append(out)  # sum_j p_ij y_j
            prev = u
        ctx.scale, ctx.steps, ctx.attend = scale, half_steps, attend
        ctx.save_for_backward(q, k, pad_bias, valid, *history, *rows)
        return tuple(history)

    @staticmethod
    @once_differentiable
    def backward(ctx, *u_bars):
        q, k, pad_bias, valid, *saved = ctx.saved_tensors
        history, rows = saved[: ctx.steps], saved[ctx.steps :]
        s = ctx.scale
        # accumulated in the potentials' dtype (fp32 when q is bf16 through flex), cast at the end
        acc = history[0].dtype
        dq, dk = torch.zeros_like(q, dtype=acc), torch.zeros_like(k, dtype=acc)
        carry = torch.zeros_like(history[0])  # adjoint from the next half-step
        for t in reversed(range(len(history))):
            u, u_bar = history[t], u_bars[t] + carry
            if valid is not None:
                u_bar = u_bar.masked_fill(~valid, 0.0)  # pinned potentials pass nothing
            prev = history[t - 1] if t else torch.zeros_like(u)
            x, y, dx, dy = (q, k, dq, dk) if t % 2 == 0 else (k, q, dk, dq)
            dx.sub_(s * u_bar[..., None] * rows[t])  # rows[t] = sum_j p_ij y_j
            # sum_i u_bar_i p_ij [x_i, 1]: queries y, keys x biased by u
            w = torch.cat([u_bar[..., None] * x, u_bar[..., None]], dim=-1)
            cols, lse = ctx.attend(y, x, u + pad_bias, w, s)
            cols = cols.to(acc) * torch.exp(prev + pad_bias + lse.to(acc))[..., None]
            dy.sub_(s * cols[..., :-1])
            carry = -cols[..., -1]
        return dq.to(q.dtype), dk.to(k.dtype), None, None, None, None, None


def streaming_sinkhorn_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    iters: int,
    scale: float,
    kernel: str = "sdpa",
) -> Tensor:
    """Sinkhorn attention (`iters` half-steps, rows first) of q, k, v (B, H, N, D) in O(N)
    memory through `kernel` ("sdpa": float32 inputs; "flex": any dtype); `mask` (B, N) bool,
    True = real token. Equals the dense version."""
    attend = ATTEND[kernel]
    valid = None if mask is None else mask[:, None, :]
    # the potentials: fp32 at least (bf16 q through flex), fp64 with fp64 q
    dtype = torch.promote_types(q.dtype, torch.float32)
    pad_bias = q.new_zeros((q.shape[0], 1, q.shape[2]), dtype=dtype)
    if valid is not None:
        pad_bias = pad_bias.masked_fill(~valid, NEG)
    # an even count ends on columns: one more row lse gives the rows' sums of the plan
    steps = iters + (iters % 2 == 0)
    history = _StreamingPotentials.apply(q, k, pad_bias, valid, steps, scale, attend)
    g = history[iters - 1] if iters % 2 == 0 else (history[iters - 2] if iters > 1 else None)
    key_bias = pad_bias.expand(q.shape[:-1]) if g is None else g + pad_bias
    # the half-steps' kernel, called directly: through scaled_dot_product_attention's
    # dispatcher the memory-efficient kernel refuses a head dimension of D + 1 in fp32
    # (not a multiple of 4); the kernel itself takes it, and autograd knows its backward
    # (flex: its own autograd, on CUDA)
    out = attend(q, k, key_bias, v, scale)[0]
    if iters % 2 == 0:  # P = exp(S + f + g): rows sum to exp(f_{T-1} + lse(S + g))
        out = out * torch.exp(history[iters - 2] - history[iters])[..., None].to(out.dtype)
    return out
