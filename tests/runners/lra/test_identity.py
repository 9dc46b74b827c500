"""A run's identity survives the task object: every committed LRA run, re-planned today
from its profile and its --set items, gets the config hash its row carries, so no finished
run becomes an "older configuration" (set aside by the report, retrained by a resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from results import schema
from runners.lra.config import identity
from runners.lra.runs import plan

RESULTS = Path(__file__).resolve().parents[3] / "results"


@pytest.mark.parametrize("folder", ["lra", "lra_ablation"])
def test_committed_runs_keep_their_config_hashes(folder):
    rows, _ = schema.read_table(RESULTS / folder, ["task", "method", "profile", "config_hash"])
    rows = rows[rows["profile"].isin(["mini", "smoke"])]
    if rows.empty:
        pytest.skip(f"no committed mini or smoke rows in results/{folder}")
    checked = 0
    for (task, method, profile, overrides), part in rows.groupby(
        ["task", "method", "profile", "overrides"], dropna=False
    ):
        items = json.loads(overrides) if isinstance(overrides, str) else []
        (run,), _ = plan(task, method, "0", profile, items)
        assert set(part["config_hash"]) == {run.config_hash}, (task, method, profile, items)
        saved = json.loads((RESULTS / folder / "configs" / f"{run.config_hash}.json").read_text())
        assert saved == identity(run.cfg)  # diagnostics on or off: the same run
        checked += 1
    assert checked >= 5
