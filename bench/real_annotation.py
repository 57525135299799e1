"""The reference annotation of the one real recording, tests/data/real/e2p_real.png.

    python -m bench.real_annotation    # rewrites tests/data/real/e2p_real_*.csv, byte for byte

This script produced tests/data/real's annotation (README there); the result was checked by
eye on enlarged overlays, and stretches where the edges could not be followed were left out
(STRETCHES). Per stretch, along time:

1. A tissue map: grey above the local cavity level (10th percentile of rows 40-120 over about
   two beats), lower threshold on the septal side (dim speckle), higher on the posterior side.
2. A seed inside the dark band: the smooth path through the most blood.
3. Each edge a shortest path along time (dynamic programming, a cost per row of jump): tissue
   beyond the edge, blood between the edges, so chordae and specks cost little; then again
   within BAND rows, adding the steepest brightening towards the wall.
4. Sub-pixel: the crossing of half-way between cavity and wall grey; a light smoothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d, uniform_filter1d

from mmode.images import read_gray

REAL_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "real"
RECORDING = REAL_DIR / "e2p_real.png"
# (columns traced: the published tool's good ranges, then the columns written to
# e2p_real_<name>.csv). Left out by eye: 433-469 (no septal edge), 1426-1733 (the posterior
# wall only thin oblique lines), 2171-2579 (chordae and dropouts), 2661-2694 (a posterior
# wall as dark as blood), 3269-3272 (the figure's border).
STRETCHES = (
    ((433, 573), {"a": (470, 573)}),
    ((723, 1733), {"b": (723, 1425)}),
    ((2171, 3268), {"c": (2580, 2660), "d": (2695, 3268)}),
)
GAP = 6  # rows: the least cavity the tracer allows
WALL = 12  # rows of wall looked at beyond an edge
BAND = 12  # rows: how far the second pass may move an edge


def shortest_path(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, lam: float, step: int = 4):
    """Per column the row minimising sum(cost) + lam * |jumps|, lo <= row <= hi, |jump| <= step."""
    n, width = cost.shape
    rows = np.arange(n)
    hi = np.maximum(hi, lo)
    total = np.where((rows >= lo[0]) & (rows <= hi[0]), cost[:, 0], np.inf)
    back = np.zeros((n, width), dtype=int)
    for c in range(1, width):
        best, came = total.copy(), rows.copy()
        for d in range(1, step + 1):
            for shift in (d, -d):  # from row r - shift
                cand = np.full(n, np.inf)
                if shift > 0:
                    cand[shift:] = total[:-shift] + lam * d
                else:
                    cand[:shift] = total[-shift:] + lam * d
                better = cand < best
                best[better], came[better] = cand[better], rows[better] - shift
        allowed = (rows >= lo[c]) & (rows <= hi[c])
        total, back[:, c] = np.where(allowed, best + cost[:, c], np.inf), came
    path = np.zeros(width, dtype=int)
    path[-1] = int(np.argmin(total))
    for c in range(width - 1, 0, -1):
        path[c - 1] = back[path[c], c]
    return path


def trace(image: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """The upper and lower cavity edges (rows, fractional) of columns first..last."""
    grey = gaussian_filter(image.astype(float), (1.5, 2.0))[:, first : last + 1]
    height, width = grey.shape
    cavity = uniform_filter1d(np.percentile(grey[40:120], 10, axis=0), 111, mode="nearest")

    def summed(threshold: float, span: float) -> np.ndarray:  # tissue 0..1, summed down
        solid = np.clip((grey - cavity - threshold) / span, 0, 1)
        return np.vstack([np.zeros((1, width)), np.cumsum(solid, 0)])

    sums = {"upper": summed(2.0, 6.0), "lower": summed(6.0, 14.0)}
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))

    def tissue(side: str, a, b):  # tissue in rows a..b-1 of each column
        a = np.clip(a, 0, height)
        b = np.clip(np.maximum(a, b), 0, height)
        return np.take_along_axis(sums[side], b, 0) - np.take_along_axis(sums[side], a, 0)

    def upper_cost(lower):  # upper: the first blood row
        return WALL - tissue("upper", rows - WALL, rows) + tissue("upper", rows, lower[None] + 1)

    def lower_cost(upper):  # lower: the last blood row
        return (
            WALL
            - tissue("lower", rows + 1, rows + 1 + WALL)
            + tissue("lower", upper[None], rows + 1)
        )

    top, bottom = np.full(width, 20), np.full(width, 155)
    solid = gaussian_filter(np.clip((grey - cavity - 6.0) / 14.0, 0, 1), 3)
    seed = shortest_path(solid, np.full(width, 45), np.full(width, 105), 0.05, step=2)
    upper = shortest_path(upper_cost(seed), top, seed - 3, 1.0)
    for _ in range(3):
        lower = shortest_path(lower_cost(upper), np.maximum(upper + GAP, seed + 3), bottom, 1.0)
        upper = shortest_path(upper_cost(lower), top, np.minimum(lower - GAP, seed - 3), 1.0)
    step = np.zeros_like(grey)
    step[2:-2] = grey[4:] - grey[:-4]  # > 0 where it brightens downwards
    u0, l0 = upper, lower
    for _ in range(2):
        cost = 0.05 * upper_cost(lower) - np.clip(-step, 0, 20) / 20
        hi = np.minimum(np.minimum(u0 + BAND, lower - GAP), seed - 3)
        upper = shortest_path(cost, u0 - BAND, hi, 0.15)
        cost = 0.05 * lower_cost(upper) - np.clip(step, 0, 20) / 20
        lo = np.maximum(np.maximum(l0 - BAND, upper + GAP), seed + 3)
        lower = shortest_path(cost, lo, l0 + BAND, 0.15)
    return half_way(grey, upper, lower)


def half_way(grey: np.ndarray, upper: np.ndarray, lower: np.ndarray):
    """Sub-pixel edges: the crossing of half-way between cavity and wall grey nearest each."""
    columns = np.arange(grey.shape[1])
    inside = [
        np.median(grey[u : v + 1, c]) for c, (u, v) in enumerate(zip(upper, lower, strict=True))
    ]
    cavity = uniform_filter1d(np.array(inside), 55, mode="nearest")
    edges = []
    for path, sign in ((upper, -1), (lower, 1)):
        wall_rows = np.clip(path[None] + sign * np.arange(3, 9)[:, None], 0, grey.shape[0] - 1)
        wall = uniform_filter1d(np.median(grey[wall_rows, columns], 0), 9, mode="nearest")
        level = (cavity + wall) / 2
        y = path + 0.5 * sign
        for c in columns:
            profile = grey[path[c] - 4 : path[c] + 5, c] - level[c]
            a, b = profile[:-1], profile[1:]
            hit = np.flatnonzero((a * b <= 0) & (a != b) & (np.sign(b - a) == sign))
            if hit.size:
                crossings = path[c] - 4 + hit + a[hit] / (a[hit] - b[hit])
                y[c] = crossings[np.argmin(np.abs(crossings - y[c]))]
        edges.append(gaussian_filter1d(y.astype(float), 1.5, mode="nearest"))
    return edges[0], np.maximum(edges[1], edges[0] + 1)


def main() -> None:
    image = read_gray(RECORDING)
    for (first, last), clean in STRETCHES:
        upper, lower = trace(image, first, last)
        for name, (a, b) in clean.items():
            lines = ["trace,x,y"]
            for label, edge in (("upper", upper), ("lower", lower)):
                lines += [f"{label},{c},{edge[c - first]:.1f}" for c in range(a, b + 1)]
            path = REAL_DIR / f"{RECORDING.stem}_{name}.csv"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"{path}: columns {a}-{b}, {2 * (b - a + 1)} points")


if __name__ == "__main__":
    main()
