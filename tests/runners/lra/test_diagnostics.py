"""Attention diagnostics during training: recorded per layer from step 0, the same weights
and the same config hash as a run without them, and a mechanism without attention_matrix
skipped with its reason while training goes on."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from attention_zoo.base import Attention
from lra.data import TaskData
from results.schema import read_results
from runners.lra import cli as runner
from runners.lra.diagnostics import Probe
from tests.runners.lra.test_recall_runs import recall_args


def _run(tmp_path, diagnostics: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    on = "true" if diagnostics else "false"
    argv = recall_args(tmp_path, f"--set=train.diagnostics={on}", "--set=train.stop_at=0",
                       steps=20)  # fmt: skip
    assert runner.main(argv) == 0
    return read_results(tmp_path / "recall"), read_results(tmp_path / "curves")


@pytest.mark.slow
def test_diagnostics_change_what_is_recorded_not_what_is_trained(tmp_path):
    rows_on, curve_on = _run(tmp_path / "on", True)
    rows_off, curve_off = _run(tmp_path / "off", False)
    assert list(rows_on["config_hash"]) == list(rows_off["config_hash"])  # the same run
    assert list(rows_on["accuracy"]) == list(rows_off["accuracy"])
    trained_on = curve_on[curve_on["step"] > 0].sort_values("step")
    assert list(trained_on["train_loss"]) == list(curve_off.sort_values("step")["train_loss"])
    assert curve_off["attn_colsum_dev"].isna().all()
    first = curve_on.sort_values("step").iloc[0]
    assert first["step"] == 0 and math.isnan(first["val_accuracy"])  # the initial attention
    for point in curve_on.to_dict("records"):  # two layers, one value each
        assert len(point["attn_colsum_dev"]) == 2 and len(point["attn_rank"]) == 2
        assert len(point["attn_colsum_quantiles"][0]) == 5
        assert point["diag_seconds"] > 0 and pd.isna(point["diag_skipped"])
        assert max(point["attn_rowsum_dev"]) < 1e-4  # both are row-stochastic


class NoMatrix(Attention):
    """A plugin-like mechanism that attends but has no attention_matrix."""

    def _attend(self, q, k, v, mask):
        return v


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.attn = NoMatrix(heads=2, head_dim=4)

    def forward(self, ids, ids2=None):
        x = self.embed(ids).view(len(ids), ids.shape[1], 2, 4).transpose(1, 2)
        return self.attn(x, x, x, padding_mask=None).sum()


def _split(inputs: torch.Tensor) -> TaskData:
    labels = torch.zeros(len(inputs))
    return TaskData(inputs=inputs, labels=labels, inputs2=None, info=None, split="val", skipped=0)


def test_a_mechanism_without_attention_matrix_is_skipped_with_its_reason():
    val = _split(torch.randint(0, 10, (4, 6)))
    probe = Probe(Tiny(), val, torch.device("cpu"))
    assert probe.columns() == {"diag_skipped": "NoMatrix has no attention_matrix"}


def test_sequences_past_the_limit_are_skipped_before_any_work():
    val = _split(torch.zeros(2, 4096, dtype=torch.long))
    probe = Probe(Tiny(), val, torch.device("cpu"))
    assert "4096 tokens" in probe.columns()["diag_skipped"]
