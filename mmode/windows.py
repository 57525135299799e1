"""Square windows along time: where they start."""

from __future__ import annotations


def window_starts(first_col: int, last_col: int, side: int, step: int) -> list[int]:
    """First columns of `side`-wide windows stepping `step` columns through first..last_col.

    The last window ends at last_col, so together they cover every column; a span narrower
    than `side` gets the one window at first_col.
    """
    last_start = last_col - side + 1
    if last_start <= first_col:
        return [first_col]
    starts = list(range(first_col, last_start + 1, step))
    if starts[-1] != last_start:
        starts.append(last_start)
    return starts
