"""The task registry: one decorated class per task, looked up by name.

    @register(TaskInfo("listops", length=2048, classes=10, vocab_size=16, order=0, ...))
    class ListOpsReader(Reader):
        def locate(self, data_dir): ...            # the source on disk, or MissingData
        def read(self, split, data_dir, log): ...  # -> Examples (numpy arrays)

    task = lra.registry.task("listops")
    loss = task.loss(logits, labels)               # summed over the batch's examples
    hits, count = task.score(logits, labels)       # accuracy = hits / count, any shape

A task is one object: what it is (`TaskInfo`: length, classes, vocabulary, its outputs, its
place in tables), how its data is obtained (a reader of the sources on disk, or data made
from parameters, as recall's), and what training and evaluation ask of it (its loss, its
score, its majority baseline). Caching, checksums and tensors are `lra.data`'s business,
the model's head is `lra.models`' (chosen by `TaskInfo.outputs` and `pair`), so adding a
task is one file plus its registration.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from attention_zoo.plugins import Catalogue

SPLITS = ("train", "val", "test")
MAX_BAD_FRACTION = 0.01  # loading fails when more than this fraction of rows is malformed
OUTPUTS = ("sequence", "tokens")  # one label per input | one label per token (IGNORE: unscored)
IGNORE = -1  # the label of a token that is not scored (tokens outputs)


class MissingData(FileNotFoundError):
    """A task's sources are not in the data directory; the message says how to get them."""


class BadData(ValueError):
    """Too many malformed rows (more than MAX_BAD_FRACTION), or a source that cannot be read."""


@dataclass(frozen=True)
class TaskInfo:
    """What a task is: sequence length, classes, vocabulary and where its data comes from."""

    name: str
    length: int  # tokens per input (per document for retrieval)
    classes: int
    vocab_size: int  # input ids are 0..vocab_size-1
    padding_id: int | None  # the id that means "no token" (None: every id is real, e.g. pixels)
    pair: bool  # two inputs per example (retrieval)
    obtain: str  # how to get the sources: URL, tfds name or generate command
    params: dict = field(default_factory=dict)  # preprocessing parameters (cache manifest)
    outputs: str = "sequence"  # one of OUTPUTS: what the model predicts
    order: int | None = None  # place in tables; None: after the tasks that have one, by name
    suite: str = "lra"  # `--tasks all` means the tasks of suite "lra" (recall is "diagnostic")
    positions: bool = True  # learned position embeddings (a task over a set has none)
    # ids read as mixed-radix digits (most significant first), one embedding table each,
    # summed: recall's token is (key, value-or-role); None: one table of vocab_size
    factors: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.outputs not in OUTPUTS:
            raise ValueError(f"{self.name}: outputs must be one of {OUTPUTS}, got {self.outputs!r}")
        if self.pair and self.outputs != "sequence":
            raise ValueError(f"{self.name}: a pair task predicts one label per pair")
        if self.factors is not None and int(np.prod(self.factors)) != self.vocab_size:
            raise ValueError(f"{self.name}: factors {self.factors} must multiply to vocab_size")


@dataclass(frozen=True)
class Param:
    """A parameter that makes a task's data: its generator's (`python -m lra.data generate
    TASK --NAME`, recorded beside the files and checked against a profile's [data]), or one
    the task makes its data from in memory (recall's)."""

    name: str
    default: object  # None: the generator decides (its help says how)
    help: str
    kind: type = int
    lowest: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: object) -> None:
        """ValueError, one line naming the parameter and its limit, for a value it refuses."""
        if self.choices:
            if value not in self.choices:
                raise ValueError(
                    f"data.{self.name} = {value!r}: must be one of {list(self.choices)}"
                )
            return
        wrong_type = isinstance(value, bool) or not isinstance(value, self.kind)
        if wrong_type or (self.lowest is not None and value < self.lowest):
            limit = f" >= {self.lowest}" if self.lowest is not None else ""
            what = "an integer" if self.kind is int else self.kind.__name__
            raise ValueError(f"data.{self.name} = {value!r}: must be {what}{limit} ({self.help})")


@dataclass
class Examples:
    """One split: inputs (n, length) ints, optional second inputs, labels (n,) int64."""

    inputs: np.ndarray
    labels: np.ndarray
    inputs2: np.ndarray | None = None
    sources: list[Path] = field(default_factory=list)  # files read, for the cache manifest


@dataclass
class RowLog:
    """Malformed or unreadable rows met while reading a split: counted, never fatal alone."""

    total: int = 0
    bad: list[str] = field(default_factory=list)  # "file:line: why"

    def row(self) -> None:
        self.total += 1

    def skip(self, where: str, why: str) -> None:
        self.bad.append(f"{where}: {why}")

    def check(self, what: str) -> None:
        """Raise BadData past MAX_BAD_FRACTION; warn (with the first places) below it."""
        if not self.bad:
            return
        listing = "; ".join(self.bad[:5]) + (" ..." if len(self.bad) > 5 else "")
        message = f"{what}: skipped {len(self.bad)} of {self.total} rows ({listing})"
        if len(self.bad) > MAX_BAD_FRACTION * max(self.total, 1):
            raise BadData(f"{message}: more than {MAX_BAD_FRACTION:.0%} are malformed")
        warnings.warn(message, stacklevel=3)


class Reader:
    """One task: reads its sources, and scores a model's outputs on it; subclasses are
    registered with `register`. The scoring follows `task.outputs`; a task overrides what
    differs (recall's baseline is chance, 1 / values)."""

    task: TaskInfo
    # False: the data is read from disk (a profile's [data] names the generator parameters
    # it must have been made with); True: `make(params)` makes the splits in memory
    made_from_params = False
    # the parameters that make the data (a generator's, or `make`'s); none: not generated
    data_params: tuple[Param, ...] = ()

    def locate(self, data_dir: Path) -> Path:
        """The source that will be read (folder, archive or file); MissingData if none."""
        raise NotImplementedError

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        """The examples of `split`; malformed rows go to `log`."""
        raise NotImplementedError

    def check_data(self, given: dict) -> dict:
        """A profile's [data] parameters for this task, each checked (ValueError in one line
        naming it). A task made in memory completes them with its defaults; one read from
        disk takes them as given (runners.lra.runs.check_generated compares them with the
        record its generator left beside the files)."""
        known = {p.name: p for p in self.data_params}
        for name, value in given.items():
            if name not in known:
                raise ValueError(
                    f"data.{name}: not a parameter of {self.task.name}'s data; expected one of "
                    f"{list(known) or 'none (its data is not generated)'}"
                )
            known[name].check(value)
        if not self.made_from_params:
            return dict(given)
        return {p.name: given.get(p.name, p.default) for p in self.data_params}

    def make(self, params: dict) -> dict:
        """{split: lra.data.TaskData} made from `params` (tasks with made_from_params)."""
        raise NotImplementedError(f"{self.task.name} is read from disk, not made")

    def generate(self, root: Path, params: dict) -> list[tuple[Path, dict]]:
        """Write the task's sources under `root` from `params` (every one of `data_params`,
        None where the generator decides): (folder, the parameters as they were used) for
        each folder written, which lra.generators records beside its files."""
        raise NotImplementedError(f"{self.task.name} has no generator")

    def data_folder(self, root: Path, params: dict) -> Path:
        """Where `generate` writes (and its record lies) for `params`."""
        raise NotImplementedError(f"{self.task.name} has no generator")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy summed over the batch's examples (a token task: each example's mean
        over its scored tokens), so that / len(labels) is the batch mean whatever the shape.
        logits (B, C) and labels (B,), or (B, N, C) and (B, N) with IGNORE where unscored."""
        if self.task.outputs == "sequence":
            return F.cross_entropy(logits.float(), labels, reduction="sum")
        scored = labels != IGNORE  # (B, N)
        per_token = F.cross_entropy(
            logits.float().flatten(0, 1), labels.clamp_min(0).flatten(), reduction="none"
        ).view_as(labels)  # (B, N)
        per_example = (per_token * scored).sum(1) / scored.sum(1).clamp_min(1)
        return per_example.sum()

    def score(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
        """(answers right, answers scored) of a batch: accuracy is their ratio summed over
        batches, whatever the outputs' shape."""
        hits = logits.argmax(-1) == labels
        if self.task.outputs == "sequence":
            return int(hits.sum()), len(labels)
        scored = labels != IGNORE
        return int((hits & scored).sum()), int(scored.sum())

    def majority_accuracy(self, data) -> float:
        """Accuracy on split `data` (lra.data.TaskData) of always answering its commonest
        label (of the scored tokens, for a token task)."""
        labels = data.labels
        scored = labels[labels != IGNORE] if self.task.outputs == "tokens" else labels
        return float(np.bincount(scored.numpy().astype(np.int64)).max() / len(scored))

    def example_labels(self, batch: int, length: int, generator=None) -> torch.Tensor:
        """Random labels of the outputs' shape: (batch,) or (batch, length); for timing."""
        shape = (batch,) if self.task.outputs == "sequence" else (batch, length)
        return torch.randint(0, self.task.classes, shape, generator=generator)


# the built-in tasks, then the entry points of `lra.tasks` and `--import`s
CATALOGUE = Catalogue("LRA task", "lra.tasks", "lra")


def register(task: TaskInfo) -> Callable[[type[Reader]], type[Reader]]:
    """Class decorator that adds a reader to the registry under `task.name` (a name another
    reader holds already is a ValueError naming both sources)."""

    def decorate(cls: type[Reader]) -> type[Reader]:
        if not (isinstance(cls, type) and issubclass(cls, Reader)):
            raise ValueError(f"{cls!r} must subclass lra.registry.Reader to be registered")
        cls.task = task
        CATALOGUE.add(task.name, cls, lambda source: (task, cls()))
        return cls

    return decorate


def display_key(name: str, order: int | float | None) -> tuple:
    """Sort key of a task in lists and tables: its declared order, then those without one
    (a plugin that declares none) by name."""
    missing = order is None or (isinstance(order, float) and np.isnan(order))
    return (1, 0, name) if missing else (0, order, name)


def names() -> list[str]:
    """Every registered task (installed plugins included), in their declared order."""
    return sorted(CATALOGUE.names(), key=lambda n: display_key(n, lookup(n)[0].order))


def suite(name: str = "lra") -> list[str]:
    """The registered tasks of one suite, in order: `--tasks all` runs suite "lra"."""
    return [n for n in names() if lookup(n)[0].suite == name]


def lookup(name: str) -> tuple[TaskInfo, Reader]:
    return CATALOGUE.get(name)[1]


def task(name: str) -> Reader:
    """The task object of `name` (ValueError listing the known tasks if there is none)."""
    return lookup(name)[1]


def source(name: str) -> str:
    """Where task `name` comes from: built-in, a plugin's distribution, or a file."""
    lookup(name)
    return CATALOGUE.entries[name][1]


def info(name: str) -> TaskInfo:
    """The TaskInfo of `name` (ValueError listing the known tasks if there is none)."""
    return lookup(name)[0]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    return split


def progress(items, desc: str, total: int | None = None, unit: str = "row"):
    """`items` with a progress bar on stderr when it is a terminal (plain otherwise)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit=unit, disable=None, leave=False)


def tfds_prepared(name: str) -> bool:
    """Whether tensorflow-datasets is installed and has `name` prepared on this machine."""
    try:
        import tensorflow_datasets as tfds

        return tfds.builder(name).is_prepared()
    except Exception:  # not installed, or tfds's own errors for unknown/unprepared data
        return False


def locate_split_files(data_dir: Path, folder: str, files: dict[str, str], task: TaskInfo):
    """data_dir/folder if it holds every split's file, else MissingData naming the absent."""
    path = data_dir / folder
    missing = [name for name in files.values() if not (path / name).is_file()]
    if missing:
        raise MissingData(f"{task.name}: {path} lacks {', '.join(missing)}. {task.obtain}")
    return path


def raw_or_tfds_howto(task: str, url: str, archive: str, folder: str, tfds_name: str) -> str:
    """How to obtain a dataset that comes as an archive or from tensorflow-datasets."""
    return (
        f"run `python -m lra.data download {task}` (it saves {url} into the data directory "
        f"as {archive}; unpacked as {folder}/ serves too), or prepare the "
        f"tensorflow-datasets '{tfds_name}' (pip install '.[tfds]')"
    )


def locate_raw_or_tfds(data_dir: Path, names: tuple[str, ...], tfds_name: str, task: TaskInfo):
    """The first of data_dir/name that exists, else `tfds:<name>` if prepared; else
    MissingData saying how to get the data."""
    for name in names:
        if (data_dir / name).exists():
            return data_dir / name
    if tfds_prepared(tfds_name):
        return Path(f"tfds:{tfds_name}")
    raise MissingData(f"{task.name}: none of {list(names)} in {data_dir}. {task.obtain}")


def pad_rows(rows: list[np.ndarray], length: int, dtype: type, fill: int = 0) -> np.ndarray:
    """Stack 1-d id arrays into (n, length), truncating long rows and filling short ones."""
    out = np.full((len(rows), length), fill, dtype=dtype)
    for i, row in enumerate(rows):
        row = row[:length]
        out[i, : len(row)] = row
    return out
