"""Read the traces of one recording from a CSV or LabelMe annotation.

Two borders (the cavity): upper (the septum's LV side) and lower (the posterior wall's LV
side). Four borders (the walls too) add ivs_top (the septum's RV side, above upper) and
lvpw_bottom (the posterior wall's epicardial side, below lower); an annotation has both or
neither.

CSV (`REC.csv`): header `trace,x,y` (any case, extra columns ignored); `trace` is one of
the four names (any case); x the column (time), y the row (depth, 0 at the top), in pixels,
possibly fractional; rows in any order.

LabelMe (`REC.json`, versions 4 and 5): shapes labelled with the four names whose shape_type is
linestrip, line, points or point; all shapes with one label add up to one trace. The image
size LabelMe saw (imageHeight, imageWidth) is kept so that it can be checked against the
recording; imagePath is not checked, because files are paired by name.

Physical units: with `PhysicalUnits`, CSV x is read as seconds and y as millimetres from
the top-left pixel (x = 0 s at column 0, y = 0 mm at row 0) and divided by the resolutions.
LabelMe always stores pixels, so units never apply to it.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import RecordingError

TRACE_LABELS = ("upper", "lower")
WALL_TRACES = ("ivs_top", "lvpw_bottom")
# Every accepted label, from the top of the image down.
ALL_TRACES = ("ivs_top", "upper", "lower", "lvpw_bottom")
LABEL_ADVICE = "use ivs_top, upper, lower or lvpw_bottom"
LABELME_SHAPE_TYPES = ("linestrip", "line", "points", "point")


@dataclass
class Traces:
    upper: np.ndarray  # (N, 2) float: x (column), y (row), in pixels
    lower: np.ndarray
    image_size: tuple[int, int] | None = None  # (height, width) the annotation tool saw
    ivs_top: np.ndarray | None = None  # the walls' outer borders, None for two borders
    lvpw_bottom: np.ndarray | None = None

    @property
    def has_walls(self) -> bool:
        """True for a four-border annotation (ivs_top and lvpw_bottom traced)."""
        return self.ivs_top is not None

    def named(self) -> dict[str, np.ndarray]:
        """The traces there are, by name, from the top of the image down."""
        found = {name: getattr(self, name) for name in ALL_TRACES}
        return {name: trace for name, trace in found.items() if trace is not None}


@dataclass(frozen=True)
class PhysicalUnits:
    depth_res_mm: float  # millimetres per row
    time_res_s: float  # seconds per column


class AnnotationError(RecordingError):
    """An annotation file that cannot be read; the message names the file."""


def read_annotation(path: Path, units: PhysicalUnits | None = None) -> Traces:
    """The traces in a `.csv` or LabelMe `.json` annotation."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_labelme(path)
    return read_csv(path, units)


def read_csv(path: Path, units: PhysicalUnits | None = None) -> Traces:
    """The traces in a `trace,x,y` CSV; with `units`, x is in seconds and y in millimetres."""
    path = Path(path)
    points: dict[str, list[tuple[float, float]]] = {label: [] for label in ALL_TRACES}
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise AnnotationError(f"{path}: cannot read it as a CSV file ({err}).") from None
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    missing = [name for name in ("trace", "x", "y") if name not in header]
    if missing:
        raise AnnotationError(f"{path}: the header must name trace,x,y; missing {missing}.")
    trace_at, x_at, y_at = (header.index(name) for name in ("trace", "x", "y"))
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            label, x, y = row[trace_at], row[x_at], row[y_at]
        except IndexError:
            raise AnnotationError(f"{path}: line {line_number} has too few columns.") from None
        label = label.strip().lower()
        if label not in points:
            raise AnnotationError(
                f"{path}: unknown trace label {label!r} on line {line_number}; {LABEL_ADVICE}."
            )
        where = f"on line {line_number}"
        points[label].append((_number(x, path, where), _number(y, path, where)))
    traces = _traces(points, path)
    if units is not None:
        for trace in traces.named().values():
            trace[:, 0] /= units.time_res_s
            trace[:, 1] /= units.depth_res_mm
    return traces


def read_labelme(path: Path) -> Traces:
    """The traces in a LabelMe JSON file (coordinates in pixels)."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise AnnotationError(f"{path}: cannot read it as JSON ({err}).") from None
    if not isinstance(content, dict) or not isinstance(content.get("shapes"), list):
        raise AnnotationError(f"{path}: not a LabelMe file (no 'shapes' list).")
    points: dict[str, list[tuple[float, float]]] = {label: [] for label in ALL_TRACES}
    for number, shape in enumerate(content["shapes"], start=1):
        if not isinstance(shape, dict):
            raise AnnotationError(f"{path}: shape {number} is not a LabelMe shape.")
        label = str(shape.get("label", "")).strip().lower()
        # LabelMe leaves shape_type out for polygons in old files.
        shape_type = shape.get("shape_type") or "polygon"
        if label not in points:
            raise AnnotationError(
                f"{path}: shape {number} has the unknown label {label!r}; {LABEL_ADVICE}."
            )
        if shape_type not in LABELME_SHAPE_TYPES:
            raise AnnotationError(
                f"{path}: shape {number} ({label}) is a {shape_type}; draw traces as "
                "linestrip, line or points."
            )
        shape_points = shape.get("points", [])
        if not isinstance(shape_points, list):
            raise AnnotationError(
                f"{path}: shape {number} ({label}) has points {shape_points!r}, not a list "
                "of [x, y] points."
            )
        for point in shape_points:
            if not isinstance(point, list) or len(point) != 2:
                raise AnnotationError(f"{path}: shape {number} has a point {point!r}.")
            where = f"in shape {number}"
            points[label].append((_number(point[0], path, where), _number(point[1], path, where)))
    traces = _traces(points, path)
    height, width = content.get("imageHeight"), content.get("imageWidth")
    if isinstance(height, int) and isinstance(width, int):
        traces.image_size = (height, width)
    return traces


def _traces(points: dict[str, list[tuple[float, float]]], path: Path) -> Traces:
    """Traces from the points per label: upper and lower, and both wall traces or neither."""
    traces = Traces(*(_as_array(points[label], label, path) for label in TRACE_LABELS))
    walls = [label for label in WALL_TRACES if points[label]]
    if len(walls) == 1:
        missing = next(label for label in WALL_TRACES if label not in walls)
        raise AnnotationError(
            f"{path}: it traces {walls[0]} but not {missing}; a four-border annotation needs "
            f"both wall traces, so add {missing} or remove {walls[0]} for two borders."
        )
    if walls:
        traces.ivs_top = _as_array(points["ivs_top"], "ivs_top", path)
        traces.lvpw_bottom = _as_array(points["lvpw_bottom"], "lvpw_bottom", path)
    return traces


def _number(text: object, path: Path, where: str) -> float:
    try:
        # float(True) is 1.0: a boolean in a LabelMe file is a mistake, not a coordinate.
        value = math.nan if isinstance(text, bool) else float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise AnnotationError(f"{path}: {text!r} {where} is not a coordinate.")
    return value


def _as_array(points: list[tuple[float, float]], label: str, path: Path) -> np.ndarray:
    if not points:
        raise AnnotationError(f"{path}: the {label} trace is missing (no points labelled {label}).")
    return np.array(points, dtype=np.float64).reshape(-1, 2)
