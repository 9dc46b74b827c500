"""How `python -m runners.X` starts and ends, for the many short processes a grid, torchrun
or a test suite starts (each runner command is one, each grid job's runner another).

1. Where the command takes `--cpu-allocator`, re-execute under glibc's tunable before
   anything heavy is imported (`allocator.reexec_early`): a re-execution after the imports
   pays them twice.
2. Import the command with the cyclic garbage collector paused, then freeze what the
   import made (`gc.freeze`): torch's import allocates some hundred thousand objects, none
   of them garbage, and the collector's passes over them while they are made, in every
   later full collection and in the interpreter's final one at exit cost time and find
   nothing.
3. Freeze again after `main` returns, so the exit does not sweep the run's objects either.
   Everything a command writes is closed and renamed into place before `main` returns
   (`runners.results`), so nothing waits on the final collection.

Measured on the 2-core machine, `python -m runners.lra` training a 12-step tiny ListOps run
(`tests.runners.tiny`): 6.4 s before, 3.1 s after, medians of 5 alternating runs at 03:12
on 2026-12-02; (1) alone took 6.7 s to 4.8 s (medians of 4, at 03:05).
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import NoReturn

from runners.measure import allocator


def start(cli: str, *, cpu_allocator: bool = False) -> NoReturn:
    """Run module `cli`'s `main()` as this process's command and exit with its code."""
    if cpu_allocator:
        allocator.reexec_early()
    gc.disable()
    try:
        main = importlib.import_module(cli).main
    finally:
        gc.freeze()
        gc.enable()
    code = main()
    gc.freeze()
    sys.exit(code)
