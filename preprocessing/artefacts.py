"""Artefacts of real mouse M-mode recordings, laid over a clean simulated one.

Kinds, each with a rate in Rates (0 switches it off):
- intracavity: chordae and papillary muscle, thin streaks inside the LV cavity near the
  posterior wall, brightest in systole. They keep a dark gap to the wall: the true inner
  edges stay where they are.
- dropout: a few columns that lost their echo (near-black, or only a faint one).
- noise: a short burst of strong noise over the whole depth (electrical interference).
- probe_motion: 0.1-0.3 s where the probe slips: the heart slides by millimetres, blurs and
  fades into featureless texture. The true edges are undefined there, so a lab would not
  trace them: the annotation covers the longest stretch without probe motion.
- premature, pause: irregular beats, drawn by simulator.irregular_beats with these rates.
Acquisition artefacts are more frequent in some recordings than in others (a severity drawn
per recording), so some recordings are clean and a few are poor; on average about 15 % of
the beats are corrupted.

Which beats are corrupted: a beat runs from its ED to the next ED. Its artefacts are
probe_motion and noise anywhere in it (widened by REACH_S), premature and pause, dropout
within REACH_S of its ED, its ES or the next ED (elsewhere a few dark columns are bridged
by any measurement that follows the walls) and intracavity when the recording has
chordae. Every one of them corrupts the beat except intracavity, which stays clear of the
edges. Irregular beats have true diameters, but a lab leaves ectopic beats and the pause
around them out of its averages, and their RR is not the recording's rhythm. Dropout and
noise stretches stay annotated: the walls are where they were, and a network should learn
to see through them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from preprocessing.speckle import rayleigh_field


@dataclass(frozen=True)
class Rates:
    """How often each artefact occurs in a recording of average severity."""

    intracavity_share: float = 0.6  # of recordings that show chordae or papillary muscle
    dropout_per_s: float = 1.0
    noise_per_s: float = 0.4
    probe_motion_per_s: float = 0.2
    premature_per_beat: float = 0.025
    pause_per_beat: float = 0.007


DEFAULT_RATES = Rates()
# Gamma shape of the per-recording severity (mean 1): 1.5 makes one recording in ten
# nearly clean (below 0.2) and one in ten more than twice as bad as the average.
SEVERITY_SHAPE = 1.5
# An artefact this close to a beat's edge still disturbs where its ED or ES is found.
REACH_S = 0.005
# Chordae never come closer to the posterior wall than this, so its edge stays visible.
CHORD_MIN_GAP_MM = 0.12
# Probe motion sets in and ends over this time.
PROBE_RAMP_S = 0.03
CORRUPTING = ("probe_motion", "noise", "dropout", "premature", "pause")


@dataclass(frozen=True)
class Chord:
    """A chorda or papillary muscle echo, kept at a share of the LVID above the wall."""

    wall_share: float
    level_db: float  # relative to the muscle's echo
    thickness_mm: float


@dataclass(frozen=True)
class Stretch:
    """Columns first_col..last_col (both included) of a dropout, noise burst or probe motion.

    strength: dB of echo lost (dropout), dB above the receiver noise (noise), or mm the
    heart slides, signed, + deeper (probe_motion).
    """

    kind: str
    first_col: int
    last_col: int
    strength: float
    fade_db: float = 0.0  # probe_motion: how much the shifted heart fades
    texture_share: float = 0.0  # probe_motion: how far the image turns to plain texture
    rows: tuple[int, int] | None = None  # dropout: first and last row lost; None: all


@dataclass(frozen=True)
class Artefacts:
    chords: list[Chord] = field(default_factory=list)
    stretches: list[Stretch] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Stretch]:
        return [s for s in self.stretches if s.kind == kind]


NONE = Artefacts()


# ---------------------------------------------------------------- drawing


def draw_artefacts(
    rng: np.random.Generator, rates: Rates, width: int, time_res_s: float, min_clean_cols: int
) -> Artefacts:
    """The artefacts of one recording; probe motion leaves min_clean_cols to annotate."""
    severity = rng.gamma(SEVERITY_SHAPE, 1 / SEVERITY_SHAPE)
    duration_s = width * time_res_s

    def count(per_s: float) -> int:
        return int(rng.poisson(per_s * duration_s * severity))

    def place(kind: str, length_s: float, strength: float, **extra: float) -> Stretch:
        length = min(max(1, round(length_s / time_res_s)), width)
        first = int(rng.integers(0, width - length + 1))
        return Stretch(kind, first, first + length - 1, strength, **extra)

    chords = []
    if rng.random() < rates.intracavity_share:
        chords = [
            Chord(rng.uniform(0.06, 0.3), -rng.uniform(2, 10), rng.uniform(0.02, 0.06))
            for _ in range(rng.integers(1, 3))
        ]
    stretches = [
        place("dropout", rng.uniform(0.0008, 0.004), rng.uniform(12, 40))
        for _ in range(count(rates.dropout_per_s))
    ]
    stretches += [
        place("noise", rng.uniform(0.01, 0.06), rng.uniform(20, 35))
        for _ in range(count(rates.noise_per_s))
    ]
    for _ in range(count(rates.probe_motion_per_s)):
        slide_mm = rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)
        probe = place(
            "probe_motion",
            rng.uniform(0.1, 0.3),
            slide_mm,
            fade_db=rng.uniform(3, 15),
            texture_share=rng.uniform(0.3, 1.0),
        )
        first, last = annotated_span(Artefacts(chords, [*stretches, probe]), width)
        # One slip at a time, and enough left to cut a training window from.
        apart = all(
            probe.first_col > other.last_col or probe.last_col < other.first_col
            for other in stretches
            if other.kind == "probe_motion"
        )
        if apart and last - first + 1 >= min_clean_cols:
            stretches.append(probe)
    return Artefacts(chords, stretches)


def annotated_span(artefacts: Artefacts, width: int) -> tuple[int, int]:
    """(first_col, last_col) of the longest stretch without probe motion."""
    clear = np.ones(width, dtype=bool)
    for probe in artefacts.of_kind("probe_motion"):
        clear[probe.first_col : probe.last_col + 1] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], clear.astype(int), [0]])))
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest] - 1)


# ---------------------------------------------------------------- the image


def add_chords(
    amplitude: np.ndarray,
    chords: list[Chord],
    upper_px: np.ndarray,
    lower_px: np.ndarray,
    muscle_level: float,
    depth_res_mm: float,
    time_res_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Streaks in the cavity that follow the posterior wall; faint in diastole."""
    rows = np.arange(amplitude.shape[0], dtype=float)[:, None]
    cavity_px = lower_px - upper_px
    systole = (cavity_px.max() - cavity_px) / max(np.ptp(cavity_px), 1e-9)
    amplitude = amplitude.copy()
    for chord in chords:
        gap_px = np.maximum(chord.wall_share * cavity_px, CHORD_MIN_GAP_MM / depth_res_mm)
        centre_px = lower_px - gap_px
        # Chordae swing in and out of the beam over tens of milliseconds.
        swing = gaussian_filter1d(rng.standard_normal(cavity_px.size), 0.04 / time_res_s)
        swing = np.clip(0.6 + swing / max(swing.std(), 1e-9) * 0.5, 0, 1)
        grain = rayleigh_field(rng, cavity_px.shape, 0, 0.006 / time_res_s)
        level = muscle_level * 10 ** (chord.level_db / 20)
        strength = level * (0.2 + 0.8 * systole) * swing * grain
        sigma_px = max(chord.thickness_mm / depth_res_mm, 0.4)
        amplitude += strength * np.exp(-0.5 * ((rows - centre_px) / sigma_px) ** 2)
    return amplitude


def _ramp(length: int, ramp_cols: float) -> np.ndarray:
    """0 at both ends of a stretch, 1 in its middle, smooth in between."""
    cols = np.arange(length, dtype=float)
    u = np.clip(np.minimum(cols + 1, length - cols) / max(ramp_cols, 1.0), 0, 1)
    return (1 - np.cos(np.pi * u)) / 2


def slip_probe(
    amplitude: np.ndarray,
    probe: Stretch,
    muscle_level: float,
    depth_res_mm: float,
    time_res_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The heart slides out of the beam, blurs and fades into texture, then comes back."""
    height = amplitude.shape[0]
    cols = slice(probe.first_col, probe.last_col + 1)
    block = amplitude[:, cols]
    length = block.shape[1]
    weight = _ramp(length, min(PROBE_RAMP_S / time_res_s, length / 3))
    rows = np.arange(height, dtype=float)
    shift_px = probe.strength / depth_res_mm * weight
    shifted = np.stack(
        [np.interp(rows - shift_px[c], rows, block[:, c]) for c in range(length)], axis=1
    )
    blurred = gaussian_filter1d(shifted, 0.15 / depth_res_mm, axis=0)
    heart = (shifted + weight * (blurred - shifted)) * 10 ** (-probe.fade_db * weight / 20)
    # What the beam crosses instead: tissue with no structure that lasts.
    profile_db = gaussian_filter1d(rng.standard_normal(height), 0.3 / depth_res_mm)
    profile_db *= 6 / max(profile_db.std(), 1e-9)
    texture = rayleigh_field(rng, (height, length), 0.02 / depth_res_mm, 0.01 / time_res_s)
    texture *= muscle_level * 10 ** ((profile_db[:, None] - 6) / 20)
    share = probe.texture_share * weight
    amplitude = amplitude.copy()
    amplitude[:, cols] = (1 - share) * heart + share * texture
    return amplitude


def drop_out(amplitude: np.ndarray, dropouts: list[Stretch]) -> np.ndarray:
    """Columns that lost their echo; the receiver noise added later remains."""
    amplitude = amplitude.copy()
    for dropout in dropouts:
        first_row, last_row = dropout.rows or (0, amplitude.shape[0] - 1)
        rows, cols = slice(first_row, last_row + 1), slice(dropout.first_col, dropout.last_col + 1)
        amplitude[rows, cols] *= 10 ** (-dropout.strength / 20)
    return amplitude


def burst_noise(
    shape: tuple[int, int],
    artefacts: Artefacts,
    noise_level: float,
    rng: np.random.Generator | None,
) -> np.ndarray | None:
    """Noise amplitude to add to the receiver's: bursts with a flickering strength.

    None when there is no burst.
    """
    bursts = artefacts.of_kind("noise")
    if not bursts:
        return None
    noise = np.zeros(shape)
    for burst in bursts:
        length = burst.last_col - burst.first_col + 1
        flicker = np.exp(gaussian_filter1d(rng.normal(0, 0.8, length), 1.0))
        grain = rayleigh_field(rng, (shape[0], length), 0.7, 0.7)
        level = noise_level * 10 ** (burst.strength / 20) * _ramp(length, 3) * flicker
        noise[:, burst.first_col : burst.last_col + 1] = level * grain
    return noise


def corrupt_amplitude(
    amplitude: np.ndarray,
    artefacts: Artefacts,
    upper_px: np.ndarray,
    lower_px: np.ndarray,
    muscle_level: float,
    depth_res_mm: float,
    time_res_s: float,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Chordae, probe motion and dropouts in the echo amplitude, in the order they arise."""
    amplitude = add_chords(
        amplitude, artefacts.chords, upper_px, lower_px, muscle_level, depth_res_mm,
        time_res_s, rng,
    )  # fmt: skip
    for probe in artefacts.of_kind("probe_motion"):
        amplitude = slip_probe(amplitude, probe, muscle_level, depth_res_mm, time_res_s, rng)
    return drop_out(amplitude, artefacts.of_kind("dropout"))


# ---------------------------------------------------------------- truth


def beat_artefacts(
    artefacts: Artefacts,
    ed_s: np.ndarray,
    es_s: np.ndarray,
    time_res_s: float,
) -> list[list[str]]:
    """Per beat (ED k to ED k + 1), the artefacts that touch it, by the module's rule."""
    words: list[list[str]] = [[] for _ in es_s]
    for k in range(es_s.size):
        start_s, end_s = ed_s[k], ed_s[k + 1]
        for stretch in artefacts.stretches:
            first_s = stretch.first_col * time_res_s - REACH_S
            last_s = stretch.last_col * time_res_s + REACH_S
            if stretch.kind == "dropout":
                hit = any(first_s <= t <= last_s for t in (start_s, es_s[k], end_s))
            else:
                hit = first_s <= end_s and last_s >= start_s
            if hit and stretch.kind not in words[k]:
                words[k].append(stretch.kind)
        if artefacts.chords:
            words[k].append("intracavity")
    return words


def corrupts(words: list[str]) -> bool:
    """Whether a beat with these artefacts is corrupted: all but intracavity corrupt it."""
    return any(word in CORRUPTING for word in words)


def stretch_spans_s(artefacts: Artefacts, time_res_s: float) -> list[list]:
    """[kind, start_s, end_s] of each stretch, in time order, for the truth file."""
    return [
        [s.kind, round(s.first_col * time_res_s, 6), round(s.last_col * time_res_s, 6)]
        for s in sorted(artefacts.stretches, key=lambda s: (s.first_col, s.kind))
    ]
