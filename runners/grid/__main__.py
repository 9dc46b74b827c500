"""`python -m runners.grid`: see runners.grid.cli (and runners.entry for the start)."""

from runners.entry import start

start("runners.grid.cli")
