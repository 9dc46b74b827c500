"""The run grid (`python -m runners.grid`): one job per cell on SLURM (submitit) or locally.

`cli`: the command; `plan`: the cells of an LRA or sweep grid; `launch`: submitting and
running the jobs; `job`: what runs on the node; `status`: each cell's state."""
