"""attention_zoo.check: every built-in mechanism passes; deliberately broken mechanisms fail
with the right property named and its figure, and the check itself never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import attention_zoo as zoo
from attention_zoo.check import check, main
from attention_zoo.registry import CATALOGUE
from attention_zoo.softmax import Softmax, softmax_matrix


@pytest.fixture
def broken():
    """Registers the broken mechanisms for one test."""
    with CATALOGUE.scratch():

        @zoo.register("leaky", complexity="quadratic")
        class Leaky(Softmax):
            """Lets padded keys into every row: it ignores the mask."""

            def _attend(self, q, k, v, mask):
                return softmax_matrix(q, k, None) @ v

            def _matrix(self, q, k, mask):
                return softmax_matrix(q, k, None)

        @zoo.register("syncing", complexity="quadratic")
        class Syncing(Softmax):
            """Reads a number back to the host in forward (a GPU stall)."""

            def _attend(self, q, k, v, mask):
                scale = 1.0 + 0.0 * q.abs().max().item()
                return scale * super()._attend(q, k, v, mask)

        @zoo.register("nan_grads", complexity="quadratic")
        class NanGrads(Softmax):
            """exp() of large scores zeroed by torch.where: a finite forward, but the
            unselected branch's inf times 0 makes the gradient NaN."""

            def _attend(self, q, k, v, mask):
                scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                if mask is not None:
                    scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
                weights = torch.where(scores < 60, scores.exp(), torch.zeros_like(scores))
                return weights / weights.sum(-1, keepdim=True).clamp_min(1e-30) @ v

            def _matrix(self, q, k, mask):  # none: its own forward is what is checked
                raise NotImplementedError

        @zoo.register("fake_linear", complexity="linear")
        class FakeLinear(Softmax):
            """Claims linear cost but builds the N x N matrix."""

        @zoo.register("crashing", complexity="quadratic")
        class Crashing(Softmax):
            def _attend(self, q, k, v, mask):
                raise RuntimeError("a bug in the kernel")

        yield


def verdicts(name: str) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.figure) for r in check(name)}


@pytest.mark.parametrize(
    ("name", "fails", "figure"),
    [
        ("leaky", "padding invariance", "real outputs moved"),
        ("syncing", "no host sync", "Tensor.item"),
        ("nan_grads", "extreme scores", "NaN/inf in the grad of q"),
        ("fake_linear", "linear memory", "x16.0"),
    ],
)
def test_a_broken_mechanism_fails_the_property_it_breaks(broken, name, fails, figure):
    got = verdicts(name)
    status, shown = got[fails]
    assert status == "fail" and figure in shown
    assert got["dtypes"][0] == "pass"  # the rest of the contract is still checked
    assert next(p for p, (status, _) in got.items() if status == "fail") == fails


def test_the_leak_also_breaks_padded_equals_unpadded(broken):
    assert verdicts("leaky")["padded = unpadded"][0] == "fail"
    assert verdicts("softmax")["padded = unpadded"][0] == "pass"


def test_a_mechanism_that_raises_fails_each_property_without_crashing_the_check(broken):
    got = verdicts("crashing")
    assert got["padding invariance"] == ("fail", "raised RuntimeError: a bug in the kernel")
    assert got["linear memory"][0] == "skip"


def test_the_command_prints_a_line_per_property_and_exits_1_naming_failures(broken, capsys):
    assert main(["softmax", "leaky"]) == 1
    out, err = capsys.readouterr()
    assert "softmax (built-in)" in out and f"leaky (file {Path(__file__).resolve()})" in out
    assert out.count("PASS  padding invariance") == 1
    assert "FAIL  padding invariance   real outputs moved" in out
    assert "check: FAILED: leaky: padding invariance; leaky: padded = unpadded" in err


def test_every_built_in_mechanism_passes_and_the_command_exits_0(capsys):
    assert main(["all"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS  no host sync") == len(zoo.names())


def test_an_unknown_mechanism_or_option_is_refused_before_anything_runs(capsys):
    for argv, says in (
        (["nope"], "unknown attention 'nope'"),
        (["lotformer", "--option", "impl=nope"], "impl must be one of"),
        (["softmax", "--import", "missing_attention.py"], "no such file"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert says in capsys.readouterr().err
