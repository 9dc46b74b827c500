"""Recall through the runner: a run stopped part-way resumes from its checkpoint and ends
in exactly one val and one test row; a run that passes train.stop_at stops and says so; the
rows carry the data's parameters and the task's order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from results.schema import read_results
from runners.lra import cli as runner
from tests.results.contract import assert_fills_what_the_reports_read

TINY_RECALL = {"pairs": 4, "keys": 8, "values": 8, "train": 2048, "val": 32, "test": 32}


def recall_args(out: Path, *extra: str, steps: int = 40) -> list[str]:
    return [
        "--profile=recall",
        "--tasks=recall",
        "--methods=softmax",
        f"--out={out / 'recall'}",
        f"--curves={out / 'curves'}",
        f"--checkpoints={out / 'ckpt'}",
        "--quiet",
        "--set=model.width=32",
        "--set=train.eval_every=10",
        f"--set=train.steps={steps}",
        *(f"--set=tasks.recall.data.{k}={v}" for k, v in TINY_RECALL.items()),
        *extra,
    ]


@pytest.mark.slow
def test_a_stopped_recall_run_resumes_and_leaves_one_row_per_split(tmp_path):
    argv = recall_args(tmp_path, "--set=train.stop_at=0")
    assert runner.main([*argv, "--stop-after-steps=15"]) == runner.INTERRUPTED_EXIT
    assert read_results(tmp_path / "recall").empty  # nothing finished, nothing written
    assert list((tmp_path / "ckpt").glob("recall-softmax-s0-*.pt"))
    assert runner.main(argv) == 0
    assert runner.main(argv) == 0  # finished: skipped, no second row
    rows = read_results(tmp_path / "recall")
    assert sorted(rows["split"]) == ["test", "val"] and set(rows["steps"]) == {40}
    assert json.loads(rows["data_params"].iloc[0])["pairs"] == 4
    assert set(rows["task_order"]) == {0} and not rows["stopped_early"].any()
    assert rows["majority_accuracy"].iloc[0] == pytest.approx(1 / 8)
    assert_fills_what_the_reports_read(rows, "recall")


@pytest.mark.slow
def test_a_run_that_reaches_stop_at_stops_early_and_its_row_says_so(tmp_path):
    assert runner.main(recall_args(tmp_path, "--set=train.stop_at=0.05", steps=200)) == 0
    rows = read_results(tmp_path / "recall")
    assert rows["stopped_early"].all() and (rows["steps"] < 200).all()
    assert set(rows["planned_steps"]) == {200}
    val = rows[rows["split"] == "val"]["accuracy"].iloc[0]
    assert val >= 0.05
