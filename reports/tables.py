"""Tables as pure functions of the result rows, under one name:

    table = lra_accuracy(read_results(Path("results/lra")), profile="paper",
                         reported=published_accuracy())
    to_markdown(table), to_latex(table), to_csv(table)     # the same table, byte-stable

reports/accuracy.py: the LRA accuracy table and the paired difference to softmax;
reports/speed.py: LRA's efficiency table and the sweep's achieved TFLOP/s;
reports/render.py: the Table and TableCell they build and its three renderings.
"""

from reports.accuracy import (
    AVERAGED,
    latest_config,
    lra_ablation,
    lra_accuracy,
    lra_vs_softmax,
    published_accuracy,
    variant_label,
)
from reports.render import Table, TableCell, format_cell, provenance, to_csv, to_latex, to_markdown
from reports.speed import lra_efficiency, published_efficiency, sweep_throughput

__all__ = [
    "AVERAGED",
    "Table",
    "TableCell",
    "format_cell",
    "latest_config",
    "lra_ablation",
    "lra_accuracy",
    "lra_efficiency",
    "lra_vs_softmax",
    "provenance",
    "published_accuracy",
    "published_efficiency",
    "sweep_throughput",
    "to_csv",
    "to_latex",
    "to_markdown",
    "variant_label",
]
