"""Claims, checked: what the LOTFormer and Sinkformers papers claim, what our rows say, and a
verdict each, as pure functions of the rows (docs/claims.md says it in words).

    table = claims_table(rows)     # rows: {results folder name: frame}
    (its figures: reports/claims_figures.py)

A claim is its paper's words in short, where the paper says it, the command that measures
it here, and `judge`: a rule written before its result was looked at (the thresholds are
the module constants below) that turns rows into a Finding: `supported`, `not supported`,
`mixed` (with what it depends on) or `not yet measured` (with what would measure it). No
verdict is typed in; a claim without rows says `not yet measured` and never fails the page.
Rows of different data (profile, task, data parameters) are never pooled in one figure or
one interval: a comparison is made within one of them and the verdict combines them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports import stats
from reports.claims_rows import (
    Rows,
    ablation_seeds,
    counted_tasks,
    devices,
    diagnosed,
    interval_text,
    lra_profile,
    newest_check,
    paired,
    paired_variant,
    r_at_pairs,
    recall_vs_softmax,
    run_ends,
    seeds_text,
    slope,
    test_rows,
)
from reports.recall import recall_runs
from reports.render import Table, TableCell

# the thresholds of the rules, fixed before the rows they judge were read
DS_TOLERANCE = 0.01  # mean |column (row) sum - 1|: doubly stochastic to 1% of the mass
LINEAR_SLOPE = 1.2  # log-log slope of time and memory vs N over N >= 2^13: linear
LINEAR_FROM = 2**13
MEMORY_OVERHEAD = 0.40  # lotformer / flash peak memory - 1: the paper's upper end
MATCH_MARGIN = 2.0  # accuracy points: "matches" = the interval's low end above -2
CHANCE_MARGIN = 0.02  # a task counts once some mechanism's mean is 2 points over majority
LITTLE_GAIN = 2.0  # points: r = 64 over r = 32 gains at most this ("little")
SWEET_GAIN = 2.0  # points: r = 32 over r = 16 gains at least this (smaller is worse)
COLLAPSED_DIAGONAL = 0.9  # mean diagonal entry at the largest count: collapsed to I
ONE_IS_SOFTMAX = {"float32": 1e-6, "float64": 1e-12}  # max |difference|
UNMEASURED = "not yet measured"


@dataclass(frozen=True)
class Finding:
    verdict: str  # supported | not supported | mixed | not yet measured
    ours: str  # the figures behind it
    device: str = ""
    why: str = ""  # mixed: on what it depends; not yet measured: what is missing


@dataclass(frozen=True)
class Claim:
    number: int
    paper: str
    says: str
    source: str
    command: str
    judge: Callable[[Rows], Finding]


def combine(parts: dict[str, bool | None], ours: str, device: str, missing: str) -> Finding:
    """A verdict from named parts that hold (True), fail (False) or lack rows (None)."""
    known = {k: v for k, v in parts.items() if v is not None}
    if not known:
        return Finding(UNMEASURED, ours, device, missing)
    held = [k for k, v in known.items() if v]
    failed = [k for k, v in known.items() if not v]
    unmeasured = [k for k, v in parts.items() if v is None]
    gap = f"; not yet measured: {', '.join(unmeasured)} ({missing})" if unmeasured else ""
    if not failed:
        verdict, why = ("supported", "") if not unmeasured else ("mixed", "")
    elif not held:
        verdict, why = "not supported", ""
    else:
        verdict, why = "mixed", f"holds: {', '.join(held)}; fails: {', '.join(failed)}"
    return Finding(verdict, ours, device, (why + gap).strip("; "))


# --- the rules ----------------------------------------------------------------------------


def lotformer_doubly_stochastic(rows: Rows) -> Finding:
    """Within DS_TOLERANCE of doubly stochastic (the larger of the mean column-sum and
    row-sum deviations) for each setting measured: at initialisation per (iters, eps), over
    r 4..64 and seeds; trained, per data set, the last diagnostics of each run; and of
    rank at most r everywhere."""
    init = newest_check(rows.get("claims", pd.DataFrame()), "lotformer_doubly_stochastic")
    points = diagnosed(rows)
    trained = run_ends(points[points["method"] == "lotformer"]) if len(points) else points
    trained = trained[trained["when"] == "trained"] if len(trained) else trained
    parts: dict[str, bool | None] = {}
    rank_ok, lines = [], []
    if len(init):
        wide = init.pivot_table("value", ["method_options", "seed"], "metric").reset_index()
        opts = [json.loads(o) for o in wide["method_options"]]
        wide["dev"] = np.maximum(wide["colsum_dev"], wide["rowsum_dev"])
        wide = wide.assign(iters=[o["iters"] for o in opts], eps=[o["eps"] for o in opts])
        rank_ok += list(wide["rank_max"] <= np.array([o["r"] for o in opts]))
        for (iters, eps), worst in wide.groupby(["iters", "eps"])["dev"].max().items():
            parts[f"DS at init (iters {iters}, eps {eps:g})"] = bool(worst <= DS_TOLERANCE)
            lines.append(f"init, iters {iters}, eps {eps:g}: {worst:.1e}")
    for label, part in trained.groupby("label") if len(trained) else []:
        worst = max(max(max(c), max(r)) for c, r in
                    zip(part["attn_colsum_dev"], part["attn_rowsum_dev"], strict=True))  # fmt: skip
        r = {json.loads(o)["r"] for o in part["options"] if isinstance(o, str)}
        ranks = max(max(x) for x in part["attn_rank_max"])
        rank_ok.append(len(r) == 1 and ranks <= min(r))
        parts[f"DS trained ({label})"] = bool(worst <= DS_TOLERANCE)
        shown_r = ", ".join(str(x) for x in sorted(r))
        lines.append(
            f"trained {label}, {seeds_text(len(part))}: {worst:.1e}, rank {ranks:.0f} (r {shown_r})"
        )
    parts["rank <= r"] = bool(all(rank_ok)) if rank_ok else None
    ours = "largest mean |row or column sum - 1|: " + "; ".join(lines) if lines else "-"
    return combine(parts, ours, devices(init, trained), "`make claims`, `make claims-training`")


def lotformer_linear(rows: Rows) -> Finding:
    """GPU sweep, forward + backward: lotformer's time and memory slopes over N >= 2^13 at
    most LINEAR_SLOPE, and its median memory over flash's at most 1 + MEMORY_OVERHEAD."""
    sweep = rows.get("sweep", pd.DataFrame())
    if len(sweep):
        sweep = sweep[(sweep["device"] == "cuda") & (sweep["pass"] == "forward_backward")]
        sweep = sweep[(sweep["status"] == "ok") & (sweep["seq_len"] >= LINEAR_FROM)]
        if "default_options" in sweep:
            sweep = sweep[sweep["default_options"].fillna(True).astype(bool)]
    need = "a GPU sweep to 2^17: `make sweep` on a GPU (lotformer and flash, bf16)"
    if sweep.empty:
        return Finding(UNMEASURED, "-", "", need)
    dtype = "bfloat16" if (sweep["dtype"] == "bfloat16").any() else sweep["dtype"].iloc[0]
    part = sweep[sweep["dtype"] == dtype].sort_values("measured_at")
    part = part.drop_duplicates(["method", "seq_len"], keep="last")
    lot, flash = (part[part["method"] == m].set_index("seq_len") for m in ("lotformer", "flash"))
    if len(lot) < 2:
        return Finding(UNMEASURED, "-", devices(part), need)
    ts, ms = (
        slope(lot.index.to_series(), lot["time_ms"]),
        slope(lot.index.to_series(), lot["peak_mem_bytes"]),
    )
    both = lot.index.intersection(flash.index)
    ratio = (lot.loc[both, "peak_mem_bytes"] / flash.loc[both, "peak_mem_bytes"] - 1).sort_index()
    overhead = float(ratio.median()) if len(ratio) else None
    ours = (
        f"{dtype}, N {int(lot.index.min())}..{int(lot.index.max())}: time slope {ts:.2f}, "
        f"memory slope {ms:.2f}; memory over flash "
        + (", ".join(f"{int(n)}: {v:+.0%}" for n, v in ratio.items()) if len(ratio) else "-")
    )
    parts = {
        f"linear (slopes <= {LINEAR_SLOPE})": ts <= LINEAR_SLOPE and ms <= LINEAR_SLOPE,
        f"memory overhead <= {MEMORY_OVERHEAD:.0%}": None
        if overhead is None
        else overhead <= MEMORY_OVERHEAD,
    }
    return combine(parts, ours, devices(lot), "flash rows at the same N")


def lotformer_lra(rows: Rows) -> Finding:
    """On each LRA task that leaves chance: lotformer - softmax's low end >= -MATCH_MARGIN
    (matches) and lotformer - performer's low end > 0 (beats)."""
    test = test_rows(rows.get("lra", pd.DataFrame()))
    profile = lra_profile(test)
    if profile is None:
        return Finding(UNMEASURED, "-", "", "LRA rows: `make lra-mini` or `make lra-all`")
    test = test[test["profile"] == profile]
    tasks = counted_tasks(test, profile, CHANCE_MARGIN)
    left = sorted(set(test["task"]) - set(tasks))
    match, beat, lines = [], [], []
    for task in tasks:
        part = test[test["task"] == task]
        vs_soft, vs_perf = (
            paired(part, "lotformer", "softmax"),
            paired(part, "lotformer", "performer"),
        )
        for found, into, ok in (
            (vs_soft, match, lambda lo: lo >= -MATCH_MARGIN),
            (vs_perf, beat, lambda lo: lo > 0),
        ):
            if found and found[1]:
                into.append(ok(found[1][0]))
        soft, perf = interval_text(vs_soft), interval_text(vs_perf)
        lines.append(f"{task}: - softmax {soft}, - performer {perf}")
    if left:
        lines.append(f"left out, every mechanism at chance: {', '.join(left)}")
    parts = {
        "matches softmax": all(match) if match else None,
        "beats performer": all(beat) if beat else None,
    }
    ours = f"profile {profile!r}: " + "; ".join(lines)
    return combine(parts, ours, devices(test), "two seeds or more on a task that leaves chance")


def cls_pooling(rows: Rows) -> Finding:
    """ListOps ablations: (sinkformer cls - mean) - (softmax cls - mean), paired by seed,
    wholly below 0 (DS hurts [CLS] pooling); lotformer cls_tokens=1 - lotformer, low end > 0
    (the decoupled [CLS] row helps)."""
    sink = paired_variant(rows, "sinkformer", "pooling=cls", "")
    soft = paired_variant(rows, "softmax", "pooling=cls", "")
    hurt = None
    if sink and soft:
        s_left = ablation_seeds(rows, "sinkformer", "pooling=cls")
        s_base = ablation_seeds(rows, "sinkformer", "")
        f_left = ablation_seeds(rows, "softmax", "pooling=cls")
        f_base = ablation_seeds(rows, "softmax", "")
        key = sorted(set(s_left) & set(s_base) & set(f_left) & set(f_base))[:1]
        if key:
            k = key[0]
            seeds = set(s_left[k]) & set(s_base[k]) & set(f_left[k]) & set(f_base[k])
            d = {s: (s_left[k][s] - s_base[k][s]) - (f_left[k][s] - f_base[k][s]) for s in seeds}
            mean, _, iv = stats.mean_interval(list(d.values())) if d else (None, None, None)
            hurt = (mean, iv, len(d)) if d else None
    fix = paired_variant(rows, "lotformer", "cls_tokens=1", "")
    parts = {
        "DS hurts [CLS] pooling": hurt[1][1] < 0 if hurt and hurt[1] else None,
        "the softmax [CLS] row helps": fix[1][0] > 0 if fix and fix[1] else None,
    }
    ours = (
        f"ListOps: sinkformer cls - mean {interval_text(sink)}, softmax {interval_text(soft)}, "
        f"difference {interval_text(hurt)}; lotformer cls_tokens=1 - lotformer {interval_text(fix)}"
    )
    return combine(
        parts,
        ours,
        devices(test_rows(rows.get("lra_ablation", pd.DataFrame()))),
        "three seeds of `make lra-mini-ablation`",
    )


def pivots_and_eps(rows: Rows) -> Finding:
    """r: at recall's largest pairs count with r 16, 32 and 64 measured, r=64 gains at most
    LITTLE_GAIN points over r=32 at a higher time per step, and r=32 gains SWEET_GAIN over
    r=16. eps: ListOps eps=1 - eps=0.1 (the profile's), mean >= 0 and low end >= -MATCH_MARGIN."""
    runs = recall_runs(rows.get("recall", pd.DataFrame()))
    runs = runs[runs["status"] == "ok"] if len(runs) else runs
    grid = r_at_pairs(runs) if len(runs) else {}
    full = [p for p, by_r in grid.items() if {16, 32, 64} <= set(by_r)]
    r_holds, lines = None, []
    for pairs in sorted(full):
        g = grid[pairs]
        gain64 = stats.paired_difference(g[64]["acc"], g[32]["acc"])
        gain32 = stats.paired_difference(g[32]["acc"], g[16]["acc"])
        holds = bool(
            gain64
            and gain32
            and gain64[0] <= LITTLE_GAIN
            and g[64]["s"] > g[32]["s"]
            and gain32[0] >= SWEET_GAIN
        )
        lines.append(
            f"recall {pairs} pairs: r64 - r32 {interval_text(gain64)} at "
            f"{g[64]['s'] / g[32]['s']:.2f}x the time; r32 - r16 {interval_text(gain32)}"
        )
        if pairs == max(full):
            r_holds = holds
    eps = paired_variant(rows, "lotformer", "eps=1.0", "")
    eps_holds = None
    if eps and eps[1]:
        eps_holds = eps[0] >= 0 and eps[1][0] >= -MATCH_MARGIN
    lines.append(f"ListOps eps=1 - eps=0.1 {interval_text(eps)}")
    parts = {"r = 32 the sweet spot (hardest recall)": r_holds, "eps = 1 the sweet spot": eps_holds}
    return combine(
        parts, "; ".join(lines), devices(runs), "`make recall-capacity`, `make lra-mini-ablation`"
    )


def causal_identity(rows: Rows) -> Finding:
    """Sinkhorn under a causal mask: at every N the distance to I never grows from one full
    iteration to the next (an even count of half-steps, to 1e-6) and the mean diagonal
    entry at the largest count is at least COLLAPSED_DIAGONAL; monotone but short of it is
    `mixed` (collapsing, slowly). (The first version compared single half-steps, which
    alternate rows and columns: docs/claims.md says what it read.)"""
    part = newest_check(rows.get("claims", pd.DataFrame()), "causal")
    sink = part[part["method"] == "sinkformer"] if len(part) else part
    if sink.empty:
        return Finding(UNMEASURED, "-", "", "`make claims`")
    mean = sink.groupby(["seq_len", "metric", "iters"])["value"].mean()
    monotone, collapsed, lines = True, True, []
    for n in sorted(set(sink["seq_len"])):
        dist, diag = mean[(n, "distance_to_identity")], mean[(n, "diagonal_mass")]
        full = dist[dist.index % 2 == 0]  # after a column step: whole iterations
        monotone &= bool((full.diff().dropna() <= 1e-6).all())
        last = int(diag.index.max())
        collapsed &= bool(diag[last] >= COLLAPSED_DIAGONAL)
        at = {t: diag.get(t) for t in (1, 3, 50, last)}
        lines.append(
            f"N={n}: diagonal "
            + ", ".join(f"{v:.2f} ({t} it.)" for t, v in at.items() if v is not None)
        )
    lot = part[part["method"] == "lotformer"]
    if len(lot):
        lines.append(
            "lotformer asked for a causal matrix: "
            + ("refused" if lot["value"].iloc[0] == 1 else "answered")
        )
    if not monotone:
        verdict, why = "not supported", "the distance to the identity grows somewhere"
    elif collapsed:
        verdict, why = "supported", ""
    else:
        verdict, why = (
            "mixed",
            (
                f"towards the identity at every N, but the diagonal is under {COLLAPSED_DIAGONAL} "
                "at the largest count: the collapse is the limit, not what a few iterations give"
            ),
        )
    return Finding(verdict, "; ".join(lines), devices(part), why)


def one_iteration(rows: Rows) -> Finding:
    """sinkformer iters=1 against softmax: every max |difference| within ONE_IS_SOFTMAX."""
    part = newest_check(rows.get("claims", pd.DataFrame()), "sinkhorn_one_is_softmax")
    if part.empty:
        return Finding(UNMEASURED, "-", "", "`make claims`")
    worst = part.groupby("dtype")["value"].max()
    ok = all(v <= ONE_IS_SOFTMAX.get(d, 0) for d, v in worst.items())
    ours = "max |sinkformer(1) - softmax|, matrix and output, N 16..256: " + ", ".join(
        f"{d} {v:.1e}" for d, v in worst.items()
    )
    return Finding("supported" if ok else "not supported", ours, devices(part))


def softmax_becomes_ds(rows: Rows) -> Finding:
    """Per data set, softmax's column-sum deviation (mean of the layers) trained - at
    initialisation, paired by seed: closer to doubly stochastic when the interval is wholly
    below 0. Supported if closer on every data set, mixed on some, not supported on none."""
    points = diagnosed(rows)
    ends = run_ends(points[points["method"] == "softmax"]) if len(points) else pd.DataFrame()
    if ends.empty:
        return Finding(UNMEASURED, "-", "", "`make claims-training` (diagnostics runs)")
    parts, lines = {}, []
    for (label, config), part in ends.groupby(["label", "config_hash"]):  # a data set each
        label = label if label not in parts else f"{label} [{config}]"
        dev = {
            (s, w): float(np.mean(d))
            for s, w, d in zip(part["seed"], part["when"], part["attn_colsum_dev"], strict=True)
        }
        seeds = sorted({s for s, _ in dev})
        diffs = [dev[(s, "trained")] - dev[(s, "init")] for s in seeds]
        mean, _, iv = stats.mean_interval(diffs)
        init = np.mean([dev[(s, "init")] for s in seeds])
        parts[label] = (iv[1] < 0) if iv else None
        shown = f" [{iv[0]:+.3f}, {iv[1]:+.3f}]" if iv else ""
        lines.append(
            f"{label}: |col sum - 1| {init:.3f} at init, {init + mean:.3f} trained "
            f"({mean:+.3f}{shown}, {seeds_text(len(seeds))})"
        )
    return combine(parts, "; ".join(lines), devices(ends), "a second seed")


def sinkformer_accuracy(rows: Rows) -> Finding:
    """sinkformer - softmax per data set (each LRA task that leaves chance, each recall
    setting), paired by seed: better where the interval is wholly above 0, worse wholly
    below. Supported: some better, none worse; mixed: both; not supported: none better."""
    test = test_rows(rows.get("lra", pd.DataFrame()))
    found = []
    profile = lra_profile(test)
    if profile:
        test = test[test["profile"] == profile]
        for task in counted_tasks(test, profile, CHANCE_MARGIN):
            part = test[test["task"] == task]
            found.append((f"{task} ({profile})", paired(part, "sinkformer", "softmax")))
    found += recall_vs_softmax(rows)
    shown = [(k, f) for k, f in found if f and f[1]]
    if not shown:
        return Finding(UNMEASURED, "-", "", "two seeds of `make recall` or `make lra-mini`")
    better = [k for k, f in shown if f[1][0] > 0]
    worse = [k for k, f in shown if f[1][1] < 0]
    ours = "; ".join(f"{k}: {interval_text(f)}" for k, f in shown)
    device = devices(test, rows.get("recall", pd.DataFrame()))
    if better and not worse:
        return Finding("supported", ours, device, f"better: {', '.join(better)}")
    if better:
        return Finding(
            "mixed", ours, device, f"better: {', '.join(better)}; worse: {', '.join(worse)}"
        )
    why = f"worse: {', '.join(worse)}" if worse else "no data set separates them"
    return Finding("not supported", ours, device, why)


LOT, SINK = "LOTFormer (arXiv 2509.23436)", "Sinkformers (AISTATS 2022)"
CLAIMS = (
    Claim(
        1,
        LOT,
        "the attention matrix is doubly stochastic and of rank at most r",
        "Sec. 3 (construction)",
        "make claims; make claims-training",
        lotformer_doubly_stochastic,
    ),
    Claim(
        2,
        LOT,
        "time and memory linear in N, 2^9..2^17; 23-40% memory over FlashAttention",
        "Fig. 3; App. E",
        "make sweep (GPU)",
        lotformer_linear,
    ),
    Claim(
        3,
        LOT,
        "matches softmax on LRA and beats linear attention (Performer)",
        "Table 1 (LRA)",
        "make lra-mini (CPU) / make lra-all (GPU)",
        lotformer_lra,
    ),
    Claim(
        4,
        LOT,
        "DS attention hurts [CLS] pooling; a softmax [CLS] row fixes it (~+5 pts)",
        "Sec. 4 ablation ([CLS])",
        "make lra-mini-ablation",
        cls_pooling,
    ),
    Claim(
        5,
        LOT,
        "r = 32 is the sweet spot (r = 64 costs time for little gain); eps = 1 too",
        "Table 7; Sec. 4.5",
        "make recall-capacity; make lra-mini-ablation",
        pivots_and_eps,
    ),
    Claim(
        6,
        LOT,
        "under a causal mask DS attention collapses to the identity",
        "App. F",
        "make claims",
        causal_identity,
    ),
    Claim(
        7,
        SINK,
        "Sinkhorn's first iteration is softmax: one iteration is a Transformer",
        "Sec. 3",
        "make claims",
        one_iteration,
    ),
    Claim(
        8,
        SINK,
        "a trained softmax Transformer's attention becomes close to DS",
        "Fig. 2 (column sums)",
        "make claims-training",
        softmax_becomes_ds,
    ),
    Claim(
        9,
        SINK,
        "doubly stochastic attention improves accuracy over softmax",
        "Sec. 5 (experiments)",
        "make recall; make lra-mini",
        sinkformer_accuracy,
    ),
)
COLUMNS = ["verdict", "ours", "paper", "source", "measured by", "device"]


def claims_table(rows: Rows) -> Table:
    """One row per claim: the paper's words, where, the command, our figures, the device
    and the verdict (with what it depends on or what is missing)."""
    table = Table(
        "Claims, checked: LOTFormer and Sinkformers",
        COLUMNS,
        row_label="claim",
        wrap=True,
        legend="Each verdict is a rule of reports/claims.py, fixed before its rows were read "
        "(docs/claims.md); intervals are 95% Student t over seeds, paired by seed; "
        "accuracy differences in points.",
    )
    for c in CLAIMS:
        f = c.judge(rows)
        verdict = f.verdict + (f" ({f.why})" if f.why else "")
        texts = [verdict, f.ours, c.paper, c.source, c.command, f.device or "-"]
        table.ours[f"{c.number}. {c.says}"] = [TableCell(None, extra=t) for t in texts]
    return table
