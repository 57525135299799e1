"""Held-out generator settings: recordings that do not share the assumptions the tool's
rules were tuned on (preprocessing/simulator.py's "tuned" settings).

    python -m preprocessing.synthetic --out data/heldout --physiology heldout

The same hearts and scanners as the tuned settings (the same seed draws the same mouse),
changed where the tuned generator agrees with the measuring code by construction:
- the LVID curve within a beat: ejection fastest early or late (EJECTION_POWER), rapid
  filling of 25-50 % of diastole, then diastasis (flat), an atrial kick of 0-30 % of the
  filling, and a flat maximum of 0-10 ms before end-diastole, where contraction starts. A
  tuned beat's maximum is a single point at end-diastole; here it is flat before it;
- the systole fraction, 0.28-0.52 of the cycle (tuned: 0.34-0.48 at most);
- beat-to-beat variability: a slow swing with breathing of up to 5 % and jitter of up to
  3 %, together at most 8 % (tuned: white jitter of 3 %);
- wall echo strength: 4-12 dB weaker or stronger than the tuned draw;
- dropouts: 0.5-8 ms long (tuned 0.8-4), 8-45 dB deep (tuned 12-40), and half of them
  over a depth band of 1-5 mm around one cavity edge instead of the whole depth.
Everything is drawn from its own stream (heldout_rng), so the tuned draws stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from preprocessing import artefacts

PHYSIOLOGIES = ("tuned", "heldout")
EJECTION_POWER = (0.6, 1.6)  # u**p inside the ease: < 1 ejects fastest early, > 1 late
RAPID_SHARE = (0.25, 0.5)  # of diastole, rapid filling
ATRIAL_SHARE = (0.0, 0.3)  # of the filling, the atrial kick
ATRIAL_LENGTH = (0.15, 0.3)  # of diastole
HOLD_S = (0.0, 0.010)  # the flat maximum before end-diastole
SYSTOLE_FRACTION = (0.28, 0.52)
SLOW_SWING = (0.0, 0.05)  # of the RR, with breathing
JITTER = (0.0, 0.03)  # of the RR, beat to beat
MAX_RR_CHANGE = 0.08
WALL_ECHO_DB = (4.0, 12.0)  # weaker or stronger, the sign drawn
DROPOUT_S = (0.0005, 0.008)
DROPOUT_DB = (8.0, 45.0)
BAND_SHARE = 0.5  # of dropouts, over a depth band only
BAND_MM = (1.0, 5.0)


@dataclass(frozen=True)
class BeatShape:
    """How one recording's LVID moves within a beat."""

    ejection_power: float
    rapid_share: float
    atrial_share: float
    atrial_length: float
    hold_s: float


def draw_shape(rng: np.random.Generator) -> BeatShape:
    return BeatShape(
        ejection_power=rng.uniform(*EJECTION_POWER),
        rapid_share=rng.uniform(*RAPID_SHARE),
        atrial_share=rng.uniform(*ATRIAL_SHARE),
        atrial_length=rng.uniform(*ATRIAL_LENGTH),
        hold_s=rng.uniform(*HOLD_S),
    )


def _ease(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return (1 - np.cos(np.pi * u)) / 2


def emptied(u: np.ndarray, shape: BeatShape) -> np.ndarray:
    """0 at end-diastole to 1 at end-systole; slope 0 at both ends."""
    return _ease(np.clip(u, 0.0, 1.0) ** shape.ejection_power)


def filled(v: np.ndarray, shape: BeatShape, diastole_s: np.ndarray) -> np.ndarray:
    """0 at end-systole to 1 at end-diastole: rapid filling, diastasis, atrial kick, and
    a flat maximum for the last hold_s (at most a third of diastole)."""
    hold = np.minimum(shape.hold_s / diastole_s, 1 / 3)
    kick_end = 1 - hold
    kick_start = kick_end - shape.atrial_length * kick_end
    rapid = 1 - (1 - np.clip(v / (shape.rapid_share * kick_end), 0.0, 1.0)) ** 2
    kick = _ease((v - kick_start) / (kick_end - kick_start))
    return (1 - shape.atrial_share) * rapid + shape.atrial_share * kick


def rr_changes(n: int, rr_s: float, breath_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) each beat's RR as a share of the mean: a slow swing with breathing plus jitter."""
    swing, jitter = rng.uniform(*SLOW_SWING), rng.uniform(*JITTER)
    phase = 2 * np.pi * (breath_hz * rr_s * np.arange(n) + rng.uniform(0, 1))
    change = swing * np.sin(phase) + rng.normal(0, 1, n) * jitter
    return np.clip(change, -MAX_RR_CHANGE, MAX_RR_CHANGE)


def heldout_beats(beats, heart, rng: np.random.Generator):
    """The tuned draw's beats (simulator.Beats) retimed: held-out RR changes and systoles."""
    rr_s = 60.0 / heart.heart_rate_bpm
    n = beats.es_s.size
    rr_each_s = rr_s * (1 + rr_changes(n, rr_s, heart.breath_hz, rng))
    ed_s = beats.ed_s[0] + np.concatenate([[0.0], np.cumsum(rr_each_s)])
    systole_s = heart.systole_fraction * rr_each_s * (1 + rng.uniform(-0.05, 0.05, n))
    return replace(beats, ed_s=ed_s, es_s=ed_s[:-1] + systole_s)


def heldout_heart(heart, rng: np.random.Generator):
    """The same mouse (simulator.Heart) with a systole fraction from the held-out span."""
    return replace(heart, systole_fraction=rng.uniform(*SYSTOLE_FRACTION))


def heldout_scanner(scanner, rng: np.random.Generator):
    """The same scanner (simulator.Scanner) with walls echoing weaker or stronger."""
    change_db = rng.choice([-1.0, 1.0]) * rng.uniform(*WALL_ECHO_DB)
    muscle_db = min(scanner.muscle_db + change_db, scanner.pericardium_db - 3)
    # Blood stays the darkest layer: walls at least 2 dB above it.
    return replace(scanner, muscle_db=max(muscle_db, scanner.blood_db + 2))


def heldout_dropouts(
    found: artefacts.Artefacts,
    rng: np.random.Generator,
    edges_px: tuple[np.ndarray, np.ndarray],
    height: int,
    depth_res_mm: float,
    time_res_s: float,
) -> artefacts.Artefacts:
    """The recording's dropouts at the same places, with held-out lengths, depths and bands."""
    width = edges_px[0].size
    stretches = []
    for stretch in found.stretches:
        if stretch.kind != "dropout":
            stretches.append(stretch)
            continue
        length = max(1, round(rng.uniform(*DROPOUT_S) / time_res_s))
        last = min(stretch.first_col + length - 1, width - 1)
        rows = None
        if rng.random() < BAND_SHARE:
            edge = edges_px[int(rng.integers(0, 2))][stretch.first_col]
            half = rng.uniform(*BAND_MM) / 2 / depth_res_mm
            rows = (int(max(edge - half, 0)), int(min(edge + half, height - 1)))
        stretches.append(
            replace(stretch, last_col=last, strength=rng.uniform(*DROPOUT_DB), rows=rows)
        )
    return artefacts.Artefacts(found.chords, stretches)
