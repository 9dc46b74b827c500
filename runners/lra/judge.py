"""What a run's data and its end say, apart from training: the splits cropped to the
profile's length, whether a run collapsed, and the data's identity (the hash every LRA row
carries). The majority baseline it compares with is the task's
(`lra.task(name).majority_accuracy`).

    splits = {s: crop(load("listops", s, root), 256) for s in SPLITS}
    why = collapse_reason(curve, lra.task("listops").majority_accuracy(splits["val"]), 10)
"""

from __future__ import annotations

import hashlib
import math

from lra.data import TaskData


def crop(data: TaskData, length: int) -> TaskData:
    """`data` with inputs cut to `length` tokens; ValueError if that cuts real tokens."""
    if length == 0 or length >= data.inputs.shape[1]:
        return data
    inputs = [data.inputs] + ([data.inputs2] if data.inputs2 is not None else [])
    if data.info.padding_id is None:
        raise ValueError(
            f"train.length = {length}: {data.info.name} has no padding (every position is "
            f"real), its inputs are {data.inputs.shape[1]} long; use train.length = 0"
        )
    cut = [int((x[:, length:] != data.info.padding_id).any(1).sum()) for x in inputs]
    if sum(cut):
        longest = max(int((x != data.info.padding_id).sum(1).max()) for x in inputs)
        raise ValueError(
            f"train.length = {length} cuts real tokens from {sum(cut)} {data.split} inputs "
            f"(the longest has {longest}); set train.length >= {longest} or 0"
        )
    labels = data.labels  # a label per token (B, N) is cut with its tokens
    return TaskData(
        data.inputs[:, :length].contiguous(),
        labels[:, :length].contiguous() if labels.dim() == 2 else labels,
        None if data.inputs2 is None else data.inputs2[:, :length].contiguous(),
        data.info,
        data.split,
        data.skipped,
        data.data_hash,  # cropping removes padding only: the same data
    )


# a run "collapsed" when it never learnt: its last validation accuracy is within this of
# the majority class's, or its training loss never left ln(classes) by more than LOSS_BAND
# (the loss of uniform predictions; Pathfinder runs stuck at 0.693 are the known case)
MAJORITY_BAND = 0.01
LOSS_BAND = 0.01


def collapse_reason(curve: list[dict], majority: float, classes: int) -> str | None:
    """Why a finished run counts as collapsed, from its curve points, or None if it learnt.
    A step-0 point (attention diagnostics at initialisation: no loss, no accuracy) is not
    a validation and is left out."""
    curve = [p for p in curve if p["step"] > 0]
    if not curve:
        return None
    last = curve[-1]["val_accuracy"]
    if abs(last - majority) <= MAJORITY_BAND:
        return (
            f"validation accuracy ends at {100 * last:.1f}%, within {100 * MAJORITY_BAND:g} "
            f"point of the majority class's {100 * majority:.1f}%"
        )
    chance = math.log(classes)
    losses = [p["train_loss"] for p in curve]
    if all(abs(loss - chance) <= LOSS_BAND for loss in losses):
        return (
            f"training loss never left ln({classes}) = {chance:.3f} by more than {LOSS_BAND:g} "
            f"(between {min(losses):.3f} and {max(losses):.3f})"
        )
    return None


def data_identity(splits: dict[str, TaskData]) -> str | None:
    """One hash for the data of a run: its splits' hashes (None if a split has none)."""
    hashes = [splits[s].data_hash for s in sorted(splits)]
    if any(h is None for h in hashes):
        return None
    return hashlib.sha256("|".join(hashes).encode()).hexdigest()[:16]
