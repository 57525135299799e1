"""The LV's upper (septal) and lower (posterior) inner edge over time, as sub-pixel rows.

Rows are depth (down), columns are time; NaN where there is no LV.

Method: per column candidates, then a robust filter on each edge over time.
1. Per column (cavity_mask, edge_rows), each column on its own: the cavity is its longest
   run of pixels with probability above the threshold, after filling holes: low-probability
   blobs enclosed by cavity (chordae, speckle, a model's slips) would otherwise split the
   run and make its ends jump. Of equally long runs the topmost wins. Each end of the run
   moves to where the probability crosses the threshold (linear between rows): whole rows
   would make the diameter a staircase, and end-diastole times jitter on its flat steps.
   Training masks hold the rows whose centres lie between the two traces, so on average the
   run is as long as the traces are apart. On a clean map this is exact.
2. Per edge, over time, a Hampel-style filter: a column whose edge lies more than
   JUMP_MM (and MIN_JUMP_ROWS) from the rolling median over MEDIAN_S is an outlier and is
   dropped. A wall moves at most ~0.02 mm per column, so on a clean edge the median stays
   within a few hundredths of a millimetre of it, while a spike of 1-3 columns (less than half the
   window) cannot move the median at all.
3. Gaps of up to MAX_GAP_S (dropped columns, or columns without a cavity) are bridged
   linearly; longer ones stay NaN and break beats.
Why not dynamic programming over the edge probability: it would need a cost to tune and
a pass over all rows of every column, and it smooths every column, while this filter
keeps each measured column as it is and changes only those that disagree with their
neighbours, which it also counts for the quality decision (measurement/quality.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from mmode.runs import cavity_edges, longest_run_per_column, odd_window, true_runs

MEDIAN_S = 0.010  # rolling median window; a spike must be shorter than half of it
JUMP_MM = 0.1  # farther than this from the rolling median is an outlier,
MIN_JUMP_ROWS = 2.0  # and at least this far: at coarse depth resolutions edges wobble a row
MAX_GAP_S = 0.004  # gaps up to this long are bridged


@dataclass(frozen=True)
class Edges:
    upper_row: np.ndarray  # (W,) septal side of the cavity, NaN: no LV
    lower_row: np.ndarray  # (W,) posterior wall side
    replaced: np.ndarray  # (W,) bool: an edge was an outlier here (then bridged, or NaN)
    bridged: np.ndarray  # (W,) bool: no cavity found here; bridged across a short gap

    def lvid_mm(self, depth_res_mm: float) -> np.ndarray:
        """(W,) LV inner diameter; NaN where there is no LV."""
        return (self.lower_row - self.upper_row) * depth_res_mm

    def mask(self, height: int) -> np.ndarray:
        """Bool (H, W): the rows whose centres lie between the edges."""
        rows = np.arange(height)[:, None]
        with np.errstate(invalid="ignore"):
            return (rows > self.upper_row) & (rows < self.lower_row)


def cavity_mask(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Bool (H, W): per column, the longest run of prob > threshold with holes filled."""
    return longest_run_per_column(ndimage.binary_fill_holes(np.asarray(prob) > threshold))


def edge_rows(
    mask: np.ndarray, prob: np.ndarray | None = None, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(W,) upper and lower edge of each column's run as sub-pixel rows; NaN: empty column.

    Without prob the edges lie half a row outside the run's end rows, so that lower -
    upper is the row count. With prob each edge lies where prob crosses the threshold,
    linear between the end row and its outside neighbour (outside the image counts as 0);
    a step from 1 to 0 gives the half-row edges.
    """
    mask = np.asarray(mask, dtype=bool)
    top, bottom, filled = cavity_edges(mask)
    top_share = bottom_share = np.full(mask.shape[1], 0.5)
    if prob is not None:
        columns = np.arange(mask.shape[1])
        padded = np.pad(np.asarray(prob, dtype=np.float64), ((1, 1), (0, 0)))
        inside_top, above = padded[top + 1, columns], padded[top, columns]
        inside_bottom, below = padded[bottom + 1, columns], padded[bottom + 2, columns]
        # The share of the gap between the run's end row and its outside neighbour that
        # lies on the cavity side of the crossing. Inside > threshold >= outside, so only
        # empty columns divide by zero, and np.where drops them.
        with np.errstate(divide="ignore", invalid="ignore"):
            top_share = (inside_top - threshold) / (inside_top - above)
            bottom_share = (inside_bottom - threshold) / (inside_bottom - below)
    upper = np.where(filled, top - top_share, np.nan)
    lower = np.where(filled, bottom + bottom_share, np.nan)
    return upper, lower


def lv_edges(prob: np.ndarray, threshold: float, time_res_s: float, depth_res_mm: float) -> Edges:
    """The two filtered edges of a cavity probability map (H, W)."""
    upper, lower = edge_rows(cavity_mask(prob, threshold), prob, threshold)
    replaced = jumps(upper, time_res_s, depth_res_mm) | jumps(lower, time_res_s, depth_res_mm)
    empty = np.isnan(upper) | np.isnan(lower)
    # A column is measured only with both edges: LVID needs both.
    missing = replaced | empty
    upper, lower = bridged(upper, missing, time_res_s), bridged(lower, missing, time_res_s)
    return Edges(upper, lower, replaced, empty & np.isfinite(upper))


def jumps(rows: np.ndarray, time_res_s: float, depth_res_mm: float) -> np.ndarray:
    """(W,) bool: the columns of an edge or border more than JUMP_MM (at least
    MIN_JUMP_ROWS) from its rolling median over MEDIAN_S."""
    limit_rows = max(JUMP_MM / depth_res_mm, MIN_JUMP_ROWS)
    return outliers(rows, odd_window(MEDIAN_S, time_res_s), limit_rows)


def bridged(rows: np.ndarray, dropped: np.ndarray, time_res_s: float) -> np.ndarray:
    """(W,) rows with the dropped columns removed, and gaps up to MAX_GAP_S bridged."""
    max_gap = int(round(MAX_GAP_S / time_res_s))
    return bridge_gaps(np.where(dropped, np.nan, rows), max_gap)


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """(W,) median of the finite values in a centred window (odd); NaN if there are none."""
    half = window // 2
    padded = np.pad(np.asarray(values, dtype=np.float64), half, constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN
        return np.nanmedian(sliding_window_view(padded, window), axis=1)


def outliers(values: np.ndarray, window: int, limit: float) -> np.ndarray:
    """(W,) bool: finite values farther than limit from their rolling median."""
    with np.errstate(invalid="ignore"):
        return np.abs(values - rolling_median(values, window)) > limit


def bridge_gaps(values: np.ndarray, max_gap: int) -> np.ndarray:
    """Runs of up to max_gap NaNs with finite values on both sides, linearly interpolated."""
    values = np.array(values, dtype=np.float64)
    for start, stop in true_runs(np.isnan(values)):
        if stop - start <= max_gap and start > 0 and stop < values.size:
            values[start:stop] = np.interp(
                np.arange(start, stop), [start - 1, stop], values[[start - 1, stop]]
            )
    return values
