"""A run's identity survives the task object and new keys: every committed LRA run,
re-planned today from its profile and its --set items, gets the config hash its row
carries, so no finished run becomes an "older configuration" (set aside by the report,
retrained by a resume) -- also after a profile key, a mechanism option and a data parameter
with defaults are added."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import attention_zoo as zoo
import lra
from lra.registry import Param
from results import schema
from runners.lra import config as lra_config
from runners.lra.config import identity
from runners.lra.runs import plan
from runners.lra.session import TrainingState

RESULTS = Path(__file__).resolve().parents[3] / "results"
FOLDERS = ["lra", "lra_ablation", "recall", "diagnostics"]


def committed_runs(folder: str):
    """(rows of one planned run, the run re-planned today) for each committed configuration."""
    rows, _ = schema.read_table(RESULTS / folder, ["task", "method", "profile", "config_hash"])
    rows = rows[rows["profile"].isin(["mini", "smoke", "recall"])]
    if rows.empty:
        pytest.skip(f"no committed mini, smoke or recall rows in results/{folder}")
    for (task, method, profile, overrides), part in rows.groupby(
        ["task", "method", "profile", "overrides"], dropna=False
    ):
        items = json.loads(overrides) if isinstance(overrides, str) else []
        (run,), _ = plan(task, method, "0", profile, items)
        yield part, run


@pytest.mark.parametrize("folder", FOLDERS)
def test_committed_runs_keep_their_config_hashes(folder):
    checked = 0
    for part, run in committed_runs(folder):
        assert set(part["config_hash"]) == {run.config_hash}, (run.task, run.method)
        saved = json.loads((RESULTS / folder / "configs" / f"{run.config_hash}.json").read_text())
        assert saved == identity(run.cfg)  # diagnostics on or off: the same run
        checked += 1
    assert checked >= 5


@pytest.fixture
def grown(monkeypatch):
    """The code as it would be after three keys with defaults were added: a [train] key, a
    lotformer option and a data parameter of recall."""
    key = lra_config.Key("train.made_up", int, 7, lowest=0)
    monkeypatch.setitem(lra_config.SPEC, "train.made_up", key)
    info = zoo.info

    def grown_info(name):
        found = info(name)
        if name != "lotformer":
            return found
        return dataclasses.replace(found, defaults={**found.defaults, "made_up_option": 3})

    monkeypatch.setattr(lra_config.zoo, "info", grown_info)
    recall = type(lra.task("recall"))
    more = (*recall.data_params, Param("made_up_param", 5, "a parameter added later"))
    monkeypatch.setattr(recall, "data_params", more)


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_key_added_with_a_default_changes_no_committed_hash(grown, folder):
    checked = 0
    for part, run in committed_runs(folder):
        assert run.cfg["train"]["made_up"] == 7  # the configuration has the new key...
        if run.method == "lotformer":
            assert run.cfg["method_options"]["made_up_option"] == 3
        if run.task == "recall":
            assert run.cfg["data"]["made_up_param"] == 5
        assert set(part["config_hash"]) == {run.config_hash}  # ...its identity does not
        checked += 1
    assert checked >= 5


def test_a_new_key_set_away_from_its_default_makes_a_new_run(grown):
    (run,), _ = plan("recall", "lotformer", "0", "recall")
    (moved,), _ = plan("recall", "lotformer", "0", "recall", ["train.made_up=8"])
    (option,), _ = plan("recall", "lotformer", "0", "recall", ["methods.lotformer.r=8"])
    assert len({run.config_hash, moved.config_hash, option.config_hash}) == 3
    assert identity(moved.cfg)["train"]["made_up"] == 8


def test_a_checkpoint_written_before_a_field_existed_loads_with_its_default(tmp_path):
    saved = TrainingState(step=40, best_acc=0.5, losses=[1.0]).saved()
    del saved["window_s"]  # a field added after this checkpoint was written
    path = tmp_path / "old.pt"
    torch.save(saved, path)
    state = TrainingState.from_saved(torch.load(path, weights_only=False))
    assert (state.step, state.best_acc, state.losses) == (40, 0.5, [1.0])
    assert state.window_s == TrainingState().window_s
