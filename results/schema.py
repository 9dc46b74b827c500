"""The parquet contract: the columns of every table under results/, for both sides of it.

    from results import schema

    writer = PartWriter(out, name, schema.SWEEP)          # a runner writes with it
    rows, problems = schema.read_table(Path("results/sweep"), needed=["method", "time_ms"])

The runners write every row with one of these schemas (unknown columns are an error there);
the reports read with `read_table`, naming the columns they use. It imports pyarrow and
pandas only, so the runners (torch) and the reports (matplotlib) both import it and neither
imports the other. A column added here is optional for the readers of older files: they see
it as missing values. A column a reader needs and a file lacks makes that file skipped, with
the column and the file named; so does a file that is not readable parquet.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# the columns every result row carries, filled from runners.provenance
PROVENANCE = [
    ("run_id", pa.string()),
    ("started_at", pa.string()),
    ("git_commit", pa.string()),
    ("git_dirty", pa.bool_()),
    ("device", pa.string()),
    ("device_name", pa.string()),
    ("torch_version", pa.string()),
    ("threads", pa.int32()),
    ("hostname", pa.string()),
    ("allocator", pa.string()),  # glibc-thp | system (CPU), torch-cuda-caching
    ("status", pa.string()),  # ok | oom | timeout | error | skipped
    ("error", pa.string()),
]

# results/sweep: one row per (mechanism, options, N, pass) of a scaling sweep
SWEEP = pa.schema(
    [
        *PROVENANCE,
        ("measured_at", pa.string()),
        ("method", pa.string()),
        ("method_options", pa.string()),  # JSON of the resolved options
        ("default_options", pa.bool_()),  # method_options are the mechanism's defaults
        ("mechanism_source", pa.string()),  # built-in | plugin 'dist version' | 'file PATH'
        ("seq_len", pa.int64()),
        ("batch", pa.int32()),
        ("heads", pa.int32()),
        ("head_dim", pa.int32()),
        ("dtype", pa.string()),
        ("pass", pa.string()),  # forward | forward_backward
        ("time_ms", pa.float64()),  # median
        ("time_ms_min", pa.float64()),
        ("time_ms_max", pa.float64()),
        ("repeats", pa.int32()),
        ("warmup_ms", pa.float64()),
        ("peak_mem_bytes", pa.int64()),
        ("mem_before_bytes", pa.int64()),
        ("flops", pa.float64()),  # the mechanism's declared count for one call (zoo.info)
        ("achieved_tflops", pa.float64()),  # flops / median time, in 10^12 per second
        ("backend", pa.string()),  # the kernel that ran, where a mechanism records it
        ("min_time_s", pa.float64()),
        ("cell_budget_s", pa.float64()),
        ("compile_budget_s", pa.float64()),
        ("seed", pa.int64()),
        ("cell_key", pa.string()),  # hash of configuration + environment, for resume
    ]
)

# results/lra (and lra_ablation): one `val` and one `test` row per training run
LRA = pa.schema(
    [
        *PROVENANCE,
        ("finished_at", pa.string()),
        ("task", pa.string()),
        ("task_order", pa.int64()),  # the task's place in tables (null: after the others)
        ("data_params", pa.string()),  # JSON of the profile's [data] for the task ({}: none)
        ("method", pa.string()),
        ("method_options", pa.string()),  # JSON
        ("mechanism_source", pa.string()),  # as the sweep's
        ("seed", pa.int64()),
        ("profile", pa.string()),
        ("config_hash", pa.string()),  # <out>/configs/<config_hash>.json holds the config
        ("split", pa.string()),  # val | test
        ("accuracy", pa.float64()),  # of the best-validation weights
        ("majority_accuracy", pa.float64()),  # always answering the split's commonest class
        ("examples", pa.int64()),
        ("seq_len", pa.int64()),
        ("batch", pa.int64()),
        ("steps", pa.int64()),
        ("planned_steps", pa.int64()),  # train.steps
        ("stopped_early", pa.bool_()),  # validation reached train.stop_at before them
        ("best_step", pa.int64()),
        ("train_seconds", pa.float64()),
        ("tokens_per_s", pa.float64()),
        ("peak_mem_bytes", pa.int64()),  # CUDA: whole run; CPU: one training step
        ("world_size", pa.int64()),  # processes that trained the run (torchrun)
        ("data_hash", pa.string()),  # the data's identity (cache parameters, sources' content)
        ("classes", pa.int64()),
        ("collapsed", pa.bool_()),  # never left chance (runners.lra.judge.collapse_reason)
        ("collapse_reason", pa.string()),
        ("overrides", pa.string()),  # JSON list of the --set items the run was given
    ]
)

# results/lra_curves (and lra_ablation_curves): one file per run, a row per validation
LRA_CURVES = pa.schema(
    [
        ("task", pa.string()),
        ("method", pa.string()),
        ("seed", pa.int64()),
        ("profile", pa.string()),
        ("config_hash", pa.string()),
        ("step", pa.int64()),
        ("train_loss", pa.float64()),  # mean over the steps since the previous point
        ("val_accuracy", pa.float64()),
        ("lr", pa.float64()),
        ("tokens_per_s", pa.float64()),  # training throughput since the previous point
        ("train_seconds", pa.float64()),  # cumulative, evaluation excluded
        # attention diagnostics (train.diagnostics, runners/lra/diagnostics.py): one value
        # per layer, on a fixed validation batch; a step-0 point holds the initial ones
        ("attn_colsum_dev", pa.list_(pa.float64())),
        ("attn_rowsum_dev", pa.list_(pa.float64())),
        ("attn_entropy", pa.list_(pa.float64())),
        ("attn_rank", pa.list_(pa.float64())),
        ("attn_rank_max", pa.list_(pa.float64())),
        ("attn_colsum_quantiles", pa.list_(pa.list_(pa.float64()))),
        ("diag_seconds", pa.float64()),
        ("diag_skipped", pa.string()),  # why there are none (no attention_matrix, N too large)
    ]
)

# results/claims: the zoo-level measurements behind the claims page (runners/claims.py), one
# row per (check, mechanism, options, N, iterations, seed, metric)
CLAIMS = pa.schema(
    [
        *PROVENANCE,
        ("measured_at", pa.string()),
        ("check", pa.string()),  # causal | sinkhorn_one_is_softmax | lotformer_doubly_stochastic
        ("method", pa.string()),
        ("method_options", pa.string()),  # JSON of the options given
        ("seq_len", pa.int64()),
        ("iters", pa.int64()),
        ("seed", pa.int64()),
        ("dtype", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("note", pa.string()),
    ]
)

# results/lra_efficiency: training steps/s and peak memory per (mechanism, N)
LRA_EFFICIENCY = pa.schema(
    [
        *PROVENANCE,
        ("measured_at", pa.string()),
        ("task", pa.string()),
        ("method", pa.string()),
        ("method_options", pa.string()),
        ("mechanism_source", pa.string()),  # as the sweep's
        ("profile", pa.string()),
        ("config_hash", pa.string()),
        ("seq_len", pa.int64()),
        ("batch", pa.int64()),
        ("amp", pa.string()),
        ("steps_per_s", pa.float64()),  # 1000 / time_ms
        ("time_ms", pa.float64()),  # median of one training step
        ("time_ms_min", pa.float64()),
        ("time_ms_max", pa.float64()),
        ("repeats", pa.int32()),
        ("peak_mem_bytes", pa.int64()),
    ]
)

# the folder under results/ each table lives in
TABLES = {
    "sweep": SWEEP,
    "lra": LRA,
    "lra_curves": LRA_CURVES,
    "lra_ablation": LRA,
    "lra_ablation_curves": LRA_CURVES,
    "recall": LRA,  # associative recall (make recall): LRA rows, data_params set
    "recall_curves": LRA_CURVES,
    "lra_efficiency": LRA_EFFICIENCY,
    "diagnostics": LRA,  # runs trained again with attention diagnostics (make claims-training)
    "diagnostics_curves": LRA_CURVES,
    "claims": CLAIMS,
}


def missing_columns(schema: pa.Schema, needed: Iterable[str]) -> list[str]:
    """The `needed` columns that `schema` does not have (a reader asking for a column that no
    writer makes is a bug in the reader)."""
    return [name for name in needed if name not in schema.names]


def read_table(
    folder: Path, needed: Iterable[str] = (), table: pa.Schema | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Every row of the parquet parts in `folder` (hidden temporaries skipped), and a line per
    part left out: not readable parquet, or lacking a column in `needed`.

    `table` is the folder's schema (by default the one `TABLES` gives its name, if any): the
    frame has its columns first, missing values where an older part lacks one, then any
    extra columns a part carries. The frame is empty when no part has a row."""
    folder = Path(folder)
    table = table if table is not None else TABLES.get(folder.name)
    needed = list(needed)
    if table is not None and (unknown := missing_columns(table, needed)):
        raise ValueError(
            f"no writer makes column {unknown[0]!r} of {folder.name}: see results/schema.py"
        )
    frames, problems = [], []
    for path in sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".")):
        try:
            frame = pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{path}: skipped, not readable parquet ({exc})")
            continue
        if lacking := [c for c in needed if c not in frame.columns]:
            problems.append(f"{path}: skipped, it has no column {', '.join(map(repr, lacking))}")
            continue
        if len(frame):
            frames.append(frame)
    if not frames:
        return pd.DataFrame(), problems
    rows = pd.concat(frames, ignore_index=True)
    if table is not None:
        order = [*table.names, *(c for c in rows.columns if c not in table.names)]
        rows = rows.reindex(columns=order)
    return rows, problems


def read_results(
    folder: Path,
    needed: Iterable[str] = (),
    table: pa.Schema | None = None,
    problems: list[str] | None = None,
) -> pd.DataFrame:
    """`read_table`'s rows, for every reader of results (runners and reports): a line for
    each part left out goes to `problems`, or to stderr as a warning when that is None."""
    rows, found = read_table(folder, needed, table)
    if problems is None:
        for line in found:
            print(f"warning: {line}", file=sys.stderr)
    else:
        problems.extend(found)
    return rows


def curve_names(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A name per (method, method_options) of the rows: the method, plus the options that
    differ between that method's curves ('lotformer [impl=reference]'), or the method alone.

    An option some curves lack (rows from before it existed: 'n/a') is named only where its
    value differs among the curves that have it, or where the names would collide without
    it. The one naming of a configuration: the sweep's printed table and the figures'
    legends."""
    keys = sorted(set(zip(rows["method"], rows["method_options"], strict=True)))
    names = {}
    for method in sorted({m for m, _ in keys}):
        mine = {o: json.loads(o) for m, o in keys if m == method}
        every = sorted(set().union(*mine.values()))

        def label(options: dict, differ: list[str], method: str = method) -> str:
            shown = ",".join(f"{k}={options.get(k, 'n/a')}" for k in differ)
            return f"{method} [{shown}]" if shown else method

        def values(k: str, mine: dict = mine) -> set[str]:
            return {json.dumps(o[k]) for o in mine.values() if k in o}

        differ = [k for k in every if len(values(k)) > 1]
        if len({label(o, differ) for o in mine.values()}) < len(mine):  # the n/a ones too
            differ = [k for k in every if len({json.dumps(o.get(k)) for o in mine.values()}) > 1]
        names.update({(method, text): label(o, differ) for text, o in mine.items()})
    return names
