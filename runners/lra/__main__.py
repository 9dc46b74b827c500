"""`python -m runners.lra`: see runners.lra.cli (and runners.entry for the start)."""

from runners.entry import start

start("runners.lra.cli", cpu_allocator=True)
