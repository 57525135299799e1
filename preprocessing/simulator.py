"""Simulate M-mode echocardiograms of a mouse left ventricle whose true borders are known.

Each recording draws its own heart (size, fractional shortening, heart rate, wall
thickness, breathing) and its own scanner settings (gain, contrast, attenuation, noise).
The heart is a stack of tissue layers whose borders move with the beat; speckle is drawn
in tissue coordinates and moves with the tissue, so it forms streaks along time as in a
real M-mode image. Rows are depth (down), columns are time. The artefacts of real
recordings (chordae, dropouts, noise bursts, probe motion, irregular beats) are drawn from a
separate random stream (preprocessing/artefacts.py), so that a recording without them is the
same recording, byte for byte, as the one with them, less the artefacts. The command line
that writes recordings, annotations and truth is preprocessing/synthetic.py.

Two looks: "classic", bright walls on a dark cavity at one sweep speed and depth resolution,
and "scanner", drawn to cover what real scanners show (measured on a real Vevo recording,
bench/real_look.py): dark, low-contrast images in which the walls are dim speckle barely
brighter than blood, a thick bright pericardium with bright bands below it, a bright chest
wall line, an RV cavity from dark to tissue-grey, and per recording a sweep speed and depth
resolution of their own; gain, dynamic range, gamma, contrast, speckle grain and blur vary
widely, so that real recordings lie inside the range the network is trained on.

Row convention: row r covers depths r - 0.5 to r + 0.5 px, so a trace at y = 10.0 lies
exactly on the centre of row 10. Column x is the time x * time_res_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mmode.scanner import (
    DEFAULT_VOLUME_FORMULA,
    TYPICAL_TIME_RES_S,
    lv_mass_mg,
    teichholz_volume_ul,
)
from preprocessing import artefacts, heldout
from preprocessing.speckle import rayleigh_field
from runtime.errors import SetupError

# The simulated sweep: the typical scanner's time resolution, and a depth resolution a
# little coarser than its 0.02 mm, so that a 384-row image holds the whole 9.6 mm heart
# and the quickstart's demo cuts 23 training windows from 4 recordings.
DEFAULT_HEIGHT = 384
DEFAULT_WIDTH = 1440  # 1.2 s
DEFAULT_DEPTH_RES_MM = 0.025

# Deepest heart the drawn ranges can make (7.9 mm in 3000 draws), with margin; a test
# checks it. Shallower images cannot hold chest wall, RV, LV, walls and pericardium.
MIN_DEPTH_MM = 8.5
# An end-diastole needs a few columns on both sides to show as a local maximum.
EDGE_MARGIN_COLS = 4

LOOKS = ("classic", "scanner")
# The scanner look's sweeps: the span of real scanners' sweep speeds and depth
# resolutions, drawn log-uniformly, and recordings of 1.2 s.
SCANNER_TIME_RES_S = (0.0005, 0.002)
SCANNER_DEPTH_RES_MM = (0.01, 0.05)
SCANNER_DURATION_S = 1.2
# Depth below the deepest heart border, so that tissue below the pericardium shows.
SCANNER_SLACK_MM = (0.8, 2.5)


@dataclass(frozen=True)
class Heart:
    """One mouse: sizes in mm, rates per minute or second, shares as fractions."""

    lvid_d_mm: float
    lvid_s_mm: float
    heart_rate_bpm: float
    systole_fraction: float  # of each cycle, ED to ES
    septum_share: float  # of the LVID change carried by the septum; the rest is posterior wall
    septum_mm: float  # diastolic thickness
    septum_thickening: float  # systolic gain in thickness, as a fraction
    posterior_mm: float
    posterior_thickening: float
    rv_cavity_mm: float
    rv_wall_mm: float
    pericardium_mm: float
    breath_hz: float
    breath_mm: float  # peak-to-peak shift of all heart structures
    breath_phase: float  # cycles
    # 0: smooth at end-systole (the classic look); up to 1: a cusp there, as fast hearts
    # show it, the walls turning at full speed from ejection to rapid filling.
    cusp: float = 0.0


@dataclass(frozen=True)
class Beats:
    """Beat k runs from ed_s[k] to ed_s[k + 1]; its systole ends at es_s[k]."""

    ed_s: np.ndarray
    lvid_d_mm: np.ndarray
    es_s: np.ndarray
    lvid_s_mm: np.ndarray


@dataclass(frozen=True)
class Scanner:
    """Imaging settings of one recording; echo levels in dB, 0 dB is full white."""

    dynamic_range_db: float
    gain_db: float
    attenuation_db_per_mm: float
    noise_db: float
    axial_blur_mm: float
    gamma: float
    blood_db: float
    muscle_db: float
    chest_db: float
    below_db: float
    gap_db: float  # loose tissue and fluid between chest wall and RV
    rv_cavity_db: float
    pericardium_db: float
    lateral_blur_cols: float
    grain_mm: float  # speckle grain along depth
    tissue_persist_s: float  # how long tissue speckle lasts along time
    bands_db: float  # fibre bundles and fascia within each layer
    lines_db: tuple[float, ...] = ()  # bright specular lines: chest wall, then below the heart
    # Independent looks averaged in blood's speckle and the receiver's noise (compounding,
    # persistence): more looks, a smoother cavity of the same grain.
    looks: int = 1
    # Cyclic variation of the myocardium's echo: the septum's and the posterior wall's
    # contrast over blood change by this share from end-diastole to end-systole.
    septum_systolic_share: float = 0.0
    posterior_systolic_share: float = 0.0
    endocardium_db: float = 0.0  # the endocardial echo's peak over the wall
    endocardium_mm: float = 0.03  # its thickness (Gaussian sigma)
    # Where in the wall that change lies: 0, across the whole wall; 1, only in the layer
    # the wall has gained since end-diastole, fading from its LV side outward.
    systolic_layer: float = 0.0


@dataclass(frozen=True)
class Recording:
    image: np.ndarray  # uint8 (rows, columns)
    upper_px: np.ndarray  # septum inner edge, one row value per column
    lower_px: np.ndarray  # posterior wall inner edge
    truth: dict
    annotated_cols: tuple[int, int]  # first and last column a lab would trace
    ivs_top_px: np.ndarray  # septum outer (RV) edge
    lvpw_bottom_px: np.ndarray  # posterior wall outer (epicardial) edge


# ---------------------------------------------------------------- physiology


def draw_heart(rng: np.random.Generator, look: str = "classic") -> Heart:
    """Draw a conscious mouse heart well inside the physiological ranges; the scanner look
    covers them whole (LVIDd 2.5-4.0 mm, 450-800 bpm) and thicker pericardia."""
    if look == "scanner":
        return draw_scanner_heart(rng)
    lvid_d_mm = rng.uniform(2.6, 3.7)
    # Keep LVIDs inside 1.0-2.4 mm and FS inside 28-60 %.
    fs = rng.uniform(max(0.28, 1 - 2.4 / lvid_d_mm), min(0.60, 1 - 1.0 / lvid_d_mm))
    return Heart(
        lvid_d_mm=lvid_d_mm,
        lvid_s_mm=lvid_d_mm * (1 - fs),
        heart_rate_bpm=rng.uniform(570, 760),
        systole_fraction=rng.uniform(0.36, 0.44),
        septum_share=rng.uniform(0.30, 0.42),
        septum_mm=rng.uniform(0.8, 1.1),
        septum_thickening=rng.uniform(0.30, 0.50),
        posterior_mm=rng.uniform(0.8, 1.1),
        posterior_thickening=rng.uniform(0.40, 0.70),
        rv_cavity_mm=rng.uniform(0.4, 0.8),
        rv_wall_mm=rng.uniform(0.2, 0.3),
        pericardium_mm=rng.uniform(0.12, 0.20),
        breath_hz=rng.uniform(1.5, 3.0),
        breath_mm=rng.uniform(0.1, 0.3),
        breath_phase=rng.uniform(0, 1),
    )


def draw_scanner_heart(rng: np.random.Generator) -> Heart:
    lvid_d_mm = rng.uniform(2.5, 4.0)
    # FS up to 72 %: the real recording's beats shorten by 68 % (reference, median).
    fs = rng.uniform(max(0.25, 1 - 2.8 / lvid_d_mm), min(0.72, 1 - 0.7 / lvid_d_mm))
    return Heart(
        lvid_d_mm=lvid_d_mm,
        lvid_s_mm=lvid_d_mm * (1 - fs),
        heart_rate_bpm=rng.uniform(450, 800),
        systole_fraction=rng.uniform(0.34, 0.48),
        septum_share=rng.uniform(0.28, 0.55),
        septum_mm=rng.uniform(0.6, 1.2),
        septum_thickening=rng.uniform(0.25, 0.60),
        posterior_mm=rng.uniform(0.6, 1.3),
        posterior_thickening=rng.uniform(0.30, 0.80),
        rv_cavity_mm=rng.uniform(0.2, 0.9),
        rv_wall_mm=rng.uniform(0.15, 0.35),
        pericardium_mm=rng.uniform(0.15, 0.8),
        breath_hz=rng.uniform(1.5, 3.0),
        breath_mm=rng.uniform(0.05, 0.4),
        breath_phase=rng.uniform(0, 1),
        cusp=rng.uniform(0, 1),
    )


def draw_beats(heart: Heart, duration_s: float, rng: np.random.Generator) -> Beats:
    """Beats covering [0, duration_s] and one more on each side; each varies by a few %."""
    rr_s = 60.0 / heart.heart_rate_bpm
    n = int(np.ceil(duration_s / (rr_s * 0.9))) + 3
    rr_each_s = rr_s * (1 + np.clip(rng.normal(0, 0.03, n), -0.08, 0.08))
    ed_s = -rng.uniform(0.5, 1.5) * rr_s + np.concatenate([[0.0], np.cumsum(rr_each_s)])
    lvid_d_mm = heart.lvid_d_mm * (1 + np.clip(rng.normal(0, 0.02, n + 1), -0.05, 0.05))
    lvid_s_mm = heart.lvid_s_mm * (1 + np.clip(rng.normal(0, 0.03, n), -0.08, 0.08))
    systole_s = heart.systole_fraction * rr_each_s * (1 + rng.uniform(-0.05, 0.05, n))
    return Beats(
        ed_s=ed_s,
        lvid_d_mm=np.clip(lvid_d_mm, 2.5, max(3.8, heart.lvid_d_mm)),
        es_s=ed_s[:-1] + systole_s,
        lvid_s_mm=np.clip(lvid_s_mm, min(0.9, heart.lvid_s_mm), max(2.5, heart.lvid_s_mm)),
    )


def irregular_beats(
    beats: Beats, rates: artefacts.Rates, rng: np.random.Generator
) -> tuple[Beats, list[list[str]]]:
    """Occasional premature and dropped beats; and per beat, "premature" or "pause".

    A premature ED comes after 62-78 % of the RR, less filled; the compensatory pause after
    it keeps the later beats in time. A dropped beat loses its ED, so the beat before it
    lasts two RRs. The first and last EDs stay, so the beats still cover the recording.
    """
    ed_s, d_mm = list(beats.ed_s), list(beats.lvid_d_mm)
    es_s, s_mm = list(beats.es_s), list(beats.lvid_s_mm)
    words: list[list[str]] = [[] for _ in es_s]
    k = 0
    while k < len(es_s) - 1:
        roll = rng.random()
        if roll < rates.pause_per_beat:
            for values in (ed_s, d_mm, es_s, s_mm, words):
                del values[k + 1]
            words[k].append("pause")
        elif roll < rates.pause_per_beat + rates.premature_per_beat:
            systole_s = es_s[k + 1] - ed_s[k + 1]
            ed_s[k + 1] = ed_s[k] + (ed_s[k + 1] - ed_s[k]) * rng.uniform(0.62, 0.78)
            es_s[k + 1] = ed_s[k + 1] + systole_s
            d_mm[k + 1] = s_mm[k] + (d_mm[k + 1] - s_mm[k]) * rng.uniform(0.7, 0.9)
            s_mm[k + 1] = min(s_mm[k + 1], d_mm[k + 1] - 0.3)
            words[k].append("premature")
            words[k + 1].append("premature")
            k += 1
        k += 1
    irregular = Beats(np.array(ed_s), np.array(d_mm), np.array(es_s), np.array(s_mm))
    return irregular, words


def _ease(u: np.ndarray) -> np.ndarray:
    """0 to 1 with zero slope at both ends, so the curve is smooth at ED and ES."""
    u = np.clip(u, 0.0, 1.0)
    return (1 - np.cos(np.pi * u)) / 2


def _filling(v: np.ndarray) -> np.ndarray:
    """Diastolic filling, 0 to 1: rapid early filling, slow rise, atrial kick.

    Strictly rising, so each beat has a single maximum, at end-diastole.
    """
    return 0.75 * _ease(v / 0.55) + 0.10 * _ease(v) + 0.15 * _ease((v - 0.55) / 0.45)


def _sharp_emptying(u: np.ndarray) -> np.ndarray:
    """0 to 1, smooth at ED and fastest at ES."""
    return np.clip(u, 0.0, 1.0) ** 2


def _sharp_filling(v: np.ndarray) -> np.ndarray:
    """Like _filling, but fastest at ES, where _sharp_emptying ends."""
    early = 1 - (1 - np.clip(v / 0.55, 0.0, 1.0)) ** 2
    return 0.75 * early + 0.10 * _ease(v) + 0.15 * _ease((v - 0.55) / 0.45)


def lvid_curve_mm(
    beats: Beats, time_s: np.ndarray, cusp: float = 0.0, shape: heldout.BeatShape | None = None
) -> np.ndarray:
    """True LV inner diameter at each time: falls from ED to ES, refills to the next ED;
    cusp (Heart.cusp) mixes in a sharp turn at ES. A held-out shape (preprocessing/
    heldout.py) replaces the fall and the refilling with its own."""
    k = np.searchsorted(beats.ed_s, time_s, side="right") - 1
    ed, next_ed, es = beats.ed_s[k], beats.ed_s[k + 1], beats.es_s[k]
    d_mm, next_d_mm, s_mm = beats.lvid_d_mm[k], beats.lvid_d_mm[k + 1], beats.lvid_s_mm[k]
    u, v = (time_s - ed) / (es - ed), (time_s - es) / (next_ed - es)
    if shape is None:
        emptied = (1 - cusp) * _ease(u) + cusp * _sharp_emptying(u)
        filled = (1 - cusp) * _filling(v) + cusp * _sharp_filling(v)
    else:
        emptied, filled = heldout.emptied(u, shape), heldout.filled(v, shape, next_ed - es)
    emptying = d_mm - (d_mm - s_mm) * emptied
    refilling = s_mm + (next_d_mm - s_mm) * filled
    return np.where(time_s < es, emptying, refilling)


def breathing_mm(heart: Heart, time_s: np.ndarray) -> np.ndarray:
    """Slow shift of the heart: a peaked bump per breath, as mice inhale quickly."""
    phase = 2 * np.pi * (heart.breath_hz * time_s + heart.breath_phase)
    return heart.breath_mm * ((1 - np.cos(phase)) / 2) ** 2


# ---------------------------------------------------------------- geometry


def _wall_borders_mm(heart: Heart, lvid_mm: np.ndarray, drift_mm: np.ndarray) -> np.ndarray:
    """Borders from RV free wall to pericardium, relative to the LV centre, (7, columns).

    Rows: RV wall top, RV cavity top, septum top, LV top (upper trace), LV bottom (lower
    trace), posterior wall bottom, pericardium bottom.
    """
    # How far into systole each column is: 0 at a typical ED, 1 at a typical ES.
    squeeze = (heart.lvid_d_mm - lvid_mm) / (heart.lvid_d_mm - heart.lvid_s_mm)
    upper = drift_mm - heart.septum_share * lvid_mm
    lower = upper + lvid_mm
    septum_top = upper - heart.septum_mm * (1 + heart.septum_thickening * squeeze)
    rv_top = septum_top - heart.rv_cavity_mm * (1 - 0.35 * squeeze)
    rv_wall_top = rv_top - heart.rv_wall_mm
    posterior_bottom = lower + heart.posterior_mm * (1 + heart.posterior_thickening * squeeze)
    pericardium_bottom = posterior_bottom + heart.pericardium_mm
    return np.stack(
        [rv_wall_top, rv_top, septum_top, upper, lower, posterior_bottom, pericardium_bottom]
    )


# Above the RV: a static chest wall, and between them a thin gap that takes up the motion.
CHEST_MIN_MM = 0.25
GAP_MM = 0.08
BELOW_MIN_MM = 0.4
CHEST_BREATH_SHARE = 0.3


def required_depth_mm(heart: Heart, lvid_mm: np.ndarray, drift_mm: np.ndarray) -> float:
    """Image depth needed to show this heart with the minimum chest wall and tissue below."""
    borders = _wall_borders_mm(heart, lvid_mm, drift_mm)
    chest_end = borders[0] - CHEST_BREATH_SHARE * drift_mm
    span_mm = borders[-1].max() - (chest_end.min() - GAP_MM)
    return CHEST_MIN_MM + span_mm + BELOW_MIN_MM


def layer_borders_px(
    heart: Heart,
    lvid_mm: np.ndarray,
    drift_mm: np.ndarray,
    depth_res_mm: float,
    height: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """All layer borders in rows, (10, columns), from the image top to its bottom.

    Layers between them: chest wall, gap, RV wall, RV cavity, septum, LV cavity,
    posterior wall, pericardium, tissue below. The heart sits at a random depth.
    """
    heart_mm = _wall_borders_mm(heart, lvid_mm, drift_mm)
    # The chest wall moves only a little with breathing; it stays clear of the RV wall.
    chest_offset_mm = np.min(heart_mm[0] - CHEST_BREATH_SHARE * drift_mm) - GAP_MM
    chest_end_mm = chest_offset_mm + CHEST_BREATH_SHARE * drift_mm
    depth_mm = height * depth_res_mm
    slack_mm = depth_mm - required_depth_mm(heart, lvid_mm, drift_mm)
    if slack_mm < 0:
        raise SetupError(
            f"the image is {depth_mm:.2f} mm deep but this heart needs "
            f"{depth_mm - slack_mm:.2f} mm; raise --height or --depth-res."
        )
    centre_mm = CHEST_MIN_MM - chest_end_mm.min() + rng.uniform(0.15, 0.85) * slack_mm
    inner_px = (np.vstack([chest_end_mm, heart_mm]) + centre_mm) / depth_res_mm - 0.5
    columns = lvid_mm.size
    top = np.full((1, columns), -0.5)
    bottom = np.full((1, columns), height - 0.5)
    return np.vstack([top, inner_px, bottom])


SEPTUM_TOP_BORDER = 4  # index in layer_borders_px of the septum's outer edge
UPPER_BORDER = 5  # of the septum's inner edge
LOWER_BORDER = 6  # of the posterior wall's inner edge
POSTERIOR_BOTTOM_BORDER = 7  # and of the posterior wall's outer edge
BLOOD_LAYERS = (1, 3, 5)  # gap, RV cavity, LV cavity: dark, fast-changing speckle
SEPTUM_LAYER, POSTERIOR_LAYER = 4, 6  # between borders 4-5 and 6-7


# ---------------------------------------------------------------- image


def draw_scanner(rng: np.random.Generator, look: str = "classic") -> Scanner:
    """Gain, contrast, attenuation and noise differ from one recording to the next."""
    if look == "scanner":
        return draw_scanner_look(rng)
    dynamic_range_db = rng.uniform(45, 55)
    gain_db = rng.uniform(-3, 3)
    attenuation_db_per_mm = rng.uniform(0.5, 1.5)  # what the depth gain leaves over
    noise_db = rng.uniform(-58, -50)
    axial_blur_mm = rng.uniform(0.015, 0.025)
    gamma = rng.uniform(0.85, 1.2)
    blood_db = rng.uniform(-44, -38)
    return Scanner(
        dynamic_range_db=dynamic_range_db,
        gain_db=gain_db,
        attenuation_db_per_mm=attenuation_db_per_mm,
        noise_db=noise_db,
        axial_blur_mm=axial_blur_mm,
        gamma=gamma,
        blood_db=blood_db,
        muscle_db=rng.uniform(-20, -15),
        chest_db=rng.uniform(-16, -10),
        below_db=rng.uniform(-22, -15),
        gap_db=blood_db + 8,
        rv_cavity_db=blood_db,
        pericardium_db=3.0,  # the brightest reflector, often saturated
        lateral_blur_cols=0.6,
        grain_mm=0.012,
        tissue_persist_s=0.006,
        bands_db=3.0,
    )


def draw_scanner_look(rng: np.random.Generator) -> Scanner:
    """The scanner look, measured on a real recording and widened around it.

    In the real one (8-bit grey) blood is about 15, septum and posterior wall 25-35 and the
    pericardium 100-200: blood sits near the display's floor, the walls only a few dB above
    it. So the display is drawn by where blood lands (2-22 % of white) and the walls by
    their contrast over blood, 2.3 dB (1.3x, barely visible) to 16 dB (strong).
    """
    dynamic_range_db = rng.uniform(30, 60)
    blood_db = -45.0
    blood_share = rng.uniform(0.02, 0.22)
    contrast_db = np.exp(rng.uniform(np.log(2.3), np.log(16)))
    muscle_db = blood_db + contrast_db
    pericardium_db = max(
        muscle_db + 3, blood_db + (rng.uniform(0.45, 1.05) - blood_share) * dynamic_range_db
    )
    return Scanner(
        dynamic_range_db=dynamic_range_db,
        gain_db=(blood_share - 1) * dynamic_range_db - blood_db,
        attenuation_db_per_mm=rng.uniform(0.0, 1.0),
        noise_db=blood_db - rng.uniform(0, 10),
        axial_blur_mm=rng.uniform(0.01, 0.06),
        gamma=rng.uniform(0.7, 1.5),
        blood_db=blood_db,
        muscle_db=muscle_db,
        chest_db=muscle_db + rng.uniform(0, 0.6) * (pericardium_db - muscle_db),
        below_db=muscle_db + rng.uniform(-2, 6),
        gap_db=blood_db + rng.uniform(0, 8),
        rv_cavity_db=blood_db + rng.uniform(0, 1) * contrast_db,
        pericardium_db=pericardium_db,
        lateral_blur_cols=rng.uniform(0.3, 1.5),
        grain_mm=rng.uniform(0.008, 0.05),
        # The real recording's tissue speckle: grains of 3-6 columns at 0.0014 s per column
        # and 2-4 rows at 0.0415 mm per row, and only faint layering within the walls.
        tissue_persist_s=rng.uniform(0.0015, 0.008),
        bands_db=rng.uniform(0, 1.5),
        lines_db=tuple(rng.uniform(5, 15, int(rng.integers(2, 4)))),
        looks=int(rng.integers(1, 17)),
        # The real recording: its septum 0.3 less bright over blood in systole (in places
        # as dark as blood), its posterior wall 0.5 brighter.
        septum_systolic_share=rng.uniform(-0.9, 0.6),
        posterior_systolic_share=rng.uniform(-0.6, 0.9),
        endocardium_db=rng.uniform(0, 9),
        endocardium_mm=rng.uniform(0.02, 0.06),
        # The real septum's systolic dark pocket lies under its diastolic extent, which
        # stays as bright as in diastole: the layer it gained.
        systolic_layer=rng.uniform(0, 1),
    )


def layer_levels_db(scanner: Scanner) -> np.ndarray:
    """Mean echo level of each of the nine layers, top to bottom."""
    return np.array(
        [
            scanner.chest_db,
            scanner.gap_db,
            scanner.muscle_db + 3,  # RV wall
            scanner.rv_cavity_db,
            scanner.muscle_db,
            scanner.blood_db,
            scanner.muscle_db,
            scanner.pericardium_db,
            scanner.below_db,
        ]
    )


def bright_lines_db(
    rest_px: np.ndarray, scanner: Scanner, depth_res_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Extra dB per rest row for the scanner's bright specular lines: the first near the
    chest wall's lower side, the others 0.2-2.5 mm below the pericardium (the bands a real
    recording shows there). rest_px: the layers' mean borders, as tissue_rows uses them."""
    rows = np.arange(int(round(rest_px[-1] + 0.5)), dtype=float)
    extra = np.zeros_like(rows)
    for k, gain_db in enumerate(scanner.lines_db):
        if k == 0:
            centre = rest_px[1] - rng.uniform(0.05, 0.4) / depth_res_mm
        else:
            centre = rest_px[8] + rng.uniform(0.2, 2.5) / depth_res_mm
        width = max(rng.uniform(0.03, 0.2) / depth_res_mm, 0.7)
        extra += gain_db * np.exp(-0.5 * ((rows - centre) / width) ** 2)
    return extra


def _sample_rows(field: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """field[rows, column] for fractional rows, linear between rows, edges clamped."""
    rows = np.clip(rows, 0, field.shape[0] - 1)
    below = np.minimum(rows.astype(np.intp), field.shape[0] - 2)
    frac = rows - below
    top = np.take_along_axis(field, below, axis=0)
    bottom = np.take_along_axis(field, below + 1, axis=0)
    return top + frac * (bottom - top)


def tissue_rows(borders_px: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Where each pixel's tissue sits at rest: the layers stretched to their mean borders.

    Speckle sampled at these coordinates moves and thickens with the tissue.
    """
    layer = np.sum(rows[None] >= borders_px[1:-1, None], axis=0)
    rest_px = np.broadcast_to(borders_px.mean(axis=1, keepdims=True), borders_px.shape)
    start, end = (np.take_along_axis(borders_px, i, axis=0) for i in (layer, layer + 1))
    rest_start, rest_end = (np.take_along_axis(rest_px, i, axis=0) for i in (layer, layer + 1))
    return rest_start + (rows - start) / (end - start) * (rest_end - rest_start)


def echo_amplitude(
    borders_px: np.ndarray,
    scanner: Scanner,
    depth_res_mm: float,
    time_res_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Linear echo amplitude before blur, noise and log compression, (rows, columns).

    Pixels cut by a border mix both layers by the share of the pixel each covers, so a
    border's sub-pixel position shows in the image.
    """
    columns = borders_px.shape[1]
    height = int(round(borders_px[-1, 0] + 0.5))  # the last border is the image's lower edge
    rows = np.broadcast_to(np.arange(height, dtype=float)[:, None], (height, columns))
    at_rest = tissue_rows(borders_px, rows)
    # Tissue speckle moves with the tissue and persists for ~6 ms. Blood swirls instead of
    # moving with the walls: its speckle stays in image rows and changes within ~2 ms.
    grain_rows = scanner.grain_mm / depth_res_mm
    tissue = rayleigh_field(
        rng, (height, columns), grain_rows, scanner.tissue_persist_s / time_res_s
    )
    blood = rayleigh_field(rng, (height, columns), grain_rows, 0.002 / time_res_s, scanner.looks)
    # Muscle fibre bundles and fascia: brighter and darker bands within each layer.
    bands_db = gaussian_filter1d(rng.standard_normal(height), 0.05 / depth_res_mm)
    bands_db *= scanner.bands_db / max(bands_db.std(), 1e-9)
    if scanner.lines_db:
        bands_db += bright_lines_db(borders_px.mean(axis=1), scanner, depth_res_mm, rng)
    bands_gain = 10 ** (np.interp(at_rest, np.arange(height), bands_db) / 20)
    tissue = _sample_rows(tissue, at_rest) * bands_gain
    levels = list(10 ** (layer_levels_db(scanner) / 20))
    levels[SEPTUM_LAYER], levels[POSTERIOR_LAYER] = wall_levels(
        borders_px, rows, scanner, depth_res_mm
    )
    amplitude = np.zeros((height, columns))
    for layer, level in enumerate(levels):
        start, end = borders_px[layer], borders_px[layer + 1]
        share = np.clip(np.minimum(rows + 0.5, end) - np.maximum(rows - 0.5, start), 0, 1)
        speckle = blood if layer in BLOOD_LAYERS else tissue
        amplitude += share * level * speckle
    return amplitude


def wall_levels(
    borders_px: np.ndarray, rows: np.ndarray, scanner: Scanner, depth_res_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """The septum's and the posterior wall's echo level per pixel, (rows, columns) each.

    Each wall's contrast over blood changes by its systolic share from end-diastole to
    end-systole, across the wall or in the layer it gained since end-diastole
    (scanner.systolic_layer), and a thin endocardial echo lines its LV side: a real
    septum's systolic dip is often only that faint line under a pocket of septum as dark as
    blood, below the part of it that was there in diastole.
    """
    lvid_px = borders_px[LOWER_BORDER] - borders_px[UPPER_BORDER]
    contraction = (lvid_px.max() - lvid_px) / max(np.ptp(lvid_px), 1e-9)  # 0 at ED, 1 at ES
    contrast_db = scanner.muscle_db - scanner.blood_db
    width_px = max(scanner.endocardium_mm / depth_res_mm, 0.3)
    found = []
    for share, layer, into_wall_px in (
        (scanner.septum_systolic_share, SEPTUM_LAYER, borders_px[UPPER_BORDER] - rows),
        (scanner.posterior_systolic_share, POSTERIOR_LAYER, rows - borders_px[LOWER_BORDER]),
    ):
        thickness_px = borders_px[layer + 1] - borders_px[layer]
        gained_px = np.maximum(thickness_px - thickness_px.min(), 1.0)  # 0 at end-diastole
        in_gained = np.clip(1 - into_wall_px / gained_px, 0, 1)
        where = 1 - scanner.systolic_layer * (1 - in_gained)
        wall_db = scanner.muscle_db + contrast_db * share * contraction * where
        line_db = scanner.endocardium_db * np.exp(-0.5 * (into_wall_px / width_px) ** 2)
        found.append(10 ** ((wall_db + line_db) / 20))
    return found[0], found[1]


def log_compress(
    amplitude: np.ndarray,
    scanner: Scanner,
    depth_res_mm: float,
    rng: np.random.Generator,
    burst_noise: np.ndarray | None = None,
) -> np.ndarray:
    """Blur by the beam, attenuate with depth, add receiver noise, log-compress to uint8.

    burst_noise: interference, added to the receiver's noise after the depth attenuation.
    """
    amplitude = gaussian_filter1d(amplitude, scanner.axial_blur_mm / depth_res_mm, axis=0)
    amplitude = gaussian_filter1d(amplitude, scanner.lateral_blur_cols, axis=1)
    depth_mm = (np.arange(amplitude.shape[0]) + 0.5)[:, None] * depth_res_mm
    amplitude *= 10 ** (-scanner.attenuation_db_per_mm * depth_mm / 20)
    noise = rayleigh_field(rng, amplitude.shape, 0.7, 0.7, scanner.looks)
    noise *= 10 ** (scanner.noise_db / 20)
    if burst_noise is not None:
        noise = np.hypot(noise, burst_noise)
    level_db = 20 * np.log10(np.hypot(amplitude, noise)) + scanner.gain_db
    brightness = np.clip(1 + level_db / scanner.dynamic_range_db, 0, 1) ** scanner.gamma
    return np.round(255 * brightness).astype(np.uint8)


# ---------------------------------------------------------------- truth


def beat_truth(
    beats: Beats,
    columns: int,
    time_res_s: float,
    depth_res_mm: float,
    beat_artefacts: list[list[str]],
    heart: Heart,
) -> dict:
    """Per-beat and median measurements over the complete beats inside the recording.

    beat_artefacts names each beat's artefacts (aligned with beats.es_s). Per beat the
    truth adds its end (the next ED), its artefacts and whether they corrupt it (the rule
    is in preprocessing/artefacts.py); the clean_ medians and n_beats_clean leave out the
    corrupted beats (None for a median of no beat). The walls (IVS, LVPW) are measured
    like LVID, at the beat's ED and ES, and give its LV mass (wall_truth).
    """
    first_s = EDGE_MARGIN_COLS * time_res_s
    last_s = (columns - 1 - EDGE_MARGIN_COLS) * time_res_s
    complete = (beats.ed_s[:-1] >= first_s) & (beats.ed_s[1:] <= last_s)
    ed_s = beats.ed_s[:-1][complete]
    rr_s = np.diff(beats.ed_s)[complete]
    d_mm = beats.lvid_d_mm[:-1][complete]
    s_mm = beats.lvid_s_mm[complete]
    es_s = beats.es_s[complete]
    words = [beat_artefacts[k] for k in np.flatnonzero(complete)]
    corrupted = np.array([artefacts.corrupts(w) for w in words], dtype=bool)
    clean = ~corrupted
    clean_medians = _medians(d_mm[clean], s_mm[clean], rr_s[clean])
    walls = wall_truth(heart, d_mm, s_mm)
    clean_medians |= _wall_medians({key: values[clean] for key, values in walls.items()})
    return {
        **_medians(d_mm, s_mm, rr_s),
        **_wall_medians(walls),
        "n_beats": int(complete.sum()),
        "time_res_s": time_res_s,
        "depth_res_mm": depth_res_mm,
        "beat_ed_time_s": [_rounded(v) for v in ed_s],
        "beat_lvid_d_mm": [_rounded(v) for v in d_mm],
        "beat_es_time_s": [_rounded(v) for v in es_s],
        "beat_lvid_s_mm": [_rounded(v) for v in s_mm],
        "beat_heart_rate_bpm": [_rounded(v) for v in 60.0 / rr_s],
        "beat_end_time_s": [_rounded(v) for v in ed_s + rr_s],
        **{f"beat_{key}": [_rounded(v) for v in values] for key, values in walls.items()},
        "beat_corrupted": [bool(c) for c in corrupted],
        "beat_artefacts": words,
        "n_beats_clean": int(clean.sum()),
        **{f"clean_{key}": value for key, value in clean_medians.items()},
    }


def _medians(d_mm: np.ndarray, s_mm: np.ndarray, rr_s: np.ndarray) -> dict:
    """Median LVIDd, LVIDs, heart rate, EF and FS of these beats; None for no beats."""
    if d_mm.size == 0:
        return dict.fromkeys(MEDIAN_KEYS)
    # EF as test.py reports it by default: with the scanner's volume formula.
    esv_ul, edv_ul = teichholz_volume_ul(np.array([s_mm, d_mm]), DEFAULT_VOLUME_FORMULA)
    ef = 1 - esv_ul / edv_ul
    fs = (d_mm - s_mm) / d_mm
    medians = (np.median(d_mm), np.median(s_mm), np.median(60.0 / rr_s))
    medians += (100 * np.median(ef), 100 * np.median(fs))
    return {key: _rounded(value) for key, value in zip(MEDIAN_KEYS, medians, strict=True)}


MEDIAN_KEYS = ("lvid_d_mm", "lvid_s_mm", "heart_rate_bpm", "ef_percent", "fs_percent")
WALL_KEYS = ("ivs_d_mm", "ivs_s_mm", "lvpw_d_mm", "lvpw_s_mm", "lv_mass_mg")


def wall_truth(heart: Heart, d_mm: np.ndarray, s_mm: np.ndarray) -> dict[str, np.ndarray]:
    """Per beat IVS and LVPW at ED (LVID = d_mm) and ES (s_mm), and the LV mass.

    The thicknesses are those _wall_borders_mm draws at these diameters (the breathing
    drift moves all borders alike). The mass is computed from the rounded numbers the
    truth file holds, so it is exactly the formula on them.
    """
    thickness = {}
    for phase, lvid_mm in (("d", d_mm), ("s", s_mm)):
        borders = _wall_borders_mm(heart, lvid_mm, np.zeros_like(lvid_mm))
        thickness[f"ivs_{phase}_mm"] = np.round(borders[3] - borders[2], 6)
        thickness[f"lvpw_{phase}_mm"] = np.round(borders[5] - borders[4], 6)
    mass = lv_mass_mg(np.round(d_mm, 6), thickness["ivs_d_mm"], thickness["lvpw_d_mm"])
    return {key: thickness[key] for key in WALL_KEYS[:4]} | {"lv_mass_mg": mass}


def _wall_medians(walls: dict[str, np.ndarray]) -> dict:
    """Median of each of wall_truth's values; None for no beats."""
    return {
        key: _rounded(np.median(values)) if values.size else None for key, values in walls.items()
    }


def _rounded(value: float) -> float:
    """Fixed precision keeps the JSON byte-identical across platforms."""
    return round(float(value), 6)


# ---------------------------------------------------------------- one recording


@dataclass(frozen=True)
class Sweep:
    """A recording's size and resolution."""

    height: int | None  # rows; None: as deep as the heart needs, plus SCANNER_SLACK_MM
    width: int
    time_res_s: float
    depth_res_mm: float


def draw_sweep(rng: np.random.Generator) -> Sweep:
    """The scanner look's sweep speed and depth resolution, each log-uniform in its span."""
    time_res_s, depth_res_mm = (
        float(np.exp(rng.uniform(np.log(low), np.log(high))))
        for low, high in (SCANNER_TIME_RES_S, SCANNER_DEPTH_RES_MM)
    )
    return Sweep(None, scanner_width(time_res_s), time_res_s, depth_res_mm)


def scanner_width(time_res_s: float) -> int:
    """Columns of a scanner-look recording: SCANNER_DURATION_S at this sweep speed."""
    return int(round(SCANNER_DURATION_S / time_res_s))


def simulate_recording(
    rng: np.random.Generator,
    *,
    height: int | None = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    time_res_s: float = TYPICAL_TIME_RES_S,
    depth_res_mm: float = DEFAULT_DEPTH_RES_MM,
    artefact_rng: np.random.Generator | None = None,
    rates: artefacts.Rates = artefacts.DEFAULT_RATES,
    look: str = "classic",
    heldout_rng: np.random.Generator | None = None,
) -> Recording:
    """One recording: its image, its four true borders and the measurements they imply.

    artefact_rng draws the artefacts of real recordings at `rates`; None makes a clean
    recording, which draws nothing from it. height None: as deep as this heart needs.
    heldout_rng draws the held-out generator settings (preprocessing/heldout.py) over the
    same mouse; None keeps the tuned ones.
    """
    time_s = np.arange(width) * time_res_s
    heart = draw_heart(rng, look)
    beats = draw_beats(heart, time_s[-1], rng)
    shape = None
    if heldout_rng is not None:
        heart = heldout.heldout_heart(heart, heldout_rng)
        beats = heldout.heldout_beats(beats, heart, heldout_rng)
        shape = heldout.draw_shape(heldout_rng)

    if height is None:
        # As deep as this heart needs, and SCANNER_SLACK_MM of tissue below it.
        slack_mm = rng.uniform(*SCANNER_SLACK_MM)
        fitted_mm = required_depth_mm(
            heart, lvid_curve_mm(beats, time_s, heart.cusp, shape), breathing_mm(heart, time_s)
        )
        height = int(np.ceil((fitted_mm + slack_mm) / depth_res_mm))
    found, rhythm = artefacts.NONE, [[] for _ in beats.es_s]
    if artefact_rng is not None:
        beats, rhythm = irregular_beats(beats, rates, artefact_rng)
        found = artefacts.draw_artefacts(artefact_rng, rates, width, time_res_s, height)
    lvid_mm = lvid_curve_mm(beats, time_s, heart.cusp, shape)
    drift_mm = breathing_mm(heart, time_s)
    borders_px = layer_borders_px(heart, lvid_mm, drift_mm, depth_res_mm, height, rng)
    upper_px, lower_px = borders_px[UPPER_BORDER], borders_px[LOWER_BORDER]
    scanner = draw_scanner(rng, look)
    if heldout_rng is not None:
        scanner = heldout.heldout_scanner(scanner, heldout_rng)
        found = heldout.heldout_dropouts(
            found, heldout_rng, (upper_px, lower_px), height, depth_res_mm, time_res_s
        )
    amplitude = echo_amplitude(borders_px, scanner, depth_res_mm, time_res_s, rng)
    muscle_level, noise_level = 10 ** (np.array([scanner.muscle_db, scanner.noise_db]) / 20)
    amplitude = artefacts.corrupt_amplitude(
        amplitude, found, upper_px, lower_px, muscle_level, depth_res_mm, time_res_s,
        artefact_rng,
    )  # fmt: skip
    bursts = artefacts.burst_noise(amplitude.shape, found, noise_level, artefact_rng)
    acquired = artefacts.beat_artefacts(found, beats.ed_s, beats.es_s, time_res_s)
    words = [beat + more for beat, more in zip(rhythm, acquired, strict=True)]
    first_col, last_col = artefacts.annotated_span(found, width)
    truth = beat_truth(beats, width, time_res_s, depth_res_mm, words, heart)
    # Where dropouts, noise bursts and probe motion are, and what the annotation covers.
    truth["artefact_spans_s"] = artefacts.stretch_spans_s(found, time_res_s)
    truth["annotated_span_s"] = [_rounded(first_col * time_res_s), _rounded(last_col * time_res_s)]
    return Recording(
        image=log_compress(amplitude, scanner, depth_res_mm, rng, bursts),
        upper_px=upper_px,
        lower_px=lower_px,
        truth=truth,
        annotated_cols=(first_col, last_col),
        ivs_top_px=borders_px[SEPTUM_TOP_BORDER],
        lvpw_bottom_px=borders_px[POSTERIOR_BOTTOM_BORDER],
    )


def recording_rng(seed: int, index: int) -> np.random.Generator:
    """Each recording has its own stream, so recording 3 is the same whatever --recordings."""
    return np.random.default_rng([seed, index])


def artefact_rng(seed: int, index: int) -> np.random.Generator:
    """A stream apart from recording_rng's, so the clean recording stays as it was."""
    return np.random.default_rng([seed, index, 1])


def heldout_rng(seed: int, index: int) -> np.random.Generator:
    """The held-out settings' stream, apart from the others, so the mouse stays the same."""
    return np.random.default_rng([seed, index, 3])


def sweep_rng(seed: int, index: int) -> np.random.Generator:
    """The scanner look's sweep, drawn apart from the heart and the image."""
    return np.random.default_rng([seed, index, 2])
