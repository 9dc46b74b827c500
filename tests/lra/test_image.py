"""CIFAR-10: python batches (folder and tarball), TF's grayscale, LRA's splits, safe unpickling."""

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lra import image
from lra.data import load
from lra.registry import BadData

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lra-real-samples"
META = FIXTURES / "cifar10-batches-py-meta" / "cifar-10-batches-py"


def write_batches(folder: Path, per_batch: int = 20, seed: int = 0) -> dict:
    """Batches in the real format: python2-style pickles with bytes keys, planar RGB rows."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    written = {}
    for name in [*image.TRAIN_BATCHES, *image.TEST_BATCHES]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        data[0] = 0  # an all-black image: pixel 0 is a real pixel
        labels = rng.integers(0, 10, size=per_batch).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [b"x.png"] * per_batch}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = (data, labels)
    return written


def reference_gray(rows: np.ndarray) -> np.ndarray:
    """tf.image.rgb_to_grayscale on uint8, in float64: int(255.5 * (w . rgb / 255))."""
    rgb = rows.reshape(-1, 3, 1024).astype(np.float64) / 255
    gray = 0.2989 * rgb[:, 0] + 0.5870 * rgb[:, 1] + 0.1140 * rgb[:, 2]
    return np.floor(gray * 255.5)


def test_batches_become_tf_grayscale_pixels_with_lra_splits(tmp_path):
    written = write_batches(tmp_path / "cifar-10-batches-py")
    train, val = load("image", "train", tmp_path), load("image", "val", tmp_path)
    test = load("image", "test", tmp_path)
    assert (len(train), len(val), len(test)) == (90, 10, 20)  # train[:90%] / train[90%:]
    data = np.concatenate([written[n][0] for n in image.TRAIN_BATCHES])
    labels = [y for n in image.TRAIN_BATCHES for y in written[n][1]]
    assert train.labels.tolist() == labels[:90] and val.labels.tolist() == labels[90:]
    gray = np.concatenate([train.inputs.numpy(), val.inputs.numpy()]).astype(np.float64)
    diff = np.abs(gray - reference_gray(data))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # float32 vs float64 rounding only
    assert (train.inputs[0] == 0).all() and train.info.padding_id is None
    assert test.inputs.shape == (20, 1024) and test.inputs.dtype.is_floating_point is False


def test_known_colours():
    pixels = np.array([[[[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 0]]]], np.uint8)
    assert image.grayscale(pixels).ravel().tolist() == [255, 76, 149, 0]


def test_tarball_matches_folder(tmp_path):
    write_batches(tmp_path / "unpacked" / "cifar-10-batches-py")
    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "unpacked" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for split in ("train", "val", "test"):
        a, b = (
            load("image", split, tmp_path / "unpacked"),
            load("image", split, tmp_path / "packed"),
        )
        assert (a.inputs == b.inputs).all() and (a.labels == b.labels).all()


def test_the_genuine_batches_meta_is_read():
    names = image.label_names(META)
    assert names[0] == "airplane" and names[-1] == "truck" and len(names) == 10


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with pytest.raises(BadData, match="not a CIFAR-10 python batch"):
        image.load_batch(pickle.dumps({b"data": Evil()}, protocol=2), "data_batch_1")
