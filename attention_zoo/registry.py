"""The zoo's registry: one decorator per mechanism, `create` merges defaults with overrides."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attention_zoo.base import Attention
from attention_zoo.plugins import BUILT_IN, Catalogue

COMPLEXITIES = ("linear", "quadratic")
PASSES = ("forward", "forward_backward")

# (batch, heads, seq_len, head_dim, options) -> floating-point operations of one forward call
FlopCount = Callable[[int, int, int, int, dict[str, Any]], float]


@dataclass(frozen=True)
class MechanismInfo:
    """What a mechanism is: cost in N, whether its matrix is doubly stochastic, its options."""

    name: str
    complexity: str  # "linear" | "quadratic" in the sequence length N
    doubly_stochastic: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    forward_flops: FlopCount | None = None  # None: the mechanism declares no count
    backward_ratio: float = 2.0  # backward FLOPs / forward FLOPs
    source: str = BUILT_IN  # built-in, the plugin's distribution and version, or its file

    def flops(
        self, batch: int, heads: int, seq_len: int, head_dim: int, pass_: str = "forward", **options
    ) -> float | None:
        """FLOPs of one call (`pass_` forward or forward_backward) with these options merged
        over the defaults, by the formula in the mechanism's docstring; None if undeclared.

        Convention (every mechanism): matrix products at 2 FLOPs per multiply-add, counted
        as the algorithm needs them with no padding; elementwise work (exponentials,
        normalisations, Sinkhorn's log-sum-exps) is not counted, as FlashAttention's
        benchmarks do not count softmax's."""
        if pass_ not in PASSES:
            raise ValueError(f"pass_ must be one of {PASSES}, got {pass_!r}")
        if self.forward_flops is None:
            return None
        forward = float(
            self.forward_flops(batch, heads, seq_len, head_dim, {**self.defaults, **options})
        )
        return forward * (1.0 + self.backward_ratio) if pass_ == "forward_backward" else forward


# built-in mechanisms, then the entry points of `attention_zoo.mechanisms` and `--import`s
CATALOGUE = Catalogue("attention", "attention_zoo.mechanisms", "attention_zoo")


def register(
    name: str,
    *,
    complexity: str,
    doubly_stochastic: bool = False,
    flops: FlopCount | None = None,
    backward_ratio: float = 2.0,
):
    """Class decorator that adds a mechanism to the zoo under `name`; `flops(B, H, N, D,
    options)` is its forward FLOP count, and `backward_ratio` the backward's multiple of it.
    A name another class holds already is a ValueError naming both sources."""
    if complexity not in COMPLEXITIES:
        raise ValueError(f"complexity must be one of {COMPLEXITIES}, got {complexity!r}")

    def decorate(cls: type[Attention]) -> type[Attention]:
        if not (isinstance(cls, type) and issubclass(cls, Attention)):
            raise ValueError(f"{cls!r} must subclass attention_zoo.Attention to be registered")
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {
            p.name: p.default
            for p in params
            if p.name not in ("self", "heads", "head_dim") and p.default is not p.empty
        }
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        CATALOGUE.add(
            name,
            cls,
            lambda source: MechanismInfo(
                name,
                complexity,
                doubly_stochastic,
                defaults,
                summary,
                flops,
                backward_ratio,
                source,
            ),
        )
        cls.name = name
        return cls

    return decorate


def names() -> list[str]:
    """Names of every registered mechanism, installed plugins included, sorted."""
    return CATALOGUE.names()


def _lookup(name: str) -> tuple[type[Attention], MechanismInfo]:
    return CATALOGUE.get(name)


def info(name: str) -> MechanismInfo:
    """Complexity, doubly-stochastic flag, default options, a one-line summary and the
    source (built-in, a plugin's distribution, a file) of `name`."""
    return _lookup(name)[1]


def create(name: str, *, heads: int, head_dim: int, **options: Any) -> Attention:
    """Build mechanism `name` for `heads` heads of size `head_dim`; options override defaults."""
    cls, meta = _lookup(name)
    unknown = sorted(set(options) - set(meta.defaults))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for attention {name!r}; "
            f"expected some of {sorted(meta.defaults)}"
        )
    return cls(heads=heads, head_dim=head_dim, **{**meta.defaults, **options})
