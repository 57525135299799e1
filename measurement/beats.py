"""From an LVID curve to beats: end-diastoles, end-systoles and per-beat numbers.

Every function here is pure: arrays in, arrays or small dataclasses out.

Decisions where the issue is silent:
- Beats are found and measured on the lightly smoothed LVID curve: the maximum of a
  noisy curve would read high.
- A beat runs from one end-diastole (ED) to the next in the same gap-free stretch; it
  reports the LVID at its ED as LVIDd and at its end-systole (ES) as LVIDs. Both are
  timed by the walls' motion (contraction below), never by the LVID's extremes.
- An LVID peak within one smoothing window (SMOOTH_S) of a gap-free stretch's end is
  ignored, and so is a contraction that starts within one of its start: the curve must be
  seen on both sides of them. A stretch that starts on a diastole's flat top has its peak
  in its first column.
- A beat's cardiac output is its stroke volume times its own heart rate (60 / RR).
- The wall numbers (IVS, LVPW, LV mass, RWT) come from a model that segments the walls
  (measurement/walls.py adds them); for a cavity-only model they are None, and so are
  their medians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks, savgol_filter

from mmode.runs import odd_window, true_runs
from mmode.scanner import DEFAULT_VOLUME_FORMULA, teichholz_volume_ul

SMOOTH_S = 0.008  # Savitzky-Golay window; a mouse beat lasts ~80-120 ms
PROMINENCE_SHARE = 0.25  # of the LVID curve's robust range (5th to 95th percentile)
# The least LVID change in mm (ED minus ES) that makes a beat; the prominence's floor. A
# contracting mouse LV shortens by 1-2 mm; 0.1 mm is FS 3 % of a 3.5 mm LV, 5 rows at
# 0.02 mm: weaker than that is no beat, while a weak one above it is still found and
# rejected as not_contracting by the quality check. Window stitching moves a still
# edge by ~0.0001 mm.
MIN_BEAT_AMPLITUDE_MM = 0.1
# End-diastole is where contraction starts: the last time before the steep fall (the
# first column at STEEP_SHARE of the beat's highest inward speed) that the walls' inward
# speed (the smoothed LVID's slope) was below ONSET_SHARE of that highest; the slope of a
# noisy flat maximum stays below 5 %. The RR runs between the times consecutive beats'
# LVID has fallen FALL_SHARE of the way from its peak to its minimum: a level crossed on
# the steep part, read on the curve itself rather than on its slope, which an edge's
# noise moves more. Per-beat rate error, median / p90, on held-out synthetic seeds 51-54
# with a wall model: 1.05 / 3.2 % (at 30 % of the highest speed: 1.26 / 4.6 %; from the
# onsets: 1.35 / 6.7 %; from the peaks: 1.84 / 8.7 %); with the shipped model on scanner
# seed 41: 3.5 / 13.9 % (6.7 / 26.6 %; 4.5 / 18.5 %; 5.2 / 15.7 %).
ONSET_SHARE = 0.05
STEEP_SHARE = 0.9
FALL_SHARE = 0.3
# End-systole is where the walls stop, on a curve smoothed less: the LVID often turns
# sharply there and SMOOTH_S's smoothing moves its minimum (2.6 ms early on held-out
# synthetic beats against 1.7 ms at 5 ms).
ES_SMOOTH_S = 0.005
# The highest heart rate a beat may have (test.py --max-hr): conscious mice reach about
# 800 bpm; beats' steep falls are at least 60 / MAX_HR_BPM s apart (spaced below).
MAX_HR_BPM = 900.0


@dataclass(frozen=True)
class Beat:
    t_ed_s: float
    lvid_d_mm: float
    t_es_s: float
    lvid_s_mm: float
    t_end_s: float  # the next end-diastole: the beat runs from t_ed_s to here
    heart_rate_bpm: float
    volume_d_ul: float
    volume_s_ul: float
    ef_percent: float
    fs_percent: float
    sv_ul: float  # stroke volume, EDV - ESV
    co_ml_min: float  # cardiac output, SV x HR
    # Walls, read at this beat's ED (_d) and ES (_s) columns; None without walls.
    ivs_d_mm: float | None = None  # interventricular septum
    ivs_s_mm: float | None = None
    lvpw_d_mm: float | None = None  # LV posterior wall
    lvpw_s_mm: float | None = None
    lv_mass_mg: float | None = None  # mmode.scanner.lv_mass_mg
    lv_mass_corrected_mg: float | None = None  # x 0.8
    rwt: float | None = None  # relative wall thickness, 2 x LVPWd / LVIDd

    @property
    def rr_s(self) -> float:
        """The interval its heart rate came from: its steep fall to the next one's."""
        return 60.0 / self.heart_rate_bpm


BEAT_FIELDS = tuple(Beat.__dataclass_fields__)
WALL_FIELDS = (
    "ivs_d_mm", "ivs_s_mm", "lvpw_d_mm", "lvpw_s_mm", "lv_mass_mg", "lv_mass_corrected_mg", "rwt",
)  # fmt: skip


def beat_columns(beat: Beat, time_res_s: float) -> tuple[int, int, int]:
    """The column of the beat's ED, its ES and the next ED."""
    ed, es, end = (int(round(t / time_res_s)) for t in (beat.t_ed_s, beat.t_es_s, beat.t_end_s))
    return ed, es, end


def finite_segments(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges of the runs of finite values."""
    return true_runs(np.isfinite(values))


def smooth_lvid(lvid: np.ndarray, time_res_s: float) -> np.ndarray:
    """Savitzky-Golay smoothing over ~SMOOTH_S, each gap-free stretch on its own."""
    window = odd_window(SMOOTH_S, time_res_s)
    smooth = np.array(lvid, dtype=np.float64)
    for start, stop in finite_segments(smooth):
        if stop - start >= window:
            smooth[start:stop] = savgol_filter(smooth[start:stop], window, polyorder=2)
    return smooth


def robust_range_mm(smooth: np.ndarray) -> float | None:
    """5th to 95th percentile of the finite values; None with fewer than 3 of them."""
    finite = smooth[np.isfinite(smooth)]
    if finite.size < 3:
        return None
    low, high = np.percentile(finite, [5, 95])
    return float(high - low)


def lacks_motion(lvid: np.ndarray, time_res_s: float) -> bool:
    """Whether the LVID curve is seen but changes less than MIN_BEAT_AMPLITUDE_MM."""
    swing_mm = robust_range_mm(smooth_lvid(lvid, time_res_s))
    return swing_mm is not None and swing_mm < MIN_BEAT_AMPLITUDE_MM


def find_beats(
    lvid: np.ndarray,
    time_res_s: float,
    max_hr_bpm: float = MAX_HR_BPM,
    volume_formula: str = DEFAULT_VOLUME_FORMULA,
) -> list[Beat]:
    """Beats of an LVID curve in mm (NaN = no cavity), columns time_res_s apart.

    Volumes follow volume_formula (mmode.scanner.VOLUME_FORMULAS).
    """
    smooth = smooth_lvid(lvid, time_res_s)
    swing_mm = robust_range_mm(smooth)
    if swing_mm is None:
        return []
    prominence = max(PROMINENCE_SHARE * swing_mm, MIN_BEAT_AMPLITUDE_MM)
    min_distance = max(1, int(60.0 / max_hr_bpm / time_res_s))
    window = odd_window(SMOOTH_S, time_res_s)
    es_window = odd_window(ES_SMOOTH_S, time_res_s)
    beats = []
    for start, stop in finite_segments(smooth):
        segment = smooth[start:stop]
        if segment.size < window:
            continue
        velocity = savgol_filter(segment, window, polyorder=2, deriv=1)
        es_segment = savgol_filter(lvid[start:stop], es_window, polyorder=2)
        es_velocity = savgol_filter(lvid[start:stop], es_window, polyorder=2, deriv=1)
        # The first column counts as a peak too: a stretch may start on the flat top of a
        # diastole, whose maximum lies before it.
        peaks, _ = find_peaks(np.concatenate([[-np.inf], segment]), prominence=prominence)
        peaks -= 1
        # A peak this close to a segment's end is not trusted: smoothing is one-sided
        # there, and a glitch in the end columns can pose as the systole before it. At its
        # start, a contraction is trusted once its end-diastole is that far in.
        peaks = peaks[peaks < segment.size - window]
        if peaks.size == 0:
            continue
        found = [
            contraction(segment, velocity, es_velocity, peak, next_peak)
            for peak, next_peak in zip(peaks, [*peaks[1:], segment.size], strict=True)
        ]
        found = [c if c is None or c.ed >= window else None for c in found]
        found = spaced(found, segment[peaks], min_distance)
        columns = np.arange(segment.size)
        for this, after in zip(found[:-1], found[1:], strict=True):
            if this is None or this.es is None or after is None:
                continue
            beats.append(
                make_beat(
                    (start + this.ed) * time_res_s,
                    float(np.interp(this.ed, columns, segment)),
                    (start + this.es) * time_res_s,
                    float(np.interp(this.es, columns, es_segment)),
                    (after.sharp - this.sharp) * time_res_s,
                    volume_formula,
                    (start + after.ed) * time_res_s,
                )
            )
    return beats


def spaced(
    found: list[Contraction | None], heights: np.ndarray, min_distance: float
) -> list[Contraction | None]:
    """`found` (one per LVID peak, of these heights) without the contractions whose steep
    fall lies closer than min_distance columns to a higher peak's: beats' steep falls are
    at least that far apart.

    The spacing is that of the falls, not of the maxima: a diastole's maximum may lie
    anywhere on its flat top, so one beat's at its end and the next one's at its start are
    far closer than the beats (53 ms apart at 720 bpm on held-out synthetic beats).
    """
    kept: list[float] = []
    dropped = set()
    for i in np.argsort(-heights, kind="stable"):
        this = found[i]
        if this is None:
            continue
        if any(abs(this.sharp - sharp) < min_distance for sharp in kept):
            dropped.add(i)
        else:
            kept.append(this.sharp)
    return [c for i, c in enumerate(found) if i not in dropped]


@dataclass(frozen=True)
class Contraction:
    """The times of one contraction, in fractional columns of its segment."""

    ed: float  # end-diastole: the walls start to move inward
    sharp: float  # the LVID has fallen FALL_SHARE of the way from its peak to its minimum
    es: float | None  # end-systole: they stop; None when the segment ends first


def contraction(
    segment: np.ndarray, velocity: np.ndarray, es_velocity: np.ndarray, peak: int, stop: int
) -> Contraction | None:
    """The contraction after an LVID peak, seen before `stop` (the next peak, or the
    segment's end); None when the steepest fall is not seen, es None when its end is not.

    velocity is the smoothed curve's (per column), es_velocity that of the curve smoothed
    over ES_SMOOTH_S only. No time is the LVID maximum's: a maximum flat for a few
    milliseconds before contraction would place end-diastole anywhere on it.
    """
    low = peak + int(np.argmin(segment[peak:stop]))
    steepest = peak + int(np.argmin(velocity[peak : low + 1]))
    if not peak < steepest < low:  # still falling faster where the segment ends
        return None
    # ED is found back from the first column nearly as steep as the steepest, so that a
    # fall in two stages of about equal speed is timed by its first stage whichever
    # stage's last digits are steeper; a shoulder that pauses a fall is slower than that.
    fast = velocity[peak : steepest + 1] <= STEEP_SHARE * velocity[steepest]
    steep = peak + int(np.flatnonzero(fast)[0])
    ed = last_crossing(velocity[: steep + 1], ONSET_SHARE * velocity[steepest])
    if ed is None:
        return None
    level = segment[peak] - FALL_SHARE * (segment[peak] - segment[low])
    sharp = peak + first_below(segment[peak : low + 1], level)
    es = first_crossing(es_velocity, steepest, stop)
    return Contraction(ed, sharp, es)


def last_crossing(values: np.ndarray, level: float) -> float | None:
    """The fractional index where values, falling below level for the last time, cross it."""
    above = np.flatnonzero(values[:-1] >= level)
    if above.size == 0:
        return None
    c = above[-1]  # values[c] >= level > values[c + 1]
    return float(c + (values[c] - level) / (values[c] - values[c + 1]))


def first_below(values: np.ndarray, level: float) -> float:
    """The fractional index where values first fall below level (values[-1] is below)."""
    c = int(np.flatnonzero(values < level)[0])
    if c == 0:
        return 0.0
    return float(c - 1 + (values[c - 1] - level) / (values[c - 1] - values[c]))


def first_crossing(values: np.ndarray, start: int, stop: int) -> float | None:
    """The fractional index where values first rise to 0 in start..stop-1; None if never."""
    rising = np.flatnonzero(values[start + 1 : stop] >= 0)
    if rising.size == 0:
        return None
    c = start + 1 + rising[0]  # values[c - 1] < 0 <= values[c]
    return float(c - values[c] / (values[c] - values[c - 1]))


def make_beat(
    t_ed_s: float,
    d_mm: float,
    t_es_s: float,
    s_mm: float,
    rr_s: float,
    volume_formula: str,
    t_end_s: float | None = None,
) -> Beat:
    """One beat's numbers from its ED and ES diameters and the interval its rate comes
    from; it ends at t_end_s, the next ED (by default rr_s after its own)."""
    volume_d_ul = float(teichholz_volume_ul(d_mm, volume_formula))
    volume_s_ul = float(teichholz_volume_ul(s_mm, volume_formula))
    heart_rate_bpm = 60.0 / float(rr_s)
    sv_ul = volume_d_ul - volume_s_ul
    return Beat(
        t_ed_s=float(t_ed_s),
        lvid_d_mm=float(d_mm),
        t_es_s=float(t_es_s),
        lvid_s_mm=float(s_mm),
        t_end_s=float(t_ed_s + rr_s if t_end_s is None else t_end_s),
        heart_rate_bpm=heart_rate_bpm,
        volume_d_ul=volume_d_ul,
        volume_s_ul=volume_s_ul,
        ef_percent=100.0 * sv_ul / volume_d_ul,
        fs_percent=100.0 * (d_mm - s_mm) / d_mm,
        sv_ul=sv_ul,
        co_ml_min=sv_ul * heart_rate_bpm / 1000.0,
    )


MEDIAN_FIELDS = (
    "lvid_d_mm", "lvid_s_mm", "ef_percent", "fs_percent",
    "volume_d_ul", "volume_s_ul", "sv_ul", "co_ml_min", *WALL_FIELDS,
)  # fmt: skip
# summarize's keys in the order tables show them.
SUMMARY_NUMBERS = (
    "n_beats", "n_beats_accepted", "lvid_d_mm", "lvid_s_mm", "heart_rate_bpm",
    "ef_percent", "fs_percent", "volume_d_ul", "volume_s_ul", "sv_ul", "co_ml_min",
    *WALL_FIELDS,
)  # fmt: skip


def summarize(
    beats: list[Beat], accepted: list[bool] | None = None
) -> dict[str, float | int | None]:
    """n_beats, n_beats_accepted and, over the accepted beats (all when accepted is None;
    None without accepted beats), the heart rate as beats per time and the median of each
    other number (a wall number over the accepted beats that have one).

    Beats per time (60 x beats / their summed RR), because a single beat's RR jitters by
    a few percent: its end-diastole sits on a flat maximum. CO is the median of the
    per-beat values, like the other numbers, and not median SV x HR.
    """
    if accepted is None:
        accepted = [True] * len(beats)
    kept = [beat for beat, ok in zip(beats, accepted, strict=True) if ok]
    summary: dict[str, float | int | None] = {"n_beats": len(beats), "n_beats_accepted": len(kept)}
    for key in MEDIAN_FIELDS:
        values = [getattr(beat, key) for beat in kept if getattr(beat, key) is not None]
        summary[key] = float(np.median(values)) if values else None
    summary["heart_rate_bpm"] = beats_per_minute([beat.heart_rate_bpm for beat in kept])
    return summary


def beats_per_minute(heart_rates_bpm: list[float]) -> float | None:
    """The rate of these beats taken together, 60 x beats / their summed RR (None for none)."""
    if not heart_rates_bpm:
        return None
    return len(heart_rates_bpm) / sum(1.0 / rate for rate in heart_rates_bpm)
