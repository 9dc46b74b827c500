"""Small hand-made result tables in the real column layout (results/schema.py), for every report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

TASKS = ["listops", "text", "retrieval", "image", "pathfinder"]
PROV = {
    "git_commit": "0123456789abcdef",
    "device": "cpu",
    "device_name": "Test CPU",
    "torch_version": "2.13.0+cpu",
    "run_id": "r1",
    "started_at": "2026-11-20T09:00:00+00:00",
}


def lra_row(method, task, seed, accuracy, status="ok", profile="paper", config="c1", error=None):
    return {
        **PROV,
        "method": method,
        "task": task,
        "task_order": TASKS.index(task) + 1 if task in TASKS else None,  # as the tasks declare
        "seed": seed,
        "accuracy": accuracy,
        "majority_accuracy": 0.25,
        "status": status,
        "error": error,
        "profile": profile,
        "config_hash": config,
        "split": "test",
        "finished_at": f"2026-11-23T10:0{seed}:00+00:00",
    }


def lra_rows() -> pd.DataFrame:
    """softmax: 3 seeds on all five tasks; lotformer: 1 ok seed + 1 NaN seed; performer: 1 task."""
    out = []
    for i, task in enumerate(TASKS):
        for seed, acc in enumerate([0.30, 0.34, 0.38]):
            out.append(lra_row("softmax", task, seed, acc + i / 100))
        out.append(lra_row("lotformer", task, 0, 0.40 + i / 100))
    out.append(
        lra_row("lotformer", "listops", 1, None, status="error", error="training loss is nan")
    )
    out.append(lra_row("performer", "listops", 0, 0.2))
    out.append(lra_row("softmax", "listops", 0, 0.99, profile="smoke"))  # another profile
    out.append({**lra_row("softmax", "listops", 0, 0.99), "split": "val"})  # not test
    return pd.DataFrame(out)


def efficiency_row(method, seq_len, steps_per_s, peak_gb, status="ok", when="10", error=None):
    return {
        **PROV,
        "measured_at": f"2026-11-23T{when}:00:00+00:00",
        "status": status,
        "error": error,
        "task": "text",
        "method": method,
        "method_options": "{}",
        "profile": "paper",
        "config_hash": "e1",
        "seq_len": seq_len,
        "batch": 32,
        "amp": "bf16",
        "steps_per_s": steps_per_s if status == "ok" else None,
        "peak_mem_bytes": peak_gb * 1e9 if status == "ok" else None,
    }


def efficiency_rows() -> pd.DataFrame:
    """steps/s at 1K/4K: softmax 8/2; lotformer 6/6 (an older 4K row: 1); performer 9/OOM."""
    return pd.DataFrame(
        [
            efficiency_row("softmax", 1024, 8.0, 1.0),
            efficiency_row("softmax", 4096, 2.0, 9.0),
            efficiency_row("lotformer", 1024, 6.0, 0.5),
            efficiency_row("lotformer", 4096, 1.0, 3.0, when="09"),  # replaced by the next
            efficiency_row("lotformer", 4096, 6.0, 2.0),
            efficiency_row("performer", 1024, 9.0, 0.4),
            efficiency_row("performer", 4096, None, None, status="oom", error="CUDA out of memory"),
        ]
    )


def sweep_row(method, seq_len, pass_, time_ms, peak_bytes, status="ok", device_name="Test CPU"):
    return {
        **PROV,
        "device_name": device_name,
        "measured_at": f"2026-11-23T10:00:{seq_len % 60:02d}+00:00",
        "status": status,
        "error": None if status == "ok" else "predicted over the cell budget",
        "method": method,
        "method_options": "{}",
        "seq_len": seq_len,
        "batch": 1,
        "heads": 8,
        "head_dim": 64,
        "dtype": "fp32",
        "pass": pass_,
        "time_ms": time_ms if status == "ok" else None,
        "time_ms_min": time_ms,
        "time_ms_max": time_ms,
        "repeats": 5,
        "peak_mem_bytes": peak_bytes if status == "ok" else None,
    }


def sweep_rows() -> pd.DataFrame:
    """softmax quadratic up to 4K then OOM at 8K; lotformer linear to 8K; both passes."""
    out = []
    for pass_, k in (("forward", 1.0), ("forward_backward", 3.0)):
        for n in (1024, 2048, 4096, 8192):
            x = n / 1024
            if n < 8192:
                out.append(sweep_row("softmax", n, pass_, k * 10 * x * x, 2**20 * 64 * x * x))
            else:
                out.append(sweep_row("softmax", n, pass_, None, None, status="oom"))
            out.append(sweep_row("lotformer", n, pass_, k * 4 * x, 2**20 * 8 * x))
    return pd.DataFrame(out)


def curve_rows(task="listops", profile="paper", config="c1"):
    out = []
    for method, base in (("softmax", 0.30), ("lotformer", 0.40)):
        for seed in (0, 1):
            for step in (100, 200, 300):
                out.append(
                    {
                        "task": task,
                        "method": method,
                        "seed": seed,
                        "profile": profile,
                        "config_hash": config,
                        "step": step,
                        "train_loss": 2.0 - step / 1000 - seed / 100,
                        "val_accuracy": base + step / 10000 + seed / 100,
                        "lr": 1e-3,
                        "tokens_per_s": 1e4,
                        "train_seconds": step / 10,
                    }
                )
    return out


@pytest.fixture
def curves() -> pd.DataFrame:
    return pd.DataFrame(curve_rows())


def write_results(root: Path, **tables: pd.DataFrame) -> Path:
    """`tables` (lra=..., sweep=...) as one parquet part each under root/<name>/; returns root."""
    for name, frame in tables.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / name / f"{name}-part.parquet")
    return root


@pytest.fixture
def rows() -> pd.DataFrame:
    return lra_rows()


@pytest.fixture
def efficiency() -> pd.DataFrame:
    return efficiency_rows()


@pytest.fixture
def sweep() -> pd.DataFrame:
    return sweep_rows()
