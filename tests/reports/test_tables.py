"""The LRA accuracy table: hand-computed means and stds, failed runs footnoted and never
averaged, missing cells shown as missing, published rows apart, byte-stable output."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from reports import tables
from reports.__main__ import main

TASKS = ["listops", "text", "retrieval", "image", "pathfinder"]


def row(method, task, seed, accuracy, status="ok", profile="paper", config="c1", error=None):
    return {
        "method": method,
        "task": task,
        "seed": seed,
        "accuracy": accuracy,
        "status": status,
        "error": error,
        "profile": profile,
        "config_hash": config,
        "split": "test",
        "finished_at": f"2026-11-23T10:0{seed}:00+00:00",
    }


@pytest.fixture
def rows() -> pd.DataFrame:
    out = []
    for i, task in enumerate(TASKS):
        for seed, acc in enumerate([0.30, 0.34, 0.38]):
            out.append(row("softmax", task, seed, acc + i / 100))
        out.append(row("lotformer", task, 0, 0.40 + i / 100))
    out.append(row("lotformer", "listops", 1, None, status="error", error="training loss is nan"))
    out.append(row("performer", "listops", 0, 0.2))
    out.append(row("softmax", "listops", 0, 0.99, profile="smoke"))  # another profile
    out.append({**row("softmax", "listops", 0, 0.99), "split": "val"})  # not test
    return pd.DataFrame(out)


def test_cells_are_mean_and_sample_std_over_seeds(rows):
    t = tables.lra_accuracy(rows)
    assert t.columns == [*TASKS, "avg"]
    cell = t.ours["softmax"][0]
    assert cell.mean == pytest.approx(34.0) and cell.n == 3
    assert cell.std == pytest.approx(statistics.stdev([30.0, 34.0, 38.0]))  # 4.0
    avg = t.ours["softmax"][-1]
    assert avg.mean == pytest.approx(statistics.mean(34.0 + i for i in range(5)))
    assert t.ours["lotformer"][0].best and not t.ours["softmax"][0].best  # 40 beats 34


def test_a_failed_run_is_footnoted_and_not_averaged(rows):
    t = tables.lra_accuracy(rows)
    cell = t.ours["lotformer"][0]
    assert cell.mean == pytest.approx(40.0) and cell.n == 1 and cell.std is None
    note = t.notes[cell.notes[0] - 1]
    assert "seed 1: error" in note and "training loss is nan" in note
    md = tables.to_markdown(t)
    assert f"**40.00 (1)** [{cell.notes[0]}]" in md  # best of the column, footnoted


def test_a_missing_cell_is_a_dash_with_a_note_never_zero(rows):
    t = tables.lra_accuracy(rows)
    text_cell = t.ours["performer"][1]
    assert text_cell.mean is None and "performer / text: no finished run" in t.notes
    assert t.ours["performer"][-1].mean is None  # no average over four of five tasks
    line = next(x for x in tables.to_markdown(t).splitlines() if x.startswith("| performer"))
    assert line.count("| - [") == 4 and " 0.00" not in line


def test_published_rows_are_apart_and_marked_reported(rows):
    t = tables.lra_accuracy(rows, reported=tables.published_accuracy())
    name = "Transformer, reported (LRA paper (Tay et al. 2021) Table 1)"
    assert t.reported[name][0].mean == 36.37
    assert all("reported" not in k for k in t.ours)
    tex = tables.to_latex(t)
    assert tex.index(r"\midrule", tex.index("softmax")) < tex.index("Transformer, reported")
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"$\pm$" in tex


def test_other_profiles_and_splits_stay_out(rows):
    t = tables.lra_accuracy(rows, profile="smoke")
    assert list(t.ours) == ["softmax"] and t.columns == ["listops", "avg"]
    assert t.ours["softmax"][0].mean == pytest.approx(99.0)


def test_only_the_latest_configuration_is_shown(rows):
    newer = pd.DataFrame(
        [
            {
                **row("performer", "listops", 0, 0.5, config="c2"),
                "finished_at": "2026-11-24T00:00:00+00:00",
            }
        ]
    )
    t = tables.lra_accuracy(pd.concat([rows, newer]))
    cell = t.ours["performer"][0]
    assert cell.mean == pytest.approx(50.0)
    assert "1 older configuration(s) not shown" in t.notes[cell.notes[0] - 1]


def test_two_builds_write_identical_files(rows, tmp_path):
    (tmp_path / "results" / "lra").mkdir(parents=True)
    rows.to_parquet(tmp_path / "results" / "lra" / "lra-a.parquet")
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main(["build", "--results", str(tmp_path / "results"), "--out", str(out)]) == 0
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(
        f"lra_accuracy_{p}{s}" for p in ("paper", "smoke") for s in (".md", ".tex", ".csv")
    )
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    csv = pd.read_csv(outs[0] / "lra_accuracy_paper.csv")
    ours = csv[(csv["kind"] == "ours") & (csv["row"] == "softmax") & (csv["column"] == "listops")]
    assert ours["mean"].item() == pytest.approx(34.0) and ours["n"].item() == 3


def test_an_empty_results_folder_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["build", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "make quickstart" in capsys.readouterr().err
