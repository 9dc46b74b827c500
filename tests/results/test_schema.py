"""results.schema: the contract between the runners' writers and the reports' readers."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from reports.data import NEEDED
from results import schema
from tests.reports import conftest as fixtures


def fixture_tables() -> dict[str, pd.DataFrame]:
    """The reports' hand-made tables, by the folder they stand for."""
    return {
        "lra": pd.DataFrame([fixtures.lra_row("softmax", "listops", 0, 0.3)]),
        "lra_curves": pd.DataFrame(fixtures.curve_rows()),
        "lra_efficiency": pd.DataFrame([fixtures.efficiency_row("softmax", 1024, 8.0, 1.0)]),
        "sweep": pd.DataFrame([fixtures.sweep_row("softmax", 1024, "forward", 1.0, 2**20)]),
    }


@pytest.mark.parametrize("folder", sorted(fixture_tables()))
def test_the_reports_fixtures_have_the_schemas_columns_and_types(folder):
    frame = fixture_tables()[folder]
    table = schema.TABLES[folder]
    assert not schema.missing_columns(table, frame.columns)  # no column a writer does not make
    assert not [c for c in NEEDED[folder] if c not in frame.columns]  # every column read
    subset = pa.schema([table.field(c) for c in frame.columns])
    pa.Table.from_pandas(frame, schema=subset, preserve_index=False)  # types convert


@pytest.mark.parametrize("folder", sorted(NEEDED))
def test_every_column_the_reports_read_is_in_the_schema(folder):
    assert schema.missing_columns(schema.TABLES[folder], NEEDED[folder]) == []


def test_asking_for_a_column_no_writer_makes_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="'speed'"):
        schema.read_table(tmp_path / "sweep", ["speed"])


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)


def test_a_part_that_is_not_parquet_is_named_and_the_rest_is_read(tmp_path):
    folder = tmp_path / "lra"
    write(folder / "a.parquet", [fixtures.lra_row("softmax", "listops", 0, 0.3)])
    good = (folder / "a.parquet").read_bytes()
    (folder / "b.parquet").write_bytes(good[: len(good) // 2])  # truncated by a copy
    (folder / "c.parquet").write_text("task,method\nlistops,softmax\n")  # a CSV, misnamed
    rows, problems = schema.read_table(folder, NEEDED["lra"])
    assert len(rows) == 1 and rows["accuracy"].iloc[0] == 0.3
    assert [p.split(":")[0] for p in problems] == [
        str(folder / n) for n in ("b.parquet", "c.parquet")
    ]
    assert all("not readable parquet" in p for p in problems)


def test_a_part_without_a_needed_column_is_named_with_the_column(tmp_path):
    folder = tmp_path / "lra"
    row = fixtures.lra_row("softmax", "listops", 0, 0.3)
    write(folder / "old.parquet", [{k: v for k, v in row.items() if k != "majority_accuracy"}])
    write(folder / "new.parquet", [row])
    rows, problems = schema.read_table(folder, NEEDED["lra"])
    assert len(rows) == 1
    assert problems == [f"{folder / 'old.parquet'}: skipped, it has no column 'majority_accuracy'"]


def test_an_older_part_reads_with_the_newer_columns_missing(tmp_path):
    folder = tmp_path / "lra"
    write(folder / "old.parquet", [fixtures.lra_row("softmax", "listops", 0, 0.3)])
    write(folder / "new.parquet", [{**fixtures.lra_row("softmax", "listops", 1, 0.4), "x": 1}])
    rows, problems = schema.read_table(folder)
    assert problems == [] and len(rows) == 2
    assert list(rows.columns) == [*schema.LRA.names, "x"]  # the schema's, then the extras
    assert rows["overrides"].isna().all() and rows["x"].isna().sum() == 1
