"""Measure one recording: image -> windows -> model -> cavity edges (and walls) -> beats ->
a quality decision per beat, with no files read or written.

test.py writes its files from this (measurement.recordings); a notebook calls it directly
(docs/measure_from_python.md):

    result = measure(image, resolution, model, MeasureSettings(size=128))
    for beat, quality in zip(result.beats, result.judged):
        print(beat.lvid_d_mm, beat.lvid_s_mm, beat.heart_rate_bpm, quality.accepted)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from measurement.beats import MAX_HR_BPM, Beat, find_beats, lacks_motion, summarize
from measurement.edges import Edges, lv_edges
from measurement.inference import Model, segment_recording
from measurement.quality import BeatQuality, judge_beats
from measurement.walls import Walls, add_walls, split_probabilities, wall_borders
from mmode.scanner import DEFAULT_VOLUME_FORMULA, Resolution, teichholz_volume_ul


@dataclass(frozen=True)
class MeasureSettings:
    """How a recording is measured; test.py's flags of the same names set them."""

    size: int  # windows are resized to size rows, as in training (the checkpoint's -p)
    overlap: float = 0.5  # share of a window that its neighbour overlaps
    batch_size: int = 8  # windows predicted at once
    threshold: float = 0.5  # cavity probability threshold
    device: torch.device | str = "cpu"
    precision: str = "fp32"
    max_hr_bpm: float = MAX_HR_BPM  # beats' steep falls are at least 60 / max_hr_bpm s apart
    volume_formula: str = DEFAULT_VOLUME_FORMULA  # one of mmode.scanner.VOLUME_FORMULAS
    window_s: float | None = None  # the model's longest window span (mmode/timescale.py)


@dataclass(frozen=True)
class Measurement:
    """A measured recording: per column and per beat."""

    edges: Edges  # the cavity's upper and lower edge rows per column
    walls: Walls | None  # the walls' outer borders, for a wall model
    lvid_mm: np.ndarray  # per column, NaN where no cavity was found
    volume_ul: np.ndarray  # Teichholz, per column
    beats: list[Beat]
    judged: list[BeatQuality]  # one per beat: accepted or not, and why
    motionless: bool  # no cardiac motion: no beats are reported

    @property
    def accepted(self) -> list[bool]:
        return [j.accepted for j in self.judged]

    def summary(self) -> dict:
        """The numbers over the accepted beats, as in REC_summary.json."""
        return summarize(self.beats, self.accepted)


def measure(
    image: np.ndarray, resolution: Resolution, model: Model, settings: MeasureSettings
) -> Measurement:
    """Segment a uint8 (H, W) recording with `model` and measure it."""
    probs = probabilities(image, model, settings, resolution.time_res_s)
    return measure_probabilities(probs, image, resolution, settings)


def probabilities(
    image: np.ndarray, model: Model, settings: MeasureSettings, time_res_s: float
) -> np.ndarray:
    """The network's probabilities for a uint8 (H, W) recording, in windows as `settings`
    say: (H, W) of the cavity, or (K, H, W) of a wall model's classes."""
    return segment_recording(
        model, image, settings.size, settings.overlap, settings.batch_size, settings.device,
        settings.precision, time_res_s, settings.window_s,
    )  # fmt: skip


def measure_probabilities(
    probs: np.ndarray, image: np.ndarray, resolution: Resolution, settings: MeasureSettings
) -> Measurement:
    """Measure a recording from the network's probabilities: (H, W) of the cavity, or
    (K, H, W) of a wall model's classes."""
    time_res_s, depth_res_mm = resolution.time_res_s, resolution.depth_res_mm
    # A cavity model's map is the cavity's; a wall model's classes also give the walls.
    prob, classes = split_probabilities(probs)
    edges = lv_edges(prob, settings.threshold, time_res_s, depth_res_mm)
    walls = (
        None
        if classes is None
        else wall_borders(classes, edges, settings.threshold, time_res_s, depth_res_mm)
    )
    lvid = edges.lvid_mm(depth_res_mm)
    motionless = lacks_motion(lvid, time_res_s)
    # A still curve's beats would be made of stitching ripple or glitches: none are reported.
    beats = (
        []
        if motionless
        else find_beats(lvid, time_res_s, settings.max_hr_bpm, settings.volume_formula)
    )
    if walls is not None:
        beats = add_walls(beats, edges, walls, time_res_s, depth_res_mm)
    judged = judge_beats(beats, edges, prob, image, time_res_s, depth_res_mm, walls)
    volume = teichholz_volume_ul(lvid, settings.volume_formula)
    return Measurement(edges, walls, lvid, volume, beats, judged, motionless)
