"""`python -m runners.bench`: see runners.bench.cli (and runners.entry for the start)."""

from runners.entry import start

start("runners.bench.cli")
