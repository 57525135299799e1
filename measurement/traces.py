"""From a cavity probability map to the LV inner diameter (LVID) in each column.

Rows are depth (down), columns are time.

Decisions where the issue is silent:
- The cavity in a column is its longest run of pixels with probability above the
  threshold; of equally long runs the topmost wins.
- LVID is the run's length in rows times the depth resolution, with each end of the run
  moved to where the probability crosses the threshold (linear between rows): whole rows
  would make the curve a staircase, and end-diastole times jitter on its flat steps.
  Training masks hold the rows whose centres lie between the two traces, so on average
  the run is as long as the traces are apart.
"""

from __future__ import annotations

import numpy as np

from mmode.runs import cavity_edges, longest_run_per_column


def cavity_mask(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Bool (H, W): per column, only the longest run of pixels with prob > threshold."""
    return longest_run_per_column(np.asarray(prob) > threshold)


def lvid_mm(
    mask: np.ndarray, depth_res_mm: float, prob: np.ndarray | None = None, threshold: float = 0.5
) -> np.ndarray:
    """(W,) LV inner diameter per column of a cavity mask; NaN where there is no cavity.

    Without prob: the run's length in rows. With prob: each end of the run moves to where
    prob crosses the threshold, linear between rows (outside the image counts as 0), so
    the diameter is not rounded to whole rows; a step from 1 to 0 gives the row count.
    """
    mask = np.asarray(mask, dtype=bool)
    top, bottom, filled = cavity_edges(mask)
    rows = mask.sum(axis=0).astype(np.float64)
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
        rows = np.where(filled, rows - 1 + top_share + bottom_share, 0.0)
    return np.where(filled, rows * depth_res_mm, np.nan)
