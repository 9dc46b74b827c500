"""The sweep: its rows, failures as results, budget skips, resume after a kill, the CLI."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import attention_zoo as zoo
from attention_zoo.registry import CATALOGUE
from attention_zoo.softmax import Softmax
from results.schema import read_results
from runners.arguments import parse_lengths
from runners.measure import allocator
from runners.measure.cases import AttentionCase, Settings, is_out_of_memory
from runners.measure.loop import Chain
from runners.sweep.args import parse_options
from runners.sweep.cli import main
from runners.sweep.run import SCHEMA, curve_labels, run_sweep, skip_reason
from tests.results.contract import assert_fills_what_the_reports_read

ROOT = Path(__file__).resolve().parents[3]
DESIGN_COLUMNS = [
    "run_id",
    "started_at",
    "git_commit",
    "device",
    "device_name",
    "torch_version",
    "status",
    "error",
    "method",
    "method_options",
    "seq_len",
    "batch",
    "heads",
    "head_dim",
    "dtype",
    "pass",
    "time_ms",
    "time_ms_min",
    "time_ms_max",
    "repeats",
    "peak_mem_bytes",
]


def settings(**kw):
    base = {"batch": 1, "heads": 2, "head_dim": 8, "dtype": "fp32", "device": torch.device("cpu")}
    return Settings(**{**base, "min_time_s": 0.0, "min_repeats": 1, "max_repeats": 2, **kw})


def cells(methods, lengths, passes=("forward",)):
    return [
        AttentionCase(m, tuple(sorted(zoo.info(m).defaults.items())), n, p)
        for n in lengths
        for m in methods
        for p in passes
    ]


@pytest.fixture
def failing_mechanisms():
    """Mechanisms that run out of memory / raise / hang from a length on."""
    with CATALOGUE.scratch():

        @zoo.register("oom_at_64", complexity="quadratic")
        class OOM(Softmax):
            def _attend(self, q, k, v, mask):
                if q.shape[2] >= 64:
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")
                return super()._attend(q, k, v, mask)

        @zoo.register("error_at_32", complexity="quadratic")
        class Broken(Softmax):
            def _attend(self, q, k, v, mask):
                if q.shape[2] >= 32:
                    raise ValueError("a bug in the mechanism")
                return super()._attend(q, k, v, mask)

        @zoo.register("slow_at_32", complexity="quadratic")
        class Slow(Softmax):
            def _attend(self, q, k, v, mask):
                if q.shape[2] >= 32:
                    time.sleep(0.3)
                return super()._attend(q, k, v, mask)

        yield


@pytest.mark.slow
def test_rows_have_the_design_columns_and_types(tmp_path):
    _, new = run_sweep(
        cells(["softmax", "lotformer"], [16, 32], ("forward", "forward_backward")),
        settings(),
        tmp_path,
        progress=False,
    )
    assert new == 8
    table = read_results(tmp_path)
    assert len(table) == 8 and set(DESIGN_COLUMNS) <= set(table.columns)
    assert list(table.columns) == SCHEMA.names
    assert_fills_what_the_reports_read(table, "sweep")
    assert (table["status"] == "ok").all()
    assert table["peak_mem_bytes"].dtype == "int64" and table["seq_len"].dtype == "int64"
    assert (table["time_ms_min"] <= table["time_ms"]).all()
    assert (table["time_ms"] <= table["time_ms_max"]).all()
    assert (table["peak_mem_bytes"] >= table["mem_before_bytes"]).all()
    assert table["git_commit"].str.fullmatch(r"[0-9a-f]{40}|unknown").all()
    assert (table["allocator"] == allocator.active()).all()  # what this process runs with
    lot = table[table.method == "lotformer"].iloc[0]
    assert json.loads(lot["method_options"]) == zoo.info("lotformer").defaults
    fb = table[(table.method == "softmax") & (table["pass"] == "forward_backward")]
    fwd = table[(table.method == "softmax") & (table["pass"] == "forward")]
    assert (fb["peak_mem_bytes"].to_numpy() > fwd["peak_mem_bytes"].to_numpy()).all()


@pytest.mark.slow
def test_out_of_memory_is_recorded_longer_lengths_skipped_and_the_sweep_goes_on(
    tmp_path, failing_mechanisms
):
    rows, _ = run_sweep(
        cells(["oom_at_64", "softmax"], [16, 32, 64, 128]), settings(), tmp_path, progress=False
    )
    status = {(r.method, r.seq_len): r.status for r in rows.itertuples()}
    assert [status[("oom_at_64", n)] for n in (16, 32, 64, 128)] == ["ok", "ok", "oom", "skipped"]
    assert all(status[("softmax", n)] == "ok" for n in (16, 32, 64, 128))
    oom = rows[(rows.method == "oom_at_64") & (rows.seq_len == 64)].iloc[0]
    assert "out of memory" in oom.error and math.isnan(oom.time_ms)
    skipped = rows[(rows.method == "oom_at_64") & (rows.seq_len == 128)].iloc[0]
    assert "oom at N=64" in skipped.error


def test_try_after_failure_tries_longer_lengths(tmp_path, failing_mechanisms):
    rows, _ = run_sweep(
        cells(["oom_at_64"], [64, 128]), settings(), tmp_path, progress=False, after_failure=False
    )
    assert list(rows.status) == ["oom", "oom"]


@pytest.mark.slow
def test_errors_and_timeouts_are_rows_too(tmp_path, failing_mechanisms):
    rows, _ = run_sweep(
        cells(["error_at_32", "slow_at_32"], [16, 32]),
        settings(cell_budget_s=0.1),
        tmp_path,
        progress=False,
    )
    status = {(r.method, r.seq_len): (r.status, r.error) for r in rows.itertuples()}
    assert status[("error_at_32", 32)] == ("error", "ValueError: a bug in the mechanism")
    assert status[("slow_at_32", 32)][0] == "timeout"
    assert "cell budget of 0.1 s" in status[("slow_at_32", 32)][1]


def test_cpu_allocator_refusal_counts_as_out_of_memory():
    refusal = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
    )
    assert is_out_of_memory(refusal)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_cells_predicted_over_budget_are_skipped_with_the_reason():
    chain = Chain(points=[(1024, 100.0, 2**20), (2048, 400.0, 2**22)])  # quadratic
    assert chain.predict(4096, 1) == pytest.approx(1600.0)
    assert chain.predict(4096, 2) == pytest.approx(2**24)
    cell = AttentionCase("softmax", (), 4096, "forward")
    reason = skip_reason(chain, cell, settings(cell_budget_s=5.0, min_repeats=3), 2**40, True)
    assert reason.startswith("predicted 1.6 s per call") and "cell budget of 5 s" in reason
    reason = skip_reason(chain, cell, settings(cell_budget_s=60.0), 2**23, True)
    assert "predicted peak memory" in reason
    assert skip_reason(chain, cell, settings(cell_budget_s=60.0), 2**40, True) is None


def test_prediction_is_never_flatter_than_linear():
    chain = Chain(points=[(1024, 10.0, 100), (2048, 11.0, 100)])
    assert chain.predict(8192, 1) == pytest.approx(44.0)


def test_a_quadratic_curve_is_never_predicted_flatter_than_quadratic():
    chain = Chain(points=[(1024, 10.0, 100), (2048, 11.0, 100)], min_slope=2.0)
    assert chain.predict(8192, 1) == pytest.approx(11.0 * 16)
    assert chain.predict(8192, 2) == pytest.approx(400.0)  # memory: still linear at least


def test_rows_carry_the_declared_flops_and_the_achieved_rate(tmp_path):
    rows, _ = run_sweep(
        cells(["softmax", "lotformer"], [32], ("forward", "forward_backward")),
        settings(),
        tmp_path,
        progress=False,
    )
    for r in rows.to_dict("records"):
        info = zoo.info(r["method"])
        options = json.loads(r["method_options"])
        assert r["flops"] == info.flops(1, 2, 32, 8, r["pass"], **options)
        assert r["achieved_tflops"] == pytest.approx(r["flops"] / (r["time_ms"] * 1e-3) / 1e12)
    soft = rows[rows.method == "softmax"].set_index("pass")["flops"]
    assert soft["forward"] == 4 * 2 * 32**2 * 8
    assert soft["forward_backward"] == 3.5 * soft["forward"]


def test_cells_the_time_budget_leaves_are_skipped_rows_and_a_rerun_measures_them(tmp_path):
    todo = cells(["softmax"], [16, 32, 64])
    rows, _ = run_sweep(todo, settings(), tmp_path, progress=False, time_budget_s=1e-9)
    assert list(rows.status) == ["skipped"] * 3
    assert rows.error.str.contains("time budget of 1e-09 s ran out").all()
    assert rows.flops.notna().all() and rows.achieved_tflops.isna().all()
    rows, new = run_sweep(todo, settings(), tmp_path, progress=False)
    assert new == 3 and list(rows.status) == ["ok"] * 3


def test_a_first_call_over_the_budget_gets_a_second_before_a_timeout(tmp_path):
    calls = []
    with CATALOGUE.scratch():

        @zoo.register("compiles_first", complexity="quadratic")
        class CompilesFirst(Softmax):
            def _attend(self, q, k, v, mask):
                calls.append(1)
                if len(calls) == 1:
                    time.sleep(0.3)  # one-off work, as torch.compile's on a first call
                return super()._attend(q, k, v, mask)

        rows, _ = run_sweep(
            cells(["compiles_first"], [16]), settings(cell_budget_s=0.2), tmp_path, progress=False
        )
    assert rows.status.iloc[0] == "ok" and rows.warmup_ms.iloc[0] >= 300
    calls.clear()
    with CATALOGUE.scratch():
        zoo.register("compiles_long", complexity="quadratic")(CompilesFirst)
        rows, _ = run_sweep(
            cells(["compiles_long"], [16]),
            settings(cell_budget_s=10.0, compile_budget_s=0.2),
            tmp_path / "long",
            progress=False,
        )
    row = rows.iloc[0]  # a compile over its budget: a timeout row holding the compile time
    assert row.status == "timeout" and row.warmup_ms >= 300 and row.compile_budget_s == 0.2
    assert "over the compile budget of 0.2 s" in row.error


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_duplicate_or_missing_cells(tmp_path):
    out = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "runners.sweep", "--methods", "softmax,lotformer",
        "--lengths", "16:512", "--passes", "forward", "--device", "cpu", "--heads", "2",
        "--head-dim", "8", "--min-time", "0.15", "--min-repeats", "1", "--quiet", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(read_results(out)) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    measured_before = len(read_results(out))
    assert 3 <= measured_before < 12, "the kill should land mid-sweep"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{12 - measured_before} new rows, {measured_before} already measured" in done.stdout
    table = read_results(out)
    cells_seen = list(zip(table.method, table.seq_len, strict=True))
    assert len(cells_seen) == len(set(cells_seen)) == 12
    # the command line's CPU default
    expected = "system" if allocator.thp_unavailable() else "glibc-thp"
    assert (table["allocator"] == expected).all()
    assert not list(out.glob(".*tmp*"))


def test_curves_of_one_method_are_labelled_by_the_options_that_differ():
    rows = pd.DataFrame(
        {
            "method": ["lotformer", "lotformer", "softmax", "performer"],
            "method_options": [
                '{"impl": "fused", "r": 32}',
                '{"impl": "reference", "r": 32}',
                "{}",
                '{"nb_features": 256}',
            ],
        }
    )
    assert curve_labels(rows) == [
        "lotformer [impl=fused]",
        "lotformer [impl=reference]",
        "softmax",
        "performer",
    ]


def test_parse_lengths():
    assert parse_lengths("512:4096") == [512, 1024, 2048, 4096]
    assert parse_lengths("500:2000") == [512, 1024]
    assert parse_lengths("300,100") == [100, 300]
    with pytest.raises(ValueError, match="LO:HI"):
        parse_lengths("4096:512")


def test_parse_options_checks_names_and_types():
    assert parse_options(["lotformer.r=64", "lotformer.eps=0.5"], ["lotformer"]) == {
        "lotformer": [{"r": 64, "eps": 0.5}]
    }
    several = ["lotformer.impl=fused,reference", "lotformer.r=8,16", "lotformer.r=4,16,4"]
    assert parse_options(several, ["lotformer", "softmax"]) == {
        "lotformer": [
            {"impl": "fused", "r": 4},
            {"impl": "fused", "r": 16},
            {"impl": "reference", "r": 4},
            {"impl": "reference", "r": 16},
        ],
        "softmax": [{}],
    }
    with pytest.raises(ValueError, match="has no option 'rank'"):
        parse_options(["lotformer.rank=3"], ["lotformer"])
    with pytest.raises(ValueError, match="not among --methods"):
        parse_options(["performer.nb_features=3"], ["lotformer"])
    with pytest.raises(ValueError, match="expected an integer"):
        parse_options(["lotformer.r=abc"], ["lotformer"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--methods", "softmx"], "--methods: unknown ['softmx']; expected 'all' or some of"),
        (["--passes", "backward"], "unknown ['backward']"),
        (["--option", "lotformer.r"], "METHOD.NAME=VALUE"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--batch", "0"], ""),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
