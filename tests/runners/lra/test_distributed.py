"""One run across processes: torchrun with gloo on CPU trains what one process trains.

Two processes share each step's global batch; with dropout off the loss curve and the
accuracies of one process and of two agree to float32 reduction order (stated tolerance:
1e-5 relative on every curve point, accuracies identical). Only rank 0 writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from results.schema import read_results
from runners.lra import cli as runner
from runners.lra.distributed import Dist, from_env
from runners.lra.runs import load_task, plan
from runners.lra.train import train
from tests.runners.tiny import TINY, lra_args

REPO = Path(__file__).resolve().parents[3]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
LOSS_RTOL = 1e-5
# batch 7 over 2 ranks: shards of 4 and 3, the uneven case the loss scaling must get right
SHARED = ["--task=listops", "--set=model.dropout=0", "--set=train.batch=7"]
METHODS = "softmax,performer,lotformer"  # one torchrun serves both tests below


def torchrun(nproc: int, argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*TORCHRUN, f"--nproc_per_node={nproc}", "-m", "runners.lra", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def numbers(out: Path):
    rows = read_results(out / "lra").sort_values(["method", "split"])
    curve = read_results(out / "curves").sort_values(["method", "step"])
    return rows, curve


@pytest.fixture(scope="module")
def two_processes(listops_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One torchrun of two processes training METHODS: where it wrote, and how it went."""
    out = tmp_path_factory.mktemp("two")
    done = torchrun(2, lra_args(listops_dir, out, *SHARED, f"--method={METHODS}"))
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(listops_dir, two_processes, tmp_path):
    two, done = two_processes
    assert runner.main(lra_args(listops_dir, tmp_path, *SHARED, f"--method={METHODS}")) == 0
    (rows1, curve1), (rows2, curve2) = numbers(tmp_path), numbers(two)
    # the smoke profile records attention diagnostics: a step-0 point before training
    assert list(curve1["step"]) == list(curve2["step"]) == [0, 4, 8, 12] * 3
    curve1, curve2 = curve1[curve1["step"] > 0], curve2[curve2["step"] > 0]
    np.testing.assert_allclose(curve2["train_loss"], curve1["train_loss"], rtol=LOSS_RTOL)
    assert list(curve2["val_accuracy"]) == list(curve1["val_accuracy"])
    assert list(rows2["accuracy"]) == list(rows1["accuracy"])
    assert set(rows2["world_size"]) == {2} and set(rows1["world_size"]) == {1}
    # rank 0 alone wrote: one part of rows, one curve per run, one best-weights file per run
    assert len(list((two / "lra").glob("*.parquet"))) == 1
    assert len(list((two / "curves").glob("*.parquet"))) == 3
    assert len(list((two / "ckpt").glob("*.best.pt"))) == 3
    assert done.stdout.count("test accuracy") == 1  # the summary once, not once per rank


@pytest.mark.slow
def test_a_two_process_run_stopped_midway_resumes_to_the_same_numbers(
    listops_dir, two_processes, tmp_path
):
    argv = [*SHARED, "--method=performer"]
    first = torchrun(2, lra_args(listops_dir, tmp_path, *argv, "--stop-after-steps=6"))
    assert first.returncode != 0 and "run the same command to resume" in first.stderr
    saved = torch.load(next((tmp_path / "ckpt").glob("*.pt")), weights_only=False)
    assert saved["step"] == 6 and saved["world_size"] == 2 and len(saved["rng"]) == 2
    assert read_results(tmp_path / "lra").empty
    second = torchrun(2, lra_args(listops_dir, tmp_path, *argv))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stderr and "at step 6" in second.stderr
    (rows_w, curve_w), (rows_p, curve_p) = numbers(two_processes[0]), numbers(tmp_path)
    rows_w, curve_w = (
        rows_w[rows_w["method"] == "performer"],
        curve_w[curve_w["method"] == "performer"],
    )
    assert len(rows_p) == 2 and list(rows_p["accuracy"]) == list(rows_w["accuracy"])
    np.testing.assert_allclose(curve_p["train_loss"], curve_w["train_loss"], rtol=1e-12)


def test_a_batch_smaller_than_the_processes_is_refused(listops_dir, tmp_path):
    """Rank 0 of 2 refuses before it trains or joins a collective, so no torchrun is needed."""
    overrides = [arg.removeprefix("--set=") for arg in TINY] + ["train.batch=1"]
    (run,), _ = plan("listops", "softmax", "0", "smoke", overrides)
    splits = load_task("listops", listops_dir, run.cfg["train"]["length"], run.cfg.get("data"))
    cpu, ckpt, curves = torch.device("cpu"), tmp_path / "ckpt", tmp_path / "curves"
    with pytest.raises(ValueError, match="smaller than the 2 processes"):
        train(run, splits, cpu, ckpt, curves, progress=False, dist=Dist(0, 2))
    assert not ckpt.exists() and not curves.exists()


def test_shards_cover_the_batch_once_in_order():
    idx = torch.arange(7)
    shards = [Dist(rank, 3).shard(idx) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert torch.equal(torch.cat(shards), idx)
    assert Dist().shard(idx) is idx


def test_the_rank_comes_from_torchrun_s_variables(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert from_env() == Dist(1, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4 and WORLD_SIZE=4"):
        from_env()
    monkeypatch.setenv("WORLD_SIZE", "x")
    with pytest.raises(ValueError, match="not an integer"):
        from_env()
