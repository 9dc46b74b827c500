"""The zoo's contract as pytest assertions, for a plugin's own test suite.

    import pytest
    from attention_zoo.testing import CONTRACT, assert_conforms, assert_property

    def test_my_attention_honours_the_contract():
        assert_conforms("nystromformer", {"landmarks": 8})      # every property at once

    @pytest.mark.parametrize("prop", CONTRACT)                 # or a test per property
    def test_the_contract(prop):
        assert_property("nystromformer", prop)

The properties and their limits: attention_zoo/check.py (also `python -m attention_zoo.check`).
"""

from __future__ import annotations

import torch

from attention_zoo.check import PROPERTIES, check, check_property

CONTRACT = list(PROPERTIES)  # the property names, for pytest.mark.parametrize


def assert_property(
    name: str, prop: str, options: dict | None = None, device: str | torch.device = "cpu"
) -> None:
    """AssertionError with the measured figure when mechanism `name` fails property `prop`."""
    result = check_property(name, prop, options, device)
    if not result.passed:
        raise AssertionError(f"{name}: {result.line()}")


def assert_conforms(
    name: str, options: dict | None = None, device: str | torch.device = "cpu"
) -> None:
    """AssertionError listing every property mechanism `name` fails (with their figures)."""
    failed = [r.line() for r in check(name, options, device) if not r.passed]
    if failed:
        raise AssertionError(f"{name} breaks the zoo's contract:\n" + "\n".join(failed))
