"""Agreement of automatic measurements with a lab's manual readings, mouse by mouse.

    python -m agreement --auto AUTO.csv --manual MANUAL.csv --key mouse_id --out DIR
    python -m agreement --auto ours.csv --manual lab.csv \\
        --key study,mouse_id="Mouse ID" --column lvid_d_mm="LVID;d" --out DIR

Both tables are CSV files (UTF-8, comma-separated) with one row per key (a mouse, say).
The rows are joined on the --key columns (one or more, comma-separated; compared as text,
whitespace stripped); AUTO_COL=MANUAL_COL names a key column the manual table calls
otherwise. Compared by default: every summary measurement (SUMMARY_MEASURES) that both
tables have. --column AUTO_COL=MANUAL_COL (repeatable) compares AUTO_COL of --auto with
MANUAL_COL of --manual and reports it under AUTO_COL, for a lab whose columns have their
own names; a mapped column is compared even if it is not a summary name. --measure NAME
(repeatable or comma-separated; names as in --auto) compares only these.

Cells are read as plain decimal numbers (runtime.files.read_number); an empty or NA cell
is skipped. A column whose median lies off the range of mice by a unit's factor
(agreement.tables: PLAUSIBLE, UNIT_SLIPS; a table in cm against one in mm) is
refused, and so is a cell beyond any unit.

Per measurement, over the keys where both cells are numbers: n, bias = mean(auto -
manual), the SD of the differences, the 95 % limits of agreement bias -+ 1.96 SD (Bland &
Altman 1986), Pearson r, ICC(A,1) (two-way random effects, absolute agreement, one rater;
McGraw & Wong 1996, Shrout & Fleiss's ICC(2,1)), and the manual mean for scale. Writes
DIR/agreement.csv, DIR/bland_altman.png (one panel per measurement) and DIR/unmatched.csv
(the keys in one table only), and prints the table. The three are made in a temporary
folder and moved into DIR only once all are complete, so that a failed run leaves an
earlier result as it was; a DIR holding an earlier result is refused unless --overwrite.
Bad input is one `error:` line on stderr, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agreement.bland_altman import (
    AGREEMENT_FIELDS,
    Agreement,
    Key,
    Pairs,
    agreement,
    save_bland_altman,
    unit,
)
from agreement.tables import (
    Table,
    column_numbers,
    parse_columns,
    parse_key,
    read_table,
    show,
    split_names,
)
from measurement.beats import SUMMARY_NUMBERS
from runtime import files
from runtime.distributed import warn
from runtime.errors import SetupError, WriteError, name_some

SUMMARY_MEASURES = SUMMARY_NUMBERS[2:]  # test.py's summary numbers, beat counts left out
MIN_PAIRS = 3
SHOWN_KEYS = 20  # unmatched keys named in a warning; unmatched.csv lists all
RESULT_FILES = ("agreement.csv", "unmatched.csv", "bland_altman.png")


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


def pair_up(
    auto: dict[Key, float], manual: dict[Key, float], measure: str, keys: list[Key]
) -> Pairs:
    """The keys where both tables hold a number for this measurement, with the numbers."""
    kept = [key for key in keys if key in auto and key in manual]
    return Pairs(
        measure,
        tuple(kept),
        np.array([auto[key] for key in kept], dtype=float),
        np.array([manual[key] for key in kept], dtype=float),
    )


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
    all_pairs = [
        pair_up(
            column_numbers(auto, measure, measure),
            column_numbers(manual, column, measure),
            measure,
            keys,
        )
        for measure, column in chosen
    ]
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
        prog="python -m agreement",
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
        help="the column(s) naming a mouse in both files, comma-separated (e.g. study,mouse_id); "
        'AUTO_COL=MANUAL_COL for one the manual file names otherwise (mouse_id="Mouse ID")',
    )
    parser.add_argument("--out", required=True, help="output folder, created if missing")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the agreement.csv, unmatched.csv and bland_altman.png of an earlier run "
        "in --out (its other files are kept)",
    )
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


def check_out(out: Path, overwrite: bool) -> None:
    """SetupError unless `out` can take a new result: not a file, writable, and without an
    earlier result unless `overwrite`. Creates nothing."""
    if out.exists() and not out.is_dir():
        raise SetupError(f"the output {out} is a file; pass a folder with --out.")
    earlier = [name for name in RESULT_FILES if (out / name).exists()]
    if earlier and not overwrite:
        raise SetupError(
            f"--out {out} holds the results of an earlier run (e.g. {earlier[0]}); pass "
            "--overwrite to replace them, or choose another folder with --out."
        )
    files.check_writable(out, "--out")


def write_result(out: Path, comparison: Comparison) -> None:
    """agreement.csv, unmatched.csv and bland_altman.png into `out`, all or none.

    They are made in a temporary folder beside their destination: a new `out` is that
    folder renamed into place; into an existing one (which may hold the user's own files)
    each is renamed over its earlier version only once all three are complete. A failure
    removes the temporary folder, leaving `out` as it was. WriteError for a full disk or
    a read-only folder.
    """
    staging = make_staging(out)
    try:
        try:
            write_agreement_csv(staging / "agreement.csv", comparison.results)
            write_unmatched_csv(staging / "unmatched.csv", comparison)
            save_bland_altman(staging / "bland_altman.png", comparison.pairs, comparison.results)
        except WriteError as err:  # named by its destination, not the temporary folder
            raise WriteError(out / Path(err.filename).name, err) from None
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_staging(out: Path) -> Path:
    """A new empty folder on `out`'s file system from which a rename puts files in place:
    inside `out` when it exists, else beside it (its parents created)."""
    try:
        if out.is_dir():
            return Path(tempfile.mkdtemp(dir=out, prefix=".agreement-partial-"))
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
        # mkdtemp makes the folder private (0700); `out` gets what a plain mkdir would give.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(staging, 0o777 & ~mask)
        return staging
    except OSError as err:
        raise WriteError(out, err) from None


def publish(staging: Path, out: Path) -> None:
    """Move the complete result from `staging` into `out` (see write_result)."""
    try:
        if staging.parent != out:
            try:
                os.rename(staging, out)
                return
            except OSError:
                if not out.is_dir():  # made meanwhile by another process: fill it instead
                    raise
        for name in RESULT_FILES:
            os.replace(staging / name, out / name)
    except OSError as err:
        raise WriteError(out, err) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        auto_key, manual_key = parse_key(args.key)
        columns = parse_columns(args.column)
        check_out(out, args.overwrite)
        auto, manual = read_table(args.auto, auto_key), read_table(args.manual, manual_key)
        comparison = compare(auto, manual, split_names(args.measure), columns)
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    warn_unmatched(comparison, auto, manual)
    try:
        write_result(out, comparison)
    except WriteError as err:  # a full disk: nothing of this run is left in --out
        print(f"error: {err.advice('--out')}", file=sys.stderr)
        return 1
    print(f"Agreement of {auto.path} (auto) with {manual.path} (manual), auto - manual:")
    print(table_text(comparison.results))
    print(f"agreement.csv, bland_altman.png and unmatched.csv are in {out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
