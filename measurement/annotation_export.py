"""Write a measured recording's LV edges as annotations that preprocessing reads back.

An annotator then corrects the traces in LabelMe (or a CSV) instead of drawing them, and
make_masks / make_dataset take the corrected files as they take hand-made ones
(preprocessing/annotations.py for the formats, preprocessing/masks.py for the mask rule).

Files, for a recording NAME measured into FOLDER:
- FOLDER/csv/NAME.csv: `trace,x,y`, upper then lower, x the column and y the row in pixels.
- FOLDER/labelme/NAME.json: LabelMe 5, one linestrip per trace, imageData null and imagePath
  the recording's path relative to FOLDER/labelme (LabelMe resolves imagePath against the
  JSON's own folder, and writes it that way when it saves). Move the JSON and its imagePath
  no longer finds the image; keep the two folders where they are, or fix imagePath.
The two formats go to separate folders because make_masks pairs REC.png with REC.csv OR
REC.json: a folder holding both is a name clash. Pass one of them as --annotations. The JSON
must not be put beside the recording either: there REC.json is the resolution sidecar.

Decisions:
- Only one contiguous stretch is exported: the longest run (in columns) of consecutive
  accepted beats, from the first beat's ED column to the last beat's next ED. make_masks
  fills every column between the first and last annotated column by interpolation, so
  two stretches in one file would annotate the rejected beats between them as well.
  Beats are consecutive when one's next ED is the other's ED (within a column); beats
  across a gap in the edges are not.
- Traces are sparse, like a human's clicks: each edge is simplified with Ramer-Douglas-
  Peucker on the vertical distance (rows), with ROW_TOLERANCE, keeping the stretch's ends
  and every beat's ED and ES columns. Vertical, not perpendicular, distance because the
  mask is drawn column by column from the linearly interpolated trace: then every column
  of the stretch lies within ROW_TOLERANCE (+ rounding) of the measured edge.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from measurement.beats import Beat
from measurement.edges import Edges
from measurement.quality import beat_columns
from measurement.walls import Walls
from runtime import files
from runtime.errors import WriteError

ROW_TOLERANCE = 0.5  # rows; an annotator cannot click finer than this
DECIMALS = 2  # of y in the files; 0.005 row of rounding on top of the tolerance
CSV_FOLDER, LABELME_FOLDER = "csv", "labelme"
LABELME_VERSION = "5.4.1"


def export_annotations(
    folder: Path,
    name: str,
    image_path: Path,
    image_shape: tuple[int, int],
    edges: Edges,
    beats: list[Beat],
    accepted: list[bool],
    time_res_s: float,
    walls: Walls | None = None,
) -> list[Path]:
    """Write FOLDER/csv/NAME.csv and FOLDER/labelme/NAME.json for the longest run of
    accepted beats; the paths written, or [] (and nothing written) without such a run.

    With `walls` (a four-class model) the files hold all four borders, ivs_top and
    lvpw_bottom too, so that they make label masks again.
    """
    height, width = image_shape
    rows = {"upper": edges.upper_row, "lower": edges.lower_row}
    if walls is not None:
        rows = {"ivs_top": walls.ivs_top_row, **rows, "lvpw_bottom": walls.lvpw_bottom_row}
    stretch = longest_accepted_stretch(rows, beats, accepted, time_res_s)
    if stretch is None:
        return []
    start, stop, keep = stretch
    traces = {label: sparse_trace(row, start, stop, keep, height) for label, row in rows.items()}
    csv_path = Path(folder) / CSV_FOLDER / f"{name}.csv"
    json_path = Path(folder) / LABELME_FOLDER / f"{name}.json"
    for folder_path in (csv_path.parent, json_path.parent):
        try:
            folder_path.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a full or read-only disk stops the command, as a file would
            raise WriteError(folder_path, err) from None
    rows = [
        {"trace": label, "x": int(x), "y": f"{y:.{DECIMALS}f}"}
        for label, points in traces.items()
        for x, y in points
    ]
    files.write_csv(csv_path, ["trace", "x", "y"], rows)
    labelme = labelme_content(
        traces, image_relative_path(image_path, json_path.parent), height, width
    )
    files.write_text(json_path, json.dumps(labelme, indent=2) + "\n")
    return [csv_path, json_path]


def longest_accepted_stretch(
    rows: dict[str, np.ndarray], beats: list[Beat], accepted: list[bool], time_res_s: float
) -> tuple[int, int, list[int]] | None:
    """(first column, last column, columns to keep) of the longest run of consecutive
    accepted beats whose borders (`rows`) are all measured throughout; None if none."""
    finite = np.logical_and.reduce([np.isfinite(row) for row in rows.values()])
    best: tuple[int, int, list[int]] | None = None
    run: tuple[int, int, list[int]] | None = None
    for beat, ok in zip(beats, accepted, strict=True):
        ed, es, next_ed = beat_columns(beat, time_res_s)
        # A beat without both edges in every column would leave a hole in the trace.
        usable = ok and 0 <= ed and next_ed < finite.size and bool(finite[ed : next_ed + 1].all())
        if not usable:
            run = None
            continue
        if run is not None and abs(ed - run[1]) <= 1:  # this beat starts where the run ends
            run = (run[0], next_ed, [*run[2], ed, es])
        else:
            run = (ed, next_ed, [ed, es])
        if best is None or run[1] - run[0] > best[1] - best[0]:
            best = run
    return best


def sparse_trace(
    row: np.ndarray, start: int, stop: int, keep: list[int], height: int
) -> list[tuple[int, float]]:
    """(column, row) points of one edge over columns start..stop, simplified within
    ROW_TOLERANCE, always keeping start, stop and the columns in keep."""
    # An edge may lie up to half a row outside the image (edges.py); preprocessing
    # refuses points outside it, and the clipped row changes no pixel of the mask.
    ys = np.clip(row[start : stop + 1], 0.0, height - 1.0)
    anchors = sorted({0, stop - start, *(k - start for k in keep if start <= k <= stop)})
    kept = set(anchors)
    for first, last in zip(anchors[:-1], anchors[1:], strict=True):
        kept.update(rdp_vertical(ys, first, last, ROW_TOLERANCE))
    return [(start + i, round(float(ys[i]), DECIMALS)) for i in sorted(kept)]


def rdp_vertical(ys: np.ndarray, first: int, last: int, tolerance: float) -> list[int]:
    """Indices between first and last (both kept) that Ramer-Douglas-Peucker keeps so that
    the polyline through them is within tolerance of ys, vertically, at every index."""
    kept = []
    stack = [(first, last)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        inner = np.arange(a + 1, b)
        line = ys[a] + (ys[b] - ys[a]) * (inner - a) / (b - a)
        errors = np.abs(ys[a + 1 : b] - line)
        worst = int(np.argmax(errors))
        if errors[worst] > tolerance:
            split = a + 1 + worst
            kept.append(split)
            stack += [(a, split), (split, b)]
    return kept


def image_relative_path(image_path: Path, json_folder: Path) -> str:
    """imagePath as LabelMe writes it: relative to the JSON's folder, with forward slashes."""
    try:
        relative = os.path.relpath(Path(image_path).resolve(), Path(json_folder).resolve())
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(image_path).resolve().as_posix()
    return Path(relative).as_posix()


def labelme_content(
    traces: dict[str, list[tuple[int, float]]], image_path: str, height: int, width: int
) -> dict:
    """A LabelMe 5 file: one linestrip per trace; the image is read from imagePath."""
    shapes = [
        {
            "label": label,
            "points": [[float(x), y] for x, y in points],
            "group_id": None,
            "description": "",
            "shape_type": "linestrip",
            "flags": {},
            "mask": None,
        }
        for label, points in traces.items()
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
