"""The sweep's command line: presets, built-in defaults and the parsing of its flags.

from runners.sweep.args import build_parser, resolve
args = resolve(build_parser().parse_args(["--preset", "cpu"]))
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from itertools import product
from pathlib import Path

import torch

import attention_zoo as zoo
from attention_zoo.options import parse_value
from attention_zoo.registry import PASSES
from runners.arguments import add_import_option
from runners.measure.allocator import MODES
from runners.measure.cases import DTYPES

DEFAULTS = {
    "methods": "all",
    "lengths": "512:4096",
    "batch": 1,
    "heads": 8,
    "head_dim": 64,
    "dtype": "fp32",
    "device": "auto",
    "passes": ",".join(PASSES),
    "min_time": 1.0,
    "min_repeats": 3,
    "max_repeats": 100,
    "cell_budget": 60.0,
    "compile_budget": 300.0,
    "cpu_allocator": "auto",
    "options": [],
}
PRESETS = {
    # the published long-context benchmark (LOTFormer paper): one GPU, bf16, up to 2^17
    "paper": {
        "methods": "all",
        "lengths": "512:131072",
        "batch": 1,
        "heads": 16,
        "head_dim": 64,
        "dtype": "bf16",
        "device": "cuda",
        "options": ["lotformer.r=32", "lotformer.iters=5"],
        "cell_budget": 120.0,
    },
    # finishes in a few minutes on a 2-core CPU; quadratic cells past the budget are skipped
    "cpu": {
        "methods": "all",
        "lengths": "512:16384",
        "batch": 1,
        "heads": 8,
        "head_dim": 64,
        "dtype": "fp32",
        "device": "cpu",
        "min_time": 0.3,
        "cell_budget": 10.0,
    },
}


def parse_options(
    items: Sequence[str], methods: Sequence[str]
) -> dict[str, list[dict[str, object]]]:
    """['lotformer.r=32', 'lotformer.impl=fused,reference'] -> {'lotformer': [{'r': 32,
    'impl': 'fused'}, {'r': 32, 'impl': 'reference'}]}: every combination of the values
    given, one curve each, checked against the zoo's options."""
    chosen: dict[str, dict[str, list[object]]] = {m: {} for m in methods}
    for item in items:
        key, sep, raw = item.partition("=")
        method, dot, name = key.partition(".")
        if not (sep and dot and method and name and raw):
            raise ValueError(
                f"--option must look like METHOD.NAME=VALUE or METHOD.NAME=V1,V2, got {item!r}"
            )
        if method not in chosen:
            raise ValueError(
                f"--option {item!r}: {method!r} is not among --methods {list(methods)}"
            )
        defaults = zoo.info(method).defaults
        if name not in defaults:
            raise ValueError(
                f"--option {item!r}: {method} has no option {name!r}; it has {sorted(defaults)}"
            )
        try:
            values = [parse_value(v, defaults[name]) for v in raw.split(",")]
        except ValueError as exc:
            raise ValueError(f"--option {item!r}: {exc}") from None
        chosen[method][name] = list(dict.fromkeys(values))  # the last one given wins
    return {
        m: [dict(zip(by_name, combo, strict=True)) for combo in product(*by_name.values())]
        for m, by_name in chosen.items()
    }


def build_parser(kind: type[argparse.ArgumentParser] = argparse.ArgumentParser):
    p = kind(
        prog="python -m runners.sweep",
        description="Time and peak memory of attention mechanisms against sequence length. "
        "Each cell (method x length x pass) is one parquet row, written as soon as it is measured; "
        "re-running resumes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets (explicit flags override them):\n"
        + "\n".join(f"  {name}: {json.dumps(values)}" for name, values in PRESETS.items())
        + "\n  auto: paper where a CUDA GPU is visible, else cpu"
        + "\n\nbuilt-in defaults: "
        + json.dumps(DEFAULTS),
    )
    a = p.add_argument
    a("--preset", choices=[*PRESETS, "auto"], help="a named setup (see below)")
    a(
        "--methods",
        "--method",
        dest="methods",
        help=f"comma list of zoo mechanisms or all; known: {','.join(zoo.names())}",
    )
    a("--lengths", help="LO:HI for the powers of two between, or a comma list, e.g. 512:131072")
    a("--batch", type=int, help="batch size B")
    a("--heads", type=int, help="heads H")
    a("--head-dim", type=int, dest="head_dim", help="head dimension D")
    a("--dtype", choices=list(DTYPES), help="dtype of q, k, v")
    a("--device", help="auto (cuda if available), cpu, cuda or cuda:N")
    a("--passes", help="comma list of forward, forward_backward")
    a(
        "--option",
        action="append",
        dest="options",
        metavar="METHOD.NAME=VALUE",
        help="a mechanism option, repeatable, e.g. --option lotformer.r=64; several values "
        "give one curve each: --option lotformer.impl=fused,reference",
    )
    a(
        "--out",
        type=Path,
        default=Path("results/sweep"),
        help="folder of the parquet parts (default results/sweep)",
    )
    a(
        "--min-time",
        type=float,
        dest="min_time",
        help="seconds of timed calls per cell, at least (CPU; CUDA picks repeats to fill it)",
    )
    a("--min-repeats", type=int, dest="min_repeats", help="timed calls per cell, at least")
    a("--max-repeats", type=int, dest="max_repeats", help="timed calls per cell, at most")
    a(
        "--cell-budget",
        type=float,
        dest="cell_budget",
        help="seconds one cell may take: cells predicted to exceed it are skipped, "
        "and a single call over it is recorded as a timeout",
    )
    a(
        "--compile-budget",
        type=float,
        dest="compile_budget",
        help="seconds a cell's first call may take (it may compile: torch.compile, CUDA "
        "graphs); over it the cell is a timeout row whose warmup_ms is that time",
    )
    a(
        "--time-budget",
        type=float,
        dest="time_budget",
        metavar="SECONDS",
        help="stop starting cells after this many seconds; the cells left are recorded as "
        "skipped (rows saying why), and a re-run resumes them",
    )
    a(
        "--memory-budget-gib",
        type=float,
        dest="memory_budget_gib",
        help="CPU: skip cells whose predicted peak exceeds this (default 80%% of available RAM)",
    )
    a(
        "--try-after-failure",
        action="store_true",
        help="also try lengths above one that failed (oom, timeout, error)",
    )
    a("--force", action="store_true", help="measure again cells already in --out")
    a(
        "--retry-failed",
        action="store_true",
        help="measure again cells recorded with a status other than ok",
    )
    a(
        "--cpu-allocator",
        choices=MODES,
        dest="cpu_allocator",
        help="thp: run with glibc's malloc on transparent huge pages, so that large blocks "
        "are faulted in 2 MiB at a time instead of 4 KiB (the sweep re-executes itself with "
        "GLIBC_TUNABLES=glibc.malloc.hugetlb=1); system: malloc as it is; auto (default): "
        "thp where glibc >= 2.35 and the kernel allow it. Recorded in the allocator column",
    )
    a("--seed", type=int, default=0, help="seed of the inputs and of the mechanisms' parameters")
    a("--quiet", action="store_true", help="no progress bar")
    add_import_option(p)
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset flags from the preset, then from the built-in defaults."""
    preset = args.preset
    if preset == "auto":
        preset = "paper" if torch.cuda.is_available() else "cpu"
    base = {**DEFAULTS, **PRESETS.get(preset, {})}
    for name, value in base.items():
        if name == "options":
            args.options = [*value, *(args.options or [])]
        elif getattr(args, name) is None:
            setattr(args, name, value)
    return args
