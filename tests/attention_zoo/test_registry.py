import pytest

import attention_zoo as zoo

MECHANISMS = ["flash", "lotformer", "performer", "sinkformer", "softmax"]


def test_names_lists_the_five_built_in_mechanisms_sorted():
    """Installed plugins (entry points) come on top of them, so the test holds with some."""
    assert [n for n in zoo.names() if zoo.info(n).source == "built-in"] == MECHANISMS
    assert zoo.names() == sorted(zoo.names())


@pytest.mark.parametrize(
    ("name", "complexity", "doubly_stochastic"),
    [
        ("softmax", "quadratic", False),
        ("flash", "quadratic", False),
        ("performer", "linear", False),
        ("sinkformer", "quadratic", True),
        ("lotformer", "linear", True),
    ],
)
def test_info_reports_complexity_and_doubly_stochastic(name, complexity, doubly_stochastic):
    meta = zoo.info(name)
    assert (meta.complexity, meta.doubly_stochastic) == (complexity, doubly_stochastic)


def test_info_reports_the_published_defaults():
    assert zoo.info("lotformer").defaults == {
        "r": 32,
        "eps": 1.0,
        "iters": 5,
        "cls_tokens": 0,
        "impl": "fused",
        "compiled": "auto",
    }
    assert zoo.info("sinkformer").defaults == {
        "iters": 3,
        "eps": 1.0,
        "impl": "auto",
        "streaming_from": 2048,
        "kernel": "sdpa",
    }
    assert zoo.info("performer").defaults["nb_features"] == 256


def test_create_merges_options_over_defaults():
    attn = zoo.create("lotformer", heads=2, head_dim=8, r=4)
    assert (attn.r, attn.iters, attn.eps) == (4, 5, 1.0)
    assert attn.pivots.shape == (2, 4, 8)


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match=r"unknown attention 'nope'.*'softmax'"):
        zoo.create("nope", heads=1, head_dim=4)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['rank'\].*'r'"):
        zoo.create("lotformer", heads=1, head_dim=4, rank=3)


@pytest.mark.parametrize(
    ("name", "options"),
    [("lotformer", {"r": 0}), ("sinkformer", {"eps": -1.0}), ("performer", {"nb_features": 2.5})],
)
def test_invalid_option_values_are_rejected(name, options):
    with pytest.raises(ValueError, match="must be"):
        zoo.create(name, heads=1, head_dim=4, **options)


def test_a_name_taken_by_another_class_is_refused_with_both_sources():
    from attention_zoo.registry import CATALOGUE
    from attention_zoo.softmax import Softmax

    with CATALOGUE.scratch():
        zoo.register("softmax", complexity="quadratic")(Softmax)  # the same class: a reload

        class Imposter(Softmax):
            pass

        with pytest.raises(
            ValueError, match=r"'softmax' from .* is already registered from built-in"
        ):
            zoo.register("softmax", complexity="quadratic")(Imposter)
    assert zoo.info("softmax").source == "built-in"
