"""Stitch the frames of a scrolling M-mode display into one long image.

A scanner shows M-mode as a strip that scrolls left: each frame repeats the right part of the
previous frame and adds new columns at its right edge. For each frame we find the shift s
(new columns) with new[:, :W-s] == previous[:, s:] and append new[:, W-s:]. A shift of 0 is a
duplicated frame and adds nothing.

Decisions where the issue is silent:
- Exact match first, smallest shift wins: blank columns at the start of an acquisition then
  still line up, and real echo data never repeats exactly at a smaller shift.
- Without an exact match (lossy compression, overlays) the shift with the smallest mean
  absolute difference is used, searching shifts that keep at least a quarter of the frame
  as overlap; the caller is told how many frames were joined this way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MIN_OVERLAP_FRACTION = 0.25  # of the frame width, for the best-match fallback
SAMPLED_ROWS = 64  # rows compared by the fallback, for speed


@dataclass
class StitchResult:
    image: np.ndarray  # uint8 (H, total columns)
    frames: int = 0  # frames read
    duplicates: int = 0  # frames that added no column
    inexact: int = 0  # frames placed by best match instead of exact match
    worst_mean_diff: float = 0.0  # largest mean |difference| of a best-match overlap


def exact_shift(previous: np.ndarray, new: np.ndarray) -> int | None:
    """Smallest s with new[:, :W-s] == previous[:, s:], or None."""
    width = previous.shape[1]
    # Only columns of `previous` equal to the new frame's first column can start the overlap.
    candidates = np.flatnonzero((previous == new[:, :1]).all(axis=0))
    for shift in candidates:
        if np.array_equal(previous[:, shift:], new[:, : width - shift]):
            return int(shift)
    return None


def best_shift(previous: np.ndarray, new: np.ndarray) -> tuple[int, float]:
    """The shift with the smallest mean |difference| over the overlap, and that difference."""
    height, width = previous.shape
    rows = np.linspace(0, height - 1, min(height, SAMPLED_ROWS)).round().astype(int)
    previous = previous[rows].astype(np.float32)
    new = new[rows].astype(np.float32)
    min_overlap = max(1, int(width * MIN_OVERLAP_FRACTION))
    diffs = [
        float(np.abs(previous[:, shift:] - new[:, : width - shift]).mean())
        for shift in range(width - min_overlap + 1)
    ]
    shift = int(np.argmin(diffs))
    return shift, diffs[shift]


def stitch_frames(frames: Iterable[np.ndarray]) -> StitchResult:
    """One long image from same-sized uint8 (H, W) frames that scroll to the left."""
    pieces: list[np.ndarray] = []
    previous: np.ndarray | None = None
    result = StitchResult(image=np.zeros((0, 0), dtype=np.uint8))
    for frame in frames:
        result.frames += 1
        if previous is None:
            pieces.append(frame)
            previous = frame
            continue
        if frame.shape != previous.shape:
            raise ValueError(f"frame {result.frames} is {frame.shape}, not {previous.shape}.")
        shift = exact_shift(previous, frame)
        if shift is None:
            shift, mean_diff = best_shift(previous, frame)
            result.inexact += 1
            result.worst_mean_diff = max(result.worst_mean_diff, mean_diff)
        if shift == 0:
            result.duplicates += 1
            continue
        pieces.append(frame[:, frame.shape[1] - shift :])
        previous = frame
    if pieces:
        result.image = np.concatenate(pieces, axis=1)
    return result
