"""Meters: wall-clock time and peak tensor memory of one call, on CPU and CUDA.

    from runners.measure.meters import measure_time, measure_memory
    times_ms = measure_time(fn, device, min_time_s=1.0, min_repeats=3)   # fn already warmed up
    peak = measure_memory(fn, device, before_bytes=...)                  # MemoryReading

CPU time: `time.perf_counter` around each call (CPU ops are synchronous), repeated until
`min_time_s` have passed and at least `min_repeats` calls were made.
CUDA time: CUDA events around each call, the L2 cache flushed (a 256 MiB buffer zeroed)
before each, one synchronisation after the last; the number of repeats is chosen from an
estimate, as `triton.testing.do_bench` does.
CPU memory: the allocator's own events (PyTorch profiler, `profile_memory=True`): every
allocation and free made during the call, in order, to the byte; the peak of their running
sum plus the bytes alive before the call. Deterministic: the same bytes on every repeat.
CUDA memory: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

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


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop banners)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cpu_allocation_peak(fn: Callable[[], object]) -> int:
    """Peak of (bytes allocated - bytes freed) during `fn()`, from the CPU allocator's events."""
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():
        prof.start()
    try:
        fn()
    finally:
        with _quiet_stderr():
            prof.stop()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    alive = peak = 0
    for e in events:
        if e.device_type() == torch.autograd.DeviceType.CPU:
            alive += e.nbytes()  # negative for a free
            peak = max(peak, alive)
    return peak


def measure_memory(
    fn: Callable[[], object], device: torch.device, before_bytes: int
) -> MemoryReading:
    """Peak tensor bytes during one call of `fn`; `before_bytes` is what its inputs hold (CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return MemoryReading(torch.cuda.max_memory_allocated(device), before)
    return MemoryReading(before_bytes + cpu_allocation_peak(fn), before_bytes)


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
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        elapsed = t1 - start
        if len(times) >= min_repeats and elapsed >= min_time_s:
            break
        if elapsed + (t1 - t0) > budget_s:  # the next call would overrun the cell's budget
            break
    return times


def _time_cuda(fn, device, min_time_s, min_repeats, max_repeats, budget_s) -> list[float]:
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device=device)
    # estimate one call (with its flush) to choose the number of repeats
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        flush.zero_()
        fn()
    end.record()
    torch.cuda.synchronize(device)
    estimate_s = start.elapsed_time(end) / 3e3
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
