"""`--import MODULE_OR_FILE` on every runner: the mechanism a file registers is swept, trained
and passed on to the grid's jobs, its rows say where it came from, and a missing import is
an error naming it before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from attention_zoo.registry import CATALOGUE
from results.schema import read_results
from runners.bench.cli import main as bench_main
from runners.grid import cli as grid
from runners.grid.plan import plan_lra
from runners.lra import cli as lra_cli
from runners.sweep import cli as sweep_cli
from tests.runners.tiny import lra_args

PLUGIN = '''
from attention_zoo import register
from attention_zoo.softmax import Softmax


@register("imported_softmax", complexity="quadratic")
class ImportedSoftmax(Softmax):
    """Softmax registered from a file outside the package."""
'''
SWEEP = ["--lengths=16", "--passes=forward", "--heads=1", "--head-dim=8", "--min-time=0"]
SWEEP += ["--min-repeats=1", "--max-repeats=1", "--device=cpu", "--quiet"]


@pytest.fixture
def plugin(tmp_path) -> Path:
    """A .py file registering `imported_softmax`; what it registers is undone afterwards."""
    path = tmp_path / f"plugin_{tmp_path.name}.py"
    path.write_text(PLUGIN)
    with CATALOGUE.scratch():
        yield path


def test_the_sweep_measures_a_mechanism_from_an_imported_file(plugin, tmp_path):
    out = tmp_path / "sweep"
    argv = ["--import", str(plugin), "--methods=imported_softmax", *SWEEP, f"--out={out}"]
    assert sweep_cli.main(argv) == 0
    rows = read_results(out)
    assert list(rows["method"]) == ["imported_softmax"] and list(rows["status"]) == ["ok"]
    assert list(rows["mechanism_source"]) == [f"file {plugin.resolve()}"]


def test_the_lra_runner_trains_a_mechanism_from_an_imported_file(listops_dir, plugin, tmp_path):
    argv = lra_args(listops_dir, tmp_path, "--task=listops", "--methods=softmax,imported_softmax")
    assert lra_cli.main([*argv, "--import", str(plugin)]) == 0
    rows = read_results(tmp_path / "lra").set_index("method")
    assert set(rows.loc["imported_softmax", "mechanism_source"]) == {f"file {plugin.resolve()}"}
    assert set(rows.loc["softmax", "mechanism_source"]) == {"built-in"}


def test_the_grid_loads_the_import_and_passes_it_to_every_job(listops_dir, plugin, tmp_path):
    runner = [*lra_args(listops_dir, tmp_path), "--import", str(plugin)]
    args, rest = grid.build_parser().parse_known_args(
        ["lra", "--tasks=listops", "--methods=all", f"--jobs-dir={tmp_path}", *runner]
    )
    cells, _ = plan_lra(args.tasks, args.methods, args.seeds, rest)
    assert "listops-imported_softmax-s0" in {cell.id for cell in cells}
    assert all(cell.argv[-2:] == ["--import", str(plugin)] for cell in cells)


@pytest.mark.parametrize("command", ["sweep", "lra", "grid", "bench"])
def test_a_missing_import_is_an_error_naming_it_before_any_work(
    command, listops_dir, tmp_path, capsys
):
    absent = tmp_path / "absent.py"
    out = tmp_path / "out"
    argv = {
        "sweep": lambda: sweep_cli.main([*SWEEP, f"--out={out}", "--import", str(absent)]),
        "lra": lambda: lra_cli.main([*lra_args(listops_dir, out), "--import", str(absent)]),
        "grid": lambda: grid.main(
            ["lra", f"--jobs-dir={out}", *lra_args(listops_dir, out), "--import", str(absent)]
        ),
        "bench": lambda: bench_main(["check", "--import", str(absent)]),
    }
    with pytest.raises(SystemExit):
        argv[command]()
    assert f"--import {absent}: no such file" in capsys.readouterr().err
    assert not out.exists()
