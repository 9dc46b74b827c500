"""Runners: the only code that times, measures memory, writes results and talks to a scheduler.

    python -m runners.sweep --preset cpu          # scaling sweep         (runners/sweep/)
    python -m runners.lra --profile smoke ...     # LRA training          (runners/lra/)
    python -m runners.grid lra --tasks all ...    # one job per cell      (runners/grid/)
    python -m runners.bench check                 # the CI speed/memory gate (runners/bench/)
    python -m runners.gpu_check                   # the prepared GPU check (runners/gpu_check/)

One sub-package per command, each with a `cli` module (its argparse and `main`, nothing else
imports it) and library modules that take values and raise. What two commands share lives
below them: `measure/` (timers, memory meters, the CPU allocator, one case's measurement,
the loop's predictions), and at the top `results` (atomic parquet parts), `provenance`
(commit, device, versions of every row) and `arguments` (name lists on any command line).
The columns of every table are `results.schema`, outside this package.
"""
