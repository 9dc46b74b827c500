"""The rows the claims page reads, cut the way its rules compare them: the newest run of a
zoo-level check, the curve points that carry attention diagnostics (with their data set's
label), the seeds of an ablation variant on one profile and data set, lotformer's recall
runs by r. Pure functions of frames; reports/claims.py judges what they return.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from reports import stats
from reports.accuracy import seed_accuracies
from reports.data import variant_label
from reports.recall import recall_runs

Rows = dict[str, pd.DataFrame]  # results folder name -> its rows


def devices(*frames: pd.DataFrame) -> str:
    names = set()
    for f in frames:
        if len(f) and "device_name" in f:
            names |= {str(d) for d in f["device_name"].dropna()}
    return ", ".join(sorted(names))


def interval_text(text_of: tuple[float, tuple[float, float] | None, int] | None) -> str:
    if text_of is None:
        return "-"
    mean, iv, n = text_of
    return f"{mean:+.1f}" + (f" [{iv[0]:+.1f}, {iv[1]:+.1f}]" if iv else "") + f" ({seeds_text(n)})"


def seeds_text(n: int) -> str:
    return "1 seed" if n == 1 else f"{n} seeds"


def newest_check(claims: pd.DataFrame, check: str) -> pd.DataFrame:
    """The rows of the newest run of `check` (runners/claims.py)."""
    if claims.empty or "check" not in claims:
        return claims.iloc[:0]
    part = claims[claims["check"] == check]
    if part.empty:
        return part
    return part[part["run_id"] == part.sort_values("measured_at")["run_id"].iloc[-1]]


# each curves folder beside the folder of its runs' final rows
CURVES_OF = {"diagnostics_curves": "diagnostics", "lra_curves": "lra", "recall_curves": "recall"}


def diagnosed(rows: Rows) -> pd.DataFrame:
    """Curve points that carry attention diagnostics, of runs that finished (an ok test row
    beside their curves), from every curves folder, with `label` (task, profile, data),
    `options` and `device_name` from the run's final rows."""
    parts = []
    for curves_folder, finals_folder in CURVES_OF.items():
        points, finals = rows.get(curves_folder), rows.get(finals_folder)
        if points is None or finals is None or points.empty or finals.empty:
            continue
        if "attn_colsum_dev" not in points:
            continue
        done = test_rows(finals)
        finished = set(zip(done["config_hash"], done["seed"], strict=True))
        keep = [k in finished for k in zip(points["config_hash"], points["seed"], strict=True)]
        points = points[np.array(keep, dtype=bool) & points["attn_colsum_dev"].notna().to_numpy()]
        parts.append(_described(points, done))
    if not parts:
        return pd.DataFrame()
    keys = ["profile", "task", "method", "seed", "config_hash", "step"]
    return pd.concat(parts, ignore_index=True).drop_duplicates(keys)


def _described(points: pd.DataFrame, finals: pd.DataFrame) -> pd.DataFrame:
    labels, options, device = {}, {}, {}
    for rec in finals.to_dict("records"):
        params = rec.get("data_params")
        data = json.loads(params) if isinstance(params, str) else {}
        extra = f", {data['pairs']} pairs" if "pairs" in data else ""
        labels[rec["config_hash"]] = f"{rec['task']} ({rec['profile']}{extra})"
        options[rec["config_hash"]] = rec.get("method_options")
        device[rec["config_hash"]] = rec.get("device_name")
    hashes = list(points["config_hash"])
    return points.assign(
        label=[labels[h] for h in hashes],
        options=[options[h] for h in hashes],
        device_name=[device[h] for h in hashes],  # the run's own
    )


def run_ends(points: pd.DataFrame) -> pd.DataFrame:
    """Per run: the step-0 point and the last one (`when` = init | trained)."""
    out = []
    for _, run in points.groupby(["config_hash", "seed"]):
        run = run.sort_values("step")
        if run["step"].iloc[0] == 0 and len(run) > 1:
            out += [run.iloc[[0]].assign(when="init"), run.iloc[[-1]].assign(when="trained")]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def test_rows(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    return rows[(rows["split"] == "test") & (rows["status"] == "ok")]


def slope(x: pd.Series, y: pd.Series) -> float:
    return float(np.polyfit(np.log2(x.astype(float)), np.log2(y.astype(float)), 1)[0])


def counted_tasks(test: pd.DataFrame, profile: str, margin: float) -> list[str]:
    """The tasks of `profile` on which some mechanism's mean is over majority + `margin`."""
    part = test[test["profile"] == profile]
    means = part.groupby(["task", "method"])["accuracy"].mean()
    majority = part.groupby("task")["majority_accuracy"].first()
    return sorted(t for t in majority.index if means[t].max() > majority[t] + margin)


def paired(test: pd.DataFrame, ours: str, base: str):
    seeds = {m: seed_accuracies(test[test["method"] == m]) for m in (ours, base)}
    return stats.paired_difference(seeds[ours], seeds[base])


def lra_profile(test: pd.DataFrame) -> str | None:
    profiles = set(test["profile"]) if len(test) else set()
    return "paper" if "paper" in profiles else (sorted(profiles)[0] if profiles else None)


def ablation_seeds(rows: Rows, method: str, label: str) -> dict[str, dict[int, float]]:
    """profile/data -> seed -> test accuracy (%) of the ListOps ablation variant `label`
    ('' = the mechanism at the profile's settings, from results/lra)."""
    source = rows.get("lra_ablation" if label else "lra", pd.DataFrame())
    test = test_rows(source)
    if test.empty:
        return {}
    test = test[(test["method"] == method) & (test["task"] == "listops")]
    if label:
        test = test[[variant_label(o) == label for o in test["overrides"]]]
    return {
        f"{p}/{h}": seed_accuracies(part)
        for (p, h), part in test.groupby(["profile", "data_hash"], dropna=False)
    }


def paired_variant(rows: Rows, method: str, a: str, b: str):
    """The paired difference variant a - variant b on the same profile and data (or None)."""
    left, right = ablation_seeds(rows, method, a), ablation_seeds(rows, method, b)
    for key in sorted(set(left) & set(right)):
        found = stats.paired_difference(left[key], right[key])
        if found:
            return found
    return None


def r_at_pairs(runs: pd.DataFrame) -> dict[int, dict[int, dict]]:
    """pairs -> r -> {'acc': seed -> %, 's_per_step': median} for lotformer's recall runs."""
    lot = runs[runs["method"] == "lotformer"]
    out: dict[int, dict[int, dict]] = {}
    for (pairs, options), part in lot.groupby(["pairs", "method_options"]):
        r = json.loads(options)["r"]
        per_step = (part["train_seconds"] / part["steps"]).median()
        out.setdefault(int(pairs), {})[r] = {"acc": seed_accuracies(part), "s": per_step}
    return out


def recall_vs_softmax(rows: Rows) -> list[tuple[str, tuple | None]]:
    runs = recall_runs(rows.get("recall", pd.DataFrame()))
    out = []
    if runs.empty:
        return out
    runs = runs[runs["status"] == "ok"]
    for (setting, pairs), part in runs.groupby(["setting", "pairs"]):
        profile = json.loads(setting)["profile"]
        soft = seed_accuracies(part[part["variant"] == "softmax"])
        sink = seed_accuracies(part[part["variant"] == "sinkformer"])
        out.append((f"recall, {pairs} pairs ({profile})", stats.paired_difference(sink, soft)))
    return out
