"""A CPU-bound neighbour for tests that must hold on a shared machine.

    with neighbour(threads=2):      # two threads of float matmuls beside the test, like a
        ...                         # training job on the same cores; stopped on leaving

It is a separate process (so its threads do not share our GIL) that multiplies 512x512 float
matrices on `threads` intra-op threads until it is stopped, and stops by itself after
`limit_s`, or as soon as the process that started it is gone (killed without running its
`finally`), so it can never outlive a test run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runners.bench import noise

SCRIPT = """
import os, sys, time, torch
threads, limit_s = int(sys.argv[1]), float(sys.argv[2])
parent = os.getppid()
torch.set_num_threads(threads)
a, b = torch.randn(512, 512), torch.randn(512, 512)
print("ready", flush=True)
end = time.monotonic() + limit_s
while time.monotonic() < end and os.getppid() == parent:  # orphaned: stop
    for _ in range(20):
        a = torch.tanh(a @ b)
"""


@contextmanager
def neighbour(threads: int = 2, limit_s: float = 900.0) -> Iterator[subprocess.Popen]:
    """Run the neighbour for the length of the `with` block (at most `limit_s`)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(threads), str(limit_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready", "the neighbour did not start"
        time.sleep(0.2)  # its threads are spinning before the test measures anything
        yield proc
    finally:
        proc.kill()
        proc.wait()


def busy_cores(seconds: float = 1.0) -> float | None:
    """Cores the machine kept busy, apart from this process, over `seconds`."""
    before = noise.sample([])
    time.sleep(seconds)
    return noise.cores_used_by_others(before, noise.sample([]))
