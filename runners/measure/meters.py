"""Meters: wall-clock time and peak tensor memory of one call, on CPU and CUDA.

    from runners.measure.meters import measure_time, measure_memory
    times_ms = measure_time(fn, device, min_time_s=1.0, min_repeats=3)   # fn already warmed up
    peak = measure_memory(fn, device, before_bytes=...)                  # MemoryReading

CPU time: `time.perf_counter` around each call (CPU ops are synchronous), repeated until
`min_time_s` have passed and at least `min_repeats` calls were made.
CUDA time: CUDA events around each call, the L2 cache flushed (a 256 MiB buffer zeroed)
before each, one synchronisation after the last; the number of repeats is chosen from an
estimate, as `triton.testing.do_bench` does.
CPU memory: the allocator's own events (`attention_zoo.memory.cpu_allocation_peak`, which
the zoo's conformance check uses too): the peak of their running sum plus the bytes alive
before the call. Deterministic: the same bytes on every repeat.
CUDA memory: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from attention_zoo.memory import call_peak

L2_FLUSH_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class MemoryReading:
    """Peak bytes of tensors alive during a call, and the bytes alive when it started."""

    peak_bytes: int
    before_bytes: int


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (views of one storage count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def measure_memory(
    fn: Callable[[], object], device: torch.device, before_bytes: int
) -> MemoryReading:
    """Peak tensor bytes during one call of `fn`; `before_bytes` is what its inputs hold (CPU;
    on CUDA the caching allocator's count of what is allocated)."""
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else before_bytes
    return MemoryReading(before + call_peak(fn, device), before)


def measure_time(
    fn: Callable[[], object],
    device: torch.device,
    *,
    min_time_s: float,
    min_repeats: int,
    max_repeats: int = 1000,
    budget_s: float = float("inf"),
) -> list[float]:
    """Milliseconds of each timed call of an already warmed-up `fn`."""
    if device.type == "cuda":
        return _time_cuda(fn, device, min_time_s, min_repeats, max_repeats, budget_s)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeats:
        times.append(call_ms(fn, device))
        elapsed = time.perf_counter() - start
        if len(times) >= min_repeats and elapsed >= min_time_s:
            break
        if elapsed + times[-1] / 1e3 > budget_s:  # the next call would overrun the budget
            break
    return times


def call_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of one call of `fn`, finished: CUDA events around it (then one
    synchronisation) on a GPU, perf_counter on a CPU."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end)


def _time_cuda(fn, device, min_time_s, min_repeats, max_repeats, budget_s) -> list[float]:
    """CUDA events around each call and one synchronisation after the last (call_ms
    synchronises every call, which would time the launch gaps too)."""
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device=device)

    def flushed_three() -> None:  # one call (with its flush) estimated, to choose the repeats
        for _ in range(3):
            flush.zero_()
            fn()

    estimate_s = call_ms(flushed_three, device) / 3e3
    wanted = int(min(min_time_s, budget_s) / max(estimate_s, 1e-6))
    repeats = max(min_repeats, min(max_repeats, wanted))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    for s, e in zip(starts, ends, strict=True):
        flush.zero_()  # a cold L2 for every call
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize(device)  # the one synchronisation, after the last call
    return [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]
