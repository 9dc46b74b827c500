"""performer: FAVOR+ (Choromanski et al., 2021), positive orthogonal random features.

softmax(QK^T/sqrt(d)) is approximated by phi(Q) phi(K)^T with
    phi(x) = m^-1/2 (exp(w_i^T x' - |x'|^2 / 2 - c) + stabilizer),  x' = d^-1/4 x,
where the rows w_i are orthogonal within blocks of d and have chi-distributed norms. As in
the authors' code, c is the largest w_i^T x' (per query; per head over the real keys) and
the stabilizer is 1e-4. The output D^-1 phi(Q) (phi(K)^T V) costs O(N m d).
Each head draws its own features from `seed`; with `redraw_interval > 0` they are redrawn
every that many forward calls in training mode.

FLOPs of one forward call (matrix products at 2 per multiply-add, m = nb_features):
8·B·H·N·m·D + 2·B·H·N·m, from the feature maps' projections x W^T for queries and keys
(N·m·D each), phi(K)^T V and phi(Q) (phi(K)^T V) (N·m·D each) and the normaliser
phi(Q) k_sum (N·m); the exponentials are not counted. The backward counts 1.5x that: the
projection W is a buffer, so x W^T has one gradient product, the other two have two each.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attention_zoo.base import Attention, compute_dtype, positive_float, positive_int
from attention_zoo.registry import register


def orthogonal_gaussian_features(
    heads: int, nb_features: int, dim: int, generator: torch.Generator
) -> Tensor:
    """(heads, m, d) rows orthogonal in blocks of d, norms distributed as Gaussian rows'."""
    per_head = []
    for _ in range(heads):
        blocks = []
        for _ in range(-(-nb_features // dim)):  # ceil(m / d) blocks of d orthonormal rows
            gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
            ortho, _ = torch.linalg.qr(gaussian)
            blocks.append(ortho.T)
        rows = torch.cat(blocks)[:nb_features]  # (m, d)
        norms = torch.randn(nb_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)
        per_head.append(rows * norms[:, None])
    return torch.stack(per_head).float()


def performer_flops(batch: int, heads: int, seq_len: int, head_dim: int, options) -> float:
    """8·B·H·N·m·D + 2·B·H·N·m for m = nb_features (module docstring)."""
    m = options["nb_features"]
    return 2.0 * batch * heads * seq_len * m * (4 * head_dim + 1)


@register("performer", complexity="linear", flops=performer_flops, backward_ratio=1.5)
class Performer(Attention):
    """FAVOR+ linear attention with positive orthogonal random features, O(N m d)."""

    def __init__(
        self,
        heads: int,
        head_dim: int,
        nb_features: int = 256,
        seed: int = 0,
        redraw_interval: int = 0,
        stabilizer: float = 1e-4,
    ) -> None:
        super().__init__(heads, head_dim)
        self.nb_features = positive_int("nb_features", nb_features)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        if isinstance(redraw_interval, bool) or not isinstance(redraw_interval, int):
            raise ValueError(f"redraw_interval must be an integer >= 0, got {redraw_interval!r}")
        if redraw_interval < 0:
            raise ValueError(f"redraw_interval must be an integer >= 0, got {redraw_interval!r}")
        self.redraw_interval = redraw_interval
        self.stabilizer = positive_float("stabilizer", stabilizer)
        self.draws = 0  # how many times the features were redrawn
        self.calls = 0  # training-mode forward calls, for the redraw schedule
        self.register_buffer("projection", self._draw())  # (H, m, D)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, nb_features={self.nb_features}, seed={self.seed}, "
            f"redraw_interval={self.redraw_interval}"
        )

    def _draw(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.draws)
        return orthogonal_gaussian_features(self.heads, self.nb_features, self.head_dim, generator)

    @torch.no_grad()
    def redraw(self) -> None:
        """Draw fresh features (deterministic in seed and the number of draws so far)."""
        self.draws += 1
        # a new tensor, not an in-place copy: a graph awaiting backward may hold the old one
        self.projection = self._draw().to(self.projection.device)

    def exp_features(self, x: Tensor, mask: Tensor | None, is_query: bool) -> Tensor:
        """phi(x) less its stabilizer: (B, H, N, D) -> (B, H, N, m); zero for padded keys."""
        dt = compute_dtype(x.dtype)
        x = x.to(dt) * self.head_dim**-0.25
        proj = torch.einsum("bhnd,hmd->bhnm", x, self.projection.to(dt))  # (B, H, N, m)
        with torch.no_grad():  # c only keeps exp() in range: no gradient through it
            if is_query:
                c = proj.amax(dim=-1, keepdim=True)  # (B, H, N, 1)
            else:
                real = (
                    proj if mask is None else proj.masked_fill(~mask[:, None, :, None], -torch.inf)
                )
                c = real.amax(dim=(-2, -1), keepdim=True)  # (B, H, 1, 1), over real keys only
                c = torch.nan_to_num(c, neginf=0.0)  # a sequence with no real token
        shift = x.square().sum(-1, keepdim=True) / 2 + c - 0.5 * math.log(self.nb_features)
        if not is_query and mask is not None:
            shift = torch.where(mask[:, None, :, None], shift, torch.inf)  # exp(-inf) = 0
        # in place: (N, m) allocations, not arithmetic, dominate a CPU's time at long N
        return proj.sub_(shift).exp_()  # m^-1/2 exp(w^T x' - |x'|^2/2 - c)

    def features(self, x: Tensor, mask: Tensor | None, is_query: bool) -> Tensor:
        """phi(x): (B, H, N, D) -> (B, H, N, m); padded keys get zero features."""
        phi = self.exp_features(x, mask, is_query) + self._stabilizer
        return phi if is_query or mask is None else phi * mask[:, None, :, None]

    @property
    def _stabilizer(self) -> float:
        return self.stabilizer * self.nb_features**-0.5

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        if self.training and self.redraw_interval:
            if self.calls and self.calls % self.redraw_interval == 0:
                self.redraw()
            self.calls += 1
        # phi = e + s with s the stabilizer (0 on padded keys): the s terms are applied to
        # the small (m, D) and (m,) contractions instead of to (N, m) features
        e_q, e_k = self.exp_features(q, mask, True), self.exp_features(k, mask, False)
        s, v = self._stabilizer, v.to(e_k.dtype)
        real = 1.0 if mask is None else mask[:, None, :, None].to(v.dtype)  # (B, 1, N, 1)
        kv = torch.einsum("bhnm,bhnd->bhmd", e_k, v) + s * (v * real).sum(2, keepdim=True)
        n_keys = v.shape[2] if mask is None else mask.sum(-1).to(v.dtype)[:, None, None]
        k_sum = e_k.sum(dim=2) + s * n_keys  # (B, H, m)
        out = torch.einsum("bhnm,bhmd->bhnd", e_q, kv).add_(s * kv.sum(2, keepdim=True))
        normaliser = torch.einsum("bhnm,bhm->bhn", e_q, k_sum) + s * k_sum.sum(-1, keepdim=True)
        normaliser = normaliser.clamp_min(torch.finfo(normaliser.dtype).tiny)  # no real key
        return (out / normaliser[..., None]).to(q.dtype)

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        phi_q, phi_k = self.features(q, mask, True), self.features(k, mask, False)
        scores = phi_q @ phi_k.transpose(-2, -1)  # (B, H, N, N)
        return scores / scores.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
