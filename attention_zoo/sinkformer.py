"""sinkformer: Sinkhorn-normalised attention (Sander et al., 2022), in the log domain.

The kernel exp(QK^T / (sqrt(d) eps)) is scaled alternately to unit row sums and unit
column sums, starting with rows: 1 iteration is exactly softmax, an odd count ends
row-stochastic. Only real tokens take part: a padded token is neither a query nor a key,
so the real block of A is doubly stochastic over the real tokens.

Two implementations of the same numbers (`impl`): "dense", the textbook one, forms the
N x N kernel (O(N^2) memory); "streaming" (attention_zoo/sinkhorn_stream.py) runs every
half-step, forward and backward, as a fused attention kernel call (O(N) memory, exact
gradients). "auto" (default) streams from `streaming_from` tokens on. The streaming
half-steps run on `kernel`: "sdpa" (default: torch's fused kernels in fp32, the Sinkhorn
potential folded into q and k as an extra dimension) or "flex" (FlexAttention, the potential
added by a score_mod, q, k, v in their own dtype: bf16 on a GPU). kernel="flex" streams at
every length; on CPU it runs forward only (FlexAttention has no CPU backward).

FLOPs, by the zoo's convention (matrix products of the algorithm only): softmax's,
4·B·H·N²·D forward and 2.5x that backward, whatever `iters` and `impl`. The Sinkhorn
half-steps are elementwise log-sum-exps over the N x N kernel and are not counted, so the
time they take shows as a lower achieved FLOP/s than flash's; the streaming
implementation recomputes QK^T in every half-step, hardware work the count leaves out.
"""

from __future__ import annotations

from torch import Tensor

from attention_zoo.base import (
    NEG,
    Attention,
    compute_dtype,
    future,
    one_of,
    positive_float,
    positive_int,
)
from attention_zoo.registry import register
from attention_zoo.sinkhorn import plan, sinkhorn_potentials
from attention_zoo.sinkhorn_stream import (
    KERNELS,
    flex_missing,
    kernel_name,
    streaming_sinkhorn_attention,
)
from attention_zoo.softmax import DENSE_BACKWARD_RATIO, dense_attention_flops

IMPLS = ("auto", "dense", "streaming")


@register(
    "sinkformer",
    complexity="quadratic",
    doubly_stochastic=True,
    flops=dense_attention_flops,
    backward_ratio=DENSE_BACKWARD_RATIO,
)
class Sinkformer(Attention):
    """Doubly stochastic attention by Sinkhorn iterations on exp(QK^T/sqrt(d)/eps)."""

    def __init__(
        self,
        heads: int,
        head_dim: int,
        iters: int = 3,
        eps: float = 1.0,
        impl: str = "auto",
        streaming_from: int = 2048,
        kernel: str = "sdpa",
    ) -> None:
        super().__init__(heads, head_dim)
        self.iters = positive_int("iters", iters)
        self.eps = positive_float("eps", eps)
        self.impl = one_of("impl", impl, IMPLS)
        self.streaming_from = positive_int("streaming_from", streaming_from)
        self.kernel = one_of("kernel", kernel, KERNELS)
        if kernel == "flex" and impl == "dense":
            raise ValueError(
                "kernel='flex' runs the streaming implementation; use impl='streaming' or "
                "'auto' with it, or kernel='sdpa' with impl='dense'"
            )
        if kernel == "flex" and (why := flex_missing()):
            raise ValueError(f"kernel='flex' cannot run: {why}; use kernel='sdpa'")
        # what the last forward ran: "dense", or "streaming/<the fused kernel of each step>"
        self.last_backend: str | None = None

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, iters={self.iters}, eps={self.eps}, impl={self.impl}, "
            f"streaming_from={self.streaming_from}, kernel={self.kernel}"
        )

    def streams(self, seq_len: int) -> bool:
        """Whether a sequence of `seq_len` tokens takes the O(N)-memory implementation."""
        return (
            self.impl == "streaming"
            or self.kernel == "flex"
            or (self.impl == "auto" and seq_len >= self.streaming_from)
        )

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        if self.streams(q.shape[-2]):
            self.last_backend = f"streaming/{kernel_name(q.device, self.kernel)}"
            # sdpa: the folded kernels in fp32; flex: q, k, v as they come (bf16 on a GPU)
            dt = q.dtype if self.kernel == "flex" else compute_dtype(q.dtype)
            scale = self.head_dim**-0.5 / self.eps
            out = streaming_sinkhorn_attention(
                q.to(dt), k.to(dt), v.to(dt), mask, self.iters, scale, self.kernel
            )
            return out.to(v.dtype)
        self.last_backend = "dense"
        A = self._matrix(q, k, mask)  # (B, H, N, N), float32
        return (A @ v.to(A.dtype)).to(v.dtype)

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None, causal: bool = False) -> Tensor:
        dt = compute_dtype(q.dtype)
        scale = self.head_dim**-0.5 / self.eps
        S = (q.to(dt) @ k.to(dt).transpose(-2, -1)).mul_(scale)  # (B, H, N, N) log-kernel
        rows = cols = None
        if mask is not None:
            rows, cols = mask[:, None, :, None], mask[:, None, None, :]
            S = S.masked_fill(~(rows & cols), NEG)
        if causal:  # the only doubly stochastic lower-triangular matrix is the identity
            S = S.masked_fill(future(S.shape[-1], S.device), NEG)
        zero = S.new_zeros(())  # unit row and column sums: log-marginals 0
        f, g = sinkhorn_potentials(S, zero, zero, self.iters, True, rows, cols)
        return plan(S, f, g)

    def _causal_matrix(self, q: Tensor, k: Tensor) -> Tensor:
        """Sinkhorn on the kernel restricted to keys j <= i (dense at every N): as the
        iterations go on it tends to the identity (LOTFormer, Appendix F)."""
        return self._matrix(q, k, None, causal=True)
