"""Mice, not recordings: test.py --subjects FILE and per_mouse.csv.

FILE is a CSV with a `recording` column (the recording's file name without its extension)
and a `mouse_id` column, one row per recording. Every other column (genotype, sex,
body_weight_g, ...) describes the mouse and is copied into per_mouse.csv, so a mouse's
rows must agree on it.

A mouse's numbers pool the accepted beats of all its recordings
(measurement.beats.summarize): the median of each per-beat number, and the heart rate as
beats per time. A recording with many good beats so weighs more than one with few, as
when a reader averages the beats of a mouse's recordings on the scanner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from measurement.beats import SUMMARY_NUMBERS, Beat, summarize
from mmode.images import recording_name
from runtime import files
from runtime.distributed import warn
from runtime.errors import SetupError, name_some

# A measured recording's beats and whether each was accepted, by recording name.
BeatsByName = dict[str, tuple[list[Beat], list[bool]]]

RECORDING_COLUMN = "recording"
MOUSE_COLUMN = "mouse_id"
LISTED_NAMES = 20  # longer lists of names in a warning end with "and N more"


@dataclass(frozen=True)
class Subjects:
    path: Path
    mouse_of: dict[str, str]  # recording name -> mouse_id, in the file's order
    columns: list[str]  # the copied columns, in the file's order
    about: dict[str, dict[str, str]]  # mouse_id -> copied column -> value


def read_subjects(path: Path) -> Subjects:
    """The recording-to-mouse table in a CSV; SetupError naming the problem and the fix."""
    where = f"--subjects {path}"
    header, rows = files.read_csv_rows(path, where)
    for needed in (RECORDING_COLUMN, MOUSE_COLUMN):
        if needed not in header:
            raise SetupError(
                f"{where} has no column named {needed} (its columns: {', '.join(header) or 'none'}"
                f"); it needs {RECORDING_COLUMN} and {MOUSE_COLUMN}."
            )
    computed = [name for name in header if name in ("n_recordings", *SUMMARY_NUMBERS)]
    if computed:
        raise SetupError(
            f"{where} has a column named {computed[0]}, which per_mouse.csv computes; "
            "rename or remove it."
        )
    columns = [name for name in header if name not in (RECORDING_COLUMN, MOUSE_COLUMN) and name]
    mouse_of: dict[str, str] = {}
    line_of: dict[str, int] = {}
    about: dict[str, dict[str, str]] = {}
    seen_at: dict[tuple[str, str], int] = {}
    for line, row in rows:
        recording = recording_name(row.get(RECORDING_COLUMN, ""))
        mouse = row.get(MOUSE_COLUMN, "")
        if not recording or not mouse:
            empty = RECORDING_COLUMN if not recording else MOUSE_COLUMN
            raise SetupError(f"{where}: line {line} has no {empty}; fill it in or delete the row.")
        if recording in mouse_of:
            raise SetupError(
                f"{where} names recording {recording} twice (lines {line_of[recording]} and "
                f"{line}); keep one row per recording."
            )
        mouse_of[recording], line_of[recording] = mouse, line
        known = about.setdefault(mouse, {})
        for column in columns:
            value = row.get(column, "")
            if column in known and known[column] != value:
                raise SetupError(
                    f"{where} gives mouse {mouse} two values of {column} ({known[column]!r} on "
                    f"line {seen_at[mouse, column]}, {value!r} on line {line}); a mouse's rows "
                    "must agree."
                )
            known.setdefault(column, value)
            seen_at.setdefault((mouse, column), line)
    if not mouse_of:
        raise SetupError(f"{where} lists no recordings; add one row per recording.")
    return Subjects(path, mouse_of, columns, about)


def check_overlap(subjects: Subjects, recordings: list[Path]) -> None:
    """SetupError when the file names none of the recordings: surely the wrong file."""
    names = [path.stem for path in recordings]
    if not any(name in subjects.mouse_of for name in names):
        listed = next(iter(subjects.mouse_of))
        raise SetupError(
            f"--subjects {subjects.path} names none of the {len(names)} recording(s) to "
            f"measure (it has {listed!r}, they are e.g. {names[0]!r}); its recording column "
            "holds the file names without extension."
        )


def per_mouse_rows(subjects: Subjects, measured: BeatsByName, names: list[str]) -> list[dict]:
    """One row per mouse with a recording among `names`; its numbers over `measured`."""
    rows = []
    for mouse in dict.fromkeys(subjects.mouse_of.values()):
        recordings = [n for n in names if subjects.mouse_of.get(n) == mouse]
        if not recordings:
            continue
        results = [measured[n] for n in recordings if n in measured]
        beats = [beat for found, _ in results for beat in found]
        accepted = [ok for _, oks in results for ok in oks]
        rows.append(
            {
                MOUSE_COLUMN: mouse,
                "n_recordings": len(recordings),
                **summarize(beats, accepted),
                **subjects.about[mouse],
            }
        )
    return rows


def write_per_mouse(
    path: Path, subjects: Subjects, measured: BeatsByName, names: list[str]
) -> None:
    """Write per_mouse.csv; warn about recordings without a mouse and rows without a recording."""
    unlisted = [name for name in names if name not in subjects.mouse_of]
    if unlisted:
        warn(f"{len(unlisted)} recording(s) are not in {subjects.path}, so they count for no "
             f"mouse: {listing(unlisted)}.")  # fmt: skip
    absent = [name for name in subjects.mouse_of if name not in names]
    if absent:
        warn(f"{subjects.path} names {len(absent)} recording(s) that are not among the "
             f"measured ones: {listing(absent)}.")  # fmt: skip
    fields = [MOUSE_COLUMN, "n_recordings", *SUMMARY_NUMBERS, *subjects.columns]
    files.write_csv(path, fields, per_mouse_rows(subjects, measured, names))


def listing(names: list[str]) -> str:
    return name_some(names, LISTED_NAMES)
