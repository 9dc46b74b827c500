"""Image: CIFAR-10 as a sequence of 1024 grayscale pixels (LRA's sequential image task).

Sources, first found wins: the unpacked `cifar-10-batches-py/` folder, the
`cifar-10-python.tar.gz` archive (https://www.cs.toronto.edu/~kriz/cifar.html), or the
tensorflow-datasets `cifar10` already prepared on this machine (tfds extra).
Grayscale exactly as `tf.image.rgb_to_grayscale` computes it on uint8 images: float32
x / 255, weights (0.2989, 0.5870, 0.1140), then x * 255.5 truncated to uint8. Pixel ids
are 0..255 and every one is a real token: 0 is black, not padding.
Splits as in LRA: train = the first 90% of the 50,000 training images, val = the last
10%, test = the 10,000 test images.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from lra.registry import (
    BadData,
    Examples,
    MissingData,
    Reader,
    RowLog,
    TaskInfo,
    locate_raw_or_tfds,
    raw_or_tfds_howto,
    register,
)

FOLDER, ARCHIVE, TFDS_NAME = "cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
TRAIN_FRACTION = 0.9
RGB_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)

TASK = TaskInfo(
    "image",
    order=4,
    length=1024,
    classes=10,
    vocab_size=256,
    padding_id=None,
    pair=False,
    obtain="CIFAR-10: "
    + raw_or_tfds_howto(
        "image", f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}", ARCHIVE, FOLDER, TFDS_NAME
    ),
    params={"gray": "tf.image.rgb_to_grayscale", "split": "train[:90%]/train[90%:]/test"},
)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts of lists, bytes and numpy arrays) and nothing else."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def load_batch(data: bytes, name: str) -> dict:
    """A CIFAR python batch (python2 pickle) as a dict with str keys."""
    try:
        raw = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise BadData(f"{name}: not a CIFAR-10 python batch ({exc})") from None
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) uint8 -> (n, 32, 32) uint8, as tf.image.rgb_to_grayscale."""
    flt = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    gray = flt @ RGB_WEIGHTS  # float32
    return (gray * np.float32(255.5)).astype(np.uint8)  # TF's float -> uint8: scale, truncate


def batch_arrays(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 32, 32, 3) uint8 and labels (n,) of one batch."""
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes R, G, B -> HWC
    except (KeyError, ValueError) as exc:
        raise BadData(f"{name}: not a CIFAR-10 data batch ({exc})") from None
    if len(images) != len(labels) or not ((labels >= 0) & (labels < 10)).all():
        raise BadData(f"{name}: {len(images)} images but {len(labels)} labels in 0..9")
    return images, labels


@register(TASK)
class ImageReader(Reader):
    def locate(self, data_dir: Path) -> Path:
        return locate_raw_or_tfds(data_dir, (FOLDER, ARCHIVE), TFDS_NAME, TASK)

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        source = self.locate(data_dir)
        names = TEST_BATCHES if split == "test" else TRAIN_BATCHES
        if source.name == FOLDER:
            blobs, sources = self._folder(source, names)
        elif source.name == ARCHIVE:
            blobs, sources = self._archive(source, names), [source]
        else:
            return self._tfds(split, log)
        parts = [batch_arrays(load_batch(blobs[n], n), n) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        log.total += len(labels)
        if split != "test":
            cut = int(TRAIN_FRACTION * len(labels))
            keep = slice(0, cut) if split == "train" else slice(cut, None)
            images, labels = images[keep], labels[keep]
        return Examples(grayscale(images).reshape(len(images), -1), labels, sources=sources)

    def _folder(self, root: Path, names: list[str]):
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            raise MissingData(f"image: {root} lacks {', '.join(missing)}. {TASK.obtain}")
        return {n: (root / n).read_bytes() for n in names}, [root / n for n in names]

    def _archive(self, path: Path, names: list[str]) -> dict[str, bytes]:
        blobs = {}
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in names and (handle := archive.extractfile(member)):
                    blobs[name] = handle.read()
        if missing := [n for n in names if n not in blobs]:
            raise BadData(f"image: {path} lacks {', '.join(missing)}")
        return blobs

    def _tfds(self, split: str, log: RowLog) -> Examples:
        import tensorflow_datasets as tfds

        tfds_split = {"train": "train[:90%]", "val": "train[90%:]", "test": "test"}[split]
        images, labels = [], []
        for example in tfds.as_numpy(tfds.load(TFDS_NAME, split=tfds_split, download=False)):
            log.row()
            images.append(example["image"])
            labels.append(int(example["label"]))
        images = np.stack(images)
        return Examples(grayscale(images).reshape(len(images), -1), np.asarray(labels, np.int64))


def label_names(root: Path) -> list[str]:
    """The class names in `batches.meta` of a cifar-10-batches-py folder."""
    meta = load_batch((root / "batches.meta").read_bytes(), "batches.meta")
    return [n.decode() for n in meta["label_names"]]
