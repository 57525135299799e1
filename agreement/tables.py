"""The tables `python -m agreement` compares: CSV rows by key, the --key and --column
mappings, and each column's numbers, refused where their median lies off the range of mice
(PLAUSIBLE) by another unit's factor (UNIT_SLIPS) or a cell is beyond any unit."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agreement.bland_altman import Key, unit
from runtime import files
from runtime.errors import SetupError

# Where the median of a cohort of adult mice lies, per measurement in the unit its name
# ends in: the ranges of echocardiography of anaesthetised mice (LVIDd 2.5-4.0 mm, LVIDs
# 0.9-2.8 mm, walls 0.6-1.1 mm in diastole and up to about 2 mm in systole, EF 20-95 %,
# FS 10-70 %, 300-900 bpm, LV mass 40-250 mg), and for the derived numbers what those
# give (Teichholz or cube volumes of those diameters, times those heart rates). Only a
# median is checked against them, and only for the unit slips below: a cohort of sick or
# unusual mice may well lie outside.
PLAUSIBLE = {
    "lvid_d_mm": (2.5, 4.0),
    "lvid_s_mm": (0.9, 2.8),
    "ivs_d_mm": (0.6, 1.1),
    "lvpw_d_mm": (0.6, 1.1),
    "ivs_s_mm": (0.6, 2.0),
    "lvpw_s_mm": (0.6, 2.0),
    "ef_percent": (20.0, 95.0),
    "fs_percent": (10.0, 70.0),
    "heart_rate_bpm": (300.0, 900.0),
    "lv_mass_mg": (40.0, 250.0),
    "lv_mass_corrected_mg": (30.0, 250.0),  # 0.8 x the mass
    "volume_d_ul": (10.0, 200.0),
    "volume_s_ul": (0.5, 80.0),
    "sv_ul": (5.0, 160.0),
    "co_ml_min": (1.5, 150.0),
    "rwt": (0.25, 0.9),  # 2 x LVPWd / LVIDd
}
# Other units a lab's table may be in, per our unit: (its name, the factor that converts
# its numbers to ours). A cm table read as mm gives a bias of about 2.7 mm and an ICC near
# 0, which no statistic flags as a unit, so such a median is refused with its factor.
UNIT_SLIPS = {
    "mm": (("cm", 10.0), ("µm", 0.001)),
    "%": (("a fraction", 100.0),),
    "bpm": (("beats per second", 60.0),),
    "mg": (("g", 1000.0),),
    "µL": (("mL", 1000.0),),
    "mL/min": (("µL/min", 0.001), ("L/min", 1000.0)),
}
# A converted median up to this factor off the range still reads as that unit (a cohort of
# dilated hearts in cm). Each unit's factor exceeds its ranges' span times this squared, so
# a median in our unit that is this far off is never taken for another unit's.
SLIP_MARGIN = 1.5
# A cell this many times the top of its measurement's range is no unit's slip (µm for mm
# is 1000) but a typo or a broken export; beyond it the statistics would overflow too.
BEYOND_ANY_UNIT = 1e6
# The same for a column without a range (a mapped or --measure column of the lab's own):
# far above any measurement of a mouse, far below where squares of floats overflow.
BEYOND_ANY_MEASUREMENT = 1e12


@dataclass(frozen=True)
class Table:
    """A CSV file's columns and its rows by key (the key columns' texts -> line, row)."""

    path: Path
    columns: tuple[str, ...]
    rows: dict[Key, tuple[int, dict[str, str]]]


def read_table(path: str | Path, key: Sequence[str]) -> Table:
    """A CSV file's rows by key; SetupError for a missing file, key column or duplicate key."""
    path = Path(path)
    header, lines = files.read_csv_rows(path, str(path))
    missing = [name for name in key if name not in header]
    if missing:
        raise SetupError(
            f"{path} has no key column {missing[0]!r} (its columns: {', '.join(header)}); "
            "name the columns that identify a mouse with --key, as AUTO_COL=MANUAL_COL "
            "where the two tables name one differently."
        )
    rows: dict[Key, tuple[int, dict[str, str]]] = {}
    for line, row in lines:
        value = tuple(row.get(name, "") for name in key)
        if not all(value):
            raise SetupError(
                f"line {line} of {path} has an empty {' or '.join(key)}; "
                "fill it in or delete the row."
            )
        if value in rows:
            raise SetupError(
                f"key {show(value)} is on lines {rows[value][0]} and {line} of {path}; "
                "keep one row per key or add a column to --key."
            )
        rows[value] = (line, row)
    if not rows:
        raise SetupError(f"{path} has a header but no rows; pass the table with its data.")
    return Table(path, tuple(header), rows)


def show(key: Key) -> str:
    """A key as one text, its columns' values joined by "/"."""
    return "/".join(key)


def parse_columns(mappings: Sequence[str]) -> dict[str, str]:
    """--column values AUTO_COL=MANUAL_COL as {auto column: manual column}."""
    columns: dict[str, str] = {}
    for mapping in mappings:
        auto, sep, manual = mapping.partition("=")
        if not sep or not auto.strip() or not manual.strip():
            raise SetupError(
                f"--column {mapping!r} is not AUTO_COL=MANUAL_COL; "
                'write e.g. --column lvid_d_mm="LVID;d".'
            )
        columns[auto.strip()] = manual.strip()
    return columns


def parse_key(value: str) -> tuple[list[str], list[str]]:
    """--key as (the auto table's key columns, the manual table's): comma-separated names,
    each NAME or, for a column the manual table names otherwise, AUTO_COL=MANUAL_COL."""
    auto, manual = [], []
    for part in split_names([value]):
        name, sep, other = part.partition("=")
        if sep and (not name.strip() or not other.strip()):
            raise SetupError(
                f"--key {part!r} is not NAME or AUTO_COL=MANUAL_COL; "
                'write e.g. --key mouse_id="Mouse ID".'
            )
        auto.append(name.strip())
        manual.append(other.strip() if sep else name.strip())
    if not auto:
        raise SetupError("--key names no column; pass e.g. --key mouse_id.")
    return auto, manual


def split_names(values: Sequence[str]) -> list[str]:
    """Comma-separated names of one or more flags, whitespace stripped."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def column_numbers(table: Table, column: str, measure: str) -> dict[Key, float]:
    """Every number of a column by key (empty and NA cells left out), checked against the
    range of `measure` in mice; SetupError naming the cell or the column."""
    numbers = {}
    for key, (line, row) in table.rows.items():
        text = row.get(column) or ""
        value = files.read_number(text, line, str(table.path), column)
        if value is not None:
            check_magnitude(value, text, line, table, column, measure)
            numbers[key] = value
    if numbers:
        check_unit(statistics.median(numbers.values()), table, column, measure)
    return numbers


def check_magnitude(
    value: float, text: str, line: int, table: Table, column: str, measure: str
) -> None:
    """SetupError for a cell no unit explains (see BEYOND_ANY_UNIT)."""
    if measure in PLAUSIBLE:
        if abs(value) <= BEYOND_ANY_UNIT * PLAUSIBLE[measure][1]:
            return
        about = f"no {measure} of a mouse in any unit (mice: {in_mice(measure)})"
    else:
        if abs(value) <= BEYOND_ANY_MEASUREMENT:
            return
        about = "beyond any measurement of a mouse in any unit"
    raise SetupError(
        f"line {line} of {table.path}, column {column!r}, holds {text.strip()!r}, which is "
        f"{about}; correct it or leave the cell empty."
    )


def check_unit(median: float, table: Table, column: str, measure: str) -> None:
    """SetupError when a column's median lies off the range of mice by the factor of
    another unit (PLAUSIBLE, UNIT_SLIPS), naming the unit and the factor that fixes it."""
    if measure not in PLAUSIBLE:
        return
    low, high = PLAUSIBLE[measure]
    ours = unit(measure)
    if low <= median <= high:
        return
    for theirs, factor in UNIT_SLIPS.get(ours, ()):
        if low / SLIP_MARGIN <= median * factor <= high * SLIP_MARGIN:
            named = f"{column!r}" if column == measure else f"{column!r} ({measure})"
            raise SetupError(
                f"{table.path}: the median of column {named} is {median:.3g}, which looks "
                f"like {theirs} rather than {ours} (mice: {in_mice(measure)}); multiply "
                f"the column by {factor:g} to convert it to {ours}."
            )


def in_mice(measure: str) -> str:
    """A measurement's plausible range in mice as text, e.g. "2.5-4 mm"."""
    low, high = PLAUSIBLE[measure]
    return f"{low:g}-{high:g} {unit(measure)}".rstrip()
