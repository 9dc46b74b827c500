"""Plugins: installed distributions add mechanisms and LRA tasks through entry points, a
file or module is loaded with `import_plugin`, and each says where it came from; a broken or
clashing plugin is a warning that leaves the rest usable."""

from __future__ import annotations

import sys

import pytest

import attention_zoo as zoo
import lra
from attention_zoo.registry import CATALOGUE
from lra import registry as tasks
from tests.helpers import distribution

TOY = """
from attention_zoo import register
from attention_zoo.softmax import Softmax


@register("{name}", complexity="quadratic")
class Toy(Softmax):
    \"\"\"Softmax under another name, from outside the package.\"\"\"
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Put distributions made by `distribution` on sys.path; undo them and what they
    registered afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    with CATALOGUE.scratch(), tasks.CATALOGUE.scratch():
        yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_an_installed_entry_point_adds_a_mechanism_with_its_distribution(installed):
    distribution(
        installed,
        "toy-attention",
        "0.3",
        {"toy_attention": TOY.format(name="toy")},
        {"attention_zoo.mechanisms": {"toy": "toy_attention"}},
    )
    CATALOGUE.discover(again=True)
    assert "toy" in zoo.names() and "softmax" in zoo.names()
    assert zoo.info("toy").source == "toy-attention 0.3"
    assert zoo.info("softmax").source == "built-in"
    assert zoo.create("toy", heads=1, head_dim=4).name == "toy"


def test_a_plugin_that_fails_to_import_is_a_warning_and_asking_for_it_repeats_why(installed):
    distribution(
        installed,
        "broken-attention",
        "1.0",
        {"broken_attention": "raise ImportError('needs a kernel library this machine lacks')"},
        {"attention_zoo.mechanisms": {"broken": "broken_attention"}},
    )
    with pytest.warns(UserWarning) as caught:
        CATALOGUE.discover(again=True)
    (warning,) = [str(w.message) for w in caught]
    for part in ("'broken'", "broken-attention 1.0", "ImportError", "lacks"):
        assert part in warning
    assert "softmax" in zoo.names() and "broken" not in zoo.names()
    with pytest.raises(ValueError, match=r"'broken' is not available: .*broken-attention 1.0"):
        zoo.create("broken", heads=1, head_dim=4)


def test_a_plugin_registering_a_taken_name_fails_naming_both_sources(installed):
    distribution(
        installed,
        "clash-attention",
        "2.0",
        {"clash_attention": TOY.format(name="softmax")},
        {"attention_zoo.mechanisms": {"clash": "clash_attention"}},
    )
    with pytest.warns(UserWarning, match=r"from clash-attention 2.0 .* registered from built-in"):
        CATALOGUE.discover(again=True)
    assert zoo.info("softmax").source == "built-in"


def test_a_plugin_class_that_is_not_an_attention_is_refused():
    with pytest.raises(ValueError, match=r"must subclass attention_zoo\.Attention"):
        zoo.register("plain", complexity="linear")(type("Plain", (), {}))


def test_import_plugin_loads_a_file_and_its_mechanisms_name_the_file(installed):
    path = installed / "my_attention.py"
    path.write_text(TOY.format(name="filed"))
    assert zoo.import_plugin(str(path)) == f"file {path.resolve()}"
    assert zoo.info("filed").source == f"file {path.resolve()}"
    assert zoo.import_plugin(str(path)) == f"file {path.resolve()}"  # once only: no clash


def test_import_plugin_loads_a_module_by_name(installed):
    (installed / "unlisted_attention.py").write_text(TOY.format(name="unlisted"))
    assert zoo.import_plugin("unlisted_attention") == "module unlisted_attention"
    assert zoo.info("unlisted").source == "module unlisted_attention"


@pytest.mark.parametrize("spec", ["no_such_module_xyz", "missing/attention.py"])
def test_import_plugin_of_a_missing_module_or_file_names_it(spec):
    with pytest.raises(ValueError, match=f"--import {spec}: no "):
        zoo.import_plugin(spec)


def test_an_installed_entry_point_adds_an_lra_task(installed):
    distribution(
        installed,
        "toy-task",
        "0.1",
        {
            "toy_task": """
            from lra.registry import Reader, TaskInfo, register

            @register(TaskInfo("copy", 16, 2, 4, padding_id=0, pair=False, obtain="make it"))
            class Copy(Reader):
                pass
            """
        },
        {"lra.tasks": {"copy": "toy_task"}},
    )
    tasks.CATALOGUE.discover(again=True)
    assert lra.names()[-1] == "copy" and lra.suite()[0] == "listops"  # no order: last
    assert lra.info("copy").classes == 2
    assert tasks.source("copy") == "toy-task 0.1"
    assert tasks.source("listops") == "built-in"
