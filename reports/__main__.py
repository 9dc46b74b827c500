"""Reports from parquet: `python -m reports build --results results --out reports/out`.

    python -m reports build                 # = make report
    python -m reports build --results results --out /tmp/report

Writes, for every LRA profile found in <results>/lra, `lra_accuracy_<profile>.md`, `.tex`
and `.csv` (the `paper` table carries the published rows of reports/reference/). The same
tables give byte-identical files. Figures and the leaderboard page come in later issues.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from reports import tables


def read_results(folder: Path) -> pd.DataFrame:
    """Every row of the parquet parts in `folder` (hidden temporaries skipped); empty if none.

    Reports read parquet and nothing else: no import from the runners."""
    parts = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    frames = [f for f in (pd.read_parquet(p) for p in parts) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def build(results: Path, out: Path) -> list[Path]:
    """Every artefact that the tables under `results` allow; returns the files written."""
    rows = read_results(results / "lra")
    if rows.empty:
        raise FileNotFoundError(
            f"no LRA rows under {results / 'lra'}: run `make quickstart` (CPU smoke) or "
            "`make lra-all` first, or point --results at a results folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for profile in sorted(set(rows["profile"])):
        reported = tables.published_accuracy() if profile == "paper" else None
        table = tables.lra_accuracy(rows, profile, reported)
        for suffix, render in (
            (".md", tables.to_markdown),
            (".tex", tables.to_latex),
            (".csv", tables.to_csv),
        ):
            path = out / f"lra_accuracy_{profile}{suffix}"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(render(table))
            tmp.replace(path)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports", description="Tables (and later figures) from parquet results."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write every artefact the results allow")
    b.add_argument("--results", type=Path, default=Path("results"), help="results (results)")
    b.add_argument("--out", type=Path, default=Path("reports/out"), help="output (reports/out)")
    args = parser.parse_args(argv)
    try:
        written = build(args.results, args.out)
    except FileNotFoundError as exc:
        print(f"reports: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
