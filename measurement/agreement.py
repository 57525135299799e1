"""Agreement of automatic measurements with a lab's manual readings, mouse by mouse.

    python -m measurement.agreement --auto AUTO.csv --manual MANUAL.csv --key mouse_id --out DIR
    python -m measurement.agreement --auto ours.csv --manual lab.csv --key study,mouse_id \\
        --column lvid_d_mm="LVID;d" --column lvid_s_mm="LVID;s" --out DIR

Both tables are CSV files with one row per key (a mouse, say). The rows are joined on the
--key columns (one or more, comma-separated; compared as text, whitespace stripped).
Compared by default: every summary measurement (SUMMARY_MEASURES) that both tables have.
--column AUTO_COL=MANUAL_COL (repeatable) compares AUTO_COL of --auto with MANUAL_COL of
--manual and reports it under AUTO_COL, for a lab whose columns have their own names; a
mapped column is compared even if it is not a summary name. --measure NAME (repeatable or
comma-separated; names as in --auto) compares only these.

Per measurement, over the keys where both cells are numbers (an empty, NA or NaN cell is
skipped): n, bias = mean(auto - manual), the SD of the differences, the 95 % limits of
agreement bias -+ 1.96 SD (Bland & Altman 1986), Pearson r, ICC(A,1) (two-way random
effects, absolute agreement, one rater; McGraw & Wong 1996, Shrout & Fleiss's ICC(2,1)),
and the manual mean for scale. Writes DIR/agreement.csv, DIR/bland_altman.png (one panel
per measurement) and DIR/unmatched.csv (the keys in one table only); prints the table.
Bad input is one `error:` line on stderr, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from measurement.beats import SUMMARY_NUMBERS
from measurement.bland_altman import (
    AGREEMENT_FIELDS,
    Agreement,
    Key,
    Pairs,
    agreement,
    save_bland_altman,
    unit,
)
from runtime import files
from runtime.distributed import warn
from runtime.errors import SetupError, WriteError, name_some

SUMMARY_MEASURES = SUMMARY_NUMBERS[2:]  # test.py's summary numbers, beat counts left out
MISSING = ("", "na", "n/a", "nan")  # cells read as "no value", in lower case
MIN_PAIRS = 3
SHOWN_KEYS = 20  # unmatched keys named in a warning; unmatched.csv lists all


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
            "name the columns that identify a mouse with --key."
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


def choose_measures(
    auto: Table, manual: Table, measures: Sequence[str], columns: dict[str, str]
) -> list[tuple[str, str]]:
    """(auto column, manual column) of each measurement to compare.

    Named ones (--measure, or mapped by --column) must be in their tables; by default every
    summary measurement both tables have, and every mapped one.
    """
    if measures:
        chosen = list(dict.fromkeys(measures))
    else:
        shared = [m for m in SUMMARY_MEASURES if columns.get(m, m) in manual.columns]
        shared = [m for m in shared if m in auto.columns]
        chosen = list(dict.fromkeys([*shared, *columns]))
    pairs = []
    for measure in chosen:
        column = columns.get(measure, measure)
        if measure not in auto.columns:
            raise SetupError(
                f"{auto.path} has no column {measure!r} (its columns: {', '.join(auto.columns)}); "
                "fix the name given to --measure or --column."
            )
        if column not in manual.columns:
            raise SetupError(
                f"{manual.path} has no column {column!r} (its columns: "
                f"{', '.join(manual.columns)}); map yours with --column {measure}=MANUAL_COL."
            )
        pairs.append((measure, column))
    if not pairs:
        raise SetupError(
            f"{auto.path} and {manual.path} share no measurement column "
            f"({', '.join(SUMMARY_MEASURES)}); map yours with --column AUTO_COL=MANUAL_COL."
        )
    return pairs


def number(table: Table, key: Key, column: str) -> float | None:
    """The cell as a number (None when empty); SetupError naming file, line and column."""
    line, row = table.rows[key]
    text = (row.get(column) or "").strip()
    if text.lower() in MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.inf
    if not math.isfinite(value):
        raise SetupError(
            f"line {line} of {table.path}, column {column!r}, holds {text!r}, not a number; "
            "correct it or leave the cell empty."
        )
    return value


def pair_up(auto: Table, manual: Table, measure: str, column: str, keys: list[Key]) -> Pairs:
    """The keys where both tables hold a number for this measurement, with the numbers."""
    kept, auto_values, manual_values = [], [], []
    for key in keys:
        a, m = number(auto, key, measure), number(manual, key, column)
        if a is not None and m is not None:
            kept.append(key)
            auto_values.append(a)
            manual_values.append(m)
    return Pairs(measure, tuple(kept), np.array(auto_values), np.array(manual_values))


@dataclass(frozen=True)
class Comparison:
    """What one run found: the pairs and agreement of each measurement, and the keys
    in one table only."""

    pairs: list[Pairs]
    results: list[Agreement]
    matched: list[Key]  # in both tables
    auto_only: list[Key]
    manual_only: list[Key]
    too_few: list[Pairs]


def compare(
    auto: Table, manual: Table, measures: Sequence[str] = (), columns: dict[str, str] | None = None
) -> Comparison:
    """Join the tables on their keys and compute each measurement's agreement."""
    columns = columns or {}
    chosen = choose_measures(auto, manual, measures, columns)
    keys = [key for key in auto.rows if key in manual.rows]
    if not keys:
        raise SetupError(
            f"no key is in both {auto.path} and {manual.path} "
            f"(e.g. {show(next(iter(auto.rows)))!r} and {show(next(iter(manual.rows)))!r}); "
            "check --key and how the keys are written."
        )
    all_pairs = [pair_up(auto, manual, measure, column, keys) for measure, column in chosen]
    enough = [p for p in all_pairs if len(p.keys) >= MIN_PAIRS]
    if not enough:
        counts = ", ".join(f"{p.measure} {len(p.keys)}" for p in all_pairs)
        raise SetupError(
            f"fewer than {MIN_PAIRS} keys have both numbers for every measurement ({counts}); "
            f"fill in more rows of {auto.path} and {manual.path}."
        )
    return Comparison(
        pairs=enough,
        results=[agreement(p) for p in enough],
        matched=keys,
        auto_only=[key for key in auto.rows if key not in manual.rows],
        manual_only=[key for key in manual.rows if key not in auto.rows],
        too_few=[p for p in all_pairs if len(p.keys) < MIN_PAIRS],
    )


def table_text(results: Sequence[Agreement]) -> str:
    """The results as an aligned plain-text table."""
    header = ("measure", "n", "bias", "SD", "LoA lower", "LoA upper", "r", "ICC(A,1)", "manual")
    lines = [header]
    for a in results:
        lines.append(
            (
                f"{a.measure} ({unit(a.measure)})" if unit(a.measure) else a.measure,
                str(a.n),
                f"{a.bias:+.3g}",
                f"{a.sd:.3g}",
                f"{a.loa_lower:+.3g}",
                f"{a.loa_upper:+.3g}",
                *(f"{v:.3f}" for v in (a.pearson_r, a.icc_a1)),
                f"{a.manual_mean:.3g}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def write_agreement_csv(path: str | Path, results: Sequence[Agreement]) -> None:
    """One row per measurement, every digit, atomically."""
    rows = [{**asdict(a), "unit": unit(a.measure)} for a in results]
    files.write_csv(path, ["measure", "unit", *AGREEMENT_FIELDS[1:]], rows, exact=True)


def write_unmatched_csv(path: str | Path, comparison: Comparison) -> None:
    """The keys in one table only, and which table holds them."""
    rows = [{"key": show(key), "only_in": "auto"} for key in comparison.auto_only]
    rows += [{"key": show(key), "only_in": "manual"} for key in comparison.manual_only]
    files.write_csv(path, ["key", "only_in"], rows)


def warn_unmatched(comparison: Comparison, auto: Table, manual: Table) -> None:
    """Name the keys that are in one table only (the first SHOWN_KEYS of each)."""
    for keys, here, there in (
        (comparison.auto_only, auto.path, manual.path),
        (comparison.manual_only, manual.path, auto.path),
    ):
        if keys:
            named = name_some([show(key) for key in keys], SHOWN_KEYS)
            warn(f"{len(keys)} keys of {here} are not in {there}: {named}.")
    for pairs in comparison.too_few:
        warn(
            f"{pairs.measure} has only {len(pairs.keys)} keys with both numbers "
            f"(at least {MIN_PAIRS} needed); left out."
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m measurement.agreement",
        description=(
            "Agreement (Bland-Altman bias and 95% limits, Pearson r, ICC(A,1)) of automatic "
            "measurements with manual ones, joined row by row on a key. Differences are "
            "auto - manual."
        ),
    )
    parser.add_argument("--auto", required=True, help="CSV of the automatic measurements")
    parser.add_argument("--manual", required=True, help="CSV of the manual readings")
    parser.add_argument(
        "--key",
        required=True,
        help="the column(s) naming a mouse in both files, comma-separated (e.g. study,mouse_id)",
    )
    parser.add_argument("--out", required=True, help="output folder, created if missing")
    parser.add_argument(
        "--measure",
        action="append",
        default=[],
        metavar="NAME",
        help="compare only this measurement (a column of --auto); repeatable or "
        f"comma-separated. Default: each of {', '.join(SUMMARY_MEASURES)} in both files, "
        "and each --column",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="AUTO_COL=MANUAL_COL",
        help='compare AUTO_COL of --auto with MANUAL_COL of --manual (e.g. lvid_d_mm="LVID;d"), '
        "reported as AUTO_COL; repeatable",
    )
    return parser.parse_args(argv)


def split_names(values: Sequence[str]) -> list[str]:
    """Comma-separated names of one or more flags, whitespace stripped."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        key = split_names([args.key])
        if not key:
            raise SetupError("--key names no column; pass e.g. --key mouse_id.")
        columns = parse_columns(args.column)
        auto, manual = read_table(args.auto, key), read_table(args.manual, key)
        comparison = compare(auto, manual, split_names(args.measure), columns)
        files.make_output_folder(out, "--out")
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    warn_unmatched(comparison, auto, manual)
    try:
        write_agreement_csv(out / "agreement.csv", comparison.results)
        write_unmatched_csv(out / "unmatched.csv", comparison)
        save_bland_altman(out / "bland_altman.png", comparison.pairs, comparison.results)
    except WriteError as err:  # a full disk: the files written so far are whole
        print(f"error: {err.advice('--out')}", file=sys.stderr)
        return 1
    print(f"Agreement of {auto.path} (auto) with {manual.path} (manual), auto - manual:")
    print(table_text(comparison.results))
    print(f"agreement.csv, bland_altman.png and unmatched.csv are in {out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
