"""Where to cut square training windows from a recording and its mask.

A window's side is the recording's height. Windows slide along time by `step` columns
(default: half the side) inside the annotated span only, and the last one is aligned to the
span's end, so together they cover the whole span. A span narrower than the height gives one
span x span window, centred vertically on the left ventricle and clipped to the image.
With quality regions, each contiguous allowed segment of the span is treated as a span.

Decisions where the issue is silent:
- The span is read from the mask: its first to its last column with any foreground. Masks
  from make_masks hold exactly the annotated span, so this is the same span.
- The LV centre of a short window is the mean, over the segment's columns, of the middle
  between the first and last foreground row (the traces as the mask drew them).
- A step larger than the side leaves gaps between windows; that is the caller's choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmode.runs import cavity_edges
from mmode.windows import window_starts


@dataclass(frozen=True)
class Window:
    row: int  # top row
    col: int  # first column
    size: int  # side, in pixels


def mask_span(mask: np.ndarray) -> tuple[int, int] | None:
    """(first_col, last_col) with any foreground, or None for an empty mask."""
    columns = np.flatnonzero(np.asarray(mask).any(axis=0))
    if columns.size == 0:
        return None
    return int(columns[0]), int(columns[-1])


def lv_centre_row(mask: np.ndarray, first_col: int, last_col: int) -> float:
    """Mean row halfway between the mask's top and bottom edge over the given columns."""
    top, bottom, filled = cavity_edges(np.asarray(mask)[:, first_col : last_col + 1] != 0)
    if not filled.any():
        return (mask.shape[0] - 1) / 2
    return float(((top + bottom) / 2)[filled].mean())


def plan_windows(
    mask: np.ndarray, segments: list[tuple[int, int]], step: int | None = None
) -> list[Window]:
    """Windows covering each (first_col, last_col) segment; step defaults to half the side."""
    height = mask.shape[0]
    step = step or max(height // 2, 1)
    windows = []
    for first_col, last_col in segments:
        width = last_col - first_col + 1
        if width >= height:
            windows += [
                Window(0, col, height) for col in window_starts(first_col, last_col, height, step)
            ]
            continue
        centre = lv_centre_row(mask, first_col, last_col)
        row = round(centre - (width - 1) / 2)
        windows.append(Window(min(max(row, 0), height - width), first_col, width))
    return windows


def cut(array: np.ndarray, window: Window) -> np.ndarray:
    """The window's pixels of an image or mask."""
    return array[window.row : window.row + window.size, window.col : window.col + window.size]
