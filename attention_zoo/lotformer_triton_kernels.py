"""The Triton kernels of lotformer impl="triton" (attention_zoo/lotformer_triton.py says
what they compute and why); imported only when one runs, since this module imports triton.

One program per (batch x head) slice. Every loop walks the slice's n tokens in blocks of
BLOCK_N rows of S (n, r), r padded to BLOCK_R lanes.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _block(S, valid_ptr, pid, n, r, start, cols, in_r, NEG: tl.constexpr,
           HAS_VALID: tl.constexpr, BLOCK_N: tl.constexpr):  # fmt: skip
    """Rows start.. of the slice: their indices, which are real tokens, the mask of real
    entries, and the entries (NEG elsewhere)."""
    rows = start + tl.arange(0, BLOCK_N)
    real = rows < n
    if HAS_VALID:
        real = real & (tl.load(valid_ptr + pid * n + rows, mask=rows < n, other=0) != 0)
    keep = real[:, None] & in_r[None, :]
    x = tl.load(S + pid * n * r + rows[:, None] * r + cols[None, :], mask=keep, other=NEG)
    return rows, real, keep, x


@triton.jit
def _column_lse_step(m, s, z, keep):
    """The running log-sum-exp per pivot, (peak m, sum s), with the block's entries z."""
    m_new = tl.maximum(m, tl.max(z, axis=0))
    e = tl.where(keep, tl.exp(z - m_new[None, :]), 0.0)
    return m_new, s * tl.exp(m - m_new) + tl.sum(e, axis=0)


@triton.jit
def _row_potential(x, g, log_a):
    """f = log a - lse_j(x_ij + g_j) for each row of the block."""
    y = x + g[None, :]
    peak = tl.max(y, axis=1)
    return log_a - (peak + tl.log(tl.sum(tl.exp(y - peak[:, None]), axis=1)))


@triton.jit
def _pivot_potential(log_b, m, s, in_r, NEG: tl.constexpr):
    """g = log b - lse; a sum that underflows (no real token) is floored at 1e-30."""
    return tl.where(in_r, log_b - (m + tl.log(tl.where(in_r, tl.maximum(s, 1e-30), 1.0))), NEG)


@triton.jit
def plans_kernel(
    S, P, F, log_b_ptr, log_a_ptr, valid_ptr, n, r, pairs,
    END_ON_TOKENS: tl.constexpr, HAS_VALID: tl.constexpr, NEG: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
):  # fmt: skip
    """The plan of one slice: `pairs` (row, column) passes over S, after a first column
    half-step for G1 (END_ON_TOKENS), then the plan written (after G1's last row step)."""
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_R)
    in_r = cols < r
    log_b = tl.load(log_b_ptr + pid * r + cols, mask=in_r, other=NEG)
    log_a = tl.load(log_a_ptr + pid)
    g = tl.zeros([BLOCK_R], dtype=S.dtype.element_ty)
    if END_ON_TOKENS:  # the first column half-step, from f = 0
        m = tl.full([BLOCK_R], NEG, S.dtype.element_ty)
        s = tl.zeros([BLOCK_R], dtype=S.dtype.element_ty)
        for start in range(0, n, BLOCK_N):
            rows, real, keep, x = _block(S, valid_ptr, pid, n, r, start, cols, in_r, NEG,
                                         HAS_VALID, BLOCK_N)  # fmt: skip
            m, s = _column_lse_step(m, s, x, keep)
        g = _pivot_potential(log_b, m, s, in_r, NEG)
    for _ in range(pairs):  # a row half-step and the column half-step after it: one pass
        m = tl.full([BLOCK_R], NEG, S.dtype.element_ty)
        s = tl.zeros([BLOCK_R], dtype=S.dtype.element_ty)
        for start in range(0, n, BLOCK_N):
            rows, real, keep, x = _block(S, valid_ptr, pid, n, r, start, cols, in_r, NEG,
                                         HAS_VALID, BLOCK_N)  # fmt: skip
            f = tl.where(real, _row_potential(x, g, log_a), NEG)
            tl.store(F + pid * n + rows, f, mask=rows < n)
            m, s = _column_lse_step(m, s, x + f[:, None], keep)
        g = _pivot_potential(log_b, m, s, in_r, NEG)
    for start in range(0, n, BLOCK_N):  # the plan
        rows, real, keep, x = _block(S, valid_ptr, pid, n, r, start, cols, in_r, NEG,
                                     HAS_VALID, BLOCK_N)  # fmt: skip
        if END_ON_TOKENS:  # G1's last row half-step
            f = _row_potential(x, g, log_a)
        else:
            f = tl.load(F + pid * n + rows, mask=rows < n, other=NEG)
        p = tl.where(keep, tl.exp(x + f[:, None] + g[None, :]), 0.0)
        tl.store(P + pid * n * r + rows[:, None] * r + cols[None, :], p,
                 mask=(rows < n)[:, None] & in_r[None, :])  # fmt: skip


@triton.jit
def mix_kernel(
    G1, G2t, V, W, OUT, n, r, d,
    BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """out = G1 (diag(w) (G2t^T V)) for one slice, the (r, d) middle kept on chip."""
    pid = tl.program_id(0)
    cols_r = tl.arange(0, BLOCK_R)
    cols_d = tl.arange(0, BLOCK_D)
    in_r, in_d = cols_r < r, cols_d < d
    middle = tl.zeros([BLOCK_R, BLOCK_D], dtype=G1.dtype.element_ty)
    for start in range(0, n, BLOCK_N):  # G2 V: (r, n) x (n, d)
        rows = start + tl.arange(0, BLOCK_N)
        in_n = rows < n
        g2 = tl.load(G2t + pid * n * r + rows[:, None] * r + cols_r[None, :],
                     mask=in_n[:, None] & in_r[None, :], other=0.0)  # fmt: skip
        v = tl.load(V + pid * n * d + rows[:, None] * d + cols_d[None, :],
                    mask=in_n[:, None] & in_d[None, :], other=0.0)  # fmt: skip
        middle += tl.dot(tl.trans(g2), v, input_precision="ieee")
    w = tl.load(W + pid * r + cols_r, mask=in_r, other=0.0)
    middle = middle * w[:, None]
    for start in range(0, n, BLOCK_N):  # G1 (...): (n, r) x (r, d)
        rows = start + tl.arange(0, BLOCK_N)
        in_n = rows < n
        g1 = tl.load(G1 + pid * n * r + rows[:, None] * r + cols_r[None, :],
                     mask=in_n[:, None] & in_r[None, :], other=0.0)  # fmt: skip
        out = tl.dot(g1, middle, input_precision="ieee")
        tl.store(OUT + pid * n * d + rows[:, None] * d + cols_d[None, :], out,
                 mask=in_n[:, None] & in_d[None, :])  # fmt: skip
