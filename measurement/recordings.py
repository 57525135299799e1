"""Measure whole recordings and write their files (test.py's second mode).

For each recording REC: REC_mask.png, REC_overlay.png, REC_lvid.csv, REC_beats.csv,
REC_summary.json and REC_report.png; for a folder also summary.csv; always index.html,
the review page; with subjects per_mouse.csv; with export_annotations annotations/REC.csv
and .json. A recording that fails is reported and skipped; the others are measured.
REC_summary.json, summary.csv, index.html and the printed summary name the model.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from measurement.annotation_export import export_annotations
from measurement.beats import (
    BEAT_FIELDS,
    MIN_BEAT_AMPLITUDE_MM,
    SUMMARY_NUMBERS,
    Beat,
    find_beats,
    lacks_motion,
    summarize,
)
from measurement.edges import lv_edges
from measurement.inference import Model, segment_recording
from measurement.outputs import ANNOTATIONS_FOLDER
from measurement.quality import QUALITY_FIELDS, BeatQuality, judge_beats
from measurement.report import recording_overlay, save_report, summary_line
from measurement.review import write_review_page
from measurement.subjects import Subjects, write_per_mouse
from measurement.walls import add_walls, split_probabilities, wall_borders
from mmode.images import IMAGE_SUFFIXES, list_files, read_gray
from mmode.scanner import (
    DEFAULT_VOLUME_FORMULA,
    Resolution,
    read_sidecar,
    resolve_resolution,
    teichholz_volume_ul,
)
from runtime import files
from runtime.errors import RecordingError, SetupError, WriteError

# model is last, so that a reader of summary.csv's other columns by position still works.
SUMMARY_FIELDS = [
    "name", "status", *SUMMARY_NUMBERS, "volume_formula", "time_res_s", "depth_res_mm",
    "time_res_assumed", "depth_res_assumed", "error", "model",
]  # fmt: skip
NO_MOTION = (
    f"no cardiac motion found (LVID changes by less than {MIN_BEAT_AMPLITUDE_MM} mm); "
    "check that the recording shows the LV in M-mode"
)


@dataclass(frozen=True)
class Measuring:
    """How recordings are measured: test.py's flags, resolved."""

    size: int  # windows are resized to size x size, as in training
    overlap: float
    batch_size: int
    threshold: float
    device: torch.device
    precision: str
    time_res_s: float | None  # None: from the sidecar, else assumed
    depth_res_mm: float | None
    max_hr_bpm: float
    volume_formula: str = DEFAULT_VOLUME_FORMULA  # one of mmode.scanner.VOLUME_FORMULAS
    export_annotations: bool = False  # write the accepted edges as annotation files
    model: str | None = None  # the checkpoint as the outputs name it; None: not named


def list_recordings(path: Path) -> list[Path]:
    """The image itself, or the images directly in a folder (sidecars and others skipped).

    Two images with the same name are both listed, so that the second is reported.
    """
    if path.is_file():
        return [path]
    found, clashes = list_files(path)
    if not found:
        raise SetupError(
            f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no img/ and mask/ "
            "folders; pass a test set, an image or a folder of images."
        )
    return sorted([*found.values(), *(other for _, other in clashes)])


@dataclass(frozen=True)
class Measured:
    """One measured recording, as the folder's outputs need it."""

    name: str
    summary: dict  # as in REC_summary.json
    beats: list[Beat]
    judged: list[BeatQuality]
    problem: str | None = None  # why it counts as failed although its files were written

    def row(self) -> dict:
        """Its row of summary.csv."""
        status = "failed" if self.problem else "ok"
        return {**self.summary, "name": self.name, "status": status, "error": self.problem}

    def beat_rows(self) -> list[dict]:
        """Its rows of REC_beats.csv."""
        return [
            {**asdict(b), **asdict(j), "accepted": str(j.accepted).lower()}
            for b, j in zip(self.beats, self.judged, strict=True)
        ]


def measure_recordings(
    model: Model,
    recordings: list[Path],
    how: Measuring,
    out: Path,
    folder: bool,
    subjects: Subjects | None = None,
) -> int:
    """Measure each recording; a failure is reported and the rest go on. The exit status.

    A file that cannot be written (a full disk, a read-only folder) stops the command at
    once: every later recording would fail the same way.
    """
    rows, measured, failed, done = [], [], [], set()
    try:
        for path in tqdm(recordings, desc="recordings", unit="rec", file=sys.stderr):
            name = path.stem
            try:
                if name in done:
                    raise RecordingError(
                        f"{path}: another recording named {name} was measured already; rename one."
                    )
                result = measure_recording(model, path, how, out)
            except WriteError:
                raise
            except (RecordingError, OSError) as err:
                failed.append(str(err))
                rows.append(
                    {"name": name, "status": "failed", "error": str(err), "model": how.model}
                )
                tqdm.write(f"error: {err}", file=sys.stderr)
                continue
            done.add(name)
            measured.append(result)
            rows.append(result.row())
            if result.problem:
                failed.append(result.problem)
                tqdm.write(f"error: {result.problem}", file=sys.stderr)
            else:
                tqdm.write(f"{name}: {summary_line(result.summary)}")
        write_folder_files(out, rows, measured, folder, subjects, how.model)
    except WriteError as err:
        print(f"error: {err.advice('-o')}", file=sys.stderr)
        return 1
    if how.model is not None:
        print(f"Model: {how.model}")
    print(f"Measured {len(recordings) - len(failed)} of {len(recordings)} recording(s); "
          f"results are in {out}, to review in {out / 'index.html'}.")  # fmt: skip
    if failed:
        print(f"{len(failed)} recording(s) failed:", file=sys.stderr)
        for message in failed:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


def write_folder_files(
    out: Path,
    rows: list[dict],
    measured: list[Measured],
    folder: bool,
    subjects: Subjects | None,
    model: str | None = None,
) -> None:
    """summary.csv (for a folder), per_mouse.csv (with subjects) and index.html."""
    if folder:
        files.write_csv(out / "summary.csv", SUMMARY_FIELDS, rows)
    if subjects is not None:
        beats = {m.name: (m.beats, [j.accepted for j in m.judged]) for m in measured}
        write_per_mouse(out / "per_mouse.csv", subjects, beats, [row["name"] for row in rows])
    write_review_page(
        out / "index.html",
        rows,
        {m.name: m.beat_rows() for m in measured},
        out.resolve().name,
        model,
    )


def measure_recording(model: Model, path: Path, how: Measuring, out: Path) -> Measured:
    """Segment and measure one recording and write its files.

    A recording without cardiac motion or without an accepted beat keeps its files, so
    that the reader sees why, and comes back with its problem set.
    """
    image = read_gray(path)
    try:
        sidecar = read_sidecar(path)
    except ValueError as err:
        raise RecordingError(str(err)) from None
    resolution = resolve_resolution(sidecar, how.time_res_s, how.depth_res_mm)
    warn_assumed(path.stem, resolution)
    probs = segment_recording(
        model, image, how.size, how.overlap, how.batch_size, how.device, how.precision
    )
    # A cavity model's map is the cavity's; a wall model's classes also give the walls.
    prob, classes = split_probabilities(probs)
    time_res_s, depth_res_mm = resolution.time_res_s, resolution.depth_res_mm
    edges = lv_edges(prob, how.threshold, time_res_s, depth_res_mm)
    walls = (
        None
        if classes is None
        else wall_borders(classes, edges, how.threshold, time_res_s, depth_res_mm)
    )
    lvid = edges.lvid_mm(resolution.depth_res_mm)
    mask = edges.mask(prob.shape[0])
    volume = teichholz_volume_ul(lvid, how.volume_formula)
    motionless = lacks_motion(lvid, resolution.time_res_s)
    # A still curve's beats would be made of stitching ripple or glitches: none are reported.
    beats = (
        []
        if motionless
        else find_beats(lvid, resolution.time_res_s, how.max_hr_bpm, how.volume_formula)
    )
    if walls is not None:
        beats = add_walls(beats, edges, walls, time_res_s, depth_res_mm)
    judged = judge_beats(beats, edges, prob, image, time_res_s, depth_res_mm, walls)
    accepted = [j.accepted for j in judged]
    summary = {
        **summarize(beats, accepted),
        "volume_formula": how.volume_formula,
        **asdict(resolution),
        **({"error": NO_MOTION} if motionless else {}),
        "model": how.model,
    }
    name = path.stem
    problem = f"{name}: {NO_MOTION}." if motionless else recording_problem(name, judged)
    result = Measured(name, summary, beats, judged, problem)
    overlay = recording_overlay(image, edges, walls)
    files.save_png(out / f"{name}_mask.png", mask.astype(np.uint8) * 255)
    files.save_png(out / f"{name}_overlay.png", overlay)
    time_s = np.arange(lvid.size) * resolution.time_res_s
    columns = [
        {"time_s": t, "lvid_mm": d, "volume_ul": v}
        for t, d, v in zip(time_s.tolist(), lvid.tolist(), volume.tolist(), strict=True)
    ]
    files.write_csv(out / f"{name}_lvid.csv", ["time_s", "lvid_mm", "volume_ul"], columns)
    files.write_csv(out / f"{name}_beats.csv", [*BEAT_FIELDS, *QUALITY_FIELDS], result.beat_rows())
    files.write_text(out / f"{name}_summary.json", json.dumps(summary, indent=2) + "\n")
    save_report(
        out / f"{name}_report.png", overlay, lvid, volume, beats, judged, resolution, name, summary
    )
    if how.export_annotations and not result.problem:
        export_annotations(
            out / ANNOTATIONS_FOLDER, name, path, image.shape, edges, beats, accepted,
            resolution.time_res_s, walls,
        )  # fmt: skip
    return result


def recording_problem(name: str, judged: list[BeatQuality]) -> str | None:
    """Why a recording whose beats were all rejected has no result; None when one passed."""
    if not judged or any(j.accepted for j in judged):
        return None
    reasons = sorted({word for j in judged for word in j.reasons.split(";")})
    return (
        f"{name}: no beat passed the quality checks (reasons: {', '.join(reasons)}); "
        "check the recording or the model."
    )


def warn_assumed(name: str, resolution: Resolution) -> None:
    assumed = []
    if resolution.time_res_assumed:
        assumed.append(f"{resolution.time_res_s} s per column (--time-res)")
    if resolution.depth_res_assumed:
        assumed.append(f"{resolution.depth_res_mm} mm per row (--depth-res)")
    if assumed:
        tqdm.write(
            f"warning: {name}: no resolution given by flag or {name}.json sidecar; ASSUMING "
            f"{' and '.join(assumed)}. Millimetres, volumes and heart rates are only as right "
            "as this guess.",
            file=sys.stderr,
        )
