"""`python -m runners.gpu_check`: see runners.gpu_check.cli (and runners.entry for the start)."""

from runners.entry import start

start("runners.gpu_check.cli")
