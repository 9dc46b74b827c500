"""What an attention matrix looks like, in a few numbers: how far from doubly stochastic,
how peaked, how low its rank.

    A = attn.attention_matrix(q, k, padding_mask)        # (B, H, N, N)
    summary = diagnostics.summarise(A, padding_mask)     # a Summary of floats

Every number is taken over real tokens only (a padded token is neither a query nor a key),
so a mechanism that gives padded keys no mass is not flattered or penalised by the padding:
- `colsum_dev`: mean over real keys of |sum over real queries of A[:, j] - 1|, averaged
  over the batch and the heads (0 for a doubly stochastic matrix; for a row-stochastic
  one over n real tokens the column sums average exactly 1, so this is their spread);
- `rowsum_dev`: the same for the row sums of real queries (0 for any row-stochastic one);
- `entropy`: mean over real queries of -sum_j A_ij log A_ij, in nats (log n is uniform);
- `rank`: mean numerical rank of each (batch, head)'s real block: singular values (in
  float64) above RANK_RTOL x the largest; `rank_max` the largest of them;
- `colsum_quantiles`: the QUANTILES of all the real column sums pooled, for a histogram's
  worth of their distribution (Sinkformers, Figure 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

# a singular value counts toward the rank when above this fraction of the largest: well
# above float32's rounding of a 256 x 256 product (~256 x 6e-8 = 1.5e-5), so the rank of an
# exactly rank-r matrix computed in float32 reads r, and well below what a trained head's
# spectrum puts on its real directions
RANK_RTOL = 1e-4
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Summary:
    """One attention matrix's (or a layer's batch of them) numbers: module docstring."""

    colsum_dev: float
    rowsum_dev: float
    entropy: float
    rank: float
    rank_max: int
    colsum_quantiles: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def _real_blocks(A: Tensor, padding_mask: Tensor | None) -> list[Tensor]:
    """Each batch element's (H, n, n) block over its n real tokens."""
    if padding_mask is None:
        return list(A)
    blocks = []
    for a, real in zip(A, padding_mask, strict=True):
        idx = real.nonzero().flatten()
        blocks.append(a.index_select(1, idx).index_select(2, idx))
    return blocks


def summarise(A: Tensor, padding_mask: Tensor | None = None) -> Summary:
    """The numbers of the module docstring for a (B, H, N, N) attention matrix whose rows are
    queries; `padding_mask` (B, N) bool, True = real token. Batch elements without real
    tokens are left out; a ValueError if none has any."""
    if A.dim() != 4 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be (batch, heads, N, N), got shape {tuple(A.shape)}")
    blocks = [b.double() for b in _real_blocks(A.detach(), padding_mask) if b.shape[-1]]
    if not blocks:
        raise ValueError("no real tokens: the padding mask is False everywhere")
    cols = torch.cat([b.sum(-2).flatten() for b in blocks])
    rows = torch.cat([b.sum(-1).flatten() for b in blocks])
    plogp = [torch.where(b > 0, b * b.clamp_min(1e-300).log(), 0.0).sum(-1) for b in blocks]
    entropy = -torch.cat([p.flatten() for p in plogp])
    ranks = []
    for b in blocks:
        s = torch.linalg.svdvals(b)  # (H, n), descending
        ranks += (s > RANK_RTOL * s[:, :1]).sum(-1).tolist()
    q = torch.quantile(cols, torch.tensor(QUANTILES, dtype=cols.dtype))
    return Summary(
        colsum_dev=float((cols - 1).abs().mean()),
        rowsum_dev=float((rows - 1).abs().mean()),
        entropy=float(entropy.mean()),
        rank=float(sum(ranks) / len(ranks)),
        rank_max=int(max(ranks)),
        colsum_quantiles=tuple(float(x) for x in q),
    )
