"""Reports: figures, tables and the leaderboard, produced from parquet (built in later issues)."""
