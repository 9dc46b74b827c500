"""The prepared GPU check on a CPU machine: its plan, the budget split, stage failures,
interruption and the bundle (its GPU stages themselves run only where CUDA is)."""

import json
import re
import sys
import tarfile
import threading
import time

import pytest
import torch

from runners.gpu_check import cli as gpu_check
from runners.gpu_check.cli import Check, Context, Stage


def script(code: str):
    """A stage command list running `code` in a fresh interpreter."""
    return lambda ctx, allotted: [[sys.executable, "-c", code]]


def make_check(tmp_path, stages, budget_s=60.0):
    run_dir = tmp_path / "out" / "gpu_check" / "run"
    run_dir.mkdir(parents=True)
    ctx = Context(tmp_path / "out", run_dir, tmp_path / "data")
    facts = {"device_name": "test", "driver": None, "torch_version": torch.__version__}
    lines = []
    check = Check(stages, ctx, budget_s, facts, bundle=tmp_path / "b.tar.gz", echo=lines.append)
    return check, lines


def appender(tmp_path, name, exit_code=0):
    log = tmp_path / "order.txt"
    return script(f"open({str(log)!r}, 'a').write({name!r} + '\\n'); raise SystemExit({exit_code})")


def test_dry_run_prints_every_stage_in_order_and_a_total_within_the_budget(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    text = capsys.readouterr().out
    names = [s.name for s in gpu_check.STAGES]
    assert names == ["cuda-tests", "sweep", "ds-variants", "bench", "efficiency", "training"]
    positions = [text.index(f"\n{n} ") for n in names]
    assert positions == sorted(positions)
    total = float(re.search(r"predicted total (\d+) s of (\d+) s: fits", text)[1])
    assert total <= gpu_check.DEFAULT_BUDGET_S
    assert "--preset paper" in text and "lotformer.impl=fused,reference" in text
    for variant in ("sinkformer.kernel=sdpa,flex", "lotformer.compiled=auto,graphs"):
        assert variant in text  # each variant swept beside today's
    for setting in ("kernel=flex", "compiled=graphs", "methods.lotformer.impl=triton"):
        assert setting in text  # and its LRA efficiency measured


def test_without_cuda_it_exits_2_and_says_how_to_see_the_plan(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == gpu_check.NO_CUDA_EXIT
    assert "no CUDA device; `python -m runners.gpu_check --dry-run`" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_stages_run_in_order_and_a_failing_one_does_not_stop_the_next(tmp_path):
    stages = [
        Stage("a", "first", 1, 0.1, appender(tmp_path, "a")),
        Stage("b", "fails", 1, 0.1, appender(tmp_path, "b", exit_code=3)),
        Stage("c", "third", 1, 0.1, appender(tmp_path, "c")),
    ]
    check, _ = make_check(tmp_path, stages)
    assert check.run() == 1
    assert (tmp_path / "order.txt").read_text().split() == ["a", "b", "c"]
    summary = json.loads((check.ctx.run_dir / "summary.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["passed", "failed", "passed"]
    assert summary["stages"][1]["returncodes"] == [3]
    assert (check.ctx.run_dir / "b.log").read_text().startswith("$ ")


def test_a_stage_that_cannot_get_its_minimum_is_skipped_with_a_reason(tmp_path):
    # budget 30 s split 1:1:1; the middle stage needs 20 s and gets about 10
    stages = [
        Stage("a", "", 1, 0.1, appender(tmp_path, "a")),
        Stage("big", "", 1, 20, appender(tmp_path, "big")),
        Stage("c", "", 1, 0.1, appender(tmp_path, "c")),
    ]
    check, lines = make_check(tmp_path, stages, budget_s=30)
    assert check.run() == 1
    assert (tmp_path / "order.txt").read_text().split() == ["a", "c"]
    big = check.records[1]
    assert big.status == "skipped" and "needs at least 20 s" in big.reason
    assert "--budget-s" in big.reason and any("big: skipped" in line for line in lines)
    # what the skipped stage left unused goes to the next one
    assert check.records[2].allotted_s > 15


@pytest.mark.slow
def test_a_stage_over_its_allotment_is_cut_and_the_next_still_runs(tmp_path):
    stages = [
        Stage("slow", "", 1, 0.1, script("import time; time.sleep(60)")),
        Stage("next", "", 1, 0.1, appender(tmp_path, "next")),
    ]
    check, _ = make_check(tmp_path, stages, budget_s=4)
    started = time.monotonic()
    assert check.run() == 1
    assert time.monotonic() - started < 20
    assert check.records[0].status == "cut" and "after its 2 s" in check.records[0].reason
    assert check.records[1].status == "passed"


@pytest.mark.slow
def test_a_signal_cuts_the_running_stage_keeps_finished_rows_and_says_which(tmp_path):
    rows = tmp_path / "out" / "sweep" / "rows.txt"
    stages = [
        Stage("first", "", 1, 0.1, script(f"open({str(rows)!r}, 'w').write('row')")),
        Stage("long", "", 1, 0.1, script("import time; time.sleep(60)")),
        Stage("never", "", 1, 0.1, appender(tmp_path, "never")),
    ]
    rows.parent.mkdir(parents=True)
    check, _ = make_check(tmp_path, stages, budget_s=120)
    timer = threading.Timer(3.0, check.interrupt, args=(15, None))
    timer.start()
    try:
        assert check.run() == gpu_check.CUT_EXIT
    finally:
        timer.cancel()
    assert [r.status for r in check.records] == ["passed", "cut", "skipped"]
    assert check.records[1].reason == "interrupted by SIGTERM"
    assert not (tmp_path / "order.txt").exists()
    summary = json.loads((check.ctx.run_dir / "summary.json").read_text())
    assert summary["cut_by"] == "SIGTERM"
    with tarfile.open(tmp_path / "b.tar.gz") as tar:  # what finished came along
        names = tar.getnames()
    assert "sweep/rows.txt" in names and "gpu_check/run/summary.json" in names


def test_the_bundle_holds_only_what_this_run_wrote(tmp_path):
    old = tmp_path / "out" / "sweep" / "old.parquet"
    old.parent.mkdir(parents=True)
    old.write_text("earlier run")
    past = time.time() - 3600
    import os

    os.utime(old, (past, past))
    stages = [Stage("a", "", 1, 0.1, script("pass"))]
    check, _ = make_check(tmp_path, stages)
    assert check.run() == 0
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
    assert "sweep/old.parquet" not in names
    assert {"gpu_check/run/summary.json", "gpu_check/run/summary.md", "gpu_check/run/a.log"} <= set(
        names
    )


def test_a_preparation_runs_from_the_start_and_its_stage_waits_for_it(tmp_path):
    marker = tmp_path / "prepared.txt"
    prepare = lambda ctx: [  # noqa: E731
        sys.executable,
        "-c",
        f"import time; time.sleep(1); open({str(marker)!r}, 'w').write('x')",
    ]
    check_code = f"import pathlib; assert pathlib.Path({str(marker)!r}).exists()"
    stages = [Stage("needs-data", "", 1, 0.1, script(check_code), prepare=prepare)]
    check, _ = make_check(tmp_path, stages)
    assert check.run() == 0
    assert check.records[0].returncodes == [0, 0]


@pytest.mark.parametrize("allotted", [100.0, 218.0])
def test_the_sweep_stage_flags_are_the_sweeps_own_and_leave_time_for_the_last_cell(
    tmp_path, allotted
):
    from runners.sweep import args as sweep_args

    ctx = Context(tmp_path, tmp_path / "run", tmp_path / "data")
    args = sweep_args.resolve(
        sweep_args.build_parser().parse_args(gpu_check.sweep_arguments(ctx, allotted))
    )
    assert args.lengths == "512:131072" and args.dtype == "bf16" and args.heads == 16
    assert "lotformer.impl=fused,reference" in args.options
    assert args.time_budget + gpu_check.SWEEP_TAIL_S == pytest.approx(allotted, abs=1)
    assert 3 * args.cell_budget < gpu_check.SWEEP_TAIL_S  # the last cell's calls fit the tail


def test_the_variants_stage_flags_are_the_runners_own(tmp_path):
    from runners.lra import cli as lra
    from runners.sweep import args as sweep_args

    ctx = Context(tmp_path, tmp_path / "run", tmp_path / "data")
    stage = next(s for s in gpu_check.STAGES if s.name == "ds-variants")
    sweep, triton, *efficiency = stage.commands(ctx, 240)
    args = sweep_args.resolve(sweep_args.build_parser().parse_args(sweep[3:]))
    assert args.methods == "sinkformer,lotformer" and args.compile_budget == 60.0
    assert args.lengths == "512,16384,131072" and args.dtype == "bf16"
    assert args.time_budget + gpu_check.SWEEP_TAIL_S == pytest.approx(80, abs=1)
    triton_args = sweep_args.resolve(sweep_args.build_parser().parse_args(triton[3:]))
    assert triton_args.methods == "lotformer" and "lotformer.impl=triton" in triton_args.options
    assert len(efficiency) == 3  # one command a variant: one that fails stops only itself
    for command in efficiency:
        assert lra.build_parser().parse_args(command[3:]).efficiency


def test_the_training_and_efficiency_flags_are_the_lra_runners_own(tmp_path):
    from runners.lra import cli as lra

    ctx = Context(tmp_path, tmp_path / "run", tmp_path / "data")
    for stage in ("efficiency", "training"):
        (command,) = next(s for s in gpu_check.STAGES if s.name == stage).commands(ctx, 60)
        assert command[1:3] == ["-m", "runners.lra"]
        args = lra.build_parser().parse_args(command[3:])
        assert args.quiet
    assert "train.amp=bf16" in args.overrides


def test_unknown_stages_and_a_bad_budget_are_refused(capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--stages", "sweep,nope"])
    assert "unknown ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--budget-s", "0"])


def test_a_stated_commit_wins_over_what_git_says(monkeypatch):
    from runners import provenance

    monkeypatch.setenv(provenance.COMMIT_VARIABLE, "0" * 40)
    monkeypatch.setenv(provenance.DIRTY_VARIABLE, "1")
    env = provenance.provenance(torch.device("cpu"))
    assert env["git_commit"] == "0" * 40 and env["git_dirty"] is True
    monkeypatch.delenv(provenance.COMMIT_VARIABLE)
    assert env["git_commit"] != provenance.provenance(torch.device("cpu"))["git_commit"]
