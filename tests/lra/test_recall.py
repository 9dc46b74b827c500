"""Associative recall: the data is what it says (every query asks a key of its context and
its label is that key's value), splits are disjoint and a function of the parameters,
impossible parameters are refused before training, only queries are scored, and a small
softmax model learns it in seconds while a model whose attention is cut cannot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import lra
from lra import recall
from lra.registry import IGNORE
from runners.lra import config as lra_config
from runners.lra.step import build_training, evaluate, train_step

SMALL = {"pairs": 6, "keys": 10, "values": 7, "distractors": 3, "train": 50, "val": 9, "test": 9}


def decode(ids: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    slots = params["values"] + 2
    return ids // slots, ids % slots


def test_every_query_asks_a_key_of_its_context_and_its_label_is_that_keys_value():
    splits = lra.task("recall").make(SMALL)
    P, D, V = SMALL["pairs"], SMALL["distractors"], SMALL["values"]
    for data in splits.values():
        keys, slots = decode(data.inputs.numpy().astype(np.int64), SMALL)
        labels = data.labels.numpy()
        assert data.inputs.shape == labels.shape == (len(data), 2 * P + D)
        for k, s, y in zip(keys, slots, labels, strict=True):
            context = dict(zip(k[:P], s[:P], strict=True))
            assert len(context) == P and all(v < V for v in context.values())  # distinct keys
            assert (k[P : P + D] == SMALL["keys"]).all() and (s[P : P + D] == V + 1).all()
            assert (s[P + D :] == V).all() and (y[: P + D] == IGNORE).all()
            assert sorted(k[P + D :]) == sorted(context)  # each key asked once
            assert [context[q] for q in k[P + D :]] == list(y[P + D :])


def test_the_splits_are_disjoint_even_where_contexts_collide():
    tiny = {"pairs": 2, "keys": 4, "values": 3, "train": 40, "val": 8, "test": 8}  # 54 contexts
    made = recall.make_splits(recall.check_params(tiny))

    def contexts(ex):
        return {tuple(sorted(map(int, row[:2]))) for row in ex.inputs}

    train, val, test = (contexts(made[s]) for s in ("train", "val", "test"))
    assert not (val & train) and not (test & train) and not (test & val)
    too_many = {"pairs": 1, "keys": 2, "values": 2, "train": 30, "val": 5, "test": 5}
    with pytest.raises(ValueError, match="too few distinct contexts"):
        recall.make_splits(recall.check_params(too_many))


def test_the_data_is_a_function_of_its_parameters_and_its_hash_says_which():
    a, b = lra.task("recall").make(SMALL), lra.task("recall").make(SMALL)
    assert torch.equal(a["train"].inputs, b["train"].inputs)
    assert a["test"].data_hash == b["test"].data_hash != a["val"].data_hash
    other = lra.task("recall").make({**SMALL, "seed": 1})
    assert other["test"].data_hash != a["test"].data_hash
    assert not torch.equal(other["train"].inputs, a["train"].inputs)
    info = a["train"].info
    assert (info.length, info.classes, info.factors) == (15, 7, (11, 9))


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["pairs=65"], "tasks.recall.data.pairs = 65: must be <= data.keys = 64"),
        (["pairs=0"], "tasks.recall.data.pairs = 0: must be an integer >= 1"),
        (["values=1"], "tasks.recall.data.values = 1: must be an integer >= 2"),
        (["pairs=2.5"], "tasks.recall.data.pairs = 2.5: must be an integer >= 1"),
        (["keys=70000", "values=70000"], "ids need (keys + 1) * (values + 2) = 4,900,210,002"),
        (["colour=3"], "tasks.recall.data.colour: not a parameter of recall"),
    ],
)
def test_impossible_parameters_are_refused_in_one_line_naming_the_parameter(overrides, says):
    items = [f"tasks.recall.data.{o}" for o in overrides]
    with pytest.raises(lra_config.ConfigError) as refused:
        lra_config.resolve(lra_config.load_profile("recall"), "recall", "softmax", items)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_the_command_line_refuses_them_in_one_line_before_any_training(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "runners.lra", "--profile", "recall", "--tasks", "recall",
         "--methods", "softmax", "--set", "tasks.recall.data.pairs=100",
         f"--out={tmp_path / 'lra'}", f"--checkpoints={tmp_path / 'ck'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "data.pairs = 100: must be <= data.keys = 64" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "lra").exists() and not (tmp_path / "ck").exists()


def test_the_loss_and_the_score_count_only_the_query_tokens():
    task = lra.task("recall")
    labels = torch.tensor([[IGNORE, IGNORE, 2, 0], [IGNORE, 1, IGNORE, IGNORE]])
    logits = torch.zeros(2, 4, 3)
    logits[0, 2, 2] = logits[0, 3, 1] = logits[1, 1, 1] = 5.0  # right, wrong, right
    logits[0, 0, 0] = logits[1, 0, 2] = 9.0  # unscored tokens: never counted
    assert task.score(logits, labels) == (2, 3)
    loss = task.loss(logits, labels)  # example means summed: mean over 2 tokens + 1 token
    each = torch.nn.functional.cross_entropy(
        logits[[0, 0, 1], [2, 3, 1]], torch.tensor([2, 0, 1]), reduction="none"
    )
    assert torch.isclose(loss, (each[0] + each[1]) / 2 + each[2])
    chance = task.majority_accuracy(task.make(SMALL)["test"])
    assert chance == pytest.approx(1 / SMALL["values"])


LEARN = {"pairs": 8, "keys": 16, "values": 16, "train": 8192, "val": 128, "test": 128}


def fit(steps: int = 300, until: float = 0.9) -> float:
    """A softmax model on a tiny recall through the runner's own training step and
    evaluation: the test accuracy once it reaches `until` (checked every 50 steps), or
    after `steps` steps of 64."""
    splits = lra.task("recall").make(LEARN)
    cfg = lra_config.resolve(
        lra_config.load_profile("recall"),
        "recall",
        "softmax",
        [f"tasks.recall.data.{k}={v}" for k, v in LEARN.items()] + ["model.width=32"],
    )
    train = splits["train"]
    model, optimizer = build_training(
        cfg, train.info, train.inputs.shape[1], 0, torch.device("cpu")
    )
    g = torch.Generator().manual_seed(0)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(train), (64,), generator=g)
        x, y = train.inputs[idx], train.labels[idx].long()
        train_step(model, optimizer, cfg, torch.device("cpu"), x, None, y)
        if step % 50 == 0 or step == steps:
            accuracy = evaluate(model, splits["test"], torch.device("cpu"), 64, "none")
            if accuracy >= until:
                break
    return accuracy


def test_softmax_learns_a_tiny_recall_in_seconds():
    assert fit() >= 0.9


def test_a_model_whose_attention_is_cut_cannot_recall(monkeypatch):
    from lra import models

    def cut(self, x, mask):  # the values zeroed: no token sees another
        return self.out(torch.zeros_like(x))

    monkeypatch.setattr(models.AttentionBlock, "forward", cut)
    assert fit() < 0.3  # chance is 1/16; the queries alone say nothing of the values


def test_profile_settings_round_trip_into_the_rows_data_params(tmp_path):
    cfg = lra_config.resolve(
        lra_config.load_profile("recall"), "recall", "softmax", ["tasks.recall.data.pairs=16"]
    )
    assert cfg["data"] == {**recall.check_params({}), "pairs": 16, "keys": 64, "values": 64}
    assert json.loads(json.dumps(cfg["data"], sort_keys=True))["pairs"] == 16
