"""LRA's efficiency table: training steps per second and peak memory on the text task's model.

    python -m runners.lra --efficiency --methods all                  # lengths 1K-4K, batch 32
    python -m runners.lra --efficiency --methods softmax,lotformer --lengths 1024,2048 --batch 8

For each mechanism and length: the text task's model of the profile (its layers, width and
mechanism options) at that length, random byte tokens (speed and memory do not depend on
the values), one training step per call (AdamW, clipping and autocast as in training).
Rows go to `results/lra_efficiency/`, written as they are measured; a length predicted
(from the two shorter ones) to exceed the memory budget is recorded as skipped rather than
tried, and a failed cell is a row (oom, or error with its text), as in the sweep.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from pathlib import Path

import torch

import attention_zoo as zoo
import lra
from results import schema
from runners.lra.config import config_hash
from runners.lra.step import build_training, state_bytes, train_step
from runners.measure.cases import failure_row
from runners.measure.loop import Budgets, Case, available_memory_bytes, run_cases
from runners.measure.meters import measure_memory, measure_time
from runners.provenance import provenance
from runners.results import PartWriter, part_name

SCHEMA = schema.LRA_EFFICIENCY


def measure_training_step(cfg: dict, length: int, batch: int, device, min_time_s: float) -> dict:
    """Time and peak memory of one training step of the text model at `length`."""
    task = lra.info("text")
    model, optimizer = build_training(cfg, task, length, 0, device)
    x = torch.randint(1, task.vocab_size, (batch, length), device=device)
    y = lra.task("text").example_labels(batch, length).to(device)

    def step() -> None:  # training's own step (runners.lra.step), on purpose: the table
        train_step(model, optimizer, cfg, device, x, None, y)  # times what training runs

    step()  # warm-up; creates the optimizer state
    alive = state_bytes(model, optimizer, x, y)
    memory = measure_memory(step, device, before_bytes=alive)
    times = measure_time(step, device, min_time_s=min_time_s, min_repeats=3, max_repeats=50)
    median = statistics.median(times)
    return {
        "status": "ok",
        "time_ms": median,
        "time_ms_min": min(times),
        "time_ms_max": max(times),
        "repeats": len(times),
        "steps_per_s": 1e3 / median,
        "peak_mem_bytes": memory.peak_bytes,
    }


def run_efficiency(
    cfgs: dict[str, dict],
    lengths: list[int],
    batch: int,
    device: torch.device,
    out: Path,
    min_time_s: float,
    progress: bool = True,
) -> int:
    """Measure every method x length; rows to `out`. Returns an exit code."""
    env = provenance(device)
    writer = PartWriter(out, part_name("efficiency", env), SCHEMA)
    budget = 0.8 * available_memory_bytes() if device.type == "cpu" else math.inf
    cases = [
        Case(
            curve=method,
            length=n,
            label=f"{method} N={n}",
            columns={
                **env,
                "task": "text",
                "method": method,
                "method_options": json.dumps(cfg["method_options"], sort_keys=True),
                "mechanism_source": zoo.info(method).source,
                "profile": cfg["profile"],
                "config_hash": config_hash(cfg),
                "seq_len": n,
                "batch": batch,
                "amp": cfg["train"]["amp"] if device.type == "cuda" else "none",
            },
            measure=functools.partial(_measure, cfg, n, batch, device, min_time_s),
        )
        for method, cfg in cfgs.items()
        for n in lengths
    ]
    rows = run_cases(cases, writer, Budgets(memory_bytes=budget), progress)
    print(f"{'method':<12}" + "".join(f"{n:>16}" for n in lengths))
    for method in cfgs:
        shown = [
            f"{r['steps_per_s']:.2f}/s {r['peak_mem_bytes'] / 2**20:.0f}M"
            if r["status"] == "ok"
            else r["status"]
            for r in rows
            if r["method"] == method
        ]
        print(f"{method:<12}" + "".join(f"{s:>16}" for s in shown))
    print(f"\n{len(writer.rows)} rows in {writer.path}")
    return 0


def _measure(cfg: dict, n: int, batch: int, device: torch.device, min_time_s: float) -> dict:
    """One cell's measurement; a failure is a row, as in the sweep (`failure_row`)."""
    try:
        return measure_training_step(cfg, n, batch, device, min_time_s)
    except Exception as exc:
        return failure_row(exc)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
