"""The LRA accuracy table: hand-computed means and stds, failed runs footnoted and never
averaged, missing cells shown as missing, published rows apart, byte-stable output."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from reports import tables
from tests.reports.conftest import TASKS, lra_row


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
