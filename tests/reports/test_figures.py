"""Figures read their numbers from the rows: line data equal the finished cells, a line stops
where its mechanism stopped and says why, styles are one per mechanism everywhere, the files
are non-trivial and byte-stable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports import data, figures, style, tables

ROOT = Path(__file__).resolve().parents[2]


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_scaling_lines_are_the_finished_cells_and_stop_where_oom(sweep):
    fig = figures.scaling(sweep)
    time_fwd, time_fb = fig.axes[0], fig.axes[1]  # row 0: time; columns: fwd, fwd+bwd
    softmax = lines_by_label(time_fwd)["softmax"]
    np.testing.assert_array_equal(softmax.get_xdata(), [1024, 2048, 4096])  # no point at 8K
    np.testing.assert_allclose(softmax.get_ydata(), [10, 40, 160])
    np.testing.assert_allclose(lines_by_label(time_fb)["lotformer"].get_ydata(), [12, 24, 48, 96])
    mem = lines_by_label(fig.axes[2])["lotformer"]
    np.testing.assert_allclose(mem.get_ydata(), [8, 16, 32, 64])  # MiB
    stopped = [t.get_text() for t in time_fwd.texts]
    assert "OOM" in stopped  # the first length that did not run is marked
    assert "Test CPU (cpu), fp32, batch 1" in fig._suptitle.get_text()


def test_scaling_draws_linear_and_quadratic_guides(sweep):
    ax = figures.scaling(sweep).axes[0]
    guides = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    slopes = []
    for g in guides:
        x, y = np.asarray(g.get_xdata(), float), np.asarray(g.get_ydata(), float)
        if len(x) > 2:
            slopes.append(round(np.log(y[-1] / y[0]) / np.log(x[-1] / x[0]), 6))
    assert 1.0 in slopes and 2.0 in slopes


def test_a_mechanism_has_one_look_in_every_figure(sweep, curves):
    scaling = lines_by_label(figures.scaling(sweep).axes[0])
    curve = lines_by_label(figures.learning_curves(curves).axes[0])
    for method in ("softmax", "lotformer"):
        a, b = scaling[method], curve[method]
        assert (a.get_color(), a.get_marker(), a.get_linestyle()) == (
            b.get_color(),
            b.get_marker(),
            b.get_linestyle(),
        )
    looks = {tuple(style.method_style(m).values()) for m in style.KNOWN}
    markers = {style.method_style(m)["marker"] for m in style.KNOWN}
    assert len(looks) == len(markers) == len(style.KNOWN)  # apart in grayscale too
    # a mechanism the style does not know: its look from its name alone, in any process
    # (not Python's salted hash), drawn after the known ones
    looks_elsewhere = {look_in_a_new_process("newformer", seed) for seed in ("1", "2")}
    assert looks_elsewhere == {str(style.method_style("newformer"))}
    assert style.style_order("newformer") >= len(style.KNOWN)


def look_in_a_new_process(method: str, hash_seed: str) -> str:
    code = f"from reports.style import method_style; print(method_style({method!r}))"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_learning_curves_show_the_seed_mean_and_band(curves):
    fig = figures.learning_curves(curves, majority=0.25)
    line = lines_by_label(fig.axes[0])["lotformer"]
    np.testing.assert_allclose(line.get_ydata(), [41.5, 42.5, 43.5])  # mean of 41 and 42, ...
    assert len(fig.axes[0].collections) == 2  # a min-max band per method
    assert lines_by_label(fig.axes[0])["majority class (val)"].get_ydata()[0] == 25.0
    assert "2 seeds" in fig._suptitle.get_text()


def test_bubble_points_use_lra_average_speed_and_memory_at_the_longest_length(rows, efficiency):
    table = tables.lra_accuracy(rows)
    points, what = figures.bubble_points(table, efficiency)
    points = points.set_index("method")
    assert what == "LRA average test accuracy (%)"
    assert list(points.index) == ["lotformer", "softmax"]  # performer: no LRA average, OOM
    assert points.loc["lotformer", "steps_per_s"] == 6.0
    assert points.loc["lotformer", "memory_gb"] == pytest.approx(2.0)
    assert points.loc["softmax", "accuracy"] == pytest.approx(36.0)  # mean of 34..38


def test_bubble_falls_back_to_the_tasks_every_plotted_method_finished(rows, efficiency):
    table = tables.lra_accuracy(rows[rows["task"].isin(["listops", "image"])])
    points, what = figures.bubble_points(table, efficiency)
    assert what == "mean test accuracy over listops, image (%)"
    assert points.set_index("method").loc["softmax", "accuracy"] == pytest.approx(35.5)


def test_saved_figures_are_non_trivial_and_byte_stable(sweep, tmp_path):
    a = style.save(figures.scaling(sweep), tmp_path / "a")
    b = style.save(figures.scaling(sweep), tmp_path / "b")
    assert [p.suffix for p in a] == [".png", ".pdf"]
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
    assert a[1].read_bytes().startswith(b"%PDF") and a[1].stat().st_size > 10_000
    with Image.open(a[0]) as png:
        pixels = np.asarray(png.convert("L"))
    assert png.size[0] > 1000 and (pixels < 128).mean() > 0.01  # drawn on, not blank
    assert not list(tmp_path.glob(".*"))  # no temporaries left


def test_options_tell_two_lines_of_one_method_apart(sweep):
    other = sweep[sweep["method"] == "lotformer"].assign(method_options='{"r": 64}')
    labels = set(lines_by_label(figures.scaling(pd.concat([sweep, other])).axes[0]))
    assert {"lotformer [r=n/a]", "lotformer [r=64]", "softmax"} <= labels, labels


def test_the_main_figure_has_each_mechanisms_default_and_the_variants_their_own(sweep):
    marked = sweep.assign(default_options=True)
    lotformer = sweep[sweep["method"] == "lotformer"]
    later = {"measured_at": "2026-11-24T10:00:00+00:00", "default_options": False}
    variants = [
        lotformer.assign(method_options=json.dumps({"impl": impl, "r": 32}), **later)
        for impl in ("reference", "products")
    ]
    older = lotformer.assign(  # before the sweep marked defaults: options it had then
        method_options='{"r": 32}', measured_at="2026-11-01T10:00:00+00:00"
    ).drop(columns="default_options", errors="ignore")
    rows = pd.concat([marked, *variants, older], ignore_index=True)
    main, others = data.configurations(rows, data.marked_defaults(rows))
    names = [n for n in lines_by_label(figures.scaling(main).axes[0]) if not n.startswith("_")]
    assert sorted(names) == ["lotformer", "softmax"]  # one curve per mechanism
    assert len(main) == len(sweep)
    labels = [n for n in lines_by_label(figures.scaling(others).axes[0]) if not n.startswith("_")]
    assert len(labels) == 4 and all(n.startswith("lotformer [") for n in labels)  # not softmax
    assert max(map(len, labels)) <= 40, labels


def gpu_sweep(sweep):
    """The fixture's rows as if measured on an H200 in bf16, with FLOP counts."""
    flops = 4.0 * 8 * sweep["seq_len"] ** 2 * 64
    return sweep.assign(
        device="cuda",
        device_name="NVIDIA H200",
        dtype="bf16",
        flops=flops,
        achieved_tflops=flops / (sweep["time_ms"] * 1e-3) / 1e12,
    )


def test_rows_with_flop_counts_get_an_achieved_rate_row_under_the_gpus_peak(sweep):
    rows = gpu_sweep(sweep)
    fig = figures.scaling(rows)
    assert len(fig.axes) == 6  # time, memory, TFLOP/s x forward, forward+backward
    rate = lines_by_label(fig.axes[4])["softmax"]
    ok = rows[(rows["method"] == "softmax") & (rows["pass"] == "forward") & (rows.status == "ok")]
    assert list(rate.get_ydata()) == pytest.approx(list(ok.sort_values("seq_len").achieved_tflops))
    peaks = [line for line in fig.axes[4].lines if list(line.get_ydata()) == [989.5, 989.5]]
    assert len(peaks) == 1
    assert len(figures.scaling(sweep).axes) == 4  # rows without counts: no rate row


def test_an_unknown_device_gets_the_rate_row_without_a_peak(sweep):
    fig = figures.scaling(gpu_sweep(sweep).assign(device_name="Some Future GPU"))
    assert not [t for t in fig.axes[4].texts if "peak" in t.get_text()]
    assert "dense bf16 peak" in "".join(
        t.get_text() for t in figures.scaling(gpu_sweep(sweep)).axes[4].texts
    )


def test_a_one_task_bubble_carries_each_cells_interval_as_a_bar(rows, efficiency):
    table = tables.lra_accuracy(rows[rows["task"] == "listops"])
    points, what = figures.bubble_points(table, efficiency)
    softmax = points.set_index("method").loc["softmax"]
    assert (softmax["low"], softmax["high"]) == pytest.approx(table.ours["softmax"][0].interval)
    assert what == "test accuracy on listops (%), bars: 95% interval"
    fig = figures.bubble(points, what, efficiency, "paper")
    bars = [c for c in fig.axes[0].collections if type(c).__name__ == "LineCollection"]
    assert len(bars) == 1  # softmax's; lotformer has one finished seed, so no interval
