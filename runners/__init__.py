"""Runners: training, scaling sweeps and measurement (built in later issues)."""
