"""From a cavity probability map to LVID, volume and per-beat numbers.

Rows are depth (down), columns are time. Every function here but read_sidecar is pure:
arrays in, arrays or small dataclasses out.

Decisions where the issue is silent:
- The cavity in a column is its longest run of pixels with probability above the
  threshold; of equally long runs the topmost wins.
- LVID is the run's length in rows times the depth resolution, with each end of the run
  moved to where the probability crosses the threshold (linear between rows): whole rows
  would make the curve a staircase, and end-diastole times jitter on its flat steps.
  Training masks hold the rows whose centres lie between the two traces, so on average
  the run is as long as the traces are apart.
- Beats are found and measured on the lightly smoothed LVID curve: the maximum of a
  noisy curve would read high.
- A beat runs from one end-diastole (ED) to the next in the same gap-free stretch; it
  reports the first ED's LVIDd and the lowest LVID between the two EDs as LVIDs.
- An ED within one smoothing window (SMOOTH_S) of the ends of a gap-free stretch is
  ignored: the curve must be seen on both sides of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import find_peaks, savgol_filter

DEFAULT_TIME_RES_S = 0.00083  # a common mouse M-mode sweep; used only when nothing says
DEFAULT_DEPTH_RES_MM = 0.02
SMOOTH_S = 0.008  # Savitzky-Golay window; a mouse beat lasts ~80-120 ms
PROMINENCE_SHARE = 0.25  # of the LVID curve's robust range (5th to 95th percentile)


@dataclass(frozen=True)
class Beat:
    t_ed_s: float
    lvid_d_mm: float
    t_es_s: float
    lvid_s_mm: float
    heart_rate_bpm: float
    volume_d_ul: float
    volume_s_ul: float
    ef_percent: float
    fs_percent: float


BEAT_FIELDS = tuple(Beat.__dataclass_fields__)


def cavity_mask(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Bool (H, W): per column, only the longest run of pixels with prob > threshold."""
    foreground = np.asarray(prob) > threshold
    height = foreground.shape[0]
    padded = np.zeros((foreground.shape[1], height + 2), dtype=np.int8)
    padded[:, 1:-1] = foreground.T
    edges = np.diff(padded, axis=1)
    # Row-major order of the transposed array: sorted by column, then by row, so the
    # k-th start and the k-th end belong to the same run.
    start_cols, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    mask = np.zeros_like(foreground)
    if starts.size == 0:
        return mask
    lengths = ends - starts
    order = np.lexsort((starts, -lengths, start_cols))
    columns, first = np.unique(start_cols[order], return_index=True)
    best = order[first]
    rows = np.arange(height)[:, None]
    mask[:, columns] = (rows >= starts[best]) & (rows < ends[best])
    return mask


def lvid_mm(
    mask: np.ndarray, depth_res_mm: float, prob: np.ndarray | None = None, threshold: float = 0.5
) -> np.ndarray:
    """(W,) LV inner diameter per column of a cavity mask; NaN where there is no cavity.

    Without prob: the run's length in rows. With prob: each end of the run moves to where
    prob crosses the threshold, linear between rows (outside the image counts as 0), so
    the diameter is not rounded to whole rows; a step from 1 to 0 gives the row count.
    """
    mask = np.asarray(mask, dtype=bool)
    height = mask.shape[0]
    filled = mask.any(axis=0)
    rows = mask.sum(axis=0).astype(np.float64)
    if prob is not None:
        columns = np.arange(mask.shape[1])
        top = mask.argmax(axis=0)
        bottom = height - 1 - mask[::-1].argmax(axis=0)
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


def teichholz_volume_ul(d_mm: np.ndarray | float) -> np.ndarray | float:
    """LV volume by Teichholz: V = 7 / (2.4 + D) * D^3 mL with D in cm; returned in uL."""
    d_cm = np.asarray(d_mm, dtype=np.float64) / 10.0
    return 1000.0 * 7.0 / (2.4 + d_cm) * d_cm**3


def finite_segments(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of the runs of finite values."""
    finite = np.concatenate([[False], np.isfinite(values), [False]])
    edges = np.diff(finite.astype(np.int8))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def smoothing_window(time_res_s: float) -> int:
    """Columns in SMOOTH_S, odd, at least 3."""
    return max(3, int(round(SMOOTH_S / time_res_s)) | 1)


def smooth_lvid(lvid: np.ndarray, time_res_s: float) -> np.ndarray:
    """Savitzky-Golay smoothing over ~SMOOTH_S, each gap-free stretch on its own."""
    window = smoothing_window(time_res_s)
    smooth = np.array(lvid, dtype=np.float64)
    for start, stop in finite_segments(smooth):
        if stop - start >= window:
            smooth[start:stop] = savgol_filter(smooth[start:stop], window, polyorder=2)
    return smooth


def find_beats(lvid: np.ndarray, time_res_s: float, max_hr_bpm: float = 900.0) -> list[Beat]:
    """Beats of an LVID curve in mm (NaN = no cavity), columns time_res_s apart."""
    smooth = smooth_lvid(lvid, time_res_s)
    finite = smooth[np.isfinite(smooth)]
    if finite.size < 3:
        return []
    low, high = np.percentile(finite, [5, 95])
    prominence = max(PROMINENCE_SHARE * (high - low), 1e-9)
    min_distance = max(1, int(60.0 / max_hr_bpm / time_res_s))
    margin = smoothing_window(time_res_s)
    beats = []
    for start, stop in finite_segments(smooth):
        segment = smooth[start:stop]
        peaks, _ = find_peaks(segment, distance=min_distance, prominence=prominence)
        # A peak this close to a segment's end is not trusted: smoothing is one-sided
        # there, and a glitch in the end columns can pose as the systole before it.
        peaks = peaks[(peaks >= margin) & (peaks < segment.size - margin)]
        for ed, next_ed in zip(peaks[:-1], peaks[1:], strict=True):
            es = ed + int(np.argmin(segment[ed:next_ed]))
            beats.append(
                make_beat(
                    (start + ed) * time_res_s,
                    segment[ed],
                    (start + es) * time_res_s,
                    segment[es],
                    (next_ed - ed) * time_res_s,
                )
            )
    return beats


def make_beat(t_ed_s: float, d_mm: float, t_es_s: float, s_mm: float, rr_s: float) -> Beat:
    """One beat's numbers from its ED and ES diameters and its ED-to-ED interval."""
    volume_d_ul = float(teichholz_volume_ul(d_mm))
    volume_s_ul = float(teichholz_volume_ul(s_mm))
    return Beat(
        t_ed_s=float(t_ed_s),
        lvid_d_mm=float(d_mm),
        t_es_s=float(t_es_s),
        lvid_s_mm=float(s_mm),
        heart_rate_bpm=60.0 / rr_s,
        volume_d_ul=volume_d_ul,
        volume_s_ul=volume_s_ul,
        ef_percent=100.0 * (volume_d_ul - volume_s_ul) / volume_d_ul,
        fs_percent=100.0 * (d_mm - s_mm) / d_mm,
    )


def summarize(beats: list[Beat]) -> dict[str, float | int | None]:
    """n_beats and the median of each number over the beats (None without beats)."""
    summary: dict[str, float | int | None] = {"n_beats": len(beats)}
    for key in ("lvid_d_mm", "lvid_s_mm", "heart_rate_bpm", "ef_percent", "fs_percent"):
        values = [asdict(beat)[key] for beat in beats]
        summary[key] = float(np.median(values)) if values else None
    return summary


@dataclass(frozen=True)
class Resolution:
    time_res_s: float
    depth_res_mm: float
    time_res_assumed: bool
    depth_res_assumed: bool


def read_sidecar(image_path: Path) -> dict[str, float | None] | None:
    """time_res_s and depth_res_mm from the NAME.json next to NAME.png, or None if none.

    A missing or null value is None. Raises ValueError, naming the file, for a sidecar
    that cannot be read or holds a value that is not a positive number.
    """
    path = Path(image_path).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON sidecar ({err}).") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object with time_res_s and depth_res_mm.")
    values = {}
    for key in ("time_res_s", "depth_res_mm"):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and value > 0)
        ):
            raise ValueError(f"{path}: {key} must be a positive number, got {value!r}.")
        values[key] = None if value is None else float(value)
    return values


def resolve_resolution(
    sidecar: dict | None, time_res_s: float | None, depth_res_mm: float | None
) -> Resolution:
    """Flags win over the sidecar; a value that neither gives is assumed (and says so)."""
    sidecar = sidecar or {}
    time_res_s = time_res_s if time_res_s is not None else sidecar.get("time_res_s")
    depth_res_mm = depth_res_mm if depth_res_mm is not None else sidecar.get("depth_res_mm")
    return Resolution(
        time_res_s=DEFAULT_TIME_RES_S if time_res_s is None else time_res_s,
        depth_res_mm=DEFAULT_DEPTH_RES_MM if depth_res_mm is None else depth_res_mm,
        time_res_assumed=time_res_s is None,
        depth_res_assumed=depth_res_mm is None,
    )
