"""One look for every figure: a colour, marker and line style per mechanism, and byte-stable saving.

    style = method_style("lotformer")     # {'color': ..., 'marker': ..., 'linestyle': ...}
    save(fig, out / "scaling_cpu")         # -> [scaling_cpu.png, scaling_cpu.pdf]

The colours are Okabe-Ito (safe for the common colour-vision deficiencies); the markers and
line styles keep the mechanisms apart in grayscale. A mechanism keeps its look in every figure:
the known ones are listed, any other name gets a look derived from the name alone.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt

from results.files import atomic_path

OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h", "<", ">"]
LINESTYLES = ["-", "--", ":", "-."]
KNOWN = ["softmax", "flash", "performer", "sinkformer", "lotformer"]  # zoo order

# what a cell that did not run is drawn as, at the top of the axes, where its line stops
STATUS_MARKERS = {"oom": "x", "skipped": "4", "timeout": "1", "error": "+"}


def style_order(method: str) -> int:
    """Where a mechanism comes in legends and drawing order (the reference, softmax, first)."""
    return KNOWN.index(method) if method in KNOWN else len(KNOWN) + zlib.crc32(method.encode()) % 97


def method_style(method: str) -> dict[str, str]:
    """Colour, marker and line style of a mechanism; the same in every figure."""
    i = style_order(method)
    return {
        "color": OKABE_ITO[i % len(OKABE_ITO)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def new_figure(rows: int, cols: int, width: float, height: float, **kw) -> tuple:
    """A figure with the house defaults (grid, font sizes); returns (fig, axes)."""
    with plt.rc_context({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}):
        fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, which="major", color="0.88", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, axes


def save(fig, stem: Path) -> list[Path]:
    """`stem`.png (150 dpi) and `stem`.pdf (vector), written atomically, byte-stable."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, metadata in (
        (".png", {"Software": None}),
        (".pdf", {"Creator": None, "Producer": None, "CreationDate": None}),
    ):
        path = stem.with_name(stem.name + suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150, metadata=metadata, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written
