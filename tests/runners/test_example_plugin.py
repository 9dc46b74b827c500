"""The example plugin (examples/nystromformer), installed as a distribution with its entry
point: the zoo finds it with no flag, it honours the contract, and it goes through a sweep,
the smoke LRA and the report to the leaderboard, marked with its source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import attention_zoo as zoo
from attention_zoo.registry import CATALOGUE
from attention_zoo.testing import assert_conforms
from reports.__main__ import build
from results.schema import read_results
from runners.lra import cli as lra_cli
from runners.sweep import cli as sweep_cli
from tests.helpers import distribution
from tests.runners.tiny import lra_args

SOURCE = Path(__file__).resolve().parents[2] / "examples" / "nystromformer" / "src"
DIST = "nystromformer-attention 0.1.0"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The example's package on sys.path with a dist-info declaring its entry point, as
    `pip install -e examples/nystromformer` leaves it; all undone afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    points = {"attention_zoo.mechanisms": {"nystromformer": "nystromformer_attention"}}
    distribution(site, "nystromformer-attention", "0.1.0", {}, points, ("nystromformer_attention",))
    monkeypatch.syspath_prepend(str(SOURCE))
    monkeypatch.syspath_prepend(str(site))
    with CATALOGUE.scratch():
        CATALOGUE.discover(again=True)
        yield
    sys.modules.pop("nystromformer_attention", None)


def test_the_installed_example_is_found_with_no_flag_and_honours_the_contract(installed):
    assert "nystromformer" in zoo.names()
    assert zoo.info("nystromformer").source == DIST
    assert zoo.info("nystromformer").complexity == "linear"
    assert_conforms("nystromformer", {"landmarks": 8})


@pytest.mark.slow
def test_the_example_goes_through_a_sweep_and_the_smoke_lra_to_the_leaderboard(
    installed, listops_dir, tmp_path
):
    results = tmp_path / "results"
    sweep = ["--methods=nystromformer,softmax", "--lengths=64", "--passes=forward", "--quiet"]
    sweep += ["--min-time=0", "--min-repeats=1", "--max-repeats=1", "--device=cpu"]
    assert sweep_cli.main([*sweep, f"--out={results / 'sweep'}"]) == 0
    rows = read_results(results / "sweep").set_index("method")["mechanism_source"]
    assert rows.to_dict() == {"nystromformer": DIST, "softmax": "built-in"}
    lra = lra_args(listops_dir, tmp_path, "--task=listops", "--methods=nystromformer,softmax")
    lra = [a for a in lra if not a.startswith(("--out=", "--curves="))]
    lra += [f"--out={results / 'lra'}", f"--curves={results / 'lra_curves'}"]
    assert lra_cli.main(lra) == 0
    build(results, tmp_path / "out")
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert f'nystromformer <span class="plugin">plugin: {DIST}</span>' in page
    assert "softmax <span" not in page


@pytest.mark.slow
def test_the_example_s_own_test_suite_passes():
    """Its tests against softmax and torch.linalg.pinv, and the contract per property."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), str(SOURCE.parents[2])])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SOURCE.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
