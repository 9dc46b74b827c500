"""The LRA runner: resume gives the uninterrupted numbers, finished runs are skipped, bad
configs fail before training, a NaN loss is an error row, missing data is listed."""

from __future__ import annotations

import itertools
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
from runners.lra import cli as runner
from runners.lra import config as lra_config
from runners.lra.step import batch_indices, lr_factor
from tests.lra.test_text_retrieval import aan_row, write_aan
from tests.results.contract import assert_fills_what_the_reports_read
from tests.runners.tiny import lra_args

REPO = Path(__file__).resolve().parents[3]


def args_for(root: Path, out: Path, *extra: str, steps: int = 12) -> list[str]:
    return ["--task=listops", *lra_args(root, out, *extra, steps=steps)]


def test_a_resumed_run_gives_the_numbers_of_an_uninterrupted_one(listops_dir, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert runner.main(args_for(listops_dir, whole, "--method=softmax")) == 0
    first = runner.main(args_for(listops_dir, parts, "--method=softmax", "--stop-after-steps=5"))
    assert first == runner.INTERRUPTED_EXIT
    assert read_results(parts / "lra").empty  # nothing final yet
    assert len(list((parts / "ckpt").glob("*.pt"))) == 1
    assert runner.main(args_for(listops_dir, parts, "--method=softmax")) == 0

    def numbers(out):
        rows = read_results(out / "lra").sort_values("split")
        curve = read_results(out / "curves").sort_values("step")
        return rows[["split", "accuracy", "steps", "best_step"]], curve[
            ["step", "train_loss", "val_accuracy", "lr"]
        ]

    for a, b in zip(numbers(whole), numbers(parts), strict=True):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert list(numbers(whole)[1]["step"]) == [0, 4, 8, 12]  # 0: diagnostics at init
    best = [torch.load(next((o / "ckpt").glob("*.best.pt")))["model"] for o in (whole, parts)]
    assert best[0].keys() == best[1].keys()
    for name in best[0]:
        assert torch.equal(best[0][name], best[1][name]), name
    assert not list((parts / "ckpt").glob("*-s0-*[0-9a-f].pt"))  # training checkpoint removed


def test_finished_runs_are_skipped_and_a_changed_config_is_a_new_run(listops_dir, tmp_path):
    argv = args_for(listops_dir, tmp_path, "--method=performer", steps=4)
    assert runner.main(argv) == 0
    assert runner.main(argv) == 0
    rows = read_results(tmp_path / "lra")
    assert len(rows) == 2  # val and test, once
    assert runner.main([*argv, "--set=optim.lr=2e-3"]) == 0
    rows = read_results(tmp_path / "lra")
    assert len(rows) == 4 and rows["config_hash"].nunique() == 2
    for h in rows["config_hash"].unique():
        saved = json.loads((tmp_path / "lra" / "configs" / f"{h}.json").read_text())
        assert lra_config.config_hash(saved) == h  # the stored text is the hashed config


def test_rows_carry_accuracy_baseline_and_provenance(listops_dir, tmp_path):
    assert runner.main(args_for(listops_dir, tmp_path, "--method=lotformer", steps=4)) == 0
    rows = read_results(tmp_path / "lra")
    assert set(rows["split"]) == {"val", "test"} and (rows["status"] == "ok").all()
    for column in ("run_id", "git_commit", "device", "torch_version", "method_options"):
        assert rows[column].notna().all()
    assert rows["accuracy"].between(0, 1).all() and rows["majority_accuracy"].between(0.1, 1).all()
    assert_fills_what_the_reports_read(rows, "lra")
    assert_fills_what_the_reports_read(read_results(tmp_path / "curves"), "lra_curves")
    assert (rows["examples"] == 24).all() and (rows["seq_len"] == 64).all()
    assert (rows["peak_mem_bytes"] > 0).all() and (rows["tokens_per_s"] > 0).all()
    assert '"cls_tokens": 0' in rows["method_options"].iloc[0]
    assert rows["data_hash"].str.fullmatch(r"[0-9a-f]{16}").all() and (rows["classes"] == 10).all()
    assert rows["collapsed"].notna().all()


def test_the_data_hash_names_the_data_and_changes_with_it(listops_dir, tmp_path):
    from lra import listops
    from lra.data import load
    from runners.lra.judge import data_identity

    def identity(root):
        return data_identity({s: load("listops", s, root) for s in ("train", "val", "test")})

    assert identity(listops_dir) == identity(listops_dir)
    other = tmp_path / "other"  # same sizes and lengths, another seed: other data
    listops.generate(other, {"train": 96, "val": 24, "test": 24}, seed=1, lengths=(10, 60))
    assert identity(other) != identity(listops_dir)


def point(step, loss, val):
    return {"step": step, "train_loss": loss, "val_accuracy": val}


def test_a_run_that_ends_at_the_majority_class_is_collapsed():
    from runners.lra.judge import collapse_reason

    curve = [point(100, 2.1, 0.30), point(200, 1.9, 0.175)]
    assert "within 1 point of the majority" in collapse_reason(curve, 0.17, 10)
    # the diagnostics' step-0 point (no loss, no accuracy) is not a validation
    flat = [point(0, math.nan, math.nan), point(100, 2.302, 0.1), point(200, 2.303, 0.3)]
    assert "never left ln(10)" in collapse_reason(flat, 0.1, 10)
    assert collapse_reason(curve, 0.16, 10) is None  # 1.5 points above: it learnt something
    assert collapse_reason([], 0.17, 10) is None


def test_a_run_whose_loss_never_leaves_chance_is_collapsed_whatever_its_accuracy():
    import math

    from runners.lra.judge import collapse_reason

    stuck = [point(s, math.log(2) + d, 0.56) for s, d in ((1, 0.008), (2, -0.004), (3, 0.0))]
    assert "never left ln(2) = 0.693" in collapse_reason(stuck, 0.50, 2)
    moved = [*stuck, point(4, math.log(2) - 0.02, 0.56)]
    assert collapse_reason(moved, 0.50, 2) is None


@pytest.mark.parametrize(
    "override, named",
    [
        ("optim.lr=-1", "optim.lr"),
        ("train.stpes=10", "train.stpes"),
        ("model.pooling=max", "model.pooling"),
        ("methods.lotformer.r=0", "methods.lotformer"),
        ("methods.lotformer.rank=4", "rank"),
        ("methods.lotformer.impl=products", "timing reference"),
        ("tasks.listops.train.batch=0", "train.batch"),
        ("optimizer.lr=1", "optimizer.lr"),
    ],
)
def test_a_bad_config_value_fails_before_training_naming_the_key(
    listops_dir, tmp_path, capsys, override, named
):
    with pytest.raises(SystemExit) as exit_:
        runner.main(args_for(listops_dir, tmp_path, "--method=lotformer", f"--set={override}"))
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "lra").exists() and not (tmp_path / "ckpt").exists()


def test_a_length_that_cuts_real_tokens_is_refused(listops_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        runner.main(args_for(listops_dir, tmp_path, "--method=softmax", "--set=train.length=16"))
    assert "cuts real tokens" in capsys.readouterr().err


def test_a_nan_loss_is_an_error_row_and_the_grid_goes_on(listops_dir, tmp_path, capsys):
    argv = args_for(
        listops_dir,
        tmp_path,
        "--method=softmax",
        "--seeds=0,1",
        "--set=optim.lr=1e30",
        "--set=optim.clip_norm=0",
        "--set=optim.warmup=0",
    )
    assert runner.main(argv) == 1
    rows = read_results(tmp_path / "lra")
    assert sorted(set(rows["seed"])) == [0, 1]  # the second run ran after the first failed
    assert (rows["status"] == "error").all() and rows["accuracy"].isna().all()
    assert rows["error"].str.contains("training loss is nan").all()
    assert "lower optim.lr" in capsys.readouterr().err


def test_tasks_without_data_are_listed_with_how_to_get_them(listops_dir, tmp_path, capsys):
    argv = args_for(listops_dir, tmp_path, "--method=flash", steps=4)
    argv[0] = "--task=listops,text"
    assert runner.main(argv) == 1  # named explicitly: missing data is a failure
    out = capsys.readouterr()
    assert "tasks without data" in out.out and "aclImdb" in out.out
    assert set(read_results(tmp_path / "lra")["task"]) == {"listops"}


def test_retrieval_two_towers_train_end_to_end(tmp_path):
    rows = [
        aan_row(i % 2, f"paper {i} on graphs".encode() * 3, f"cites {i}".encode())
        for i in range(24)
    ]
    write_aan(tmp_path / "data", {s: rows for s in ("train", "val", "test")})
    argv = args_for(tmp_path / "data", tmp_path, "--method=lotformer", steps=4)
    argv[0] = "--task=retrieval"
    assert runner.main(argv) == 0
    result = read_results(tmp_path / "lra")
    assert (result["status"] == "ok").all() and set(result["task"]) == {"retrieval"}
    assert (result["majority_accuracy"] == 0.5).all()


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_same_command_resumes(listops_dir, tmp_path):
    argv = args_for(listops_dir, tmp_path, "--method=softmax", steps=100_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runners.lra", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "ckpt").glob("*.pt")):  # past the first validation
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == runner.INTERRUPTED_EXIT, err
    assert "run the same command to resume" in err
    ckpt = next((tmp_path / "ckpt").glob("*.pt"))
    stopped = torch.load(ckpt, weights_only=False)["step"]
    assert stopped >= 4
    assert runner.main([*argv, "--stop-after-steps=3"]) == runner.INTERRUPTED_EXIT
    assert torch.load(ckpt, weights_only=False)["step"] == stopped + 3
    assert not list(tmp_path.rglob(".*tmp*"))  # no half-written file left behind
    os.sync()


def test_efficiency_mode_measures_steps_per_second_and_memory(tmp_path):
    argv = [
        "--efficiency",
        "--method=softmax,lotformer",
        "--lengths=64,128",
        "--batch=2",
        "--min-time=0.05",
        "--device=cpu",
        f"--efficiency-out={tmp_path}",
        "--quiet",
        "--set=model.width=16",
        "--set=model.ffn=32",
    ]
    assert runner.main(argv) == 0
    rows = read_results(tmp_path).set_index(["method", "seq_len"])
    assert (rows["status"] == "ok").all() and (rows["steps_per_s"] > 0).all()
    assert (rows["batch"] == 2).all() and set(rows["task"]) == {"text"}
    assert_fills_what_the_reports_read(rows.reset_index(), "lra_efficiency")
    softmax = rows.loc["softmax", "peak_mem_bytes"]
    assert softmax[128] > softmax[64]


def test_a_failed_efficiency_cell_is_a_row_and_the_table_goes_on(tmp_path):
    """The sweep's rule (runners.measure.cases.failure_row): out of memory is an oom row, any
    other exception an error row with its text, and the next cell is measured."""
    with CATALOGUE.scratch():

        @zoo.register("error_at_128", complexity="quadratic")
        class Broken(Softmax):
            def _attend(self, q, k, v, mask):
                if q.shape[2] >= 128:
                    raise ValueError("a bug in the mechanism")
                return super()._attend(q, k, v, mask)

        argv = ["--efficiency", "--method=error_at_128,softmax", "--lengths=64,128", "--batch=2"]
        argv += ["--min-time=0.01", "--device=cpu", f"--efficiency-out={tmp_path}", "--quiet"]
        assert runner.main([*argv, "--set=model.width=16", "--set=model.ffn=32"]) == 0
    rows = read_results(tmp_path).set_index(["method", "seq_len"])
    assert rows.loc[("error_at_128", 128), "status"] == "error"
    assert rows.loc[("error_at_128", 128), "error"] == "ValueError: a bug in the mechanism"
    assert (rows.drop(("error_at_128", 128))["status"] == "ok").all()


def test_learning_rate_warms_up_then_decays_to_zero():
    f = [lr_factor(s, 10, 100, "cosine") for s in range(1, 101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[-1] == pytest.approx(0.0)
    assert all(a <= b for a, b in itertools.pairwise(f[:10]))
    assert all(a >= b for a, b in itertools.pairwise(f[9:]))
    assert lr_factor(55, 10, 100, "linear") == pytest.approx(0.5)
    assert lr_factor(70, 10, 100, "constant") == 1.0
    assert math.isclose(lr_factor(55, 10, 100, "cosine"), 0.5)


def test_each_epoch_visits_every_example_once():
    seen = torch.cat([batch_indices(3, s, 50, 8) for s in range(6)])  # 6 batches of epoch 0
    assert len(set(seen.tolist())) == 48
    assert not torch.equal(batch_indices(3, 0, 50, 8), batch_indices(3, 6, 50, 8))  # reshuffled
    assert torch.equal(batch_indices(3, 7, 50, 8), batch_indices(3, 7, 50, 8))


def test_paper_profile_holds_the_published_settings():
    p = lra_config.load_profile("paper")
    cfg = lra_config.resolve(p, "listops", "lotformer")
    assert cfg["model"] == {
        "layers": 2,
        "width": 64,
        "heads": 2,
        "ffn": 128,
        "dropout": 0.1,
        "pooling": "mean",
    }
    assert cfg["optim"]["betas"] == [0.9, 0.98]
    expected = {  # batch, lr, warm-up, steps, lotformer r / eps / iters
        "listops": (32, 1e-4, 5000, 50_000, 4, 0.1, 50),
        "text": (32, 1e-4, 4000, 50_000, 32, 0.1, 50),
        "retrieval": (16, 1e-4, 5000, 50_000, 64, 0.1, 50),
        "image": (64, 1e-3, 1000, 50_000, 8, 25.0, 5),
        "pathfinder": (128, 1e-4, 5000, 60_000, 64, 0.1, 50),
    }
    for task, values in expected.items():
        c = lra_config.resolve(p, task, "lotformer")
        o = c["method_options"]
        got = (c["train"]["batch"], c["optim"]["lr"], c["optim"]["warmup"], c["train"]["steps"])
        assert (*got, o["r"], o["eps"], o["iters"]) == values, task
    perf = lra_config.resolve(p, "text", "performer")["method_options"]
    assert perf["nb_features"] == 128


def test_overrides_layer_over_the_task_sections():
    p = lra_config.load_profile("paper")
    assert lra_config.resolve(p, "image", "softmax", ["train.steps=7"])["train"]["steps"] == 7
    only_image = ["tasks.image.optim.lr=0.5"]
    assert lra_config.resolve(p, "image", "softmax", only_image)["optim"]["lr"] == 0.5
    assert lra_config.resolve(p, "text", "softmax", only_image)["optim"]["lr"] == 1e-4
    smoke = lra_config.load_profile("smoke")  # include = "paper.toml", then its own values
    c = lra_config.resolve(smoke, "listops", "softmax")
    assert c["profile"] == "smoke" and c["train"]["length"] == 256 and c["model"]["width"] == 64


def test_a_users_profile_elsewhere_includes_a_shipped_one_by_name(tmp_path):
    (tmp_path / "mine.toml").write_text('include = "smoke"\n[model]\ndropout = 0.3\n')
    theirs = 'include = "mine.toml"\n[tasks.listops]\noptim = { lr = 0.25 }\n'
    (tmp_path / "theirs.toml").write_text(theirs)
    c = lra_config.resolve(lra_config.load_profile(tmp_path / "theirs.toml"), "listops", "softmax")
    assert c["model"]["dropout"] == 0.3 and c["optim"]["lr"] == 0.25  # mine's, theirs
    assert c["optim"]["warmup"] == 10  # smoke's, under theirs
    assert c["train"]["length"] == 256 and c["model"]["width"] == 64  # smoke's, then paper's
    (tmp_path / "typo.toml").write_text('include = "papr"\n')
    with pytest.raises(lra_config.ConfigError, match="unknown profile 'papr'"):
        lra_config.load_profile(tmp_path / "typo.toml")


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(lra_config.ConfigError, match="paper"):
        lra_config.load_profile("papr")


def mini_like(tmp_path: Path, data: str) -> Path:
    """A profile that, like mini, names the parameters its ListOps must be generated with."""
    path = tmp_path / "expects.toml"
    path.write_text(f'include = "{lra_config.PROFILES / "smoke.toml"}"\n[tasks.listops]\n{data}\n')
    return path


def test_data_generated_with_other_parameters_is_refused_naming_the_command(tmp_path, capsys):
    from lra import generators

    data = tmp_path / "data"
    generators.generate("listops", data, {"count": 60, "min_length": 10, "max_length": 60})
    record = generators.generated_with("listops", data)
    assert record == {"task": "listops", "count": 60, "seed": 0, "min_length": 10,
                      "max_length": 60}  # fmt: skip
    argv = args_for(data, tmp_path, "--method=softmax", steps=4)
    argv[1] = f"--profile={mini_like(tmp_path, 'data = { count = 600, seed = 0 }')}"
    assert runner.main(argv) == 1
    err = capsys.readouterr()
    assert "generated with count=60; the profile expects count=600" in err.err
    assert f"python -m lra.data --data-dir {data} generate listops --count 600 --seed 0" in err.err
    assert read_results(tmp_path / "lra").empty  # nothing trained on the wrong data
    argv[1] = f"--profile={mini_like(tmp_path, 'data = { count = 60, max_length = 60 }')}"
    assert runner.main(argv) == 0  # the parameters it was made with: trained
    rows = read_results(tmp_path / "lra")
    config = json.loads((tmp_path / "lra" / "configs" / f"{rows['config_hash'][0]}.json").read_text())  # fmt: skip  # noqa: E501
    assert config["data"] == {"count": 60, "max_length": 60}


def test_data_without_a_generation_record_is_refused_when_the_profile_expects_one(
    listops_dir, tmp_path, capsys
):
    argv = args_for(listops_dir, tmp_path, "--method=softmax", steps=4)
    argv[1] = f"--profile={mini_like(tmp_path, 'data = { count = 144 }')}"
    assert runner.main(argv) == 1
    assert "has no generated.json" in capsys.readouterr().err


def test_profiles_without_a_data_section_keep_their_config_hash():
    smoke = lra_config.resolve(lra_config.load_profile("smoke"), "listops", "softmax")
    assert "data" not in smoke  # so runs finished before [data] existed stay finished
    smoke_with = lambda item: lra_config.resolve(  # noqa: E731
        lra_config.load_profile("smoke"), "listops", "softmax", [item]
    )
    with pytest.raises(
        lra_config.ConfigError, match=r"listops\.data\.count = 2: must be an integer >= 3"
    ):
        smoke_with("data.count=2")
    with pytest.raises(lra_config.ConfigError, match=r"data\.size: not a parameter of listops"):
        smoke_with("data.size=2")
