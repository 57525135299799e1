"""From a cavity probability map to the cavity's edge rows in each column.

Rows are depth (down), columns are time. Each column on its own; measurement/edges.py
then makes the edges continuous over time.

Decisions where the issue is silent:
- The cavity in a column is its longest run of pixels with probability above the
  threshold, after filling holes: low-probability blobs enclosed by cavity (chordae,
  speckle, a model's slips) would otherwise split the run and make its ends jump. Of
  equally long runs the topmost wins.
- Each end of the run moves to where the probability crosses the threshold (linear
  between rows): whole rows would make the diameter a staircase, and end-diastole times
  jitter on its flat steps. Training masks hold the rows whose centres lie between the
  two traces, so on average the run is as long as the traces are apart.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mmode.runs import cavity_edges, longest_run_per_column


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
