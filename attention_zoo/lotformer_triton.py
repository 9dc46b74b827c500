"""lotformer's token-pivot plans in one Triton launch: every Sinkhorn iteration of every
(batch x head) slice, one program per slice (experimental: impl="triton").

    plan = triton_plan(S, tokens, log_sigma, iters, end_on_tokens)   # as token_pivot_plan

A program holds its slice's pivot potential g (r values) in registers and walks the n
tokens in blocks of BLOCK_N rows. One pass over S does a row half-step and the column
half-step after it: for each block, f_i = log a - lse_j(S_ij + g_j) (stored, n values),
then S_ij + f_i joins a running (online) log-sum-exp per pivot; at the end of the pass
g_j = log b_j - that lse. So each iteration reads S once, as the fused solver's does, but
the whole solve is one launch instead of several kernels per iteration (the launch-bound
regime the H200 run showed at LRA sizes). The plan is written once, exp(S + f + g).
A second launch mixes the values, G1 (diag(n/sigma) (G2 V)), keeping the (r, d) middle
on chip (`triton_mix`).
The order of half-steps is the fused solver's (`attention_zoo.lotformer_plans`): G1
(`end_on_tokens`) starts with a column half-step from f = 0 and ends on a row half-step;
G2^T runs `iters` (row, column) pairs from g = 0. Padded tokens take no part: their f is
NEG, so their plan rows are 0 and they add nothing to a column's sum; a column sum that
underflows (a sequence with no real token) is floored at 1e-30 (the fused solver clamps too).

Backward: recomputation. The saved inputs are solved again by the fused solver under
autograd, whose exact hand-written backward gives the gradients; the mixing's backward is
its two products in torch. A fused backward kernel is open work: the forward is what a GPU
times first.

Runs where Triton runs: a CUDA device, or the CPU under TRITON_INTERPRET=1 (numpy, one
program at a time: a proof of the numbers, not of speed). `make test-triton` installs the
`triton` extra and runs tests/attention_zoo/test_lotformer_triton.py that way.
"""

from __future__ import annotations

import importlib.util
import os

import torch
from torch import Tensor

from attention_zoo.base import NEG
from attention_zoo.lotformer_plans import _TokenPivotPlan, flat_problem


def installed() -> bool:
    """Whether the triton package can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def unavailable(device: torch.device | None = None) -> str | None:
    """Why impl="triton" cannot run here (None when it can). Triton itself, and the kernels
    (attention_zoo/lotformer_triton_kernels.py), are imported only when a kernel runs:
    importing triton costs time, and its bindings report leaks at every process exit."""
    if not installed():
        return "the triton package is not installed (pip install '.[triton]', or make test-triton)"
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    on_cuda = (device is None and torch.cuda.is_available()) or (
        device is not None and device.type == "cuda"
    )
    if not (on_cuda or interpreted):
        return "Triton kernels need a CUDA device here, or TRITON_INTERPRET=1 on the CPU"
    return None


def _mixed(G1: Tensor, G2t: Tensor, v: Tensor, w: Tensor) -> Tensor:
    """G1 (diag(w) (G2t^T v)) in torch: what the kernel computes, and its backward."""
    return G1 @ (torch.einsum("bnr,bnd->brd", G2t, v) * w[..., None])


class _TritonMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, G1, G2t, v, w):
        ctx.save_for_backward(G1, G2t, v, w)
        BH, n, r = G1.shape
        d = v.shape[-1]
        out = torch.empty((BH, n, d), dtype=G1.dtype, device=G1.device)
        import triton

        from attention_zoo.lotformer_triton_kernels import mix_kernel

        mix_kernel[(BH,)](
            G1.contiguous(), G2t.contiguous(), v.contiguous(), w.contiguous(), out, n, r, d,
            BLOCK_N=64, BLOCK_R=max(16, triton.next_power_of_2(r)),
            BLOCK_D=max(16, triton.next_power_of_2(d)),
        )  # fmt: skip
        return out

    @staticmethod
    def backward(ctx, out_bar):
        with torch.enable_grad():  # recomputed in torch: two small products
            inputs = [t.detach().requires_grad_() for t in ctx.saved_tensors]
            return torch.autograd.grad(_mixed(*inputs), inputs, out_bar)


def triton_mix(G1: Tensor, G2t: Tensor, v: Tensor, weights: Tensor) -> Tensor:
    """lotformer's value mixing G1 (diag(weights) (G2 V)) in one launch per call:
    G1, G2t (B, H, n, r), v (B, H, n, d) in G1's dtype, weights (B, H, r) -> (B, H, n, d)."""
    B, H, n, _ = G1.shape
    d = v.shape[-1]
    flat = [t.reshape(B * H, *t.shape[2:]) for t in (G1, G2t, v.to(G1.dtype), weights)]
    return _TritonMix.apply(*flat).view(B, H, n, d)


def _launch(S: Tensor, log_b: Tensor, log_a: Tensor, valid: Tensor | None, iters: int,
            end_on_tokens: bool) -> Tensor:  # fmt: skip
    """The plans of S (BH, n, r): one program per slice."""
    import triton

    from attention_zoo.lotformer_triton_kernels import plans_kernel

    BH, n, r = S.shape
    S = S.contiguous()
    plan = torch.empty_like(S)
    f = torch.empty((BH, n), dtype=S.dtype, device=S.device)
    flags = valid.reshape(BH, n).to(torch.int8).contiguous() if valid is not None else f
    plans_kernel[(BH,)](
        S, plan, f, log_b.reshape(BH, r).contiguous(), log_a.reshape(BH).contiguous(), flags,
        n, r, iters - 1 if end_on_tokens else iters,
        END_ON_TOKENS=end_on_tokens, HAS_VALID=valid is not None, NEG=NEG,
        BLOCK_N=min(128, triton.next_power_of_2(n)), BLOCK_R=triton.next_power_of_2(r),
    )  # fmt: skip
    return plan


class _TritonPlan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, S, log_b, log_a, valid, iters, end_on_tokens):
        ctx.iters, ctx.end_on_tokens = iters, end_on_tokens
        ctx.save_for_backward(S, log_b, log_a, valid)
        return _launch(S, log_b, log_a, valid, iters, end_on_tokens)

    @staticmethod
    def backward(ctx, plan_bar):
        S, log_b, log_a, valid = ctx.saved_tensors
        with torch.enable_grad():  # recompute with the fused solver; its backward is exact
            S_, log_b_ = S.detach().requires_grad_(), log_b.detach().requires_grad_()
            plan = _TokenPivotPlan.apply(
                S_, log_b_, log_a, valid, ctx.iters, ctx.end_on_tokens, False
            )
            S_bar, log_b_bar = torch.autograd.grad(plan, (S_, log_b_), plan_bar)
        return S_bar, log_b_bar, None, None, None, None


def triton_plan(
    S: Tensor, tokens: Tensor | None, log_sigma: Tensor, iters: int, end_on_tokens: bool
) -> Tensor:
    """`lotformer_plans.token_pivot_plan` solved by the Triton kernel (float32 or float64): the plan
    (B, H, n, r) from log-kernel S, marginals (1/n_real, sigma)."""
    B, H, n, r = S.shape
    if S.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"impl='triton' solves in float32 or float64, got {S.dtype}")
    S_flat, log_b, log_a, valid = flat_problem(S, tokens, log_sigma)
    return _TritonPlan.apply(S_flat, log_b, log_a, valid, iters, end_on_tokens).view(B, H, n, r)
