"""Resampling a recording along time, so that a square window spans at most window_s.

A window holds as many columns as its recording has rows, and the network sees it shrunk
to a few hundred pixels. A deep recording (fine depth resolution) or a slow sweep puts
many beats in one window, a few pixels each, and the network rounds off their sharp
end-systolic turns. A model trained with window_s sees every recording whose window would
span longer resampled to more columns first (linear along time), and measures them the
same way; its probabilities are resampled back to the recording's own columns.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from runtime import files

# Written beside img/ and mask/ by make_dataset/make_windows --window-s; run.py keeps it in
# the checkpoint, so that test.py measures as the windows were cut.
WINDOWS_FILE = "windows.json"
# A window of a twentieth of a beat would hold no beat to see; one of ten seconds, dozens.
WINDOW_S_RANGE = (0.02, 10.0)


class WindowRuleError(ValueError):
    """A windows.json that cannot be read, or one at odds with the windows being cut."""


def check_window_s(window_s: object, source: str) -> float | None:
    """window_s as a float, None for none; WindowRuleError naming `source` otherwise."""
    if window_s is None:
        return None
    if isinstance(window_s, bool) or not isinstance(window_s, (int, float)):
        raise WindowRuleError(f"{source}: window_s must be a number of seconds, got {window_s!r}.")
    low, high = WINDOW_S_RANGE
    if not (math.isfinite(window_s) and low <= window_s <= high):
        raise WindowRuleError(
            f"{source}: window_s must be {low:g} to {high:g} s, got {window_s!r}."
        )
    return float(window_s)


def read_window_s(folder: Path) -> float | None:
    """The window_s of FOLDER/windows.json; None without the file (square windows)."""
    path = Path(folder) / WINDOWS_FILE
    content = files.read_json(path, WindowRuleError)
    if content is None:
        return None
    if not isinstance(content, dict) or "window_s" not in content:
        raise WindowRuleError(f'{path} should hold {{"window_s": SECONDS}}; fix or remove it.')
    return check_window_s(content["window_s"], str(path))


def claim_window_s(folder: Path, window_s: float | None, has_windows: bool, flag: str) -> None:
    """Keep a data folder's windows cut one way: write FOLDER/windows.json for window_s, or
    raise WindowRuleError, naming `flag`, where the folder's windows were cut otherwise."""
    existing = read_window_s(folder)
    if existing == window_s:
        return
    if existing is not None or has_windows:
        raise WindowRuleError(
            f"{folder} holds windows cut {cut_as(existing)}; cut these the same way or pick "
            f"another {flag}."
        )
    files.write_text(Path(folder) / WINDOWS_FILE, json.dumps({"window_s": window_s}) + "\n")


def cut_as(window_s: float | None) -> str:
    """How windows of this window_s were cut, for messages."""
    return "square" if window_s is None else f"with --window-s {window_s:g}"


def time_factor(height: int, time_res_s: float, window_s: float | None) -> float:
    """How many times a recording's columns are multiplied: 1 without window_s or where
    a height-wide window already spans at most window_s."""
    if window_s is None:
        return 1.0
    return max(1.0, height * time_res_s / window_s)


def resampled_width(
    height: int, width: int, time_res_s: float | None, window_s: float | None
) -> int:
    """The columns a (height, width) recording is resampled to, so that a height-wide
    window spans at most window_s; its own width without window_s."""
    if window_s is None:
        return width
    assert time_res_s is not None, "window_s needs the recording's time_res_s"
    return max(1, int(round(width * time_factor(height, time_res_s, window_s))))


def source_columns(new_width: int, width: int) -> np.ndarray:
    """Where each of new_width columns lies on the old columns' axis (pixel centres)."""
    return np.clip((np.arange(new_width) + 0.5) * width / new_width - 0.5, 0, width - 1)


def resample_columns(array: np.ndarray, new_width: int, nearest: bool = False) -> np.ndarray:
    """(..., W) -> (..., new_width) along the last axis: linear between columns, or the
    nearest column (for masks, whose values are labels). Keeps the dtype, rounding
    integers."""
    width = array.shape[-1]
    if new_width == width:
        return array
    x = source_columns(new_width, width)
    if nearest:
        return array[..., np.rint(x).astype(np.intp)]
    left = np.minimum(x.astype(np.intp), width - 1)
    right = np.minimum(left + 1, width - 1)
    frac = (x - left).astype(np.float32)
    values = array[..., left] * (1 - frac) + array[..., right] * frac
    if np.issubdtype(array.dtype, np.integer):
        values = np.rint(values)
    return values.astype(array.dtype)
