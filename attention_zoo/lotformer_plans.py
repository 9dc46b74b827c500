"""lotformer's token-pivot plans with one exponential per Sinkhorn iteration, exact backward.

A plan between n tokens (rows) and r pivots (columns) is P = exp(S + f + g) for the
log-kernel S (n, r), token marginal a = 1/n_real and pivot marginal b = sigma. The
log-domain solver (`attention_zoo.sinkhorn`) spends an exponential of all of S on every
half-step. Here a row half-step and the column half-step after it share one:

    e_ij = exp(S_ij + g_j - m_i)    m_i = max_j (S_ij + g_j): e <= 1, each row has a 1
    R_ij = e_ij / sum_j e_ij        row half-step: f_i = log a - m_i - log sum_j e_ij
    c_j  = sum_i R_ij               column half-step: g_j += log b_j - log a - log c_j

because sum_i exp(S_ij + f_i) = a exp(-g_j) c_j. After the column half-step the plan is
b_j R_ij / c_j, after a row half-step a R_ij; f is never needed. Padded tokens have R = 0.
c_j is clamped at the dtype's smallest normal number: only a pivot whose every entry is
below e^-87 of its row's largest would reach it, where the log-domain solver would raise
g_j by more than 87 in one half-step and this one raises it by 87 (both stay finite).

G2^T (ends on the pivot marginal) is `iters` such pairs from g = 0. G1 (ends on the token
marginal, so starts on the pivots) is a first column half-step from f = 0, iters - 1
pairs and a last row half-step. That is iters (+1) exponential passes of S instead of
2 iters (+1). The backward is the exact gradient of the same unrolled half-steps; it
recomputes each pair's R from S and the saved g (one exponential per pair), except the
last, which the plan itself gives.

On a CPU the (batch x head) slices are solved a few at a time, so that the slices being
worked on (about CHUNK_BYTES) stay in cache across the passes of one iteration.

The two kernels run once per iteration (the column sums of a forward pair, the backward of
a pair) also exist written for `torch.compile`, which fuses each into one read of S (and
one update of its adjoint) without storing R. `compiled="auto"` uses them where one slice
holds at least AUTO_COMPILE_BYTES (below that compiling costs more than it saves), "on"
always, "off" never. Where compiling fails (no C++ compiler or Triton), a warning says so
once and the same kernels run eagerly.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from attention_zoo.base import NEG

CHUNK_BYTES = 8 * 2**20
AUTO_COMPILE_BYTES = 2 * 2**20
# "graphs": the whole attention is compiled into CUDA graphs (attention_zoo/lotformer.py),
# inside which these kernels run uncompiled (the graph's compiler fuses them)
COMPILE_MODES = ("auto", "on", "off", "graphs")


def _chunks(S: Tensor) -> list[slice]:
    """Slices of S's first dimension (batch x head) solved together."""
    total, per_slice = S.shape[0], S[0].numel() * S.element_size()
    step = total if S.device.type != "cpu" else max(1, CHUNK_BYTES // max(per_slice, 1))
    return [slice(i, min(i + step, total)) for i in range(0, total, step)]


def _floor(dtype: torch.dtype) -> float:
    """Column sums below this are clamped: the smallest normal number over the machine epsilon,
    so every column sum kept is summed from entries with full precision."""
    info = torch.finfo(dtype)
    return info.tiny / info.eps


def _row_softmax_(S: Tensor, g: Tensor, valid: Tensor | None, out: Tensor) -> Tensor:
    """out <- R, the row softmax of S + g (0 on padded rows); returns out."""
    torch.add(S, g, out=out)
    out.sub_(out.amax(-1, keepdim=True)).exp_()
    inv = out.sum(-1, keepdim=True).reciprocal_()
    if valid is not None:
        inv.masked_fill_(~valid, 0.0)
    return out.mul_(inv)


def _column_softmax_(X: Tensor, valid: Tensor | None) -> Tensor:
    """X <- its softmax over the real tokens (rows; 0 on padded rows); returns the log-sum-exp."""
    if valid is not None:
        X.masked_fill_(~valid, NEG)
    peak = X.amax(-2, keepdim=True)
    total = X.sub_(peak).exp_().sum(-2, keepdim=True)
    X.div_(total)
    if valid is not None:
        X.masked_fill_(~valid, 0.0)
    return peak + total.log()


def _log_row_softmax(S: Tensor, g: Tensor, out: Tensor) -> Tensor:
    """out <- log of the row softmax of S + g."""
    torch.add(S, g, out=out)
    peak = out.amax(-1, keepdim=True)
    lse = out.sub_(peak).exp_().sum(-1, keepdim=True).log_().add_(peak)
    return torch.add(S, g, out=out).sub_(lse)


def _row_softmax(S: Tensor, g: Tensor, valid: Tensor | None) -> Tensor:
    """R, the row softmax of S + g (0 on padded rows), written for torch.compile."""
    x = S + g
    e = (x - x.amax(-1, keepdim=True)).exp()
    inv = e.sum(-1, keepdim=True).reciprocal()
    return e * (inv if valid is None else inv.masked_fill(~valid, 0.0))


def _column_sums_kernel(S: Tensor, g: Tensor, valid: Tensor | None, floor: float) -> Tensor:
    """The column sums of R, clamped at `_floor`, without keeping R."""
    return _row_softmax(S, g, valid).sum(-2, keepdim=True).clamp_min(floor)


def _pair_backward_kernel(S, g, valid, c, g_used, f_bar, S_bar):
    """`_pair_backward` with R recomputed inside: one read of S, one update of S_bar."""
    R = _row_softmax(S, g, valid)
    P = R / c
    f_bar = f_bar - (P * g_used).sum(-1, keepdim=True)
    S_bar.sub_(P * g_used + R * f_bar)
    return f_bar, -(R * f_bar).sum(-2, keepdim=True)


_COMPILED: dict = {}
_COMPILE_FAILED: list[str] = []


def _run_compiled(fn, *args):
    """fn(*args) through torch.compile; fn itself where compiling failed (said once)."""
    if not _COMPILE_FAILED:
        from torch._dynamo.exc import TorchDynamoException
        from torch._inductor.exc import InductorError

        try:
            if fn not in _COMPILED:
                _COMPILED[fn] = torch.compile(fn, dynamic=False)
            return _COMPILED[fn](*args)
        except (TorchDynamoException, InductorError) as e:
            _COMPILE_FAILED.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            warnings.warn(
                f"lotformer: torch.compile failed ({_COMPILE_FAILED[0]}); its kernels run "
                "eagerly from now on (compiled='off' skips the attempt)",
                stacklevel=2,
            )
    return fn(*args)


def _pair_backward(S, g, valid, c, g_used, f_bar, S_bar, R, compiled):
    """Back through one pair (row half-step, then column half-step) whose column sums were c:
    S_bar updated in place; returns the adjoints of f (after) and of g (entering the pair).
    g_used: the adjoint of the column half-step's g where that step was not clamped."""
    if compiled:
        return _run_compiled(_pair_backward_kernel, S, g, valid, c, g_used, f_bar, S_bar)
    _row_softmax_(S, g, valid, R)
    f_bar = _column_step_backward(R.div_(c), g_used, f_bar, S_bar)
    return f_bar, _row_step_backward(R.mul_(c), f_bar, S_bar)


class _TokenPivotPlan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, S, log_b, log_a, valid, iters, end_on_tokens, compiled):
        # S (BH, n, r), log_b (BH, 1, r), log_a (BH, 1, 1), valid (BH, n, 1) bool or None
        pairs = iters - 1 if end_on_tokens else iters
        plan = torch.empty_like(S)
        g_seen = S.new_empty((max(pairs, 1), S.shape[0], 1, S.shape[-1]))  # g entering each pair
        c_seen = torch.ones_like(g_seen)  # and its column sums
        floor = _floor(S.dtype)
        for ch in _chunks(S):
            s, out, vd = S[ch], plan[ch], None if valid is None else valid[ch]
            if end_on_tokens:  # first column half-step, from f = 0
                g = log_b[ch] - _column_softmax_(out.copy_(s), vd)
            else:
                g = torch.zeros_like(log_b[ch])
            for t in range(pairs):
                g_seen[t, ch] = g
                if end_on_tokens or t < pairs - 1:
                    if compiled:
                        c = _run_compiled(_column_sums_kernel, s, g, vd, floor)
                    else:
                        c = _row_softmax_(s, g, vd, out).sum(-2, keepdim=True).clamp_min_(floor)
                    c_seen[t, ch] = c
                    g = g + (log_b[ch] - log_a[ch]) - c.log()
                else:  # G2's last column half-step in the log domain: its pivot marginal is
                    # exact even where an earlier column sum was clamped
                    _column_softmax_(_log_row_softmax(s, g, out), vd)
                    out.mul_(log_b[ch].exp())
            if end_on_tokens:  # the last row half-step: the plan is a R
                _row_softmax_(s, g, vd, out)
                out.mul_(log_a[ch].exp())
        ctx.iters, ctx.end_on_tokens, ctx.compiled = iters, end_on_tokens, compiled
        ctx.save_for_backward(S, log_b, log_a, valid, g_seen, c_seen, plan)
        return plan

    @staticmethod
    @once_differentiable
    def backward(ctx, plan_bar):
        S, log_b, log_a, valid, g_seen, c_seen, plan = ctx.saved_tensors
        end_on_tokens = ctx.end_on_tokens
        pairs = ctx.iters - 1 if end_on_tokens else ctx.iters
        floor = _floor(S.dtype)
        S_bar = plan_bar * plan  # the plan is exp(S + f + g) for its last potentials f, g
        b_bar = torch.zeros_like(log_b)
        chunks = _chunks(S)
        buf = torch.empty_like(S[chunks[0]])
        for ch in chunks:
            s, sb, R = S[ch], S_bar[ch], buf[: ch.stop - ch.start]
            vd = None if valid is None else valid[ch]
            f_bar = sb.sum(-1, keepdim=True)  # (c, n, 1)
            g_bar = sb.sum(-2, keepdim=True)  # (c, 1, r)
            b_acc = torch.zeros_like(g_bar)
            if end_on_tokens:  # the last row half-step: R = plan / a
                g_bar = g_bar + _row_step_backward(
                    torch.div(plan[ch], log_a[ch].exp(), out=R), f_bar, sb
                )
                f_bar = torch.zeros_like(f_bar)
            for t in range(pairs - 1, -1, -1):
                b_acc += g_bar
                if not end_on_tokens and t == pairs - 1:  # the plan gives this column softmax
                    f_bar = _column_step_backward(
                        torch.div(plan[ch], log_b[ch].exp(), out=R), g_bar, f_bar, sb
                    )
                    _row_softmax_(s, g_seen[t, ch], vd, R)
                    g_bar = _row_step_backward(R, f_bar, sb)
                else:
                    c = c_seen[t, ch]
                    kept = c > floor  # a clamped column's g moved by a constant: g_bar passes
                    f_bar, g_in = _pair_backward(
                        s, g_seen[t, ch], vd, c, g_bar * kept, f_bar, sb, R, ctx.compiled
                    )
                    g_bar = g_in + g_bar * ~kept
                f_bar = torch.zeros_like(f_bar)
            if end_on_tokens:  # the first column half-step, from f = 0
                _column_softmax_(R.copy_(s), vd)
                _column_step_backward(R, g_bar, f_bar, sb)
                b_acc += g_bar
            b_bar[ch] = b_acc
        b_grad = b_bar if ctx.needs_input_grad[1] else None
        return S_bar, b_grad, None, None, None, None, None


def _column_step_backward(P: Tensor, g_bar: Tensor, f_bar: Tensor, S_bar: Tensor) -> Tensor:
    """Back through g = log b - logsumexp_i(S + f), given its column softmax P: S_bar -= g_bar P
    (in place); returns f's adjoint. (b's adjoint is g_bar.)"""
    S_bar.addcmul_(P, g_bar, value=-1.0)
    return f_bar - P @ g_bar.transpose(-2, -1)


def _row_step_backward(R: Tensor, f_bar: Tensor, S_bar: Tensor) -> Tensor:
    """Back through f = log a - logsumexp_j(S + g), given its row softmax R: S_bar -= f_bar R
    (in place); returns g's adjoint from this half-step."""
    S_bar.addcmul_(R, f_bar, value=-1.0)
    return -(f_bar.transpose(-2, -1) @ R)


def token_pivot_plan(
    S: Tensor,
    tokens: Tensor | None,
    log_sigma: Tensor,
    iters: int,
    end_on_tokens: bool,
    compiled: str = "auto",
) -> Tensor:
    """Entropic OT plan (B, H, n, r) from log-kernel S, marginals (1/n_real, sigma).

    tokens: (B, n) bool, the tokens that take part (None: all); log_sigma: (H, r). The
    last half-step fixes the token marginal if `end_on_tokens`, else the pivot marginal.
    compiled: "auto" | "on" | "off", whether the per-iteration kernels go through torch.compile
    ("graphs": not here, the caller compiles the whole attention).
    Same plan as `attention_zoo.lotformer.reference_plan`, one exponential per iteration.
    """
    B, H, n, r = S.shape
    S, log_b, log_a, valid = flat_problem(S, tokens, log_sigma)
    big = n * r * S.element_size() >= AUTO_COMPILE_BYTES
    use = compiled == "on" or (compiled == "auto" and big)  # "graphs": off in here
    plan = _TokenPivotPlan.apply(S, log_b, log_a, valid, iters, end_on_tokens, use)
    return plan.view(B, H, n, r)


def flat_problem(S: Tensor, tokens: Tensor | None, log_sigma: Tensor):
    """The plans' problem with (batch x head) flattened, as the solvers take it: S (BH, n, r)
    with padded rows zeroed, log_b (BH, 1, r), log_a (BH, 1, 1) = -log n_real, and valid
    (BH, n, 1) bool or None. Shared by the fused solver and the Triton one."""
    B, H, n, r = S.shape
    if tokens is None:
        valid = None
        log_a = S.new_full((B * H, 1, 1), float(n)).log_().neg_()
    else:
        valid = tokens[:, None, :, None].expand(B, H, n, 1).reshape(B * H, n, 1)
        n_real = tokens.sum(-1).clamp_min(1).to(S.dtype)  # (B,), on device: no host sync
        log_a = (-torch.log(n_real))[:, None].expand(B, H).reshape(B * H, 1, 1)
        S = S.masked_fill(~tokens[:, None, :, None], 0.0)  # junk in padded rows stays out
    log_b = log_sigma[None, :, None, :].expand(B, H, 1, r).reshape(B * H, 1, r)
    return S.reshape(B * H, n, r), log_b, log_a, valid
