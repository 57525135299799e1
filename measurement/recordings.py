"""Measure one whole recording and write its files (test.py's second mode).

For each recording REC: REC_mask.png, REC_overlay.png, REC_lvid.csv, REC_beats.csv,
REC_report.png (unless the report is off), with export_annotations annotations/csv/REC.csv
and annotations/labelme/REC.json, and last REC_summary.json, which names the model.
measurement.study measures a folder of them.

Measuring is two steps: `segment` reads the recording and runs the network; the steps
after it (`finish_recording`: edges, beats, quality, the files) can run in another
process. A recording's files are all there or none: when its measuring stops part-way
(Ctrl-C, a full disk) the files it wrote are removed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from measurement.annotation_export import export_annotations
from measurement.beats import BEAT_FIELDS, SUMMARY_NUMBERS, Beat
from measurement.inference import Model
from measurement.outputs import ANNOTATIONS_FOLDER, annotation_files, earlier_results
from measurement.pipeline import MeasureSettings, measure_probabilities, probabilities
from measurement.quality import QUALITY_FIELDS, BeatQuality
from measurement.recording_messages import assumed_resolution, no_beat, no_motion, recording_problem
from measurement.report import recording_overlay, save_report
from mmode.images import IMAGE_SUFFIXES, list_files, read_recording
from mmode.scanner import Resolution, read_sidecar, resolve_resolution
from runtime import files
from runtime.distributed import warn
from runtime.errors import RecordingError, SetupError, name_some

# model is last, so that a reader of summary.csv's other columns by position still works.
SUMMARY_FIELDS = [
    "name", "status", *SUMMARY_NUMBERS, "volume_formula", "time_res_s", "depth_res_mm",
    "time_res_assumed", "depth_res_assumed", "error", "model",
]  # fmt: skip
NAMED_CLASHES = 5  # recordings named in the message about names used twice


@dataclass(frozen=True)
class Measuring:
    """How recordings are measured and what test.py writes: its flags, resolved."""

    settings: MeasureSettings  # the measuring itself (measurement.pipeline)
    time_res_s: float | None  # given by --time-res; None: from the sidecar, else assumed
    depth_res_mm: float | None
    export_annotations: bool = False  # write the accepted edges as annotation files
    model: str | None = None  # the checkpoint as the outputs name it; None: not named
    report: bool = True  # draw REC_report.png (most of the time after the network)
    workers: int = 1  # processes for the steps after the network; 1: all in this one


def list_recordings(path: Path) -> list[Path]:
    """The image itself, or the images directly in a folder (sidecars and others skipped).

    Every output is named by the recording's name (its file name without the suffix), so
    two images of one name (rec.png and rec.tif) are refused, both named, before anything
    is measured. A folder that an earlier test.py run wrote into keeps its images
    (NAME_mask.png, ...) out of the list, with a warning: they are results, not recordings.
    """
    if path.is_file():
        return [path]
    found, clashes = list_files(path)
    if clashes:
        named = [f"{kept.name} and {other.name}" for kept, other in clashes]
        raise SetupError(
            f"{path} holds recordings of the same name ({name_some(named, NAMED_CLASHES)}), "
            "and test.py names every output by the file name without its extension; rename "
            "one of each."
        )
    results = {p.resolve() for p in earlier_results(path)}
    recordings = sorted(p for p in found.values() if p.resolve() not in results)
    skipped = len(found) - len(recordings)
    if skipped:
        warn(
            f"{path} holds the results of an earlier test.py run; its {skipped} result "
            "image(s) (NAME_mask.png, NAME_overlay.png, NAME_report.png) are not measured."
        )
    if not recordings:
        raise SetupError(
            f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no img/ and mask/ "
            "folders; pass a test set, an image or a folder of images."
        )
    return recordings


@dataclass(frozen=True)
class Measured:
    """One measured recording, as the folder's outputs need it."""

    name: str
    summary: dict  # as in REC_summary.json
    beats: list[Beat]
    judged: list[BeatQuality]
    problem: str | None = None  # why it counts as failed although its files were written
    warnings: tuple[str, ...] = ()  # what the reader should know although it was measured

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


@dataclass(frozen=True)
class Segmented:
    """A recording read and segmented: all that the steps after the network need, small
    enough to hand to a worker process."""

    path: Path
    image: np.ndarray  # uint8 (H, W)
    dim_note: str | None  # how the image was read, when the reader should know
    resolution: Resolution
    warnings: tuple[str, ...]  # for the reader, once the recording's result is printed
    probs: np.ndarray  # the network's probabilities: (H, W), or (K, H, W) for K classes


def segment(model: Model, path: Path, measuring: Measuring) -> Segmented:
    """Read a recording and its resolution, and run the network over it."""
    image, dim_note = read_recording(path)
    try:
        sidecar = read_sidecar(path)
    except ValueError as err:
        raise RecordingError(str(err)) from None
    resolution = resolve_resolution(sidecar, measuring.time_res_s, measuring.depth_res_mm)
    assumed = assumed_resolution(path.stem, resolution)
    probs = probabilities(image, model, measuring.settings, resolution.time_res_s)
    return Segmented(path, image, dim_note, resolution, (assumed,) if assumed else (), probs)


def measure_complete(model: Model, path: Path, measuring: Measuring, out: Path) -> Measured:
    """Segment and measure one recording, and write its files."""
    return finish_complete(segment(model, path, measuring), measuring, out)


def finish_complete(segmented: Segmented, measuring: Measuring, out: Path) -> Measured:
    """finish_recording, leaving all of the recording's files or none: whatever stops it
    part-way (Ctrl-C, a full disk) removes those it wrote."""
    written: list[Path] = []
    try:
        return finish_recording(segmented, measuring, out, written)
    except BaseException:
        for written_path in reversed(written):
            if written_path.is_dir():
                with contextlib.suppress(OSError):  # only the folders it made, if empty
                    written_path.rmdir()
            else:
                written_path.unlink(missing_ok=True)
        raise


def finish_recording(
    segmented: Segmented, measuring: Measuring, out: Path, written: list[Path]
) -> Measured:
    """Measure a segmented recording and write its files, each path added to `written`
    before it is written; its summary last, once the others are complete.

    A recording without cardiac motion, without a complete beat or without an accepted
    beat keeps its files, so that the reader sees why, and comes back with its problem set.
    """
    image, dim_note, resolution = segmented.image, segmented.dim_note, segmented.resolution
    name = segmented.path.stem
    measured = measure_probabilities(segmented.probs, image, resolution, measuring.settings)
    edges, walls, beats, judged = measured.edges, measured.walls, measured.beats, measured.judged
    lvid, volume, accepted = measured.lvid_mm, measured.volume_ul, measured.accepted
    if measured.motionless:
        error = no_motion(name, resolution, measuring.depth_res_mm)
    elif not beats:
        error = no_beat(name, lvid, resolution, measuring.time_res_s, measuring.depth_res_mm)
    else:
        error = None
    problem = recording_problem(name, judged) if error is None else f"{name}: {error}."
    warnings = segmented.warnings
    if problem and dim_note:
        problem = f"{problem.removesuffix('.')}; {dim_note}."
    elif dim_note:
        warnings += (f"{name}: {dim_note}.",)
    summary = {
        **measured.summary(),
        "volume_formula": measuring.settings.volume_formula,
        **asdict(resolution),
        **({"error": error} if error else {}),
        "model": measuring.model,
    }
    result = Measured(name, summary, beats, judged, problem, warnings)
    overlay = recording_overlay(image, edges, walls)

    def target(file_name: str) -> Path:
        written.append(out / file_name)
        return out / file_name

    mask = edges.mask(image.shape[0])
    files.save_png(target(f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    files.save_png(target(f"{name}_overlay.png"), overlay)
    time_s = np.arange(lvid.size) * resolution.time_res_s
    columns = [
        {"time_s": t, "lvid_mm": d, "volume_ul": v}
        for t, d, v in zip(time_s.tolist(), lvid.tolist(), volume.tolist(), strict=True)
    ]
    files.write_csv(target(f"{name}_lvid.csv"), ["time_s", "lvid_mm", "volume_ul"], columns)
    files.write_csv(
        target(f"{name}_beats.csv"), [*BEAT_FIELDS, *QUALITY_FIELDS], result.beat_rows()
    )
    if measuring.report:
        save_report(
            target(f"{name}_report.png"), overlay, lvid, volume, beats, judged, resolution,
            name, summary,
        )  # fmt: skip
    if measuring.export_annotations and not result.problem:
        annotations = annotation_files(out, name)
        # The folders first, so that removing in reverse takes the files, then the folders
        # this recording made (an rmdir only succeeds on an empty folder).
        folders = [out / ANNOTATIONS_FOLDER, *(p.parent for p in annotations)]
        written += [folder for folder in folders if not folder.exists()] + annotations
        export_annotations(
            out / ANNOTATIONS_FOLDER, name, segmented.path, image.shape, edges, beats,
            accepted, resolution.time_res_s, walls,
        )  # fmt: skip
    # Last: a summary marks the recording's files as complete (measurement.outputs).
    files.write_text(target(f"{name}_summary.json"), json.dumps(summary, indent=2) + "\n")
    return result
