"""The prepared GPU check (`python -m runners.gpu_check`): tests, sweep, gate baseline, LRA
efficiency and a short training on one CUDA GPU within a time budget.

`cli`: the stages and the command; `stages`: budgeted stages and their records; `probe`:
the device's facts and the kernels that ran."""
