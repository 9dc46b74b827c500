"""runners.results: whether a writer (or a grid job) still runs."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runners.results import pid_alive


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="zombies are told apart through /proc")
def test_an_ended_process_its_parent_has_not_reaped_does_not_run():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    assert pid_alive(child.pid)
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":  # ended, not yet waited for
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not pid_alive(child.pid)  # os.kill(pid, 0) alone still says it is there
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())
