"""The one interface every mechanism implements, and the input checks they share.

Shapes: q, k, v are (B, H, N, D); padding_mask is (B, N) bool with True = real token.
Outputs at padded positions are zero for every mechanism, and so are the rows of
padded queries in `attention_matrix`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Fill value for scores of padded pairs in log-domain math: exp() of it is exactly 0 in
# float32/float64, yet it stays finite after adding potentials, so no inf - inf = NaN appears.
NEG = -1e30


def future(seq_len: int, device: torch.device) -> Tensor:
    """(N, N) bool, True where key j lies after query i: what a causal mask hides."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).triu(1)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype that accumulations run in: float32, or float64 for float64 inputs."""
    return torch.promote_types(dtype, torch.float32)


def positive_int(name: str, value: object) -> int:
    """`value` if it is an int >= 1, else a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def positive_float(name: str, value: object) -> float:
    """`value` as a float if it is a real number > 0, else a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def one_of(name: str, value: object, choices: tuple) -> object:
    """`value` if it is among `choices`, else a ValueError naming the option and the choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


class NotOnThisDevice(NotImplementedError):
    """A variant that cannot do what was asked on this device (a backend's own limit, such as
    FlexAttention's missing backward on CPU): one line saying why and what to use instead.
    The conformance check reports the property as skipped with that line, not failed."""


class Attention(nn.Module):
    """Base class of the zoo: checks inputs, zeroes padded positions, defines the API."""

    name: str = "attention"  # set by @register
    # True for an option that runs only a mechanism's unavoidable operations (a floor for
    # the sweep to time), not an attention: training runners refuse it
    timing_only: bool = False

    def __init__(self, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = positive_int("heads", heads)
        self.head_dim = positive_int("head_dim", head_dim)

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, padding_mask: Tensor | None = None
    ) -> Tensor:
        """Attend: (B, H, N, D) x3 -> (B, H, N, D)."""
        mask = self._check(q, k, v, padding_mask)
        out = self._attend(q, k, v, mask)
        return out if mask is None else out.masked_fill(~mask[:, None, :, None], 0.0)

    def attention_matrix(self, q: Tensor, k: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """The dense (B, H, N, N) matrix this mechanism applies to v. Small N only."""
        mask = self._check(q, k, None, padding_mask)
        A = self._matrix(q, k, mask)
        return A if mask is None else A.masked_fill(~mask[:, None, :, None], 0.0)

    def causal_matrix(self, q: Tensor, k: Tensor) -> Tensor:
        """The dense (B, H, N, N) matrix under a causal mask (query i sees keys j <= i), for
        a mechanism that defines one; NotImplementedError for one that does not, ValueError
        for one that cannot have one. Small N only."""
        self._check(q, k, None, None)
        return self._causal_matrix(q, k)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _causal_matrix(self, q: Tensor, k: Tensor) -> Tensor:
        raise NotImplementedError(f"{self.name} defines no causal form")

    def _matrix(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"heads={self.heads}, head_dim={self.head_dim}"

    def _check(self, q: Tensor, k: Tensor, v: Tensor | None, mask: Tensor | None) -> Tensor | None:
        expected = f"(batch, heads={self.heads}, seq_len, head_dim={self.head_dim})"
        named = {"q": q, "k": k} if v is None else {"q": q, "k": k, "v": v}
        for label, t in named.items():
            if not isinstance(t, Tensor):
                raise ValueError(
                    f"{label} must be a torch.Tensor of shape {expected}, got {type(t)}"
                )
            if t.dim() != 4:
                raise ValueError(f"{label} must have 4 dims {expected}, got shape {tuple(t.shape)}")
            if not t.is_floating_point():
                raise ValueError(f"{label} must be a floating-point tensor, got {t.dtype}")
        if q.shape[1] != self.heads or q.shape[3] != self.head_dim:
            raise ValueError(f"q must have shape {expected}, got {tuple(q.shape)}")
        for label, t in named.items():
            if t.shape != q.shape:
                raise ValueError(
                    f"{label} must have the same shape as q {tuple(q.shape)}, got {tuple(t.shape)}"
                )
            if t.dtype != q.dtype or t.device != q.device:
                raise ValueError(
                    f"{label} must have q's dtype and device ({q.dtype}, {q.device}), "
                    f"got ({t.dtype}, {t.device})"
                )
        if mask is None:
            return None
        batch, _, seq_len, _ = q.shape
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask)
            raise ValueError(f"padding_mask must be a bool tensor (True = real token), got {got}")
        if mask.shape != (batch, seq_len):
            raise ValueError(
                f"padding_mask must have shape (batch, seq_len) = ({batch}, {seq_len}), "
                f"got {tuple(mask.shape)}"
            )
        return mask.to(q.device)
