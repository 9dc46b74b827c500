"""The zoo-level measurements behind the claims page: `python -m runners.claims` (= make claims).

    python -m runners.claims                      # every check, into results/claims
    python -m runners.claims --checks causal      # one of them

Each check measures a paper's claim on the mechanisms themselves, with seeded random
queries and keys (head_dim 32, the mini and recall models'), and writes tidy rows
(check, method, method_options, seq_len, iters, seed, metric, value, note) to
results/claims/claims-<time>-<run id>.parquet; the report reads the newest run of each check.
- causal: Sinkhorn on exp(QK^T / sqrt(d)) under a causal mask (sinkformer's
  `causal_matrix`), half-steps 1..50 and 100, 200, 500, 1000, at N = 16, 64, 256: the
  distance ||A - I||_F / sqrt(N) and the mean diagonal entry (LOTFormer, Appendix F);
  what lotformer does when asked for its causal matrix (`refused`, with its message).
- sinkhorn_one_is_softmax: sinkformer with iters=1 against softmax, matrix and output, with
  a padded sequence in the batch, float32 and float64 (Sinkformers, Section 3).
- lotformer_doubly_stochastic: lotformer's matrix at initialisation, r in 4..64, iters 5 and
  50, eps 0.1 and 1: its column-sum and row-sum deviation and its largest rank
  (attention_zoo.diagnostics), against r (LOTFormer, Section 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

import attention_zoo as zoo
from attention_zoo.diagnostics import summarise
from results import schema
from runners.provenance import provenance, resolve_device
from runners.results import PartWriter, part_name

HEADS, HEAD_DIM, SEEDS = 2, 32, (0, 1, 2)
CAUSAL_N = (16, 64, 256)
CAUSAL_ITERS = (*range(1, 51), 100, 200, 500, 1000)
ONE_N = (16, 64, 256)
LOT_N, LOT_R, LOT_ITERS, LOT_EPS = 256, (4, 8, 16, 32, 64), (5, 50), (0.1, 1.0)


def _qk(n: int, seed: int, device: torch.device, dtype=torch.float32, batch: int = 1):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(batch, HEADS, n, HEAD_DIM, generator=g, dtype=dtype) for _ in "qk")
    return q.to(device), k.to(device)


def _row(
    method: str,
    options: dict,
    n: int,
    iters: int | None,
    seed: int,
    metric: str,
    value: float,
    note: str | None = None,
    dtype: str = "float32",
) -> dict:
    return {
        "method": method,
        "method_options": json.dumps(options, sort_keys=True),
        "seq_len": n,
        "iters": iters,
        "seed": seed,
        "dtype": dtype,
        "metric": metric,
        "value": float(value),
        "note": note,
    }


def causal(device: torch.device) -> Iterator[dict]:
    """Sinkhorn under a causal mask, towards the identity; lotformer asked for the same."""
    for n in CAUSAL_N:
        eye = torch.eye(n, device=device)
        for seed in SEEDS:
            q, k = _qk(n, seed, device)
            for t in CAUSAL_ITERS:
                A = zoo.create("sinkformer", heads=HEADS, head_dim=HEAD_DIM, iters=t)
                with torch.no_grad():
                    M = A.causal_matrix(q, k)
                distance = (M - eye).norm(dim=(-2, -1)).mean() / n**0.5
                diagonal = M.diagonal(dim1=-2, dim2=-1).mean()
                yield _row("sinkformer", {"iters": t}, n, t, seed, "distance_to_identity", distance)
                yield _row("sinkformer", {"iters": t}, n, t, seed, "diagonal_mass", diagonal)
    q, k = _qk(64, 0, device)
    lot = zoo.create("lotformer", heads=HEADS, head_dim=HEAD_DIM)
    try:
        lot.causal_matrix(q, k)
        refused, note = 0.0, "returned a matrix"
    except (ValueError, NotImplementedError) as exc:
        refused, note = 1.0, f"{type(exc).__name__}: {exc}"
    yield _row("lotformer", {}, 64, None, 0, "refused", refused, note)


def sinkhorn_one_is_softmax(device: torch.device) -> Iterator[dict]:
    """sinkformer(iters=1) against softmax: the largest difference, matrix and output."""
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        sink = zoo.create("sinkformer", heads=HEADS, head_dim=HEAD_DIM, iters=1).to(device)
        soft = zoo.create("softmax", heads=HEADS, head_dim=HEAD_DIM).to(device)
        for n in ONE_N:
            for seed in SEEDS:
                q, k = _qk(n, seed, device, dtype, batch=2)
                v = torch.randn_like(q)
                mask = torch.ones(2, n, dtype=torch.bool, device=device)
                mask[1, (3 * n) // 4 :] = False  # a padded sequence beside a full one
                with torch.no_grad():
                    dm = sink.attention_matrix(q, k, mask) - soft.attention_matrix(q, k, mask)
                    do = sink(q, k, v, mask) - soft(q, k, v, mask)
                opts = {"iters": 1}
                yield _row(
                    "sinkformer",
                    opts,
                    n,
                    1,
                    seed,
                    "max_abs_diff_matrix",
                    dm.abs().max(),
                    dtype=name,
                )
                yield _row(
                    "sinkformer",
                    opts,
                    n,
                    1,
                    seed,
                    "max_abs_diff_output",
                    do.abs().max(),
                    dtype=name,
                )


def lotformer_doubly_stochastic(device: torch.device) -> Iterator[dict]:
    """lotformer's matrix at initialisation: how doubly stochastic, and its rank against r."""
    for r in LOT_R:
        for iters in LOT_ITERS:
            for eps in LOT_EPS:
                opts = {"r": r, "iters": iters, "eps": eps}
                for seed in SEEDS:
                    torch.manual_seed(seed)  # the pivots
                    lot = zoo.create("lotformer", heads=HEADS, head_dim=HEAD_DIM, **opts)
                    q, k = _qk(LOT_N, seed, device, batch=2)
                    mask = torch.ones(2, LOT_N, dtype=torch.bool, device=device)
                    mask[1, (3 * LOT_N) // 4 :] = False
                    with torch.no_grad():
                        s = summarise(lot.to(device).attention_matrix(q, k, mask), mask)
                    for metric in ("colsum_dev", "rowsum_dev", "rank_max"):
                        yield _row(
                            "lotformer", opts, LOT_N, iters, seed, metric, getattr(s, metric)
                        )


CHECKS: dict[str, Callable[[torch.device], Iterator[dict]]] = {
    "causal": causal,
    "sinkhorn_one_is_softmax": sinkhorn_one_is_softmax,
    "lotformer_doubly_stochastic": lotformer_doubly_stochastic,
}


def run(checks: Sequence[str], out: Path, device: torch.device) -> PartWriter:
    """Every row of `checks` into one new part under `out`, written check by check."""
    env = provenance(device)
    writer = PartWriter(out, part_name("claims", env), schema.CLAIMS)
    for name in checks:
        measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = [
            {**env, "status": "ok", "error": None, "measured_at": measured_at, "check": name, **r}
            for r in CHECKS[name](device)
        ]
        writer.extend(rows)
        print(f"{name}: {len(rows)} rows", file=sys.stderr)
    return writer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runners.claims",
        description="Measure the papers' claims on the zoo's mechanisms themselves (seeded "
        "random inputs; seconds on a CPU) into results/claims, for the report's claims page.",
    )
    parser.add_argument(
        "--checks",
        default="all",
        help=f"comma-separated, from {list(CHECKS)}, or all (all)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/claims"), help="(results/claims)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (cpu)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    checks = list(CHECKS) if args.checks == "all" else args.checks.split(",")
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        parser.error(f"--checks: unknown {unknown}; expected some of {list(CHECKS)} or all")
    writer = run(checks, args.out, resolve_device(args.device))
    print(f"wrote {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
