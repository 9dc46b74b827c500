"""The tensorflow-datasets path of text (imdb_reviews) and image (cifar10), with the `tfds`
extra installed (`.ci/run` installs it; skipped elsewhere). `tfds.testing.mock_data`
stands in for the prepared datasets, no download: it serves, through tfds's own loading
and split slicing, the same examples the folder readers read (the genuine IMDb sample;
CIFAR-10 batches in the real format), so the two paths must give the same tensors."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from lra import image, registry  # noqa: E402
from lra.data import load  # noqa: E402
from tests.lra.test_image import META, write_batches  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "lra-real-samples"
IMDB = SAMPLE / "imdb-aclImdb-sample" / "aclImdb"


def serving(examples: dict[str, dict[str, np.ndarray]]):
    """A mock `as_dataset` answering tfds split specs ('train[:90%]') over `examples`."""

    def as_dataset(self, split, *args, **kwargs):
        sizes = {n: SimpleNamespace(num_examples=len(p["label"])) for n, p in examples.items()}
        (absolute,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(sizes)
        part = examples[absolute.splitname]
        cut = slice(absolute.from_, absolute.to)
        return tf.data.Dataset.from_tensor_slices({k: v[cut] for k, v in part.items()})

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


@pytest.fixture
def prepared(monkeypatch):
    """tfds answers for the two datasets as if they were prepared on this machine."""
    monkeypatch.setattr(registry, "tfds_prepared", lambda name: name in ("imdb_reviews", "cifar10"))


def imdb_examples() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for part in ("train", "test"):
        texts, labels = [], []
        for label, sentiment in enumerate(("neg", "pos")):  # imdb_reviews: 0 neg, 1 pos
            for path in sorted((IMDB / part / sentiment).glob("*.txt")):
                texts.append(path.read_bytes())
                labels.append(label)
        out[part] = {"text": np.array(texts, dtype=object), "label": np.array(labels)}
    return out


def assert_same(a, b) -> None:
    assert a.inputs.dtype == b.inputs.dtype and a.inputs.shape == b.inputs.shape
    assert a.labels.dtype == b.labels.dtype
    assert np.array_equal(a.inputs.numpy(), b.inputs.numpy())
    assert np.array_equal(a.labels.numpy(), b.labels.numpy())


def test_text_from_tfds_is_the_text_the_folder_reader_reads(tmp_path, prepared):
    shutil.copytree(IMDB, tmp_path / "folder" / "aclImdb")
    (tmp_path / "empty").mkdir()
    with serving(imdb_examples()):
        for split in ("train", "val", "test"):
            from_tfds = load("text", split, tmp_path / "empty")
            from_folder = load("text", split, tmp_path / "folder")
            assert from_tfds.data_hash is None and from_folder.data_hash is not None
            assert_same(from_tfds, from_folder)
            ids = from_tfds.inputs.numpy()
            assert from_tfds.inputs.shape[1] == 4096 and ((ids >= 0) & (ids <= 256)).all()
    sizes = {s: len(load("text", s, tmp_path / "folder")) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 7 and sizes["test"] == 3


def test_image_from_tfds_is_the_image_the_python_batches_give(tmp_path, prepared):
    folder = tmp_path / "folder" / "cifar-10-batches-py"
    written = write_batches(folder, per_batch=10)
    shutil.copy(META / "batches.meta", folder / "batches.meta")

    def hwc(names):
        data = np.concatenate([written[n][0] for n in names])
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # tfds: (32, 32, 3) uint8

    examples = {
        part: {"image": hwc(names), "label": np.concatenate([written[n][1] for n in names])}
        for part, names in (("train", image.TRAIN_BATCHES), ("test", image.TEST_BATCHES))
    }
    (tmp_path / "empty").mkdir()
    with serving(examples):
        for split in ("train", "val", "test"):
            from_tfds = load("image", split, tmp_path / "empty")
            assert_same(from_tfds, load("image", split, tmp_path / "folder"))
            assert from_tfds.inputs.dtype.is_floating_point is False
    assert [len(load("image", s, tmp_path / "folder")) for s in ("train", "val", "test")] == [
        45,
        5,
        10,
    ]


def test_grayscale_is_tensorflow_s_rgb_to_grayscale():
    """LRA's image task calls tf.image.rgb_to_grayscale on the uint8 image; ours must give
    its bytes: on pure and mixed colours, and on every value of each channel."""
    known = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0],
                      [128, 64, 32], [1, 2, 3], [254, 253, 252]], dtype=np.uint8)  # fmt: skip
    levels = np.arange(256, dtype=np.uint8)
    ramps = np.stack([np.stack([levels, z, z], 1) for z in (levels * 0, levels, 255 - levels)])
    rng = np.random.default_rng(0)
    pixels = np.concatenate([known, ramps.reshape(-1, 3), rng.integers(0, 256, (4096, 3))])
    rgb = pixels.astype(np.uint8).reshape(1, -1, 1, 3)
    theirs = tf.image.rgb_to_grayscale(tf.constant(rgb)).numpy().reshape(1, -1)
    ours = image.grayscale(rgb.reshape(-1, 1, 1, 3)).reshape(1, -1)
    assert np.array_equal(ours, theirs)
    assert ours[0, :5].tolist() == [76, 149, 29, 255, 0]  # red, green, blue, white, black
