"""The zoo's contract as a check any mechanism can run before it spends GPU hours.

    python -m attention_zoo.check softmax lotformer           # built-in mechanisms
    python -m attention_zoo.check nystromformer --import my_attention.py
    python -m attention_zoo.check lotformer --option impl=reference

One line per property: PASS / FAIL / SKIP with the figure it measured; exit 1 naming each
failure. From a test suite: `attention_zoo.testing.assert_conforms(name)`. The zoo's own
contract tests (tests/attention_zoo/test_contract.py) run these same properties, so the
contract has one definition:

- dtypes: float32, float64, bfloat16 and float16 where supported (an error there is
  "unsupported", not a failure) come back in their dtype and shape, close to float64;
- float64: float64 inputs are computed in float64 (two central differences of the
  output, at steps h and 2h, agree far below float32's resolution);
- padding invariance: junk in padded positions changes no real output, padded outputs are 0;
- padded = unpadded: a padded sequence gives what the sequence alone gives;
- extreme scores: q and k x10 (scores x100): outputs and gradients finite;
- empty sequence: a row with no real token gives zeros and finite gradients;
- no host sync: forward calls no .item(), .tolist(), bool(), .cpu() ...;
- malformed inputs: each is a ValueError;
- matrix x v: `attention_matrix(q, k) @ v` equals the forward output (if it has one);
- doubly stochastic (if claimed): rows of the matrix sum to 1, and its column sums stray
  from 1 at most a fifth as far as softmax's on the same q, k (a few Sinkhorn iterations
  make a matrix nearly, not exactly, doubly stochastic);
- linear memory (if claimed): the forward's peak memory grows at most 8x from N = 1024 to
  4096 (linear: 4x; quadratic: 16x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attention_zoo.base import NotOnThisDevice
from attention_zoo.memory import call_peak
from attention_zoo.options import parse_value
from attention_zoo.registry import MechanismInfo, create, info, names

HEADS, HEAD_DIM = 2, 16
SYNC_METHODS = ("item", "tolist", "__bool__", "__int__", "__float__", "cpu", "numpy")


@dataclass(frozen=True)
class Result:
    """One property's verdict: passed, failed or skipped (does not apply), with its figure."""

    name: str
    status: str  # "pass" | "fail" | "skip"
    figure: str

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def line(self) -> str:
        return f"{self.status.upper():<5} {self.name:<20} {self.figure}"


class Subject:
    """The mechanism under check: builds it (seeded) and makes its inputs on one device."""

    def __init__(self, name: str, options: dict, device: torch.device) -> None:
        self.name, self.options, self.device = name, dict(options), device
        self.info: MechanismInfo = info(name)

    def build(self, dtype: torch.dtype = torch.float32):
        torch.manual_seed(0)
        attn = create(self.name, heads=HEADS, head_dim=HEAD_DIM, **self.options)
        return attn.to(device=self.device, dtype=dtype)

    def qkv(self, batch=2, seq_len=48, seed=0, dtype=torch.float32, scale=1.0):
        g = torch.Generator().manual_seed(seed)
        shape = (batch, HEADS, seq_len, HEAD_DIM)
        return tuple(
            (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(self.device, dtype)
            for _ in range(3)
        )

    def mask(self, seq_len: int, *lengths: int) -> Tensor:
        """(B, N) bool, row b with its first lengths[b] tokens real."""
        return (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).to(self.device)


def _max(t: Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def _within(name: str, value: float, limit: float, what: str = "max |diff|") -> Result:
    ok = value <= limit  # NaN fails
    return Result(name, "pass" if ok else "fail", f"{what} {value:.1e} (limit {limit:.0e})")


def dtypes(s: Subject) -> Result:
    q, k, v = s.qkv(seq_len=32)
    reference = s.build(torch.float64)(q.double(), k.double(), v.double())
    limits = {torch.float32: 1e-4, torch.float64: 1e-10, torch.bfloat16: 5e-2, torch.float16: 1e-2}
    shown, unsupported = [], []
    for dtype, limit in limits.items():
        try:
            out = s.build(torch.float64 if dtype == torch.float64 else torch.float32)(
                q.to(dtype), k.to(dtype), v.to(dtype)
            )
        except (RuntimeError, TypeError, NotImplementedError):
            unsupported.append(str(dtype).removeprefix("torch."))
            continue
        label = str(dtype).removeprefix("torch.")
        if out.dtype != dtype or out.shape != v.shape:
            return Result("dtypes", "fail", f"{label} in, {out.dtype} {tuple(out.shape)} out")
        err = _max(out.double() - reference)
        if not err <= limit:
            return Result("dtypes", "fail", f"{label}: max |diff| to float64 {err:.1e} > {limit}")
        shown.append(f"{label} {err:.0e}")
    if "float32" in unsupported or "float64" in unsupported:
        return Result("dtypes", "fail", f"float32 and float64 must run; failed: {unsupported}")
    extra = f"; unsupported: {', '.join(unsupported)}" if unsupported else ""
    return Result("dtypes", "pass", "max |diff| to float64: " + ", ".join(shown) + extra)


def float64(s: Subject) -> Result:
    """Computed in float64: f(q + h d) - f(q - h d) over 2h, at h and 2h, agree to ~1e-10
    relative in float64 (rounding ~1e-16 / h); any float32 step inside makes them differ by
    ~1e-2 (float32's 6e-8 over h = 1e-6)."""
    attn = s.build(torch.float64)
    q, k, v = (t.double() for t in s.qkv(seq_len=32, seed=1))
    d = torch.randn(q.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = d.to(s.device)

    def slope(h: float) -> Tensor:
        with torch.no_grad():
            return (attn(q + h * d, k, v) - attn(q - h * d, k, v)) / (2 * h)

    g1, g2 = slope(1e-6), slope(2e-6)
    rel = _max(g1 - g2) / max(_max(g1), 1e-300)
    return _within("float64", rel, 1e-6, "derivative at h vs 2h, relative")


def padding_invariance(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(seq_len=48, seed=31)
    mask = s.mask(48, 30, 41)
    with torch.no_grad():
        out = attn(q, k, v, padding_mask=mask)
        pad = ~mask[:, None, :, None]
        junk = [torch.where(pad, 1e3 * torch.randn_like(t), t) for t in (q, k, v)]
        out_junk = attn(*junk, padding_mask=mask)
    if not torch.isfinite(out_junk).all():
        return Result("padding invariance", "fail", "junk in padded positions gives NaN/inf")
    padded = _max(out.masked_select(pad))
    if padded != 0.0:
        return Result("padding invariance", "fail", f"padded outputs not zero: max {padded:.1e}")
    return _within("padding invariance", _max(out - out_junk), 1e-6, "real outputs moved")


def padded_equals_unpadded(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(batch=1, seq_len=50, seed=32)
    with torch.no_grad():
        padded = attn(q, k, v, padding_mask=s.mask(50, 37))[:, :, :37]
        alone = attn(q[:, :, :37], k[:, :, :37], v[:, :, :37])
    return _within("padded = unpadded", _max(padded - alone), 1e-5)


def _grads_finite(attn, q, k, v, mask) -> str:
    """'' when the output and the gradients of q, k, v and the parameters are finite, else
    what is not."""
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = attn(q, k, v, padding_mask=mask)
    if not torch.isfinite(out).all():
        return "output"
    out.square().sum().backward()
    named = {"q": q, "k": k, "v": v, **dict(attn.named_parameters())}
    bad = [n for n, t in named.items() if t.grad is not None and not torch.isfinite(t.grad).all()]
    return ", ".join(f"grad of {n}" for n in bad)


def extreme_scores(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(seq_len=64, seed=33, scale=10.0)
    bad = _grads_finite(attn, q, k, v, s.mask(64, 64, 50))
    if bad:
        return Result("extreme scores", "fail", f"scores x100: NaN/inf in the {bad}")
    return Result("extreme scores", "pass", "scores x100: output and gradients finite")


def empty_sequence(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(seq_len=16, seed=34)
    mask = s.mask(16, 16, 0)
    with torch.no_grad():
        zero = _max(attn(q, k, v, padding_mask=mask)[1])
    if zero != 0.0:
        return Result("empty sequence", "fail", f"no real token, yet outputs up to {zero:.1e}")
    if bad := _grads_finite(attn, q, k, v, mask):
        return Result("empty sequence", "fail", f"NaN/inf in the {bad}")
    return Result("empty sequence", "pass", "zeros out, finite gradients")


@contextlib.contextmanager
def _no_host_sync() -> Iterator[list[str]]:
    """Tensor methods that synchronise with the host raise inside the block (named)."""
    saved = {m: getattr(Tensor, m) for m in SYNC_METHODS}
    called: list[str] = []

    def trap(method: str):
        def sync(*_args, **_kwargs):
            called.append(method)
            raise RuntimeError(f"host synchronisation: Tensor.{method} inside forward")

        return sync

    try:
        for method in SYNC_METHODS:
            setattr(Tensor, method, trap(method))
        yield called
    finally:
        for method, original in saved.items():
            setattr(Tensor, method, original)


def no_host_sync(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(seq_len=24, seed=36)
    mask = s.mask(24, 20, 24)
    with _no_host_sync() as called, torch.no_grad(), contextlib.suppress(RuntimeError):
        attn(q, k, v, padding_mask=mask)
    if called:
        return Result("no host sync", "fail", f"forward called Tensor.{called[0]}")
    return Result("no host sync", "pass", f"none of {', '.join(SYNC_METHODS)} called")


def malformed_inputs(s: Subject) -> Result:
    attn = s.build()
    x = s.qkv(batch=1, seq_len=6)[0]
    cases = {
        "3-d q": lambda: attn(x[0], x, x),
        "k of another length": lambda: attn(x, torch.cat([x, x], 2), x),
        "another head_dim": lambda: attn(*(torch.cat([x, x], 3),) * 3),
        "another head count": lambda: attn(*(torch.cat([x, x], 1),) * 3),
        "integer q, k, v": lambda: attn(*(x.long(),) * 3),
        "mixed dtypes": lambda: attn(x, x.double(), x),
        "float mask": lambda: attn(x, x, x, padding_mask=torch.ones(1, 6, device=x.device)),
        "mask of another shape": lambda: attn(x, x, x, padding_mask=s.mask(5, 5)),
    }
    missed = []
    for what, call in cases.items():
        try:
            with torch.no_grad():
                call()
        except ValueError:
            continue
        except Exception as exc:  # the wrong error is a miss too
            missed.append(f"{what} ({type(exc).__name__})")
            continue
        missed.append(f"{what} (accepted)")
    if missed:
        return Result("malformed inputs", "fail", "no ValueError for " + "; ".join(missed))
    return Result("malformed inputs", "pass", f"{len(cases)}/{len(cases)} raised ValueError")


def _matrix(attn, q, k, mask) -> Tensor | None:
    try:
        return attn.attention_matrix(q, k, padding_mask=mask)
    except NotImplementedError:
        return None


def matrix_times_v(s: Subject) -> Result:
    attn = s.build()
    q, k, v = s.qkv(seq_len=40, seed=30)
    mask = s.mask(40, 25, 40)
    with torch.no_grad():
        A = _matrix(attn, q, k, mask)
        if A is None:
            return Result("matrix x v", "skip", "no attention_matrix")
        out = attn(q, k, v, padding_mask=mask)
    return _within("matrix x v", _max(out - A @ v), 1e-5)


def doubly_stochastic(s: Subject) -> Result:
    if not s.info.doubly_stochastic:
        return Result("doubly stochastic", "skip", "not claimed")
    attn = s.build()
    q, k, _ = s.qkv(seq_len=48, seed=37)
    mask = s.mask(48, 48, 40)
    with torch.no_grad():
        A = _matrix(attn, q, k, mask)
        softmax = torch.softmax(q @ k.transpose(-2, -1) / HEAD_DIM**0.5, -1)  # the yardstick
    if A is None:
        return Result("doubly stochastic", "fail", "claimed, but no attention_matrix to check")
    rows = max(_max(A[0].sum(-1) - 1), _max(A[1, :, :40].sum(-1) - 1))
    cols = max(_max(A[0].sum(-2) - 1), _max(A[1, :, :, :40].sum(-2) - 1))
    plain = _max(softmax[0].sum(-2) - 1)
    figure = (
        f"max |row sum - 1| {rows:.1e} (limit 1e-04); max |column sum - 1| {cols:.2f}, "
        f"softmax's on the same q, k {plain:.2f} (limit: a fifth of it)"
    )
    ok = rows <= 1e-4 and cols <= plain / 5
    return Result("doubly stochastic", "pass" if ok else "fail", figure)


def linear_memory(s: Subject) -> Result:
    if s.info.complexity != "linear":
        return Result("linear memory", "skip", f"{s.info.complexity} claimed")
    attn = s.build()
    peaks = {}
    for n in (1024, 4096):
        q, k, v = s.qkv(batch=1, seq_len=n, seed=38)
        with torch.no_grad():
            attn(q, k, v)  # a first call may build caches or compile
            peaks[n] = call_peak(lambda q=q, k=k, v=v: attn(q, k, v), s.device)
    ratio = peaks[4096] / max(peaks[1024], 1)
    figure = (
        f"forward peak {peaks[1024] / 2**20:.2f} -> {peaks[4096] / 2**20:.2f} MiB from N = 1024 "
        f"to 4096: x{ratio:.1f} (linear x4, quadratic x16; limit x8)"
    )
    return Result("linear memory", "pass" if ratio <= 8 else "fail", figure)


PROPERTIES: dict[str, Callable[[Subject], Result]] = {
    "dtypes": dtypes,
    "float64": float64,
    "padding invariance": padding_invariance,
    "padded = unpadded": padded_equals_unpadded,
    "extreme scores": extreme_scores,
    "empty sequence": empty_sequence,
    "no host sync": no_host_sync,
    "malformed inputs": malformed_inputs,
    "matrix x v": matrix_times_v,
    "doubly stochastic": doubly_stochastic,
    "linear memory": linear_memory,
}


def check_property(
    name: str, prop: str, options: dict | None = None, device: str | torch.device = "cpu"
) -> Result:
    """One property of mechanism `name` (with `options`); an exception the mechanism raises
    is that property's failure, not a crash."""
    subject = Subject(name, options or {}, torch.device(device))
    try:
        return PROPERTIES[prop](subject)
    except NotOnThisDevice as exc:  # the variant's own limit here, said by the mechanism
        return Result(prop, "skip", str(exc)[:300])
    except Exception as exc:
        return Result(prop, "fail", f"raised {type(exc).__name__}: {exc}"[:300])


def check(
    name: str, options: dict | None = None, device: str | torch.device = "cpu"
) -> list[Result]:
    """Every property of mechanism `name`."""
    return [check_property(name, prop, options, device) for prop in PROPERTIES]


def _options(name: str, items: Sequence[str]) -> dict:
    """--option NAME=VALUE items of mechanism `name`, typed by its defaults
    (attention_zoo.options); ValueError naming a malformed one."""
    defaults = info(name).defaults if name in names() else {}
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--option {item!r}: expected NAME=VALUE")
        try:
            out[key] = parse_value(raw, defaults.get(key))
        except ValueError as exc:
            raise ValueError(f"--option {item!r}: {exc}") from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from attention_zoo.plugins import add_import_option, import_plugin

    parser = argparse.ArgumentParser(
        prog="python -m attention_zoo.check",
        description="Check that attention mechanisms honour the zoo's contract (padding, "
        "dtypes, gradients, no host sync, input errors, their claims): one line per "
        "property; exit 1 naming each failure.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help="registered mechanisms, or all")
    add_import_option(parser)
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a mechanism option, repeatable, e.g. --option impl=reference (the value as "
        "attention_zoo.options reads it: TOML, typed by the option's default)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    try:
        for spec in args.imports:
            import_plugin(spec)
        wanted = names() if args.names == ["all"] else args.names
        given = {name: _options(name, args.option) for name in wanted}
        for name in wanted:  # unknown, broken or bad options: said before anything runs
            create(name, heads=HEADS, head_dim=HEAD_DIM, **given[name])
    except ValueError as exc:
        parser.error(str(exc))
    failures = []
    for name in wanted:
        options = given[name]
        print(f"{name} ({info(name).source}){' ' + json.dumps(options) if options else ''}")
        for result in check(name, options, args.device):
            print(f"  {result.line()}")
            if not result.passed:
                failures.append(f"{name}: {result.name}")
    if failures:
        print(f"check: FAILED: {'; '.join(failures)}", file=sys.stderr)
        return 1
    print(f"check: {len(wanted)} mechanism(s) honour the contract")
    return 0


if __name__ == "__main__":
    sys.exit(main())
