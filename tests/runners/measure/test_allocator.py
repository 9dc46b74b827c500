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


def test_without_a_gpu_driver_the_allocator_is_chosen_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr(allocator, "GPU_NODES", (tmp_path / "nvidiactl",))
    expected = allocator.environment_for("auto")  # None where thp cannot be had
    assert allocator.early_environment(["--methods", "softmax"]) == expected
    assert allocator.early_environment(["--cpu-allocator", "auto"]) == expected
    assert allocator.early_environment(["--cpu-allocator=system"]) is None
    assert allocator.early_environment(["--cpu-allocator", "system"]) is None
    assert allocator.early_environment(["--cpu-alloc", "system"]) is None  # the parser's call
    assert allocator.early_environment(["--cpu-allocator", "retain"]) is None
    (tmp_path / "nvidiactl").touch()  # a GPU driver: main decides once the device is known
    assert allocator.early_environment(["--cpu-allocator", "auto"]) is None


@pytest.mark.skipif(
    allocator.thp_unavailable() is not None or any(p.exists() for p in allocator.GPU_NODES),
    reason="re-executes only on a CPU-only machine with thp",
)
def test_a_runner_command_imports_torch_once_though_it_re_executes(tmp_path):
    """PYTHONPROFILEIMPORTTIME reaches the re-executed process too: one torch import in all
    (the re-execution came after the imports until runners.entry: two)."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    cmd = [sys.executable, "-m", "runners.sweep", "--methods=softmax", "--lengths=16"]
    cmd += ["--device=cpu", "--min-time=0.01", "--min-repeats=1", "--quiet"]
    cmd += [f"--out={tmp_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imports = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert imports.count("runners.entry") == 2  # it did re-execute
    assert imports.count("torch") == 1
