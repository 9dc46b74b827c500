"""Reports: tables, figures and the leaderboard page, each a pure function of the parquet
results (`python -m reports build`; what each artefact is: reports/__main__.py)."""
