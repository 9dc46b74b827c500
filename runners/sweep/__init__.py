"""The scaling sweep (`python -m runners.sweep`): time and memory against N, a row per cell.

`cli`: the command; `args`: its flags and presets; `run`: the cells measured in order,
resumable."""
