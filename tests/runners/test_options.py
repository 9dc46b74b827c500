"""One grammar for option text: the check, the sweep and --set type a value the same way."""

from __future__ import annotations

import pytest

from attention_zoo.check import _options
from attention_zoo.options import parse_value
from runners.lra import config as lra_config
from runners.sweep.args import parse_options


def test_a_value_takes_the_kind_of_its_default():
    assert parse_value("32", 4) == 32 and isinstance(parse_value("32", 4), int)
    assert parse_value("1", 1.0) == 1.0 and isinstance(parse_value("1", 1.0), float)
    assert parse_value("false", True) is False and parse_value("1", True) is True
    assert parse_value("reference", "fused") == "reference"
    assert parse_value("1", "auto") == "1"  # a string option keeps the text as written
    assert parse_value("[0.9, 0.98]") == [0.9, 0.98] and parse_value("0.1") == 0.1


@pytest.mark.parametrize(
    ("raw", "default", "said"),
    [("abc", 4, "expected an integer"), ("4.5", 4, "expected an integer"),
     ("fast", 1.0, "expected a number"), ("2", True, "expected true or false")],
)  # fmt: skip
def test_a_value_of_another_kind_is_refused_saying_what_was_expected(raw, default, said):
    with pytest.raises(ValueError, match=said):
        parse_value(raw, default)


def test_the_check_the_sweep_and_set_read_an_option_alike():
    given = ["eps=1", "impl=reference", "r=8"]
    (sweep,) = parse_options([f"lotformer.{g}" for g in given], ["lotformer"])["lotformer"]
    items = [f"methods.lotformer.{g}" for g in given]
    check = _options("lotformer", given)
    profile = lra_config.load_profile("smoke")
    options = lra_config.resolve(profile, "listops", "lotformer", items)["method_options"]
    assert check == sweep == {k: options[k] for k in check}
    assert [type(check[k]) for k in ("eps", "impl", "r")] == [float, str, int]
