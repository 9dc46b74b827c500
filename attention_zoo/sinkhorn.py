"""Log-domain Sinkhorn potentials with a lean exact backward; used by sinkformer and lotformer.

For a log-kernel S (..., n, m) the plan is P = exp(S + f + g). A row half-step sets
    f = log_a - logsumexp_j(S + g)     (rows of P sum to a)
and a column half-step sets
    g = log_b - logsumexp_i(S + f)     (columns of P sum to b).
Autograd through these steps would keep an (n, m) tensor per half-step. The backward here
is the exact gradient of the same unrolled steps, but keeps only S and the potentials
(O(n + m) per half-step): the softmax a half-step differentiates through is recomputed
from them, one (n, m) temporary at a time.

Padding: entries of S that are not real pairs must already hold `base.NEG`; `row_valid`
(..., n, 1) and `col_valid` (..., 1, m) pin the potentials of padded rows/columns at 0.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def _lse_step(S: Tensor, other: Tensor, log_marginal: Tensor, dim: int, buf: Tensor) -> Tensor:
    """log_marginal - logsumexp(S + other) over `dim`, computed inside `buf` (S's shape).

    All (n, m) work happens in place in `buf`: on a CPU, fresh (n, m) allocations per
    half-step cost page faults that grow faster than the arithmetic.
    """
    torch.add(S, other, out=buf)
    peak = buf.amax(dim=dim, keepdim=True)
    total = buf.sub_(peak).exp_().sum(dim=dim, keepdim=True)
    return log_marginal - total.log_().add_(peak)


class _SinkhornPotentials(torch.autograd.Function):
    @staticmethod
    def forward(ctx, S, log_a, log_b, half_steps, rows_first, row_valid, col_valid):
        f = S.new_zeros((*S.shape[:-1], 1))  # (..., n, 1)
        g = S.new_zeros((*S.shape[:-2], 1, S.shape[-1]))  # (..., 1, m)
        buf = torch.empty_like(S)
        history = []  # the potential each half-step produced
        for t in range(half_steps):
            if (t % 2 == 0) == rows_first:  # rows of exp(S + f + g) sum to a
                f = _lse_step(S, g, log_a, -1, buf)
                f = f if row_valid is None else f.masked_fill_(~row_valid, 0.0)
                history.append(f)
            else:  # columns sum to b
                g = _lse_step(S, f, log_b, -2, buf)
                g = g if col_valid is None else g.masked_fill_(~col_valid, 0.0)
                history.append(g)
        ctx.rows_first = rows_first
        ctx.save_for_backward(S, log_a, log_b, row_valid, col_valid, *history)
        return f, g

    @staticmethod
    @once_differentiable
    def backward(ctx, f_bar, g_bar):
        # f_bar, g_bar: adjoints of the returned potentials (zeros where unused: grads are
        # materialised); they become the adjoints of the potentials at each earlier step
        S, log_a, log_b, row_valid, col_valid, *history = ctx.saved_tensors
        S_bar = torch.zeros_like(S)
        buf = torch.empty_like(S)
        a_bar, b_bar = torch.zeros_like(f_bar), torch.zeros_like(g_bar)
        for t in reversed(range(len(history))):
            new = history[t]
            # the other potential as this half-step saw it: the previous half-step's output
            other = history[t - 1] if t else torch.zeros((), dtype=S.dtype, device=S.device)
            torch.add(S, other, out=buf)
            if (t % 2 == 0) == ctx.rows_first:  # f = log_a - lse_j(S + g)
                fb = f_bar if row_valid is None else f_bar.masked_fill(~row_valid, 0.0)
                buf.add_(new - log_a).exp_().mul_(fb)  # row softmax of S + g, times f_bar
                g_bar = g_bar - buf.sum(dim=-2, keepdim=True)
                a_bar = a_bar + fb
                f_bar = torch.zeros_like(f_bar)  # f before this step did not reach f after it
            else:  # g = log_b - lse_i(S + f)
                gb = g_bar if col_valid is None else g_bar.masked_fill(~col_valid, 0.0)
                buf.add_(new - log_b).exp_().mul_(gb)  # column softmax of S + f, times g_bar
                f_bar = f_bar - buf.sum(dim=-1, keepdim=True)
                b_bar = b_bar + gb
                g_bar = torch.zeros_like(g_bar)
            S_bar.sub_(buf)
        a_grad = a_bar.sum_to_size(log_a.shape) if ctx.needs_input_grad[1] else None
        b_grad = b_bar.sum_to_size(log_b.shape) if ctx.needs_input_grad[2] else None
        return S_bar, a_grad, b_grad, None, None, None, None


def sinkhorn_potentials(
    S: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    half_steps: int,
    rows_first: bool,
    row_valid: Tensor | None = None,
    col_valid: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Potentials (f (..., n, 1), g (..., 1, m)) after `half_steps` alternating half-steps.

    log_a broadcasts to (..., n, 1) and log_b to (..., 1, m); both may require grad.
    The plan is exp(S + f + g): see `plan`.
    """
    return _SinkhornPotentials.apply(S, log_a, log_b, half_steps, rows_first, row_valid, col_valid)


def plan(S: Tensor, f: Tensor, g: Tensor) -> Tensor:
    """exp(S + f + g) with one (n, m) allocation (autograd keeps only the result)."""
    return (S + f).add_(g).exp_()
