"""ListOps (Nangia & Bowman 2018, LRA's 2K version): evaluate nested list operations.

    python -m lra.data generate listops --seed 0      # 96000 / 2000 / 2000, release format
    ids, label = encode(source), evaluate(tokens(source))

Release files `listops-1000/basic_{train,val,test}.tsv`: header `Source<TAB>Target`, one
expression per row in which every argument is wrapped in parentheses,
`( ( ( [MAX 2 ) 9 ) ] )`, and the label 0..9. LF or CRLF line ends.

Tokens are the operators `[MIN [MAX [MED [SM`, the digits and the closing `]`; the
parentheses carry no information and are dropped (the release's rows are ~4000
whitespace tokens with them, under 2000 without). The LRA pipeline's tokenizer keeps only
alphanumeric characters and so also drops `]`, which makes expressions ambiguous
(`[MAX 1 [MIN 2 3 ] 4 ]` and `[MAX 1 [MIN 2 3 4 ] ]` read the same); we keep it.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np

from lra.registry import (
    BadData,
    Examples,
    Param,
    Reader,
    RowLog,
    TaskInfo,
    locate_split_files,
    pad_rows,
    progress,
    register,
)
from results.files import atomic_path

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
VOCAB = ("<pad>", *"0123456789", *OPERATORS, END)  # id = position: 0 pads
TOKEN_ID = {tok: i for i, tok in enumerate(VOCAB)}
FOLDER = "listops-1000"
FILES = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
# the LRA generator's settings
MAX_DEPTH, MAX_ARGS, VALUE_P, MIN_LENGTH, MAX_LENGTH = 10, 10, 0.25, 500, 2000
COUNTS = {"train": 96000, "val": 2000, "test": 2000}

TASK = TaskInfo(
    "listops",
    order=1,
    length=2048,
    classes=10,
    vocab_size=len(VOCAB),
    padding_id=0,
    pair=False,
    obtain=(
        "run `python -m lra.data download listops` (the LRA release, "
        "https://storage.googleapis.com/long-range-arena/lra_release.gz, its "
        f"{FOLDER}/), or generate it offline: python -m lra.data generate listops"
    ),
    params={"tokens": "operators, digits and ']' (parentheses dropped)", "vocab": VOCAB},
)


def tokens(source: str) -> list[str]:
    """The expression's tokens, parentheses dropped."""
    return [t for t in source.split() if t not in ("(", ")")]


def apply(op: str, args: list[int]) -> int:
    """The value of operator `op` on its arguments (LRA semantics)."""
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":
        return int(np.median(args))  # mean of the middle two, truncated, for an even count
    if op == "[SM":
        return sum(args) % 10
    raise ValueError(f"unknown ListOps operator {op!r}")


def evaluate(toks: list[str]) -> int:
    """The value of a tokenised expression; ValueError if it is not well formed."""
    stack: list[tuple[str, list[int]]] = []
    value = None
    for tok in toks:
        if tok in OPERATORS:
            stack.append((tok, []))
            continue
        if tok == END:
            if not stack:
                raise ValueError("']' without an operator")
            op, args = stack.pop()
            if not args:
                raise ValueError(f"{op} without arguments")
            result = apply(op, args)
        elif len(tok) == 1 and tok.isdigit():
            result = int(tok)
        else:
            raise ValueError(f"unknown token {tok!r}")
        if stack:
            stack[-1][1].append(result)
        elif value is None:
            value = result
        else:
            raise ValueError("more than one expression")
    if stack or value is None:
        raise ValueError("unfinished expression")
    return value


def encode(toks: list[str]) -> np.ndarray:
    return np.fromiter((TOKEN_ID[t] for t in toks), dtype=np.uint8, count=len(toks))


def read_tsv(path: Path, log: RowLog) -> tuple[list, list]:
    """Rows of a release TSV as (token ids, label); malformed rows are logged, not fatal."""
    ids, labels = [], []
    with open(path, newline="", encoding="utf-8") as fh:  # newline="": CRLF and LF alike
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header != ["Source", "Target"]:
            raise BadData(f"{path}: expected the header 'Source<TAB>Target', got {header!r}")
        for line, row in enumerate(progress(reader, f"listops {path.name}"), start=2):
            log.row()
            where = f"{path.name}:{line}"
            if len(row) != 2:
                log.skip(where, f"expected 2 tab-separated fields, got {len(row)}")
                continue
            try:
                label = int(row[1])
                toks = tokens(row[0])
                value = evaluate(toks)
            except ValueError as exc:
                log.skip(where, str(exc))
                continue
            if value != label:
                log.skip(where, f"label {label} but the expression evaluates to {value}")
                continue
            ids.append(encode(toks))
            labels.append(label)
    return ids, labels


@register(TASK)
class ListOpsReader(Reader):
    data_params = (
        Param("count", None, "examples in all, split 96/2/2 as the release (default: the "
              "release's 100,000)", lowest=3),
        Param("seed", 0, "seed of every random choice", lowest=0),
        Param("max_length", None, "tokens per sequence below this (default 2000, as LRA; e.g. "
              "256 for a small CPU task)", lowest=2),
        Param("min_length", None, "tokens per sequence above this (default 500, or a quarter "
              "of max_length)", lowest=0),
    )  # fmt: skip

    def locate(self, data_dir: Path) -> Path:
        return locate_split_files(data_dir, FOLDER, FILES, TASK)

    def data_folder(self, root: Path, params: dict) -> Path:
        return root / FOLDER

    def generate(self, root: Path, params: dict) -> list[tuple[Path, dict]]:
        count, seed = params.get("count"), params.get("seed", 0)
        counts = None
        if count is not None:  # the release's proportions, 96 / 2 / 2
            val = test = max(1, round(count * 0.02))
            counts = {"train": count - val - test, "val": val, "test": test}
        hi = params.get("max_length") or MAX_LENGTH
        lo = params.get("min_length")
        lo = lo if lo is not None else min(MIN_LENGTH, hi // 4)
        for path in generate(root, counts, seed, (lo, hi)):
            print(f"wrote {path}")
        total = sum((counts or COUNTS).values())
        used = {"count": total, "seed": seed, "min_length": lo, "max_length": hi}
        return [(self.data_folder(root, params), used)]

    def read(self, split: str, data_dir: Path, log: RowLog) -> Examples:
        path = self.locate(data_dir) / FILES[split]
        ids, labels = read_tsv(path, log)
        return Examples(
            pad_rows(ids, TASK.length, np.uint8), np.asarray(labels, np.int64), sources=[path]
        )


# generator -----------------------------------------------------------------------------


def random_tree(rng: random.Random, depth: int = 1) -> tuple[object, int]:
    """A random expression tree and its length (values + 2 per operator), as LRA draws them.

    A node below MAX_DEPTH is an operator with probability VALUE_P, with 2..MAX_ARGS
    arguments; otherwise (and always at MAX_DEPTH) a digit.
    """
    if depth < MAX_DEPTH and rng.random() <= VALUE_P:
        args, length = [], 2
        for _ in range(rng.randint(2, MAX_ARGS)):
            sub, sub_length = random_tree(rng, depth + 1)
            args.append(sub)
            length += sub_length
        return (rng.choice(OPERATORS), tuple(args)), length
    return rng.randrange(10), 1


def to_source(tree: object) -> str:
    """The release's text: `( ( ( [MAX 2 ) 9 ) ] )` for [MAX 2 9]."""
    if isinstance(tree, int):
        return str(tree)
    op, args = tree
    text = "( " * (len(args) + 1) + op
    for arg in args:
        text += f" {to_source(arg)} )"
    return text + f" {END} )"


def value(tree: object) -> int:
    if isinstance(tree, int):
        return tree
    op, args = tree
    return apply(op, [value(a) for a in args])


def generate(
    data_dir: Path,
    counts: dict[str, int] | None = None,
    seed: int = 0,
    lengths: tuple[int, int] = (MIN_LENGTH, MAX_LENGTH),
) -> list[Path]:
    """Write basic_{train,val,test}.tsv under data_dir/listops-1000; returns the files.

    Distinct trees whose length (in our tokens) is strictly between `lengths` (LRA's 500 and
    2000 by default; shorter ones make a smaller task for CPU smoke runs), drawn with
    `random.Random(seed)`; the first counts['train'] go to train, then val, then test.
    """
    counts = counts or COUNTS
    lo, hi = lengths
    if not 0 <= lo < hi - 1:
        raise ValueError(f"ListOps lengths must satisfy 0 <= min < max - 1, got {lengths}")
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, int]] = []
    while len(rows) < sum(counts.values()):
        tree, length = random_tree(rng)
        if lo < length < hi:
            source = to_source(tree)
            if source not in seen:
                seen.add(source)
                rows.append((source, value(tree)))
    folder = data_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written, start = [], 0
    for split, count in counts.items():
        path = folder / FILES[split]
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t")  # excel dialect: CRLF, as LRA's generator
            writer.writerow(["Source", "Target"])
            writer.writerows(rows[start : start + count])
        written.append(path)
        start += count
    return written
