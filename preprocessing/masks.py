"""The mask rule: the left-ventricle cavity is the region between the two traces.

Each trace is a set of (x, y) points in pixels: x the column (time), y the row (depth, 0 at
the top). Each trace is sorted by x and y is interpolated linearly between consecutive points
(numpy.interp). The annotated span is every integer column c with
max(first x of upper, first x of lower) <= c <= min(last x of upper, last x of lower).
Pixel (r, c) is foreground if and only if c is in the span and upper(c) <= r <= lower(c).

Decisions where the issue is silent:
- Points of one trace that share an x are merged into one point at the mean of their y, so
  the trace stays a function of x and the mask does not depend on the order of the points.
- Every comparison allows EPS_PX of float round-off, so an edge that falls exactly on a row
  or column includes it, as exact arithmetic would (between (0, 0.1) and (10, 3.1) np.interp
  gives 0.9999999999999999 at column 3; 0.3 s / 0.1 s per column is 2.9999999999999996).
- A point is outside the image when x is outside [0, W-1] or y outside [0, H-1].
- The upper trace may touch the lower one (a one-row mask there) but not pass below it.

Four borders (ivs_top, upper, lower, lvpw_bottom, from the top) give a label mask with
mmode.labels.WALL_LABELS' values, by the same rule per band on the span all four cover:
septum (1) between ivs_top and upper, cavity (2) between upper and lower, posterior wall (3)
between lower and lvpw_bottom. A row on a shared border belongs to the cavity, so the cavity
is exactly the binary mask of upper and lower on that span.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from mmode.labels import WALL_LABELS
from runtime.errors import name_some

EPS_PX = 1e-6
SHOWN_COLUMNS = 5  # how many offending columns an error message lists


class TraceError(ValueError):
    """Traces that give no valid mask; the message says why (without the file name)."""


def sorted_trace(points: np.ndarray) -> np.ndarray:
    """(N, 2) points sorted by x, with points sharing an x merged at their mean y."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xs, inverse = np.unique(points[:, 0], return_inverse=True)
    ys = np.bincount(inverse, weights=points[:, 1]) / np.bincount(inverse)
    return np.column_stack([xs, ys])


def annotated_span(*traces: np.ndarray) -> tuple[int, int]:
    """(first_col, last_col) of the columns all traces cover; first > last if they don't."""
    xs = [np.asarray(trace)[:, 0] for trace in traces]
    first_x = max(x.min() for x in xs)
    last_x = min(x.max() for x in xs)
    return math.ceil(first_x - EPS_PX), math.floor(last_x + EPS_PX)


def interpolate_trace(points: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The trace's y at each column, linear between its points (sorted first)."""
    trace = sorted_trace(points)
    return np.interp(columns, trace[:, 0], trace[:, 1])


def check_traces(upper: np.ndarray, lower: np.ndarray, height: int, width: int) -> None:
    """Raise TraceError if the traces give no valid mask in a height x width recording."""
    check_stack({"upper": upper, "lower": lower}, height, width)


def check_stack(traces: dict[str, np.ndarray], height: int, width: int) -> None:
    """Raise TraceError unless the named traces, top first, give a valid (label) mask.

    Each needs 2 points at different x inside the image; together they need a common
    column, where each lies on or above the next.
    """
    for label, points in traces.items():
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(np.unique(points[:, 0])) < 2:
            raise TraceError(
                f"the {label} trace has {len(points)} point(s) at {len(np.unique(points[:, 0]))}"
                " different x; it needs at least 2 points at different x."
            )
        outside = (
            (points[:, 0] < -EPS_PX)
            | (points[:, 0] > width - 1 + EPS_PX)
            | (points[:, 1] < -EPS_PX)
            | (points[:, 1] > height - 1 + EPS_PX)
        )
        if outside.any():
            x, y = points[outside][0]
            raise TraceError(
                f"{outside.sum()} point(s) of the {label} trace lie outside the "
                f"{height}x{width} image, first (x={x:g}, y={y:g})."
            )
    first_col, last_col = annotated_span(*traces.values())
    if first_col > last_col:
        covers = [
            f"{label} x {np.min(t[:, 0]):g}-{np.max(t[:, 0]):g}" for label, t in traces.items()
        ]
        covers[0] = covers[0].replace(" x ", " covers x ", 1)
        raise TraceError(f"the traces share no column: {', '.join(covers)}.")
    columns = np.arange(first_col, last_col + 1)
    for above, below_it in itertools.pairwise(traces):
        below = (
            interpolate_trace(traces[above], columns)
            > interpolate_trace(traces[below_it], columns) + EPS_PX
        )
        crossed = columns[below]
        if crossed.size:
            shown = name_some(crossed.tolist(), SHOWN_COLUMNS)
            raise TraceError(
                f"the {above} trace is below the {below_it} trace in {crossed.size} column(s):"
                f" {shown}."
            )


def mask_from_traces(upper: np.ndarray, lower: np.ndarray, height: int, width: int) -> np.ndarray:
    """The uint8 mask (0 background, 255 cavity) of a height x width recording.

    Raises TraceError for traces that give no valid mask (see check_traces).
    """
    check_traces(upper, lower, height, width)
    first_col, last_col = annotated_span(upper, lower)
    columns = np.arange(first_col, last_col + 1)
    top = interpolate_trace(upper, columns)
    bottom = interpolate_trace(lower, columns)
    rows = np.arange(height)[:, None]
    inside = (rows >= top - EPS_PX) & (rows <= bottom + EPS_PX)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, first_col : last_col + 1] = np.where(inside, 255, 0)
    return mask


def label_mask_from_traces(
    ivs_top: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    lvpw_bottom: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """The uint8 label mask (WALL_LABELS: 0 background, 1 septum, 2 cavity, 3 posterior wall).

    Raises TraceError for traces out of order or with no common column (see check_stack).
    """
    traces = {"ivs_top": ivs_top, "upper": upper, "lower": lower, "lvpw_bottom": lvpw_bottom}
    check_stack(traces, height, width)
    first_col, last_col = annotated_span(*traces.values())
    columns = np.arange(first_col, last_col + 1)
    rows_y = [interpolate_trace(trace, columns) for trace in traces.values()]
    rows = np.arange(height)[:, None]

    def between(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        return (rows >= top - EPS_PX) & (rows <= bottom + EPS_PX)

    band = np.zeros((height, columns.size), dtype=np.uint8)
    band[between(rows_y[0], rows_y[1])] = WALL_LABELS["septum"]
    band[between(rows_y[2], rows_y[3])] = WALL_LABELS["posterior_wall"]
    # Last, so that rows on upper or lower are cavity, as in the binary mask.
    band[between(rows_y[1], rows_y[2])] = WALL_LABELS["cavity"]
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, first_col : last_col + 1] = band
    return mask
