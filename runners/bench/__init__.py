"""The CI gate (`python -m runners.bench check`): the zoo's speed and memory benchmarks
against a committed baseline, a verdict per benchmark (`gate`)."""
