"""Associative recall over a set: which value goes with this key? A label per query token.

    python -m runners.lra --profile recall --tasks recall --methods all --seeds 0,1,2
    python -m runners.lra --profile recall --tasks recall --set tasks.recall.data.pairs=64

    splits = lra.registry.task("recall").make({"pairs": 64})   # {split: TaskData}, in memory

An example holds `pairs` context tokens, each a distinct key (of `keys`) with a value (of
`values`, drawn uniformly), then `distractors` blank tokens that carry nothing, then one
query token per context key, in a shuffled order. The model must answer each query with
its key's value (Zoology's multi-query associative recall, made non-causal: every token
sees every other, so the task is a set and has no positions). Only the query tokens are
scored; accuracy is the fraction of queries answered exactly, chance is 1 / values.

A token is one id read as two digits, (key, slot): slot v < values is a context token
holding value v, slot `values` a query, slot `values + 1` a distractor (whose key is the
blank key `keys`). The model embeds each digit with its own table and sums them
(`TaskInfo.factors`), so a context token is emb_key(k) + emb_slot(v) and a query
emb_key(k) + emb_slot(query), as in the probes that chose this layout.

The data is a pure function of the parameters (its `data_hash` says so): made in memory
in well under a second, no download, no files. Validation and test examples whose context
also occurs in training are replaced, so the three splits are disjoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from lra.registry import Examples, Param, Reader, RowLog, TaskInfo, register

VERSION = 1  # of the generator: a change to what a parameter set makes bumps it
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # each split's own random stream
MAX_ID = 2**31 - 1  # ids are stored as int32 (int16 when they fit)
PARAMS = (
    Param("pairs", 32, "key-value pairs in each example (one query each)", lowest=1),
    Param("keys", 128, "the key vocabulary", lowest=1),
    Param("values", 128, "the value vocabulary (chance is 1 / values)", lowest=2),
    Param("distractors", 0, "blank tokens between context and queries, to stretch N", lowest=0),
    Param("seed", 0, "seed of every split", lowest=0),
    Param("train", 65536, "training examples", lowest=1),
    Param("val", 256, "validation examples", lowest=1),
    Param("test", 256, "test examples", lowest=1),
)
DEFAULTS = {p.name: p.default for p in PARAMS}

TASK = TaskInfo(
    "recall",
    order=0,  # before the LRA tasks: it is the table that separates the mechanisms
    suite="diagnostic",
    length=2 * DEFAULTS["pairs"],
    classes=DEFAULTS["values"],
    vocab_size=(DEFAULTS["keys"] + 1) * (DEFAULTS["values"] + 2),
    padding_id=None,
    pair=False,
    outputs="tokens",
    positions=False,
    factors=(DEFAULTS["keys"] + 1, DEFAULTS["values"] + 2),
    obtain="nothing to obtain: made from its data parameters (tasks.recall.data.*) at load",
    params={"version": VERSION, "layout": "context, distractors, shuffled queries"},
)


def check_params(given: dict) -> dict:
    """Every parameter (the defaults filled in), checked; ValueError in one line naming the
    parameter and its limit."""
    return RecallTask().check_data(given)


def _together(params: dict) -> None:
    """The limits that involve two parameters."""
    if params["pairs"] > params["keys"]:
        raise ValueError(
            f"data.pairs = {params['pairs']}: must be <= data.keys = {params['keys']} "
            "(the keys of one example are distinct)"
        )
    vocab = (params["keys"] + 1) * (params["values"] + 2)
    if vocab > MAX_ID:
        raise ValueError(
            f"data.keys = {params['keys']}, data.values = {params['values']}: the token ids "
            f"need (keys + 1) * (values + 2) = {vocab:,} <= {MAX_ID:,}"
        )


def info_for(params: dict) -> TaskInfo:
    """The task as one parameter set makes it: its length, classes and vocabulary."""
    keys, values = params["keys"], params["values"]
    return dataclasses.replace(
        TASK,
        length=2 * params["pairs"] + params["distractors"],
        classes=values,
        vocab_size=(keys + 1) * (values + 2),
        factors=(keys + 1, values + 2),
        params={**TASK.params, **params},
    )


def examples(params: dict, count: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """`count` examples: ids (count, N), labels (count, N) with -1 off the queries, and each
    example's context as a sortable row (count, pairs) of key * values + value."""
    P, K, V, D = params["pairs"], params["keys"], params["values"], params["distractors"]
    slots = V + 2
    keys = np.argsort(rng.random((count, K)), axis=1)[:, :P]  # distinct keys per example
    values = rng.integers(0, V, (count, P))
    order = np.argsort(rng.random((count, P)), axis=1)  # the queries' order
    asked = np.take_along_axis(keys, order, 1)
    answer = np.take_along_axis(values, order, 1)
    dtype = np.int16 if (K + 1) * slots <= np.iinfo(np.int16).max else np.int32
    ids = np.empty((count, 2 * P + D), dtype)
    ids[:, :P] = keys * slots + values
    ids[:, P : P + D] = K * slots + V + 1  # the blank key, the distractor slot
    ids[:, P + D :] = asked * slots + V
    labels = np.full((count, 2 * P + D), -1, np.int16 if V <= 2**15 else np.int32)
    labels[:, P + D :] = answer
    context = np.sort(keys * V + values, axis=1)
    return ids, labels, context


def _digest(rows: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in rows}


def make_splits(params: dict) -> dict[str, Examples]:
    """The three splits of `params`; a val or test example whose context (its key-value
    set) occurs in training, or in val for test, is replaced by a fresh one."""
    out: dict[str, Examples] = {}
    seen: set[bytes] = set()
    for split, stream in SPLIT_STREAMS.items():
        rng = np.random.default_rng([params["seed"], stream])
        ids, labels, context = examples(params, params[split], rng)
        if seen:
            for _ in range(100):
                clash = np.array([row.tobytes() in seen for row in context])
                if not clash.any():
                    break
                more = examples(params, int(clash.sum()), rng)
                ids[clash], labels[clash], context[clash] = more
            else:
                raise ValueError(
                    f"recall: cannot draw {params[split]} {split} examples unlike the training "
                    f"ones with pairs = {params['pairs']}, keys = {params['keys']}, values = "
                    f"{params['values']}: there are too few distinct contexts; raise keys or "
                    "values, or lower data.train"
                )
        seen |= _digest(context)
        out[split] = Examples(ids, labels)
    return out


@register(TASK)
class RecallTask(Reader):
    """Associative recall: data from parameters, scored on the query tokens."""

    made_from_params = True
    data_params = PARAMS

    def locate(self, data_dir: Path) -> Path:
        return Path("(made from its parameters)")

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        return make_splits(check_params({}))[split]

    def check_data(self, given: dict) -> dict:
        params = super().check_data(given)  # each alone, defaults filled in
        _together(params)
        return params

    def make(self, given: dict) -> dict:
        """{split: TaskData} of the parameters `given` (defaults for the rest)."""
        from lra.data import TaskData  # here: lra.data imports the registry this file feeds

        params = check_params(given)
        info = info_for(params)
        identity = json.dumps({"task": "recall", **info.params}, sort_keys=True)
        made = make_splits(params)
        return {
            split: TaskData(
                torch.from_numpy(ex.inputs),
                torch.from_numpy(ex.labels),
                None,
                info,
                split,
                0,
                hashlib.sha256(f"{identity}|{split}".encode()).hexdigest()[:16],
            )
            for split, ex in made.items()
        }

    def majority_accuracy(self, data) -> float:
        """Chance: every query's value is uniform over the values, so any fixed answer is
        right 1 / values of the time."""
        return 1.0 / data.info.classes
