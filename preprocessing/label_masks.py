"""Binary or label masks: which kind a run makes, and keeping each folder to one kind.

Two-border annotations give binary masks (0/255) of the cavity; four-border
ones give label masks (mmode.labels.WALL_LABELS, saved with their values 0-3) and a
labels.json beside them. A folder of masks or windows holds one kind only, because training
reads a folder with labels.json as label masks and one without as binary cavity masks.

Decisions where the issue is silent:
- The kind is decided before anything is written, from every annotation that can be read;
  an unreadable one is reported with its recording later.
- labels.json is written before the first mask, so a run stopped half way still leaves a
  folder whose masks and labels.json agree.
- A label run into a folder that already holds masks but no labels.json, or a binary run
  into one with labels.json, is refused rather than mixing the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmode.images import read_label_mask
from mmode.labels import LABELS_FILE, WALL_LABELS, LabelsError, read_labels, write_labels
from preprocessing.annotations import AnnotationError, PhysicalUnits, Traces, read_annotation
from preprocessing.masks import label_mask_from_traces, mask_from_traces
from runtime.errors import RecordingError, SetupError


def mask_of(traces: Traces, height: int, width: int) -> np.ndarray:
    """The 0/255 mask of two borders, or the 0-3 label mask of four (TraceError if bad)."""
    if not traces.has_walls:
        return mask_from_traces(traces.upper, traces.lower, height, width)
    return label_mask_from_traces(
        traces.ivs_top, traces.upper, traces.lower, traces.lvpw_bottom, height, width
    )


def read_run_annotations(
    pairs: list[tuple[str, Path, Path]], units: PhysicalUnits | None
) -> tuple[dict[str, Traces], dict[str, int] | None]:
    """Each readable annotation's traces by recording; and WALL_LABELS if they have walls.

    SetupError when some have four borders and others two: one data folder, one kind.
    """
    traces: dict[str, Traces] = {}
    example: dict[bool, Path] = {}
    for name, _, annotation_path in pairs:
        try:
            traces[name] = read_annotation(annotation_path, units)
        except AnnotationError:
            continue  # reported with its recording
        example.setdefault(traces[name].has_walls, annotation_path)
    if len(example) == 2:
        raise SetupError(
            f"--annotations mixes four-border annotations ({example[True].name}) with "
            f"two-border ones ({example[False].name}); trace ivs_top and lvpw_bottom in "
            "every recording, or put the two kinds in separate folders."
        )
    return traces, (WALL_LABELS if example.get(True) else None)


def claim_folder(folder: Path, labels: dict[str, int] | None, masks: Path, flag: str) -> None:
    """Keep `folder` (whose masks are in `masks`) one kind; write its labels.json if labelled.

    SetupError, naming `flag`, for a folder that holds the other kind.
    """
    try:
        existing = read_labels(folder)
    except LabelsError as err:
        raise SetupError(str(err)) from None
    if labels is None:
        if existing is not None:
            raise SetupError(
                f"{folder / LABELS_FILE} says {folder} holds label masks, but these masks are "
                f"binary; pick another {flag}, as a folder holds one kind of mask."
            )
        return
    names = [name for name, _ in sorted(labels.items(), key=lambda item: item[1])]
    if existing is None and any(masks.glob("*.png")):
        raise SetupError(
            f"{masks} holds binary masks of an earlier run (there is no {LABELS_FILE}); "
            f"pick another {flag} for label masks, as a folder holds one kind of mask."
        )
    if existing is not None and existing != names:
        raise SetupError(
            f"{folder / LABELS_FILE} names the labels {existing}, not {names}; pick another {flag}."
        )
    if existing is None:
        write_labels(folder, labels)


def labels_of_masks(masks_dir: Path) -> dict[str, int] | None:
    """The labels masks_dir/labels.json names (value by name), or None for binary masks."""
    try:
        names = read_labels(masks_dir)
    except LabelsError as err:
        raise SetupError(str(err)) from None
    return None if names is None else {name: value for value, name in enumerate(names)}


def checked_label_mask(path: Path, labels: dict[str, int]) -> np.ndarray:
    """A label mask's values, read as training reads them (mmode.images.read_label_mask);
    RecordingError for values that labels.json does not name."""
    mask = read_label_mask(path)
    unnamed = sorted(set(np.unique(mask).tolist()) - set(labels.values()))
    if unnamed:
        raise RecordingError(
            f"{path}: holds the value(s) {unnamed}, which labels.json does not name "
            f"({labels}); it is not a label mask of this folder, so redraw it or move it out."
        )
    return mask
