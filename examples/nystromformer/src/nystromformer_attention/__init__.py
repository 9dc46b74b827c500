"""Nystromformer (Xiong et al., AAAI 2021) as an attention_zoo plugin.

softmax(Q K^T / sqrt(d)) V is approximated through m landmarks:
    F = softmax(Q K~^T / sqrt(d))      (N x m)
    A = softmax(Q~ K~^T / sqrt(d))     (m x m)
    B = softmax(Q~ K^T / sqrt(d))      (m x N, padded keys masked)
    out = F A+ (B V)
where the landmarks Q~, K~ are segment means of the real tokens (segment j of a row with L
real tokens holds the tokens p with floor(p m / L) = j, as the paper's means of
consecutive N/m blocks when L is a multiple of m; a segment with no token is left out) and
A+ is the Moore-Penrose pseudo-inverse, by the paper's iteration
    Z0 = A^T / (||A||_1 ||A||_inf),  Z <- Z (13 I - A Z (15 I - A Z (7 I - A Z))) / 4
(`pinv_iters` times, 6 in the paper) or exactly (`pinv="exact"`, torch.linalg.pinv).
With `conv_kernel` > 0 a depthwise convolution of V along the sequence (one filter per
head, the paper's skip connection) is added to the output. Cost O(N m d + m^3).

Registered as `nystromformer` when installed (entry point `attention_zoo.mechanisms`) or
loaded with `--import` / `attention_zoo.import_plugin`.

FLOPs of one forward call, m landmarks: 2·B·H·D·(2·N·m [landmark means] + 2·N·m [Q K~^T,
Q~ K^T] + m² [Q~ K~^T] + 2·N·m [B V, F (Z B V)] + m²) + B·H·8·iters·m³ [the pseudo-inverse:
four m x m products an iteration] (+ 2·B·H·N·D·kernel for the convolution).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attention_zoo import Attention, register
from attention_zoo.base import compute_dtype, one_of, positive_int


def nystromformer_flops(batch: int, heads: int, seq_len: int, head_dim: int, options) -> float:
    """The count in the module docstring."""
    n, m, d = seq_len, min(options["landmarks"], seq_len), head_dim
    products = 2.0 * d * (6 * n * m + 2 * m * m) + 8.0 * options["pinv_iters"] * m**3
    return batch * heads * (products + 2.0 * n * d * options["conv_kernel"])


def segments(mask: Tensor, landmarks: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """(B, m, N) averaging weights of each landmark's segment over the real tokens, and the
    (B, m) bool of landmarks whose segment holds a token."""
    lengths = mask.sum(-1)  # (B,)
    position = mask.long().cumsum(-1) - 1  # index among the real tokens, (B, N)
    segment = position * landmarks // lengths.clamp_min(1)[:, None]  # in 0..m-1 for real
    member = segment[:, None, :] == torch.arange(landmarks, device=mask.device)[None, :, None]
    member = member & mask[:, None, :]
    counts = member.sum(-1)  # (B, m)
    weights = member.to(dtype) / counts.clamp_min(1)[..., None].to(dtype)
    return weights, counts > 0


def iterative_pinv(a: Tensor, iters: int) -> Tensor:
    """The paper's Moore-Penrose iteration for (..., m, m) `a` (non-negative rows)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    col = a.abs().sum(-2).amax(-1)  # ||a||_1
    row = a.abs().sum(-1).amax(-1)  # ||a||_inf
    z = a.transpose(-2, -1) / (col * row)[..., None, None]
    for _ in range(iters):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


def masked_softmax(scores: Tensor, keep: Tensor | None) -> Tensor:
    """softmax over the last dim where `keep` (broadcast) is True; a row with none kept is
    uniform (finite), not NaN."""
    if keep is not None:
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


@register("nystromformer", complexity="linear", flops=nystromformer_flops)
class Nystromformer(Attention):
    """Nystrom approximation of softmax attention through m segment-mean landmarks."""

    def __init__(
        self,
        heads: int,
        head_dim: int,
        landmarks: int = 64,
        pinv_iters: int = 6,
        pinv: str = "iterative",
        conv_kernel: int = 0,
    ) -> None:
        super().__init__(heads, head_dim)
        self.landmarks = positive_int("landmarks", landmarks)
        self.pinv_iters = positive_int("pinv_iters", pinv_iters)
        self.pinv = one_of("pinv", pinv, ("iterative", "exact"))
        if isinstance(conv_kernel, bool) or not isinstance(conv_kernel, int) or conv_kernel < 0:
            raise ValueError(f"conv_kernel must be an integer >= 0, got {conv_kernel!r}")
        if conv_kernel and conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (centred), got {conv_kernel}")
        self.conv_kernel = conv_kernel
        self.conv = None
        if conv_kernel:  # depthwise over the sequence, one filter per head (as the paper's)
            self.conv = nn.Conv2d(
                heads,
                heads,
                (conv_kernel, 1),
                padding=(conv_kernel // 2, 0),
                groups=heads,
                bias=False,
            )

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, landmarks={self.landmarks}, pinv={self.pinv}, "
            f"pinv_iters={self.pinv_iters}, conv_kernel={self.conv_kernel}"
        )

    def _kernels(self, q: Tensor, k: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """F (B, H, N, m), Z = A+ (B, H, m, m) and B (B, H, m, N), in the compute dtype."""
        dtype = compute_dtype(q.dtype)
        q, k = q.to(dtype), k.to(dtype)
        batch, _, n, d = q.shape
        real = mask if mask is not None else torch.ones(batch, n, dtype=torch.bool, device=q.device)
        weights, present = segments(real, self.landmarks, dtype)  # (B, m, N), (B, m)
        q_land = weights[:, None] @ q  # (B, H, m, D)
        k_land = weights[:, None] @ k
        scale = d**-0.5
        f = masked_softmax(q @ k_land.transpose(-2, -1) * scale, present[:, None, None, :])
        a = masked_softmax(q_land @ k_land.transpose(-2, -1) * scale, present[:, None, None, :])
        # a landmark with no segment gets an identity row and column: A+ leaves it out
        absent = ~present[:, None, :, None]
        eye = torch.eye(a.shape[-1], dtype=dtype, device=q.device)
        a = torch.where(absent | ~present[:, None, None, :], eye, a)
        z = torch.linalg.pinv(a) if self.pinv == "exact" else iterative_pinv(a, self.pinv_iters)
        b = masked_softmax(q_land @ k.transpose(-2, -1) * scale, real[:, None, None, :])
        return f, z, b

    def _conv_out(self, v: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            v = v.masked_fill(~mask[:, None, :, None], 0.0)
        return self.conv(v.to(self.conv.weight.dtype)).to(v.dtype)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        f, z, b = self._kernels(q, k, mask)
        out = (f @ (z @ (b @ v.to(f.dtype)))).to(v.dtype)
        return out if self.conv is None else out + self._conv_out(v, mask)

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        """F A+ B, plus the convolution as a banded matrix when there is one."""
        f, z, b = self._kernels(q, k, mask)
        dense = (f @ z @ b).to(q.dtype)
        if self.conv is None:
            return dense
        n, half = q.shape[2], self.conv_kernel // 2
        taps = self.conv.weight[:, 0, :, 0].to(q.dtype)  # (H, kernel)
        offset = torch.arange(n)[None, :] - torch.arange(n)[:, None] + half  # j - i + half
        inside = ((offset >= 0) & (offset < self.conv_kernel)).to(q.device)
        band = taps[:, offset.clamp(0, self.conv_kernel - 1).to(q.device)] * inside  # (H, N, N)
        if mask is not None:
            band = band[None] * mask[:, None, None, :].to(q.dtype)
        return dense + band
