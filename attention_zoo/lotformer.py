"""lotformer: doubly stochastic linear attention through low-rank optimal transport.

Two entropic OT problems against r learnable pivots Z (per head) with learnable masses
sigma = softmax(logits):
    G1 (n x r): queries -> pivots, cost -QZ^T/sqrt(d), marginals (1/n, sigma)
    G2 (r x n): pivots -> keys,    cost -ZK^T/sqrt(d), marginals (sigma, 1/n)
glued into A = n G1 diag(1/sigma) G2, which is applied as G1 (diag(1/sigma) (G2 V)) in
O(n r d) time and O(n r) memory, never forming n x n.

Each plan is solved by `iters` log-domain Sinkhorn iterations (one iteration = both
marginals once). G1 ends on its query marginal and G2 on its pivot marginal, so every row
of A sums to 1 to float precision; columns sum to 1 once the iterations converge.
With `cls_tokens=k` the first k queries use softmax over all keys and the rest are
transported. Padded tokens are neither queries nor keys: n counts real tokens only.

impl selects how the plans are solved:
    "fused" (default)  one exponential per Sinkhorn iteration and an exact hand-written
                       backward (`attention_zoo.lotformer_plans`); `compiled` ("auto",
                       "on", "off") says whether its kernels go through torch.compile;
                       "graphs" compiles the whole attention instead, fullgraph, into
                       CUDA graphs (mode="reduce-overhead", one graph per shape): the
                       ~440 kernel launches of a forward and backward at N = 512 become
                       graph replays. CUDA only (refused at creation without a CUDA
                       device, and at a call on another device);
    "reference"        the zoo's first version: the log-domain solver of
                       `attention_zoo.sinkhorn`, one exponential per half-step;
    "triton"           experimental: the plans in one Triton launch, every iteration of
                       every (batch x head) slice (`attention_zoo.lotformer_triton`;
                       backward by recomputation through the fused solver); needs the
                       `triton` extra and a CUDA device, or TRITON_INTERPRET=1 on a CPU;
    "products"         not an attention: only the matrix products lotformer cannot avoid
                       (QZ^T, KZ^T, G2 V, G1 (...)) with the scores standing in for the plans,
                       so that the sweep can measure the floor the other two are held to.

FLOPs of one forward call (matrix products at 2 per multiply-add): 8·B·H·N·r·D for the
pivot scores QZ^T and KZ^T, G2 V and G1 (...) (N·r·D each), plus 4·B·H·k·N·D for k
`cls_tokens` softmax queries. The Sinkhorn iterations on the two N x r plans are
elementwise and not counted, whatever `iters` and `impl`. The backward counts 2x: every
product has two gradient products (Z is learnt).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn

from attention_zoo import lotformer_plans, lotformer_triton
from attention_zoo.base import (
    NEG,
    Attention,
    NotOnThisDevice,
    compute_dtype,
    one_of,
    positive_float,
    positive_int,
)
from attention_zoo.registry import register
from attention_zoo.sinkhorn import plan, sinkhorn_potentials
from attention_zoo.softmax import softmax_matrix

IMPLS = ("fused", "reference", "products", "triton")


def reference_plan(
    S: Tensor, tokens: Tensor | None, log_sigma: Tensor, iters: int, end_on_tokens: bool
) -> Tensor:
    """Entropic OT plan (B, H, n, r) from log-kernel S with marginals (1/n_real, sigma).

    tokens: (B, n) bool, the tokens that take part (None: all); log_sigma: (H, r).
    One iteration fixes both marginals; the last half-step fixes the token marginal if
    `end_on_tokens`, else the pivot marginal.
    """
    n = S.shape[-2]
    if tokens is None:
        real = None
        log_a = S.new_full((), -math.log(n))
    else:
        real = tokens[:, None, :, None]  # (B, 1, n, 1)
        n_real = tokens.sum(-1).clamp_min(1).to(S.dtype)  # (B,), on device: no host sync
        log_a = -torch.log(n_real)[:, None, None, None]  # (B, 1, 1, 1)
        S = S.masked_fill(~real, NEG)
    log_b = log_sigma[None, :, None, :]  # (1, H, 1, r)
    # tokens are rows: ending on tokens means starting on pivots (columns)
    f, g = sinkhorn_potentials(S, log_a, log_b, 2 * iters, not end_on_tokens, real)
    return plan(S, f, g)


def lotformer_flops(batch: int, heads: int, seq_len: int, head_dim: int, options) -> float:
    """8·B·H·N·r·D + 4·B·H·k·N·D for r pivots and k [CLS] queries (module docstring)."""
    pivots = 8.0 * batch * heads * seq_len * options["r"] * head_dim
    return pivots + 4.0 * batch * heads * options["cls_tokens"] * seq_len * head_dim


@register("lotformer", complexity="linear", doubly_stochastic=True, flops=lotformer_flops)
class LOTFormer(Attention):
    """Low-rank OT attention: queries -> r learnable pivots -> keys, O(N r d)."""

    def __init__(
        self,
        heads: int,
        head_dim: int,
        r: int = 32,
        eps: float = 1.0,
        iters: int = 5,
        cls_tokens: int = 0,
        impl: str = "fused",
        compiled: str = "auto",
    ) -> None:
        super().__init__(heads, head_dim)
        self.r = positive_int("r", r)
        self.eps = positive_float("eps", eps)
        self.iters = positive_int("iters", iters)
        if isinstance(cls_tokens, bool) or not isinstance(cls_tokens, int) or cls_tokens < 0:
            raise ValueError(f"cls_tokens must be an integer >= 0, got {cls_tokens!r}")
        self.cls_tokens = cls_tokens
        self.impl = one_of("impl", impl, IMPLS)
        self.compiled = one_of("compiled", compiled, lotformer_plans.COMPILE_MODES)
        self.timing_only = impl == "products"
        if impl == "triton" and (why := lotformer_triton.unavailable()):
            raise ValueError(f"impl='triton' cannot run here: {why}; use impl='fused'")
        if compiled == "graphs" and not torch.cuda.is_available():
            raise ValueError(
                "compiled='graphs' captures CUDA graphs and this machine has no CUDA device; "
                "use compiled='auto' (or 'on', 'off') here"
            )
        self._graphed = None  # the compiled attention, made at the first CUDA call
        self.pivots = nn.Parameter(torch.randn(heads, r, head_dim))  # Z: (H, r, D)
        self.mass_logits = nn.Parameter(torch.zeros(heads, r))  # sigma = softmax(logits)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, r={self.r}, eps={self.eps}, iters={self.iters}, "
            f"cls_tokens={self.cls_tokens}, impl={self.impl!r}, compiled={self.compiled!r}"
        )

    def transport_plans(
        self, q: Tensor, k: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The two plans and the pivot masses: G1 (B,H,n,r), G2 (B,H,r,n), sigma (H,r)."""
        mask = self._check(q, k, None, padding_mask)
        G1, G2t, log_sigma, _ = self._plans(q, k, mask)
        return G1, G2t.transpose(-2, -1), log_sigma.exp()

    def _plans(self, q: Tensor, k: Tensor, mask: Tensor | None) -> tuple[Tensor, ...]:
        """G1 (B,H,n,r), G2^T (B,H,n,r), log sigma (H,r), transported query count (B,1,1,1)."""
        B, _, N, _ = q.shape
        if self.cls_tokens >= N:
            raise ValueError(f"seq_len must exceed cls_tokens={self.cls_tokens}, got {N}")
        dt = compute_dtype(q.dtype)
        Z = self.pivots.to(dt)
        log_sigma = torch.log_softmax(self.mass_logits.to(dt), dim=-1)  # (H, r)
        scale = self.head_dim**-0.5 / self.eps
        if self.impl == "reference":
            S1 = torch.einsum("bhnd,hrd->bhnr", q.to(dt), Z).mul_(scale)  # queries -> pivots
            S2t = torch.einsum("bhnd,hrd->bhnr", k.to(dt), Z).mul_(scale)  # keys -> pivots
        else:  # scaling the (H, r, D) pivots is cheaper than the (B, H, N, r) scores
            Zt = (Z * scale).transpose(-2, -1)  # (H, D, r)
            S1, S2t = q.to(dt) @ Zt, k.to(dt) @ Zt
        queries = mask
        if self.cls_tokens:  # [CLS] queries are not transported
            queries = torch.ones(B, N, dtype=torch.bool, device=q.device) if mask is None else mask
            queries = torch.cat(
                [torch.zeros_like(queries[:, : self.cls_tokens]), queries[:, self.cls_tokens :]], 1
            )
        if self.impl == "products":
            G1, G2t = S1, S2t
        elif self.impl == "reference":
            G1 = reference_plan(S1, queries, log_sigma, self.iters, end_on_tokens=True)
            G2t = reference_plan(S2t, mask, log_sigma, self.iters, end_on_tokens=False)
        else:
            solve = (
                lotformer_triton.triton_plan
                if self.impl == "triton"
                else partial(lotformer_plans.token_pivot_plan, compiled=self.compiled)
            )
            G1 = solve(S1, queries, log_sigma, self.iters, end_on_tokens=True)
            G2t = solve(S2t, mask, log_sigma, self.iters, end_on_tokens=False)
        n_queries = N if queries is None else queries.sum(-1).to(dt)[:, None, None, None]
        return G1, G2t, log_sigma, n_queries

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        if self.compiled != "graphs":
            return self.attend_eager(q, k, v, mask)
        if q.device.type != "cuda":
            raise NotOnThisDevice(
                f"lotformer compiled='graphs' runs on a CUDA device, got {q.device.type}; "
                "use compiled='auto' there"
            )
        if self._graphed is None:  # one graph per shape, recompiled by torch for a new one
            self._graphed = torch.compile(
                self.attend_eager, fullgraph=True, mode="reduce-overhead", dynamic=False
            )
        return self._graphed(q, k, v, mask)

    def attend_eager(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """The attention as Python runs it: what compiled='graphs' compiles whole (it traces
        as one graph without breaks: tests/attention_zoo/test_lotformer_graphs.py)."""
        G1, G2t, log_sigma, n = self._plans(q, k, mask)
        weights = n * torch.exp(-log_sigma)[:, :, None]  # n diag(1/sigma): (B or 1, H, r, 1)
        if self.impl == "triton":  # both products in one launch
            w = weights[..., 0].expand(G1.shape[0], -1, -1)  # (B, H, r)
            out = lotformer_triton.triton_mix(G1, G2t, v, w).to(v.dtype)
        else:
            pivot_values = torch.einsum("bhnr,bhnd->bhrd", G2t, v.to(G1.dtype))  # G2 V: (B,H,r,D)
            out = (G1 @ (pivot_values * weights)).to(v.dtype)  # (B, H, N, D)
        if self.cls_tokens:
            c = self.cls_tokens
            cls_out = softmax_matrix(q[:, :, :c], k, mask) @ v  # (B, H, c, D)
            out = torch.cat([cls_out, out[:, :, c:]], dim=2)
        return out

    def _causal_matrix(self, q: Tensor, k: Tensor) -> Tensor:
        raise ValueError(
            "lotformer has no causal form: every query reaches every key through the shared "
            "pivots, so no mask can hide future keys, and doubly stochastic attention under a "
            "causal mask collapses to the identity (LOTFormer, Appendix F); use it in "
            "encoders, not autoregressive decoders"
        )

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        G1, G2t, log_sigma, n = self._plans(q, k, mask)
        A = n * torch.einsum("bhir,hr,bhjr->bhij", G1, torch.exp(-log_sigma), G2t)  # (B, H, N, N)
        if self.cls_tokens:
            c = self.cls_tokens
            A = torch.cat([softmax_matrix(q[:, :, :c], k, mask).to(A.dtype), A[:, :, c:]], dim=2)
        return A
