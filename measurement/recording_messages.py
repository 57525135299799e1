"""What test.py says about a recording it could not measure fully: no cardiac motion, no
complete beat or no accepted beat, each with what to check, and a resolution assumed."""

from __future__ import annotations

import numpy as np

from measurement.beats import MIN_BEAT_AMPLITUDE_MM
from measurement.quality import BeatQuality
from mmode.scanner import Resolution

NO_MOTION = f"no cardiac motion found (LVID changes by less than {MIN_BEAT_AMPLITUDE_MM} mm)"


def resolution_source(name: str, assumed: bool, flag: str, given: float | None) -> str:
    """Where a resolution came from, as a message names it."""
    if given is not None:
        return f"from {flag}"
    return f"assumed: neither {flag} nor {name}.json gives it" if assumed else f"from {name}.json"


def no_motion(name: str, resolution: Resolution, given_depth_res_mm: float | None) -> str:
    """Why a recording has no beats when its LV does not move, with the depth resolution
    used (`given_depth_res_mm`: --depth-res, None when not given): one ten times too fine
    shrinks every change tenfold."""
    depth = resolution.depth_res_mm
    source = resolution_source(
        name, resolution.depth_res_assumed, "--depth-res", given_depth_res_mm
    )
    rows = MIN_BEAT_AMPLITUDE_MM / depth
    return (
        f"{NO_MOTION}; at the {depth:g} mm per row used ({source}) that is {rows:.3g} rows, "
        "so check that the recording shows the LV in M-mode and that its depth resolution "
        "is right"
    )


def no_beat(
    name: str,
    lvid: np.ndarray,
    resolution: Resolution,
    given_time_res_s: float | None,
    given_depth_res_mm: float | None,
) -> str:
    """Why a recording whose LV is seen, or not, gave no complete beat (two end-diastoles),
    with the resolution used (`given_*`: --time-res and --depth-res, None when not given)."""
    seen = np.isfinite(lvid)
    if not seen.any():
        why = "the model found no cavity in any column"
    else:
        seconds = lvid.size * resolution.time_res_s
        why = (
            f"fewer than two end-diastoles in its {seconds:.3g} s, the cavity seen in "
            f"{100 * seen.mean():.0f} % of its columns"
        )
    time_source = resolution_source(
        name, resolution.time_res_assumed, "--time-res", given_time_res_s
    )
    depth_source = resolution_source(
        name, resolution.depth_res_assumed, "--depth-res", given_depth_res_mm
    )
    return (
        f"no complete heart beat was found ({why}); check that it is an M-mode recording "
        f"through the LV and its resolution ({resolution.time_res_s:g} s per column, "
        f"{time_source}; {resolution.depth_res_mm:g} mm per row, {depth_source})"
    )


def recording_problem(name: str, judged: list[BeatQuality]) -> str | None:
    """Why a recording whose beats were all rejected has no result; None when one passed."""
    if not judged or any(j.accepted for j in judged):
        return None
    reasons = sorted({word for j in judged for word in j.reasons.split(";")})
    return (
        f"{name}: no beat passed the quality checks (reasons: {', '.join(reasons)}); "
        "check the recording or the model."
    )


def assumed_resolution(name: str, resolution: Resolution) -> str | None:
    """The warning for a resolution neither a flag nor a sidecar gave; None when both were."""
    assumed = []
    if resolution.time_res_assumed:
        assumed.append(f"{resolution.time_res_s} s per column (--time-res)")
    if resolution.depth_res_assumed:
        assumed.append(f"{resolution.depth_res_mm} mm per row (--depth-res)")
    if not assumed:
        return None
    return (
        f"{name}: no resolution given by flag or {name}.json sidecar; ASSUMING "
        f"{' and '.join(assumed)}. Millimetres, volumes and heart rates are only as right "
        "as this guess."
    )
