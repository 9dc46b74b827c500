"""Peak tensor memory of one call, on CPU and CUDA, with nothing but torch.

    peak = cpu_allocation_peak(lambda: attn(q, k, v))     # bytes, CPU
    peak = call_peak(lambda: attn(q, k, v), device)        # bytes, CPU or CUDA

CPU: the allocator's own events (PyTorch profiler, `profile_memory=True`): every allocation
and free made during the call, in order, to the byte; the peak of their running sum.
Deterministic: the same bytes on every repeat. CUDA: `torch.cuda.max_memory_allocated`
after `reset_peak_memory_stats`, less what was allocated before the call. The runners'
meters (runners/measure/meters.py) and the conformance check (attention_zoo.check) use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


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


def call_peak(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes that `fn()` allocates beyond what was alive when it started."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    return cpu_allocation_peak(fn)
