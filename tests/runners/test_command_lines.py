"""The runners' command lines agree: --tasks, --methods, --seeds (singular too), `all`."""

from __future__ import annotations

import pytest

import attention_zoo as zoo
from lra.cli import main as data_main
from results.schema import read_results
from runners.bench.gate import cases
from runners.grid import cli as grid
from runners.grid.plan import grid_folder, plan_lra
from runners.lra import cli as lra_cli
from runners.sweep import cli as sweep_cli
from tests.runners.tiny import lra_args


def dry_run(capsys, argv: list[str]) -> str:
    assert lra_cli.main([*argv, "--dry-run"]) == 0
    return capsys.readouterr().out


def test_the_lra_runner_takes_plural_and_singular_flags_alike(listops_dir, tmp_path, capsys):
    base = lra_args(listops_dir, tmp_path)
    both = "softmax,lotformer"
    plural = dry_run(capsys, ["--tasks=listops", f"--methods={both}", "--seeds=0,1", *base])
    singular = dry_run(capsys, ["--task=listops", f"--method={both}", "--seed=0,1", *base])
    assert plural == singular and plural.count("listops-") == 4
    every = dry_run(capsys, ["--tasks=listops", "--methods=all", *base]).splitlines()
    assert (
        sorted(line.split("-")[1] for line in every if line.startswith("listops-")) == zoo.names()
    )


@pytest.mark.slow
def test_the_sweep_takes_all_and_the_singular(tmp_path):
    common = ["--lengths=16", "--passes=forward", "--heads=1", "--head-dim=8", "--min-time=0"]
    common += ["--min-repeats=1", "--max-repeats=1", "--device=cpu", "--quiet"]
    assert sweep_cli.main(["--methods=all", *common, f"--out={tmp_path / 'all'}"]) == 0
    assert sorted(read_results(tmp_path / "all")["method"]) == zoo.names()
    assert sweep_cli.main(["--method=softmax", *common, f"--out={tmp_path / 'one'}"]) == 0
    assert list(read_results(tmp_path / "one")["method"]) == ["softmax"]


def test_the_grid_takes_the_singular_for_the_same_cells(listops_dir, tmp_path):
    def folder(*flags: str):
        args, rest = grid.build_parser().parse_known_args(
            ["lra", f"--jobs-dir={tmp_path}", *flags, *lra_args(listops_dir, tmp_path)]
        )
        cells, _ = plan_lra(args.tasks, args.methods, args.seeds, rest)
        return grid_folder(args.jobs_dir, "lra", cells), len(cells)

    plural = folder("--tasks=listops", "--methods=softmax", "--seeds=0,1")
    assert plural == folder("--task=listops", "--method=softmax", "--seed=0,1")
    assert plural[1] == 2


def test_the_data_directory_goes_before_or_after_the_subcommand(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert data_main(["--data-dir", str(before), "generate", "listops", "--count", "30"]) == 0
    assert data_main(["generate", "listops", "--count", "30", "--data-dir", str(after)]) == 0
    for split in ("train", "val", "test"):
        name = f"listops-1000/basic_{split}.tsv"
        assert (before / name).read_bytes() == (after / name).read_bytes()


def test_the_gate_covers_every_built_in_mechanism():
    built_in = [n for n in zoo.names() if zoo.info(n).source == "built-in"]
    assert sorted({case.method for case in cases()}) == built_in
