"""`python -m runners.sweep`: see runners.sweep.cli (and runners.entry for the start)."""

from runners.entry import start

start("runners.sweep.cli", cpu_allocator=True)
