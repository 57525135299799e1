"""The scanner's conventions: resolutions, the resolution sidecar, the Teichholz volume,
the LV mass.

A recording REC.png may have a sidecar REC.json beside it holding its resolutions,
`{"time_res_s": ..., "depth_res_mm": ...}` (dicom_to_png and the synthetic generator
write one; other keys are allowed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A mouse M-mode sweep of a common scanner: used only when nothing else says.
TYPICAL_TIME_RES_S = 0.00083  # seconds per column
TYPICAL_DEPTH_RES_MM = 0.02  # millimetres per row
SIDECAR_KEYS = ("time_res_s", "depth_res_mm")
# The coarsest plausible resolution of each, and its unit: beyond it is a unit mistake.
RESOLUTION_LIMITS = {"time_res_s": (0.1, "s per column"), "depth_res_mm": (1.0, "mm per row")}
# Labs check EF against their scanner first, so its volume convention is the default.
VOLUME_FORMULAS = ("scanner", "clinical")
DEFAULT_VOLUME_FORMULA = "scanner"


def teichholz_volume_ul(d_mm: np.ndarray | float, formula: str) -> np.ndarray | float:
    """LV volume in uL by Teichholz, V = 7 / (2.4 + D) * D^3, from the diameter in mm.

    "scanner" (Vevo LAB, mouse): D in mm gives uL. "clinical": D in cm gives mL, so a
    mouse heart reads about twice the scanner's volume and its EF 3 points higher.
    """
    if formula not in VOLUME_FORMULAS:
        raise ValueError(
            f"unknown volume formula {formula!r}; use one of {', '.join(VOLUME_FORMULAS)}."
        )
    d_mm = np.asarray(d_mm, dtype=np.float64)
    if formula == "scanner":
        return 7.0 / (2.4 + d_mm) * d_mm**3
    d_cm = d_mm / 10.0
    return 1000.0 * 7.0 / (2.4 + d_cm) * d_cm**3


# The myocardium's density in mg/uL (g/mL), and the factor by which the cube formula
# overestimates the mass (Devereux's correction, which mouse scanners apply as "corrected").
MYOCARDIUM_MG_PER_UL = 1.053
LV_MASS_CORRECTION = 0.8


def lv_mass_mg(
    lvid_d_mm: np.ndarray | float, ivs_d_mm: np.ndarray | float, lvpw_d_mm: np.ndarray | float
) -> np.ndarray | float:
    """LV mass as mouse scanners compute it (Vevo LAB, M-mode): all three at end-diastole
    in mm, 1.053 x ((LVIDd + LVPWd + IVSd)^3 - LVIDd^3), the shell between two cubes, in mg."""
    outer_mm = lvid_d_mm + ivs_d_mm + lvpw_d_mm
    return MYOCARDIUM_MG_PER_UL * (outer_mm**3 - lvid_d_mm**3)


def lv_mass_corrected_mg(lvid_d_mm: float, ivs_d_mm: float, lvpw_d_mm: float) -> float:
    """LV mass x 0.8, the scanner's "LV Mass Corrected"."""
    return LV_MASS_CORRECTION * lv_mass_mg(lvid_d_mm, ivs_d_mm, lvpw_d_mm)


@dataclass(frozen=True)
class Resolution:
    time_res_s: float
    depth_res_mm: float
    time_res_assumed: bool
    depth_res_assumed: bool


def sidecar_path(image_path: Path) -> Path:
    return Path(image_path).with_suffix(".json")


def sidecar_text(time_res_s: float | None, depth_res_mm: float | None, **extra: object) -> str:
    """The sidecar's JSON: the two resolutions (null when unknown), then `extra` keys."""
    content = {"time_res_s": time_res_s, "depth_res_mm": depth_res_mm, **extra}
    return json.dumps(content, indent=2) + "\n"


def is_sidecar(path: Path) -> bool:
    """True for a JSON file holding resolutions (and not a LabelMe annotation)."""
    if Path(path).suffix.lower() != ".json":
        return False
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(content, dict) or "shapes" in content:
        return False
    return any(key in content for key in SIDECAR_KEYS)


def read_sidecar(image_path: Path) -> dict[str, float | None] | None:
    """time_res_s and depth_res_mm from the NAME.json next to NAME.png, or None if none.

    A missing or null value is None. Raises ValueError, naming the file, for a sidecar
    that cannot be read or holds a value that is not a positive number.
    """
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON sidecar ({err}).") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object with time_res_s and depth_res_mm.")
    values = {}
    for key in SIDECAR_KEYS:
        value = data.get(key)
        problem = resolution_problem(key, value)
        if problem:
            raise ValueError(f"{path}: {key} {problem}, got {value!r}.")
        values[key] = None if value is None else float(value)
    return values


def resolution_problem(key: str, value: object) -> str | None:
    """Why `value` cannot be the resolution `key` (one of SIDECAR_KEYS), or None if it can
    (None, meaning not given, can)."""
    limit, unit = RESOLUTION_LIMITS[key]
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and 0 < value <= limit)
    ):
        return f"must be a number above 0 and at most {limit:g} {unit}"
    return None


def resolve_resolution(
    sidecar: dict | None, time_res_s: float | None, depth_res_mm: float | None
) -> Resolution:
    """Flags win over the sidecar; a value that neither gives is assumed (and says so)."""
    sidecar = sidecar or {}
    time_res_s = time_res_s if time_res_s is not None else sidecar.get("time_res_s")
    depth_res_mm = depth_res_mm if depth_res_mm is not None else sidecar.get("depth_res_mm")
    return Resolution(
        time_res_s=TYPICAL_TIME_RES_S if time_res_s is None else time_res_s,
        depth_res_mm=TYPICAL_DEPTH_RES_MM if depth_res_mm is None else depth_res_mm,
        time_res_assumed=time_res_s is None,
        depth_res_assumed=depth_res_mm is None,
    )
