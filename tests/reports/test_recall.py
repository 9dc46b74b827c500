"""The recall section: cells over seeds by pairs, never averaging other data settings,
capacity and steps to 90% computed as their legends say, variants named by their options,
and the section first on the page; tasks in the tables come from the rows, in their order."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reports import recall, tables
from reports.__main__ import build
from tests.reports.conftest import lra_row, write_results

DATA = {"keys": 64, "values": 64, "distractors": 0, "seed": 0, "train": 100, "val": 8, "test": 8}


def recall_row(method, pairs, seed, accuracy, options=(), data=None, config=None, steps=100):
    overrides = [*options, f"tasks.recall.data.pairs={pairs}"]
    return {
        **lra_row(method, "recall", seed, accuracy, profile="recall"),
        "config_hash": config or f"{method}-{pairs}-{'-'.join(options)}",
        "data_params": json.dumps({**(data or DATA), "pairs": pairs}, sort_keys=True),
        "overrides": json.dumps(overrides),
        "task_order": 0,
        "steps": steps,
        "train_seconds": steps / 10.0,
        "collapsed": False,
    }


# softmax holds everywhere; lotformer [r=4] holds at 8, falls at 16, is at chance at 32
GRID = [
    *(recall_row("softmax", p, s, 1.0 - 0.001 * s) for p in (8, 16, 32) for s in range(3)),
    *(recall_row("lotformer", p, s, a, ["methods.lotformer.r=4"])
      for p, accs in ((8, (0.95, 0.97, 0.96)), (16, (0.5, 0.6, 0.55)), (32, (0.02, 0.01, 0.02)))
      for s, a in enumerate(accs)),
]  # fmt: skip


def runs(rows=GRID) -> pd.DataFrame:
    return recall.recall_runs(pd.DataFrame(rows))


def test_a_variant_is_named_by_its_options_not_by_its_data():
    assert set(runs()["variant"]) == {"softmax", "lotformer [r=4]"}


def test_cells_are_over_seeds_by_pairs_with_their_interval():
    table = recall.recall_accuracy(runs())
    assert table.columns == ["pairs 8", "pairs 16", "pairs 32"]
    cell = table.ours["lotformer [r=4]"][1]
    assert (cell.mean, cell.n) == (pytest.approx(55.0), 3)
    assert cell.interval == pytest.approx(
        (55.0 - 4.303 * 5.0 / 3**0.5, 55.0 + 4.303 * 5.0 / 3**0.5)
    )
    assert table.ours["softmax"][2].best  # its interval clears lotformer's


def test_other_data_settings_are_never_averaged_together():
    other = {**DATA, "keys": 128, "values": 128}
    rows = [*GRID, *(recall_row("softmax", 8, s, 0.1, data=other) for s in range(3))]
    settings = dict(recall.recall_settings(runs(rows)))
    assert sorted(settings) == ["recall-keys128-values128", "recall-keys64-values64"]
    cell = recall.recall_accuracy(settings["recall-keys64-values64"]).ours["softmax"][0]
    assert cell.mean == pytest.approx(99.9) and cell.n == 3  # the 10% runs are apart


def test_capacity_is_the_most_pairs_held_with_the_accuracy_there_and_after():
    table = recall.recall_capacity(runs())
    held, there, after = table.ours["lotformer [r=4]"]
    assert held.extra == "8" and there.mean == pytest.approx(96.0)
    assert after.mean == pytest.approx(55.0)
    assert tables.format_cell(table.ours["softmax"][0]) == ">= 32"


def test_steps_to_90_percent_come_from_the_curves_and_never_is_counted():
    rows = runs()
    points = []
    for config, seed in zip(rows["config_hash"], rows["seed"], strict=True):
        for step, acc in ((50, 0.5), (100, 0.92 if "softmax" in config else 0.5)):
            points.append({"config_hash": config, "seed": seed, "step": step, "val_accuracy": acc})
    table = recall.recall_steps(rows, pd.DataFrame(points))
    assert table.ours["softmax"][0].mean == 100.0 and table.ours["softmax"][0].n == 3
    assert tables.format_cell(table.ours["lotformer [r=4]"][0]) == "3/3 never"


def test_the_difference_to_softmax_is_paired_by_seed():
    cell = recall.recall_vs_softmax(runs()).ours["lotformer [r=4]"][0]
    assert cell.mean == pytest.approx(((95 - 100) + (97 - 99.9) + (96 - 99.8)) / 3)
    assert cell.n == 3


def test_tasks_come_from_the_rows_in_their_declared_order_and_a_plugin_task_last():
    rows = pd.DataFrame(
        [
            {**lra_row("softmax", "copy", 0, 0.5), "task_order": None},  # a plugin, no order
            {**lra_row("softmax", "pathfinder", 0, 0.5), "task_order": 5},
            {**lra_row("softmax", "listops", 0, 0.5), "task_order": 1},
            {**lra_row("softmax", "mine", 0, 0.5), "task_order": 3},  # a plugin with one
        ]
    )
    table = tables.lra_accuracy(rows, "paper")
    assert table.columns == ["listops", "mine", "pathfinder", "copy", "avg"]


def test_the_recall_section_comes_first_with_its_figures_under_its_tables(tmp_path):
    lra_rows = pd.DataFrame([lra_row("softmax", "listops", s, 0.3) for s in range(3)])
    results = write_results(tmp_path / "results", recall=pd.DataFrame(GRID), lra=lra_rows)
    build(results, tmp_path / "out")
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert page.index("Recall: test accuracy") < page.index("LRA test accuracy")
    section = page[page.index('id="t-recall-accuracy-recall-section"') :]
    assert section.index("<figure>") < section.index("</section>")  # accuracy vs pairs under it
    assert (tmp_path / "out" / "recall_pairs_recall.png").is_file()
    assert (tmp_path / "out" / "recall_speed_recall.png").is_file()
