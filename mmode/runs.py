"""Runs of pixels: stretches of True in a line, the cavity's run in each column, its edges.

Rows are depth (down), columns are time.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_VERTICAL = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]])  # joins pixels within a column only


def odd_window(seconds: float, time_res_s: float) -> int:
    """Columns in `seconds`, odd (so that a window centres on a column), at least 3."""
    return max(3, int(round(seconds / time_res_s)) | 1)


def true_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of the runs of True in a 1-D array."""
    labels, _ = ndimage.label(np.asarray(values, dtype=bool))
    return [(int(s.start), int(s.stop)) for (s,) in ndimage.find_objects(labels)]


def longest_run_per_column(foreground: np.ndarray) -> np.ndarray:
    """Bool (H, W): in each column only its longest run of True; of equal runs the topmost."""
    foreground = np.asarray(foreground, dtype=bool)
    labels, _ = ndimage.label(foreground, structure=_VERTICAL)
    objects = ndimage.find_objects(labels)
    mask = np.zeros_like(foreground)
    if not objects:
        return mask
    starts = np.array([rows.start for rows, _ in objects])
    stops = np.array([rows.stop for rows, _ in objects])
    columns = np.array([cols.start for _, cols in objects])
    order = np.lexsort((starts, starts - stops, columns))  # by column, longest, topmost
    kept_columns, first = np.unique(columns[order], return_index=True)
    best = order[first]
    rows = np.arange(foreground.shape[0])[:, None]
    mask[:, kept_columns] = (rows >= starts[best]) & (rows < stops[best])
    return mask


def cavity_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W,) first and last foreground row of each column, and whether it has any.

    The rows of an empty column are meaningless; use them only where it is filled.
    """
    mask = np.asarray(mask, dtype=bool)
    filled = mask.any(axis=0)
    top = mask.argmax(axis=0)
    bottom = mask.shape[0] - 1 - mask[::-1].argmax(axis=0)
    return top, bottom, filled
