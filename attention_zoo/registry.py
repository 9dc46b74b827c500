"""The zoo's registry: one decorator per mechanism, `create` merges defaults with overrides."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

from attention_zoo.base import Attention

COMPLEXITIES = ("linear", "quadratic")


@dataclass(frozen=True)
class MechanismInfo:
    """What a mechanism is: cost in N, whether its matrix is doubly stochastic, its options."""

    name: str
    complexity: str  # "linear" | "quadratic" in the sequence length N
    doubly_stochastic: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


_REGISTRY: dict[str, tuple[type[Attention], MechanismInfo]] = {}


def register(name: str, *, complexity: str, doubly_stochastic: bool = False):
    """Class decorator that adds a mechanism to the zoo under `name`."""
    if complexity not in COMPLEXITIES:
        raise ValueError(f"complexity must be one of {COMPLEXITIES}, got {complexity!r}")

    def decorate(cls: type[Attention]) -> type[Attention]:
        if not (isinstance(cls, type) and issubclass(cls, Attention)):
            raise ValueError(f"{cls!r} must subclass attention_zoo.Attention to be registered")
        if name in _REGISTRY:
            warnings.warn(f"attention {name!r} registered twice; the later one wins", stacklevel=2)
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {
            p.name: p.default
            for p in params
            if p.name not in ("self", "heads", "head_dim") and p.default is not p.empty
        }
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        cls.name = name
        _REGISTRY[name] = (
            cls,
            MechanismInfo(name, complexity, doubly_stochastic, defaults, summary),
        )
        return cls

    return decorate


def names() -> list[str]:
    """Names of every registered mechanism, sorted."""
    return sorted(_REGISTRY)


def _lookup(name: str) -> tuple[type[Attention], MechanismInfo]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention {name!r}; expected one of {names()}")
    return _REGISTRY[name]


def info(name: str) -> MechanismInfo:
    """Complexity, doubly-stochastic flag, default options and a one-line summary of `name`."""
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
