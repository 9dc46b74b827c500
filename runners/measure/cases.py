"""One sweep cell: build a mechanism and inputs, warm up, meter memory and time, report.

A failure is a result: out-of-memory, a call longer than the cell's budget, or any other
exception comes back as a status with its error text, never as a crash of the sweep.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass

import torch

import attention_zoo as zoo
from runners.measure.meters import measure_memory, measure_time, tensor_bytes

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class AttentionCase:
    """One attention call to measure: a mechanism with its options, a length and a pass."""

    method: str
    options: tuple[tuple[str, object], ...]  # resolved options, sorted by name
    seq_len: int
    pass_: str  # "forward" | "forward_backward"


@dataclass(frozen=True)
class Settings:
    """How every cell of a sweep is measured."""

    batch: int
    heads: int
    head_dim: int
    dtype: str
    device: torch.device
    min_time_s: float = 1.0
    min_repeats: int = 3
    max_repeats: int = 100
    cell_budget_s: float = 60.0
    # the first call may compile (torch.compile, CUDA graphs, autotuning): longer than this
    # and the cell is a timeout row, its warmup_ms the compile time
    compile_budget_s: float = 300.0
    seed: int = 0


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator refusing a request."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def failure_row(exc: Exception) -> dict[str, object]:
    """The one rule for a measurement that raised, in the sweep and the efficiency table alike:
    a row (`oom` when out of memory, `error` with its text otherwise), and the run goes on to
    the next cell. A mechanism that fails at one length is a result, not a crash of the grid;
    the row's text names what went wrong."""
    return {"status": "oom" if is_out_of_memory(exc) else "error", "error": _short(exc)}


def workload(cell: AttentionCase, s: Settings):
    """The call to measure, and the bytes its inputs hold before it runs."""
    torch.manual_seed(s.seed)
    attn = zoo.create(cell.method, heads=s.heads, head_dim=s.head_dim, **dict(cell.options))
    attn = attn.to(s.device)
    grad = cell.pass_ == "forward_backward"
    shape = (s.batch, s.heads, cell.seq_len, s.head_dim)
    q, k, v = (
        torch.randn(shape, device=s.device, dtype=DTYPES[s.dtype], requires_grad=grad)
        for _ in range(3)
    )
    params = [p for p in attn.parameters() if p.requires_grad]
    inputs = [q, k, v, *params]
    if grad:
        upstream = torch.randn(shape, device=s.device, dtype=DTYPES[s.dtype])

        def call():
            out = attn(q, k, v)
            torch.autograd.grad(out, inputs, upstream)

        held = [*inputs, upstream, *attn.buffers()]
    else:

        def call():
            with torch.no_grad():
                attn(q, k, v)

        held = [*inputs, *attn.buffers()]
    attn.train(grad)
    return attn, call, tensor_bytes(held)


def measure_cell(cell: AttentionCase, s: Settings) -> dict[str, object]:
    """Measure one cell; returns the measurement columns and `status` / `error`."""
    row: dict[str, object] = {"status": "ok", "error": None}
    try:
        attn, call, before = workload(cell, s)
        t0 = time.perf_counter()
        warmup_s = _timed_call(call, s.device)  # kernel selection, lazy allocations
        row["warmup_ms"] = warmup_s * 1e3
        if warmup_s > s.compile_budget_s:
            first = "the first call (compiling included)"
            return {**row, **_timeout(first, warmup_s, "compile", s.compile_budget_s)}
        if warmup_s > s.cell_budget_s:
            # a first call can hold one-off work (torch.compile, autotuning): a second decides
            warmup_s = _timed_call(call, s.device)
        if warmup_s > s.cell_budget_s:
            return {**row, **_timeout("one call", warmup_s, "cell", s.cell_budget_s)}
        memory = measure_memory(call, s.device, before)
        remaining = s.cell_budget_s - (time.perf_counter() - t0)
        times = measure_time(
            call,
            s.device,
            min_time_s=s.min_time_s,
            min_repeats=s.min_repeats,
            max_repeats=s.max_repeats,
            budget_s=max(remaining, 0.0),
        )
        row.update(
            time_ms=statistics.median(times),
            time_ms_min=min(times),
            time_ms_max=max(times),
            repeats=len(times),
            peak_mem_bytes=memory.peak_bytes,
            mem_before_bytes=memory.before_bytes,
            backend=getattr(attn, "last_backend", None),
        )
    except Exception as exc:
        row.update(failure_row(exc))
    finally:
        gc.collect()
        if s.device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _timeout(what: str, seconds: float, budget: str, limit_s: float) -> dict[str, object]:
    return {
        "status": "timeout",
        "error": f"{what} took {seconds:.1f} s, over the {budget} budget of {limit_s:g} s",
    }


def _timed_call(call, device: torch.device) -> float:
    """Seconds of one call, the device synchronised after it."""
    t0 = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _short(exc: BaseException, limit: int = 500) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else text[:limit] + " ..."
