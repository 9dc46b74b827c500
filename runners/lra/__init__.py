"""LRA training (`python -m runners.lra`): every (task, mechanism, seed) trained, validated
and tested, with its rows, curves and checkpoints.

`cli`: the command; `args`: its flags; `runs`: planning and running a set of runs;
`config`: the TOML profiles (`profiles/`); `train`: one run's training loop, resume and
evaluation; `judge`: cropping, the majority baseline, collapse, the data's identity;
`efficiency`: LRA's steps/s and memory table; `distributed`: torchrun ranks."""
