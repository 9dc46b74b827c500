"""The LRA accuracy table: hand-computed means and stds, failed runs footnoted and never
averaged, missing cells shown as missing, published rows apart, byte-stable output."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from reports import leaderboard, tables
from tests.reports.conftest import TASKS, lra_row


def test_cells_are_mean_and_sample_std_over_seeds(rows):
    t = tables.lra_accuracy(rows)
    assert t.columns == [*TASKS, "avg"]
    cell = t.ours["softmax"][0]
    assert cell.mean == pytest.approx(34.0) and cell.n == 3
    assert cell.std == pytest.approx(statistics.stdev([30.0, 34.0, 38.0]))  # 4.0
    avg = t.ours["softmax"][-1]
    assert avg.mean == pytest.approx(statistics.mean(34.0 + i for i in range(5)))
    # lotformer's 40 beats softmax's 34, but from one seed: no interval, so no claim
    assert t.ours["lotformer"][0].tie and t.ours["softmax"][0].tie
    assert not t.ours["lotformer"][0].best


def test_a_failed_run_is_footnoted_and_not_averaged(rows):
    t = tables.lra_accuracy(rows)
    cell = t.ours["lotformer"][0]
    assert cell.mean == pytest.approx(40.0) and cell.n == 1 and cell.std is None
    note = t.notes[cell.notes[0] - 1]
    assert "seed 1: error" in note and "training loss is nan" in note
    md = tables.to_markdown(t)
    assert f"| 40.00 (1) (tie) [{cell.notes[0]}] |" in md  # tied for best, footnoted


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
                **lra_row("performer", "listops", 0, 0.5, config="c2"),
                "finished_at": "2026-11-24T00:00:00+00:00",
            }
        ]
    )
    t = tables.lra_accuracy(pd.concat([rows, newer]))
    cell = t.ours["performer"][0]
    assert cell.mean == pytest.approx(50.0)
    assert "1 older configuration(s) not shown" in t.notes[cell.notes[0] - 1]


def test_each_row_carries_its_provenance(rows):
    t = tables.lra_accuracy(rows, reported=tables.published_accuracy())
    assert t.provenance["softmax"] == "commit 01234567 · Test CPU (cpu) · 2026-11-23 · 15 row(s)"
    assert t.provenance["Transformer, reported (LRA paper (Tay et al. 2021) Table 1)"].startswith(
        "published: LRA paper"
    )


def test_a_plugin_mechanism_s_rows_carry_its_source_and_the_page_shows_it(rows):
    plugin = [
        {**lra_row("nystromformer", task, 0, 0.3), "mechanism_source": "nystrom-attention 0.1.0"}
        for task in TASKS
    ]
    built_in = rows.assign(mechanism_source="built-in")
    t = tables.lra_accuracy(pd.concat([built_in, pd.DataFrame(plugin)], ignore_index=True))
    assert t.sources == {"nystromformer": "nystrom-attention 0.1.0"}
    assert t.provenance["nystromformer"].endswith("· plugin: nystrom-attention 0.1.0")
    assert "plugin" not in t.provenance["softmax"]
    page = leaderboard.table_html(t, "t")
    assert page.count('class="plugin"') == 1
    assert 'nystromformer <span class="plugin">plugin: nystrom-attention 0.1.0</span>' in page


def test_efficiency_cells_are_steps_per_second_with_speed_up_over_softmax(efficiency):
    t = tables.lra_efficiency(efficiency)
    assert t.columns == ["steps/s 1K", "steps/s 4K", "memory GB 1K", "memory GB 4K"]
    lot = t.ours["lotformer"]
    assert lot[1].mean == 6.0 and lot[1].extra == "(3.0×)"  # 6 / 2; the older 1.0 row replaced
    assert lot[0].extra == "(0.8×)" and lot[3].mean == pytest.approx(2.0)  # 6 / 8; 2e9 bytes
    assert t.ours["softmax"][1].extra == "(1.0×)"
    assert lot[1].best and t.ours["performer"][2].best  # fastest at 4K; least memory at 1K
    assert not t.ours["softmax"][3].best  # memory: lower is better, 9 GB is the worst


def test_an_oom_efficiency_cell_is_a_dash_with_its_reason(efficiency):
    t = tables.lra_efficiency(efficiency)
    speed, memory = t.ours["performer"][1], t.ours["performer"][3]
    assert speed.mean is None and memory.mean is None
    note = t.notes[speed.notes[0] - 1]
    assert note.startswith("performer at N = 4096: oom") and "CUDA out of memory" in note
    line = next(x for x in tables.to_markdown(t).splitlines() if x.startswith("| performer"))
    assert line.count("- [1]") == 2 and "0.00" not in line


def test_published_efficiency_rows_have_their_own_speed_ups(efficiency):
    t = tables.lra_efficiency(efficiency, tables.published_efficiency())
    assert t.columns[:4] == ["steps/s 1K", "steps/s 2K", "steps/s 3K", "steps/s 4K"]
    performer = t.reported["Performer, reported (LRA paper (Tay et al. 2021) Table 2)"]
    assert performer[3].mean == 8.0 and performer[3].extra == "(5.7×)"  # 8.0 / 1.4
    assert performer[7].mean == 1.06  # GB at 4K
    assert "N = 2048: not in our measured lengths" in t.notes  # one note, not one per method
    assert "Test CPU (cpu), text model, batch 32, amp bf16" in t.title
    tex = tables.to_latex(t)
    assert r"(5.7$\times$)" in tex and "Memory GB 4K" in tex


def test_throughput_table_shows_the_rate_and_the_fraction_of_a_known_gpus_peak(sweep):
    from reports.peaks import peak_tflops

    flops = 4.0 * 8 * sweep["seq_len"] ** 2 * 64
    rows = sweep.assign(
        device="cuda",
        device_name="NVIDIA H200",
        dtype="bf16",
        flops=flops,
        achieved_tflops=flops / (sweep["time_ms"] * 1e-3) / 1e12,
    )
    table = tables.sweep_throughput(rows)
    assert table.columns == ["1K", "2K", "4K", "8K"]
    soft = table.ours["softmax, forward"]
    expected = 4.0 * 8 * 1024**2 * 64 / 10e-3 / 1e12
    assert soft[0].mean == pytest.approx(expected)
    assert soft[0].extra == f"({100 * expected / 989.5:.1f}%)"
    assert soft[3].mean is None and "oom" in table.notes[soft[3].notes[0] - 1]
    assert "989.5" in table.legend
    cpu = tables.sweep_throughput(rows.assign(device="cpu", device_name="Test CPU", dtype="fp32"))
    assert cpu.ours["softmax, forward"][0].extra == "" and "peak" not in cpu.legend
    assert (
        peak_tflops("NVIDIA H100 PCIe") == 756.5 and peak_tflops("NVIDIA H100 80GB HBM3") == 989.5
    )
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0 and peak_tflops("NVIDIA L40S") == 362.05
    assert peak_tflops("NVIDIA L4") == 121.0 and peak_tflops("AMD EPYC 7B13") is None


def seeds_rows(method, task, accuracies, collapsed=None, profile="mini"):
    return [
        {**lra_row(method, task, seed, acc, profile=profile), "collapsed": c}
        for seed, (acc, c) in enumerate(
            zip(accuracies, collapsed or [False] * len(accuracies), strict=True)
        )
    ]


def test_a_cell_carries_a_hand_computed_student_t_interval():
    t = tables.lra_accuracy(pd.DataFrame(seeds_rows("softmax", "listops", [0.30, 0.32, 0.34])),
                            profile="mini")  # fmt: skip
    cell = t.ours["softmax"][0]
    half = 4.303 * 2.0 / 3**0.5  # t(0.975, 2) * s / sqrt(n), s = 2 points
    assert cell.interval == pytest.approx((32.0 - half, 32.0 + half))
    assert "32.00 ± 2.00 (3) [27.0, 37.0]" in tables.format_cell(cell)


def test_collapsed_runs_are_counted_and_the_mean_is_also_given_without_them():
    rows = pd.DataFrame(
        seeds_rows("lotformer", "listops", [0.17, 0.35, 0.37], [True, False, False])
    )
    cell = tables.lra_accuracy(rows, profile="mini").ours["lotformer"][0]
    assert cell.collapsed == 1 and cell.mean == pytest.approx(29.67, abs=0.01)
    assert cell.without_collapsed == pytest.approx(36.0)
    assert "1/3 collapsed (without them 36.00)" in tables.format_cell(cell)


def test_the_best_is_bold_only_when_its_interval_clears_the_next_one():
    apart = pd.DataFrame(
        seeds_rows("softmax", "listops", [0.36, 0.37, 0.38])
        + seeds_rows("lotformer", "listops", [0.20, 0.21, 0.22])
    )
    t = tables.lra_accuracy(apart, profile="mini")
    assert t.ours["softmax"][0].best and not t.ours["softmax"][0].tie
    close = pd.DataFrame(
        seeds_rows("softmax", "listops", [0.30, 0.37, 0.44])
        + seeds_rows("lotformer", "listops", [0.33, 0.35, 0.37])
        + seeds_rows("performer", "listops", [0.10, 0.11, 0.12])
    )
    t = tables.lra_accuracy(close, profile="mini")
    assert not any(cells[0].best for cells in t.ours.values())
    assert t.ours["softmax"][0].tie and t.ours["lotformer"][0].tie
    assert not t.ours["performer"][0].tie  # clear of the best: not part of the tie


def test_the_paired_difference_to_softmax_uses_the_shared_seeds():
    from reports import stats

    diff, interval, n = stats.paired_difference({0: 36.0, 1: 35.0, 2: 40.0}, {0: 33.0, 1: 34.0})
    assert n == 2 and diff == pytest.approx(2.0)  # (3 + 1) / 2; seed 2 has no partner
    half = 12.706 * 2**0.5 / 2**0.5  # t(0.975, 1) * sd([3, 1]) / sqrt(2)
    assert interval == pytest.approx((2.0 - half, 2.0 + half))
    assert stats.paired_difference({0: 1.0}, {1: 1.0}) is None
    assert stats.t975(2) == 4.303 and stats.t975(31) == pytest.approx(2.0395, abs=1e-3)


def test_the_difference_table_pairs_each_method_with_softmax_by_seed():
    rows = pd.DataFrame(
        seeds_rows("softmax", "listops", [0.30, 0.32, 0.34])
        + seeds_rows("lotformer", "listops", [0.20, 0.23, 0.26])
    )
    t = tables.lra_vs_softmax(rows, "mini")
    cell = t.ours["lotformer"][0]
    assert list(t.ours) == ["lotformer"] and cell.n == 3
    assert cell.mean == pytest.approx(-9.0)  # -10, -9, -8 points
    half = 4.303 * 1.0 / 3**0.5
    assert cell.interval == pytest.approx((-9.0 - half, -9.0 + half))


def test_runs_on_other_data_are_not_averaged_and_a_mixed_column_is_footnoted():
    old = [{**r, "data_hash": "aaaa", "finished_at": "2026-11-01T00:00:00+00:00"}
           for r in seeds_rows("softmax", "listops", [0.90, 0.90])]  # fmt: skip
    new = [{**r, "data_hash": "bbbb"} for r in seeds_rows("softmax", "listops", [0.30, 0.34])]
    other = [{**r, "data_hash": "cccc"} for r in seeds_rows("lotformer", "listops", [0.2, 0.2])]
    t = tables.lra_accuracy(pd.DataFrame(old + new + other), profile="mini")
    soft = t.ours["softmax"][0]
    assert soft.mean == pytest.approx(32.0) and soft.n == 2  # the newer data only
    notes = [t.notes[i - 1] for i in soft.notes]
    assert any("runs on other data (aaaa)" in n for n in notes)
    assert any("ran on different data" in n for n in notes)
    assert any("ran on different data" in t.notes[i - 1] for i in t.ours["lotformer"][0].notes)


def test_published_rows_beside_another_profile_are_headed_not_comparable(rows):
    t = tables.lra_accuracy(rows, "smoke", tables.published_accuracy(), comparable=False)
    assert t.columns == ["listops", "avg"]  # only our tasks: no columns of dashes
    assert t.reported_label.endswith("not comparable: different data sizes and budgets")
    md = tables.to_markdown(t).splitlines()
    label = next(i for i, x in enumerate(md) if "not comparable" in x)
    first = next(i for i, x in enumerate(md) if ", reported (" in x)
    assert label == first - 1 and label > next(i for i, x in enumerate(md) if "| softmax" in x)
    assert "not comparable" in tables.to_latex(t) and "not comparable" in tables.to_csv(t)
    paper = tables.lra_accuracy(rows, "paper", tables.published_accuracy())
    assert not paper.reported_label and "not comparable" not in tables.to_markdown(paper)


def test_an_ablation_variant_is_paired_with_its_mechanism_at_the_profile_settings():
    base = pd.DataFrame(
        seeds_rows("softmax", "listops", [0.36, 0.37, 0.38])
        + seeds_rows("lotformer", "listops", [0.20, 0.22, 0.24])
    )
    cls = '["methods.lotformer.cls_tokens=1"]'
    ablation = pd.DataFrame(
        [{**r, "overrides": cls} for r in seeds_rows("lotformer", "listops", [0.30, 0.33, 0.36])]
        + [
            {**r, "overrides": '["model.pooling=cls"]'}
            for r in seeds_rows("softmax", "listops", [0.36, 0.38])
        ]
    )
    t = tables.lra_ablation(ablation, base, "mini")
    assert t.columns == ["listops", "listops vs base"]
    assert list(t.ours) == ["softmax (mini)", "softmax [pooling=cls]", "lotformer (mini)",
                            "lotformer [cls_tokens=1]"]  # fmt: skip
    acc, diff = t.ours["lotformer [cls_tokens=1]"]
    assert acc.mean == pytest.approx(33.0) and acc.n == 3
    assert diff.mean == pytest.approx(11.0) and diff.n == 3  # +10, +11, +12 points
    half = 4.303 * 1.0 / 3**0.5
    assert diff.interval == pytest.approx((11.0 - half, 11.0 + half))
    assert t.ours["lotformer (mini)"][1].mean is None  # the base has no difference to itself
    pooled = t.ours["softmax [pooling=cls]"][1]
    assert pooled.n == 2 and pooled.mean == pytest.approx(0.5)  # seeds 0 and 1 only
    assert tables.variant_label('["methods.lotformer.r=32", "model.pooling=cls"]') == (
        "r=32, pooling=cls"
    )


def test_a_cell_whose_every_run_collapsed_is_never_bold():
    rows = pd.DataFrame(
        seeds_rows("flash", "pathfinder", [0.51, 0.50], [True, True])
        + seeds_rows("softmax", "pathfinder", [0.49], [True])
    )
    t = tables.lra_accuracy(rows, profile="mini")
    assert not any(cells[0].best or cells[0].tie for cells in t.ours.values())
