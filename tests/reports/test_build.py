"""`python -m reports build`: every artefact from small parquet fixtures, byte-identical on a
second build, what is missing said, an empty folder a message; the leaderboard page sorts in
a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports.__main__ import main
from tests.reports.conftest import (
    curve_rows,
    efficiency_rows,
    lra_rows,
    sweep_rows,
    write_results,
)

EFFICIENCY = "lra_efficiency_cpu-test-cpu-text-32-bf16-paper"
EFFICIENCY_ID = "t-lra-efficiency-cpu-test-cpu-text-32-bf16-paper"  # the page's table id


def standard_results(root: Path) -> Path:
    curves = pd.DataFrame(curve_rows() + curve_rows(task="image", config="old"))
    return write_results(
        root,
        lra=lra_rows(),
        lra_curves=curves,
        lra_efficiency=efficiency_rows(),
        sweep=sweep_rows(),
    )


@pytest.fixture
def results(tmp_path) -> Path:
    return standard_results(tmp_path / "results")


def build(results: Path, out: Path) -> list[str]:
    assert main(["build", "--results", str(results), "--out", str(out)]) == 0
    return sorted(p.name for p in out.iterdir())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The standard results and their report, built once for the tests that only read them:
    (results, out)."""
    root = tmp_path_factory.mktemp("built")
    results = standard_results(root / "results")
    build(results, root / "out")
    return results, root / "out"


@pytest.mark.slow
def test_every_artefact_is_built_and_a_second_build_is_byte_identical(built, tmp_path):
    results, first = built
    names = sorted(p.name for p in first.iterdir())
    stems = {n.rsplit(".", 1)[0] for n in names}
    assert stems == {
        "lra_accuracy_paper",
        "lra_accuracy_smoke",
        "lra_vs_softmax_paper",
        "lra_vs_softmax_smoke",
        EFFICIENCY,
        "scaling_cpu-test-cpu-fp32-1-8-64",
        "curves_paper_listops",
        "curves_paper_image",  # an interrupted run's curve (no LRA row) still shows
        f"bubble_paper_{EFFICIENCY.removeprefix('lra_efficiency_')}",
        f"bubble_smoke_{EFFICIENCY.removeprefix('lra_efficiency_')}",
        "leaderboard",
    }
    assert {n.rsplit(".", 1)[1] for n in names} == {"md", "tex", "csv", "png", "pdf", "html"}
    assert build(results, tmp_path / "b") == names
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    csv = pd.read_csv(first / "lra_accuracy_paper.csv")
    ours = csv[(csv["kind"] == "ours") & (csv["row"] == "softmax") & (csv["column"] == "listops")]
    assert ours["mean"].item() == pytest.approx(34.0) and ours["n"].item() == 3


def test_only_sweep_rows_build_the_figures_and_say_what_is_missing(tmp_path, sweep, capsys):
    results = write_results(tmp_path / "results", sweep=sweep)
    names = build(results, tmp_path / "out")
    assert names == [
        "leaderboard.html",
        "scaling_cpu-test-cpu-fp32-1-8-64.pdf",
        "scaling_cpu-test-cpu-fp32-1-8-64.png",
    ]
    out = capsys.readouterr().out
    assert "not built: LRA accuracy table and bubble chart: no rows in results/lra" in out


def test_an_empty_results_folder_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["build", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "make quickstart" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_broken_part_is_named_and_skipped_and_the_rest_is_built(built, tmp_path, capsys):
    results, built_out = built
    results = Path(shutil.copytree(results, tmp_path / "results"))
    whole = sorted(p.name for p in built_out.iterdir())
    part = results / "sweep" / "sweep-part.parquet"
    data = part.read_bytes()
    (results / "sweep" / "copied.parquet").write_bytes(data[: len(data) // 3])  # truncated
    old = pd.read_parquet(results / "lra" / "lra-part.parquet").drop(columns="majority_accuracy")
    old.to_parquet(results / "lra" / "old.parquet")
    capsys.readouterr()
    assert build(results, tmp_path / "out") == whole
    err = capsys.readouterr().err
    assert f"{results / 'sweep' / 'copied.parquet'}: skipped, not readable parquet" in err
    assert (
        f"{results / 'lra' / 'old.parquet'}: skipped, it has no column 'majority_accuracy'" in err
    )
    for name in ("lra_accuracy_paper.csv", "leaderboard.html"):  # the same rows, the same bytes
        assert (tmp_path / "out" / name).read_bytes() == (built_out / name).read_bytes()


class Rows(HTMLParser):
    """Method names of each table's first body, in page order: {table id: [name, ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[str]] = {}
        self.table = self.body = None
        self.in_summary = False
        self.ready = None
        self.titles: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.ready = a.get("data-ready")
        if tag == "table":
            self.table, self.body = a["id"], None
            self.tables[self.table] = []
        if tag == "tbody":
            self.body = a["class"]
        if tag == "tr" and "title" in a:
            self.titles.append(a["title"])
        self.in_summary = tag == "summary" and self.body == "ours"

    def handle_data(self, data):
        if self.in_summary:
            self.tables[self.table].append(data)
            self.in_summary = False


@pytest.mark.slow
def test_the_page_is_self_contained_with_provenance_on_every_row(built):
    page = (built[1] / "leaderboard.html").read_text()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # nothing fetched
    assert page.count("data:image/png;base64,") == 5  # scaling, 2 curves, 2 bubbles: inlined
    parser = Rows()
    parser.feed(page)
    assert parser.tables["t-lra-accuracy-paper"] == ["lotformer", "performer", "softmax"]
    assert "commit 01234567 · Test CPU (cpu) · 2026-11-23" in parser.titles[0]
    assert "seed 1: error (training loss is nan)" in page  # the failed run, footnoted
    assert 'data-value=""' in page  # missing cells carry no number to sort by


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run(
        [CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run does)")
def test_the_page_renders_and_sorts_in_headless_chromium(built, tmp_path):
    url = (built[1] / "leaderboard.html").as_uri()
    shot = tmp_path / "leaderboard.png"
    chromium(url, tmp_path / "p1", "--window-size=1280,1600", "--hide-scrollbars",
             f"--screenshot={shot}")  # fmt: skip
    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        gray = np.asarray(image.convert("L"))
    assert (gray < 100).mean() > 0.005  # text and table rules were drawn, not a blank page

    # a link's #sort clicks the header: the first click puts the best on top, missing last
    dom = chromium(url + "#sort=t-lra-accuracy-paper:2", tmp_path / "p2", "--dump-dom")
    sorted_by_text = Rows()
    sorted_by_text.feed(dom)
    assert sorted_by_text.ready == "sorted"  # the page's script ran to the end
    assert sorted_by_text.tables["t-lra-accuracy-paper"] == ["lotformer", "softmax", "performer"]
    # memory: lower is better, so the first click sorts ascending (performer 0.4 GB first)
    dom = chromium(f"{url}#sort={EFFICIENCY_ID}:5", tmp_path / "p3", "--dump-dom")  # GB at 1K
    by_memory = Rows()
    by_memory.feed(dom)
    assert by_memory.tables[EFFICIENCY_ID] == ["performer", "lotformer", "softmax"]


@pytest.mark.slow
def test_ablation_rows_build_their_table_and_curves_beside_the_mechanism(results, tmp_path):
    from tests.reports.conftest import lra_row

    cls = '["methods.lotformer.cls_tokens=1"]'
    variant = [{**lra_row("lotformer", "listops", s, a, config="v1"), "overrides": cls}
               for s, a in ((0, 0.45), (1, 0.47))]  # fmt: skip
    points = pd.DataFrame(
        [{**p, "config_hash": "v1"} for p in curve_rows() if p["method"] == "lotformer"]
    )
    write_results(results, lra_ablation=pd.DataFrame(variant), lra_ablation_curves=points)
    names = build(results, tmp_path / "out")
    assert {"lra_ablation_paper.md", "curves_ablation_paper_listops.png"} <= set(names)
    md = (tmp_path / "out" / "lra_ablation_paper.md").read_text()
    assert "| lotformer [cls_tokens=1] | 46.00 ± 1.41 (2)" in md
    accuracy = (tmp_path / "out" / "lra_accuracy_paper.md").read_text()
    assert "cls_tokens" not in accuracy  # the variant never stands in for the profile's run
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "lra_ablation_paper" in page and "curves_ablation_paper_listops" in page
