"""The meters: a known allocation to the byte, a known sleep within tolerance."""

import statistics
import time

import torch

import attention_zoo as zoo
from attention_zoo.memory import cpu_allocation_peak
from runners.measure.meters import measure_memory, measure_time, tensor_bytes

CPU = torch.device("cpu")


def test_known_allocations_are_measured_to_the_byte():
    def fn():
        a = torch.empty(1000, dtype=torch.float32)  # 4000 B
        b = torch.empty(250, dtype=torch.float64)  # 2000 B, both alive: 6000
        del a  # 2000 alive
        c = torch.empty(3, 100, dtype=torch.int16)  # 600 B: 2600 alive
        return b, c

    assert cpu_allocation_peak(fn) == 6000
    reading = measure_memory(fn, CPU, before_bytes=12345)
    assert (reading.peak_bytes, reading.before_bytes) == (12345 + 6000, 12345)


def test_peak_is_the_same_on_every_repeat():
    attn = zoo.create("lotformer", heads=2, head_dim=16, r=8)
    q, k, v = (torch.randn(1, 2, 256, 16, requires_grad=True) for _ in range(3))

    def fn():
        torch.autograd.grad(attn(q, k, v).sum(), (q, k, v))

    fn()
    peaks = {cpu_allocation_peak(fn) for _ in range(3)}
    assert len(peaks) == 1 and peaks.pop() > 3 * 256 * 16 * 4  # at least the three gradients


def test_tensor_bytes_counts_a_storage_once():
    x = torch.empty(100, dtype=torch.float32)
    assert tensor_bytes([x, x[:10], x.view(10, 10)]) == 400
    assert tensor_bytes([x, torch.empty(5, dtype=torch.float64)]) == 440


def test_a_known_sleep_is_timed_within_tolerance():
    """Load-proof: a sleep is never shorter than asked, and what the meter adds to the call's
    own time is compared with the call's time measured inside it, not with a constant (a busy
    machine wakes a sleeper late, inside the call and outside alike)."""
    inner: list[float] = []

    def call() -> None:
        t0 = time.perf_counter()
        time.sleep(0.03)
        inner.append((time.perf_counter() - t0) * 1e3)

    times = measure_time(call, CPU, min_time_s=0.2, min_repeats=3)
    assert len(times) >= 3 and len(times) == len(inner)
    assert min(times) >= 30.0, times
    assert all(t >= i for t, i in zip(times, inner, strict=True))
    assert statistics.median(times) - statistics.median(inner) < 5.0, (times, inner)


def test_timing_stops_at_the_budget():
    start = time.perf_counter()
    times = measure_time(
        lambda: time.sleep(0.05), CPU, min_time_s=10.0, min_repeats=100, budget_s=0.2
    )
    assert len(times) < 10
    # load-proof by its margin: a busy machine wakes a sleeper milliseconds late, not 0.75 s
    assert time.perf_counter() - start < 1.0
