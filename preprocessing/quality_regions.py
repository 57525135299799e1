"""Good- and bad-quality time regions from the quality-classification tool's CSV.

Format: columns `Recording, Good-Start, Good-End[, Bad-Start, Bad-End]` (header names matched
ignoring case, spaces, '-' and '_'); times in seconds from the start of the recording; a cell
may hold several regions separated by spaces, so `0.9 3.0` / `1.5 4.3` is 0.9-1.5 s and
3.0-4.3 s.

Decisions where the issue is silent:
- A region from t0 to t1 seconds covers columns round(t0 / time_res_s) to round(t1 / time_res_s),
  both included, rounding halves up.
- Allowed columns = annotated span, inside the union of good regions, outside every bad one.
- The Recording cell may hold a file name or path (`REC.png`, `dir/REC.dcm`); its folder and
  an image or DICOM suffix are dropped. Several rows for one recording add up.
- A recording missing from the CSV gets no windows and is reported as a problem, because it
  usually means the names do not match. A recording whose allowed columns are empty is
  skipped (not an error): the tool found no good stretch in its annotated span.
- A malformed row (unequal numbers of starts and ends, a start after its end, text that is
  not a number) is a problem for that recording only.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmode.images import recording_name
from mmode.runs import true_runs
from runtime.errors import RecordingError, SetupError


@dataclass
class QualityRegions:
    good_s: list[tuple[float, float]] = field(default_factory=list)  # (start, end) in seconds
    bad_s: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class QualityTable:
    path: Path
    regions: dict[str, QualityRegions]  # by recording name
    errors: dict[str, str]  # recording name -> problem with its row

    def for_recording(self, name: str) -> QualityRegions:
        """The regions of one recording; RecordingError if it is missing or malformed."""
        if name in self.errors:
            raise RecordingError(self.errors[name])
        if name not in self.regions:
            raise RecordingError(
                f"{self.path}: no row for recording {name}, so it gets no windows; "
                "add it or leave --quality out."
            )
        return self.regions[name]


def _key(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch not in " -_")


def read_quality_csv(path: Path) -> QualityTable:
    """Parse the CSV; SetupError if it cannot be read or lacks the needed columns."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SetupError(f"cannot read the quality CSV {path} ({err}).") from None
    header = [_key(cell) for cell in rows[0]] if rows else []
    needed = ("recording", "goodstart", "goodend")
    if any(name not in header for name in needed):
        raise SetupError(
            f"the quality CSV {path} needs the columns Recording, Good-Start, Good-End "
            "[, Bad-Start, Bad-End]."
        )
    table = QualityTable(path, {}, {})
    for line_number, row in enumerate(rows[1:], start=2):
        cells = dict(zip(header, row, strict=False))
        name = recording_name(cells.get("recording", ""))
        if not name:
            continue
        regions = table.regions.setdefault(name, QualityRegions())
        try:
            regions.good_s += _regions(cells.get("goodstart", ""), cells.get("goodend", ""))
            regions.bad_s += _regions(cells.get("badstart", ""), cells.get("badend", ""))
        except ValueError as err:
            table.errors[name] = f"{path}: line {line_number} ({name}): {err}"
    return table


def _regions(starts: str, ends: str) -> list[tuple[float, float]]:
    start_s = [float(text) for text in starts.split()]
    end_s = [float(text) for text in ends.split()]
    if len(start_s) != len(end_s):
        raise ValueError(f"{len(start_s)} start time(s) but {len(end_s)} end time(s).")
    for start, end in zip(start_s, end_s, strict=True):
        if not (math.isfinite(start) and math.isfinite(end) and start <= end):
            raise ValueError(f"the region {start:g}-{end:g} s is not a time interval.")
    return list(zip(start_s, end_s, strict=True))


def seconds_to_column(time_s: float, time_res_s: float) -> int:
    """The column of a time, rounding halves up (Python's round() would round them to even)."""
    return math.floor(time_s / time_res_s + 0.5)


def allowed_segments(
    first_col: int, last_col: int, regions: QualityRegions, time_res_s: float
) -> list[tuple[int, int]]:
    """Contiguous (first, last) column runs of the span that are good and not bad."""
    allowed = np.zeros(last_col - first_col + 1, dtype=bool)
    for marked, good in ((regions.good_s, True), (regions.bad_s, False)):
        for start_s, end_s in marked:
            start = max(seconds_to_column(start_s, time_res_s) - first_col, 0)
            end = seconds_to_column(end_s, time_res_s) - first_col
            if end >= 0:
                allowed[start : end + 1] = good
    return [(first_col + start, first_col + stop - 1) for start, stop in true_runs(allowed)]
