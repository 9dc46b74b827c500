"""Pathfinder generator, in the spirit of Linsley et al. (2018): dashed curves, two dots.

    python -m lra.data generate pathfinder --count 200000 --seed 0   # 32x32, all 3 levels
    python -m lra.data generate pathx --count 200000                 # 128x128, length 14

Every image has the same drawing elements: `1 + distractors + 1` curves of `paddles`
short segments ("paddles", separated by small gaps) on black, and two round markers at
curve ends. Label 1: both markers end the same curve; label 0: they end two different
curves. Curves keep `min_sep` pixels apart (from each other and from their own earlier
paddles), so which marker a curve reaches is visible only by following it; the pixel
intensities of both labels come from the same elements. The curves are drawn before the
label is drawn, so they do not depend on it.

Written in the LRA release layout read by `lra.pathfinder`: images
`pathfinder<size>/<level>/imgs/<batch>/sample_<i>.png` and one metadata text file per
batch, `metadata/<batch>.npy`, with lines `imgs/<batch> sample_<i>.png <i> <label>`.
Batches are generated in parallel on every core; batch b draws from a generator seeded
with (seed, level, b), so the output does not depend on the number of processes.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from results.files import write_text_atomic

LEVELS = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}
BATCH = 1000  # images per imgs/<batch> folder


@dataclass(frozen=True)
class Style:
    """Geometry in pixels of one canvas size."""

    size: int
    paddle: float  # length of a drawn segment
    gap: float  # undrawn length between segments
    half_width: float  # of a stroke; intensity falls to 0 over one more pixel
    marker: float  # marker radius
    min_sep: float  # closest approach of two curves (and of a curve to its old paddles)
    max_turn: float  # largest change of direction between paddles, radians
    distractors: int


STYLES = {
    32: Style(32, paddle=1.4, gap=0.7, half_width=0.6, marker=1.5, min_sep=3.8,
              max_turn=math.radians(45), distractors=1),
    128: Style(128, paddle=5.6, gap=1.4, half_width=0.8, marker=2.5, min_sep=6.0,
               max_turn=math.radians(45), distractors=4),
}  # fmt: skip
INK = 96  # a pixel is ink for the connectivity check from this value on


class Stuck(Exception):
    """No room for a curve; the image is started again."""


class Canvas:
    """Curves as paddle lists, an occupancy grid for spacing, and the rendered image."""

    def __init__(self, style: Style) -> None:
        self.s = style
        n = style.size
        self.taken = np.zeros((n, n), dtype=bool)  # within min_sep of a placed curve
        self.ink = np.zeros((n, n), dtype=np.float32)
        self.yy, self.xx = np.mgrid[0:n, 0:n] + 0.5  # pixel centres
        self.curves: list[list[tuple[np.ndarray, np.ndarray]]] = []  # per curve: paddles

    def _free(self, points: list[tuple[float, float]]) -> bool:
        """All points inside the canvas (1 px margin) and away from the placed curves."""
        top, taken = self.s.size - 2.0, self.taken
        for x, y in points:
            if not (1.0 <= x <= top and 1.0 <= y <= top) or taken.item(int(y), int(x)):
                return False
        return True

    def _claim(self, points: np.ndarray) -> None:
        """Mark every pixel whose centre is within min_sep of one of the points."""
        r, n = self.s.min_sep, self.s.size
        for x, y in points:
            y0, y1 = max(0, int(y - r)), min(n, int(y + r) + 2)
            x0, x1 = max(0, int(x - r)), min(n, int(x + r) + 2)
            d2 = (self.xx[y0:y1, x0:x1] - x) ** 2 + (self.yy[y0:y1, x0:x1] - y) ** 2
            self.taken[y0:y1, x0:x1] |= d2 <= r * r

    def add_curve(self, rng: np.random.Generator, paddles: int, tries: int = 40) -> None:
        """Place one curve of `paddles` paddles, or raise Stuck.

        The points of a step are plain floats (numpy's overhead on five points was most of
        the generator's time); each is computed as numpy computed it, pos + t * direction,
        so the images are the same bytes."""
        s = self.s
        step = s.paddle + s.gap
        t = np.linspace(0, step, max(3, int(step * 2) + 1)).tolist()  # samples along a step
        for _ in range(tries):
            px, py = rng.uniform(2, s.size - 2, size=2).tolist()
            theta = 0.0  # set by the first paddle
            placed: list[tuple[np.ndarray, np.ndarray]] = []
            claimed: list[np.ndarray] = []
            for k in range(paddles):
                for _attempt in range(8):
                    turn = (
                        rng.uniform(0, 2 * math.pi)
                        if k == 0
                        else theta + rng.uniform(-s.max_turn, s.max_turn)
                    )
                    dx, dy = math.cos(turn), math.sin(turn)
                    points = [(px + tj * dx, py + tj * dy) for tj in t]
                    if self._free(points) and self._clear_of_own(points, claimed):
                        break
                else:
                    break
                theta = turn
                placed.append(
                    (np.array([px, py]), np.array([px + s.paddle * dx, py + s.paddle * dy]))
                )
                claimed.append(np.array(points))
                px, py = px + step * dx, py + step * dy
            if len(placed) == paddles:
                self._claim(np.concatenate(claimed)[::2])
                self.curves.append(placed)
                return
        raise Stuck

    def _clear_of_own(self, points: list[tuple[float, float]], claimed: list[np.ndarray]) -> bool:
        """Away from this curve's paddles before the previous two (it must not loop back)."""
        if len(claimed) < 3:
            return True
        old = np.concatenate(claimed[:-2])
        d2 = ((np.array(points)[:, None, :] - old[None, :, :]) ** 2).sum(-1)
        return bool(d2.min() >= self.s.min_sep**2)

    def stroke(self, a: np.ndarray, b: np.ndarray, radius: float) -> None:
        """Anti-aliased segment a-b (a disc if a == b): 1 within `radius`, 0 a pixel further."""
        n = self.s.size
        lo = np.floor(np.minimum(a, b) - radius - 1).astype(int).clip(0, n)
        hi = np.ceil(np.maximum(a, b) + radius + 2).astype(int).clip(0, n)
        yy, xx = self.yy[lo[1] : hi[1], lo[0] : hi[0]], self.xx[lo[1] : hi[1], lo[0] : hi[0]]
        d = b - a
        length2 = float(d @ d)
        t = 0.0 if length2 == 0 else ((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / length2
        t = np.clip(t, 0.0, 1.0)
        dist = np.hypot(xx - (a[0] + t * d[0]), yy - (a[1] + t * d[1]))
        value = np.clip(radius + 0.5 - dist, 0.0, 1.0)
        block = self.ink[lo[1] : hi[1], lo[0] : hi[0]]
        np.maximum(block, value, out=block)


def draw(
    rng: np.random.Generator, style: Style, paddles: int
) -> tuple[np.ndarray, int, list[tuple[int, int]]]:
    """One image (size, size) uint8, its label and the markers' (row, col) pixels."""
    while True:
        canvas = Canvas(style)
        try:
            for _ in range(2 + style.distractors):
                canvas.add_curve(rng, paddles)
        except Stuck:
            continue
        break
    for curve in canvas.curves:
        for a, b in curve:
            canvas.stroke(a, b, style.half_width)
    label = int(rng.integers(2))
    # the marked curves are drawn at random among all, so that being placed first (in an
    # emptier canvas) says nothing about the label
    first, second = (canvas.curves[int(c)] for c in rng.permutation(len(canvas.curves))[:2])
    ends = [(c[0][0], c[-1][1]) for c in (first, second)]  # start and end of each
    i = int(rng.integers(2))
    markers = [ends[0][i], ends[0][1 - i] if label else ends[1][int(rng.integers(2))]]
    for centre in markers:
        canvas.stroke(centre, centre, style.marker)
    pixels = [(int(y), int(x)) for x, y in markers]
    return np.rint(canvas.ink * 255).astype(np.uint8), label, pixels


def _batch(args: tuple[Path, int, str, int, int, int]) -> int:
    """Render and write one batch; returns how many images it wrote."""
    from PIL import Image

    root, size, level, batch, count, seed = args
    rng = np.random.default_rng([seed, size, list(LEVELS).index(level), batch])
    folder = root / "imgs" / str(batch)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        image, label, _ = draw(rng, STYLES[size], LEVELS[level])
        Image.fromarray(image, mode="L").save(folder / f"sample_{i}.png")
        lines.append(f"imgs/{batch} sample_{i}.png {i} {label}\n")
    meta = root / "metadata" / f"{batch}.npy"
    meta.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(meta, "".join(lines))  # a batch counts once its metadata exists
    return count


def generate(
    data_dir: Path, size: int, levels: list[str], count: int, seed: int = 0, workers: int = 0
) -> dict[str, Path]:
    """Write `count` images per level under data_dir/pathfinder<size>/; returns the roots."""
    from tqdm import tqdm

    roots = {}
    for level in levels:
        root = data_dir / f"pathfinder{size}" / level
        jobs = [
            (root, size, level, b, min(BATCH, count - b * BATCH), seed)
            for b in range(math.ceil(count / BATCH))
        ]
        with (
            ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool,
            tqdm(total=count, unit="img", desc=f"pathfinder{size}/{level}") as bar,
        ):
            for done in pool.map(_batch, jobs):
                bar.update(done)
        roots[level] = root
    return roots


def markers_connected(image: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether pixels a and b (row, col) lie in one 8-connected component of ink (>= INK)."""
    ink = image >= INK
    if not (ink[a] and ink[b]):
        return False
    seen = np.zeros_like(ink)
    stack = [a]
    seen[a] = True
    n, m = ink.shape
    while stack:
        i, j = stack.pop()
        if (i, j) == b:
            return True
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                y, x = i + di, j + dj
                if 0 <= y < n and 0 <= x < m and ink[y, x] and not seen[y, x]:
                    seen[y, x] = True
                    stack.append((y, x))
    return False
