"""The check a writer's rows must pass: every column the reports read is there and filled."""

from __future__ import annotations

import pandas as pd

from reports.data import NEEDED


def assert_fills_what_the_reports_read(rows: pd.DataFrame, folder: str) -> None:
    """`rows` (a writer's output for results/<folder>) carry every column `reports` reads,
    filled in each ok row."""
    ok = rows[rows["status"] == "ok"] if "status" in rows else rows
    if "step" in ok and "attn_colsum_dev" in ok:  # a curve: its step-0 point holds only the
        ok = ok[ok["step"] > 0]  # attention diagnostics at initialisation, no loss or accuracy
    assert len(ok), f"no ok rows to check for {folder}"
    unfilled = [c for c in NEEDED[folder] if c not in ok or ok[c].isna().any()]
    assert not unfilled, f"{folder} rows leave {unfilled} empty, and the reports read them"
