"""The LRA models: every mechanism's model learns a task that needs attention; padding is
taken from the data; retrieval's two towers share one encoder."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import attention_zoo as zoo
import lra
from lra.models import ModelConfig, PairClassifier, build_model
from lra.registry import TaskInfo

CLASSES, LENGTH = 4, 8
FIRST_CLASS = LENGTH + 1  # ids 1..LENGTH-1 are pointers, then the classes
POINTER = TaskInfo(
    "pointer", LENGTH, CLASSES, FIRST_CLASS + CLASSES, padding_id=None, pair=False, obtain=""
)
TINY = ModelConfig(layers=2, width=32, heads=2, ffn=64, dropout=0.0)
OPTIONS = {"lotformer": {"r": 8, "iters": 3}, "performer": {"nb_features": 64}}
STEPS = 800


def pointer_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first token names a position; the label is the class token found there. Without
    attention a model sees a sum of per-token features, which cannot tell which class sits at
    a position that changes from example to example."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(FIRST_CLASS, FIRST_CLASS + CLASSES, (n, LENGTH), generator=g)
    where = torch.randint(1, LENGTH, (n,), generator=g)
    x[:, 0] = where
    return x, x[torch.arange(n), where] - FIRST_CLASS


def fit(model: torch.nn.Module, until: float = 1.0, seed: int = 0) -> float:
    """Train on the pointer task for up to STEPS steps, stopping early once the accuracy on
    fresh examples (checked every 100 steps) reaches `until`; that accuracy."""
    x, y = pointer_task(8192, seed)
    test_x, test_y = pointer_task(1024, seed + 1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(1, STEPS + 1):
        idx = torch.randint(0, len(x), (128,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == STEPS:
            model.eval()
            with torch.no_grad():
                accuracy = float((model(test_x).argmax(-1) == test_y).float().mean())
            model.train()
            if accuracy >= until:
                break
    return accuracy


@pytest.mark.slow
@pytest.mark.parametrize("method", zoo.names())
def test_every_mechanism_learns_to_copy_the_class_a_pointer_names(method):
    torch.manual_seed(0)
    model = build_model(POINTER, TINY, method, OPTIONS.get(method, {}))
    assert fit(model, until=0.9) >= 0.9  # within 800 steps: lotformer needs ~500, the rest ~300


@pytest.mark.slow
def test_without_attention_the_pointer_task_is_not_learned():
    """The task needs attention: the same model with its attention output cut stays low."""
    torch.manual_seed(0)
    model = build_model(POINTER, TINY, "softmax", {})
    for block in model.encoder.blocks:
        torch.nn.init.zeros_(block.attn.out.weight)
        torch.nn.init.zeros_(block.attn.out.bias)
        block.attn.out.requires_grad_(False)
    assert fit(model) < 0.6


@pytest.mark.parametrize("method", zoo.names())
def test_padding_positions_do_not_change_the_prediction(method):
    """ListOps pads with id 0: a row padded to 48 predicts what it does padded to 32."""
    torch.manual_seed(0)
    model = build_model(lra.info("listops"), TINY, method, OPTIONS.get(method, {}), 48).eval()
    x = torch.randint(1, 16, (3, 32))
    x[0, 20:] = 0
    x[1, 5:] = 0
    wider = torch.cat([x, torch.zeros(3, 16, dtype=x.dtype)], 1)
    with torch.no_grad():
        torch.testing.assert_close(model(wider), model(x), atol=1e-5, rtol=1e-4)


def test_pixel_value_zero_is_a_real_token_not_padding():
    """Image tasks have no padding id: black pixels (0) are attended and pooled like any."""
    torch.manual_seed(0)
    model = build_model(lra.info("image"), TINY, "softmax", {}, 48).eval()
    x = torch.randint(1, 256, (2, 32))
    with_black = torch.cat([x, torch.zeros(2, 16, dtype=x.dtype)], 1)
    with torch.no_grad():
        assert not torch.allclose(model(with_black), model(x), atol=1e-3)


def test_cls_tokens_of_lotformer_prepend_a_pooled_cls_token():
    model = build_model(POINTER, TINY, "lotformer", {"cls_tokens": 1}).eval()
    assert model.encoder.cls == 1
    assert model.encoder.positions.shape[0] == LENGTH + 1
    assert model.encoder.tokens.num_embeddings == POINTER.vocab_size + 1
    x, _ = pointer_task(4, 0)
    with torch.no_grad():  # the pooled vector is the [CLS] position's
        pooled = model.encoder(x)
        model.encoder.norm.register_forward_hook(lambda m, i, out: seen.append(out))
        seen: list = []
        model.encoder(x)
    torch.testing.assert_close(pooled, seen[0][:, 0])


def test_retrieval_uses_one_encoder_on_both_documents():
    torch.manual_seed(0)
    model = build_model(lra.info("retrieval"), TINY, "performer", {}, 40).eval()
    assert isinstance(model, PairClassifier)
    a, b = torch.randint(1, 257, (2, 3, 40))
    a[:, 30:] = 0
    with torch.no_grad():
        u, v = model.encoder(a), model.encoder(b)
        expected = model.head(torch.cat([u, v, u * v, u - v], -1))
        torch.testing.assert_close(model(a, b), expected, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(a, b), model(b, a), atol=1e-4)  # [u-v] is ordered
    with pytest.raises(ValueError, match="both documents"):
        model(a)


def test_training_gradients_reach_lotformers_pivots_and_masses():
    """At the paper's ListOps options (r=4, eps=0.1, 50 iterations) a training step moves
    the pivots and the pivot masses of every layer, not only the projections."""
    torch.manual_seed(0)
    options = {"r": 4, "eps": 0.1, "iters": 50}
    model = build_model(lra.info("listops"), TINY, "lotformer", options, 64)
    x = torch.randint(1, 16, (8, 64))
    F.cross_entropy(model(x), torch.randint(0, 10, (8,))).backward()
    for i, block in enumerate(model.encoder.blocks):
        attention = block.attn.attention
        for name in ("pivots", "mass_logits"):
            grad = getattr(attention, name).grad
            assert grad is not None and torch.isfinite(grad).all(), (i, name)
            assert grad.abs().max() > 0, (i, name)
