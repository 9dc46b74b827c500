"""The sweep's CPU allocator modes: `thp` faults large blocks in by huge pages."""

import os
import subprocess
import sys

import pytest

from runners.measure import allocator

# a workload with 32 and 64 MiB temporaries (over glibc's largest mmap threshold); prints
# the fewest minor page faults of one call once it has run a few times
PROBE = """
import resource, torch
from runners.measure.allocator import active
a = torch.randn(2048, 4096)
def work():
    b = torch.cat([a * 2, a])
    return b.exp().sum()
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    work()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(active(), min(faults[2:]))
"""


def _steady_faults(env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env
    )
    label, faults = done.stdout.split()
    return label, int(faults)


@pytest.mark.skipif(
    allocator.thp_unavailable() is not None, reason=str(allocator.thp_unavailable())
)
@pytest.mark.slow
def test_thp_faults_large_blocks_in_by_huge_pages():
    pages = (32 + 64 + 64) * 2**20 // 4096  # the temporaries of one call, in 4 KiB pages
    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    label, faults = _steady_faults(plain)
    assert label == "system" and faults > pages // 2  # unmapped on free, faulted in again
    relaunch = allocator.environment_for("thp")
    assert relaunch is not None and allocator.TUNABLE in relaunch["GLIBC_TUNABLES"]
    label, faults = _steady_faults(relaunch)
    assert label == "glibc-thp" and faults < pages // 16


def test_modes_resolve_and_unknown_modes_are_clear_errors(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert allocator.environment_for("system") is None
    assert allocator.active() == "system"
    expected = "system" if allocator.thp_unavailable() else "thp"
    assert allocator.resolve("auto") == expected
    with pytest.raises(ValueError, match="must be one of"):
        allocator.resolve("retain")
