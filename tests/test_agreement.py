"""agreement: Bland-Altman bias and limits, Pearson r and ICC(A,1) of automatic
against manual measurements, checked against independent formulas; column mapping,
unmatched keys, bad input, the figure; and the real Echo2Pheno tables (bench.reference)."""

import csv
import errno
import math
import os
import stat
import statistics
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image
from scipy import stats

from agreement import command as agreement
from agreement import tables as agreement_tables
from agreement.bland_altman import bland_altman_figure
from bench import reference

TOLERANCE = 1e-9
# Six mice measured by hand (manual) and automatically (auto). m6 has no automatic LVIDd
# (an empty cell, skipped); m7 is in the manual table only, m8 in the automatic one only.
MANUAL = [
    ["mouse_id", "lvid_d_mm", "heart_rate_bpm", "notes"],
    ["m1", "2.0", "600", "a"],
    ["m2", "3.0", "650", ""],
    ["m3", "4.0", "500", ""],
    ["m4", "5.0", "700", ""],
    ["m5", "6.0", "550", ""],
    ["m6", "3.5", "620", ""],
    ["m7", "3.1", "610", ""],
]
AUTO = [
    ["mouse_id", "lvid_d_mm", "heart_rate_bpm"],
    ["m1", "2.1", "610"],
    ["m2", "2.9", "640"],
    ["m3", "4.2", "520"],
    ["m4", "5.0", "690"],
    ["m5", "6.3", "565"],
    ["m6", "", "630"],
    ["m8", "3.0", "600"],
]
# By hand: LVIDd differences 0.1, -0.1, 0.2, 0.0, 0.3 (m1-m5) give a bias of 0.1 mm and
# deviations 0, -0.2, 0.1, -0.1, 0.2, whose squares sum to 0.1: SD = sqrt(0.1 / 4).
HAND_BIAS_MM = 0.1
HAND_SD_MM = math.sqrt(0.025)


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def tables(tmp_path):
    """(auto, manual) CSV paths of the hand-made tables."""
    return write_rows(tmp_path / "auto.csv", AUTO), write_rows(tmp_path / "manual.csv", MANUAL)


def expected(auto, manual) -> dict:
    """The statistics by formulas other than the module's: statistics for bias and SD,
    scipy for r, and ICC(A,1) from covariances. With k = 2 raters McGraw & Wong's
    (MSR - MSE) / (MSR + MSE + 2/n (MSC - MSE)) is 2 cov(a, m) / (var a + var m + bias^2
    - var(a - m) / n), since MSR - MSE = 2 cov, MSR + MSE = var a + var m,
    MSC = n bias^2 / 2 and MSE = var(a - m) / 2 (sample variances, ddof 1)."""
    auto, manual = np.asarray(auto, float), np.asarray(manual, float)
    diff = [a - m for a, m in zip(auto, manual, strict=True)]
    bias, sd = statistics.fmean(diff), statistics.stdev(diff)
    cov = np.cov(auto, manual, ddof=1)
    icc = (2 * cov[0, 1]) / (cov[0, 0] + cov[1, 1] + bias**2 - sd**2 / len(diff))
    return {
        "n": len(diff),
        "bias": bias,
        "sd": sd,
        "loa_lower": float(np.mean(diff) - 1.96 * np.std(diff, ddof=1)),
        "loa_upper": float(np.mean(diff) + 1.96 * np.std(diff, ddof=1)),
        "pearson_r": stats.pearsonr(auto, manual)[0],
        "icc_a1": icc,
        "manual_mean": statistics.fmean(manual),
    }


def assert_matches(result: agreement.Agreement, want: dict) -> None:
    assert result.n == want["n"], result.measure
    for name, value in want.items():
        assert getattr(result, name) == pytest.approx(value, abs=TOLERANCE), (result.measure, name)


def read_agreement_csv(path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["measure"]: row for row in csv.DictReader(f)}


def test_hand_made_table_matches_independent_formulas(tables, tmp_path, capsys):
    auto, manual = tables
    out = tmp_path / "out"
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key", "mouse_id",
                           "--out", str(out)]) == 0  # fmt: skip
    rows = read_agreement_csv(out / "agreement.csv")
    assert list(rows) == ["lvid_d_mm", "heart_rate_bpm"]  # SUMMARY_MEASURES order; no notes
    assert rows["lvid_d_mm"]["unit"] == "mm" and rows["heart_rate_bpm"]["unit"] == "bpm"
    numbers = {k: float(v) for k, v in rows["lvid_d_mm"].items() if k not in ("measure", "unit")}
    lvid = agreement.Agreement(measure="lvid_d_mm", **numbers)
    assert lvid.bias == pytest.approx(HAND_BIAS_MM, abs=TOLERANCE)
    assert lvid.sd == pytest.approx(HAND_SD_MM, abs=TOLERANCE)
    assert_matches(lvid, expected([2.1, 2.9, 4.2, 5.0, 6.3], [2.0, 3.0, 4.0, 5.0, 6.0]))
    rate = agreement.compare(*(agreement.read_table(p, ["mouse_id"]) for p in tables)).results[1]
    assert_matches(rate, expected([610, 640, 520, 690, 565, 630], [600, 650, 500, 700, 550, 620]))
    printed = capsys.readouterr().out
    assert "lvid_d_mm (mm)" in printed and "heart_rate_bpm (bpm)" in printed
    assert f"{HAND_BIAS_MM:+.3g}" in printed


def test_icc_penalises_a_constant_offset_and_r_does_not():
    manual = np.array([2.0, 3.0, 4.0, 5.0, 6.0])
    pairs = agreement.Pairs("lvid_d_mm", tuple(("k",) for _ in manual), manual + 1.0, manual)
    result = agreement.agreement(pairs)
    assert result.pearson_r == pytest.approx(1.0) and result.sd == pytest.approx(0.0)
    assert result.icc_a1 == pytest.approx(expected(manual + 1.0, manual)["icc_a1"], abs=TOLERANCE)
    # By hand: var(manual) = var(auto) = cov = 2.5, bias 1, SD 0: ICC = 5 / (2.5 + 2.5 + 1).
    assert result.icc_a1 == pytest.approx(5 / 6, abs=TOLERANCE)


def test_real_echo2pheno_tables_match_independent_formulas(tmp_path):
    mice = reference.per_mouse()
    auto_path = tmp_path / "auto.csv"
    agreement.files.write_csv(auto_path, reference.PER_MOUSE_FIELDS, mice, exact=True)
    comparison = agreement.compare(
        agreement.read_table(auto_path, reference.KEY),
        agreement.read_table(reference.MANUAL_PER_MOUSE, reference.KEY),
    )
    by_mouse = {(m["study"], m["mouse_id"]): m for m in mice}
    with open(reference.MANUAL_PER_MOUSE, newline="") as f:
        manual = {(r["study"], r["mouse_id"]): r for r in csv.DictReader(f)}
    measures = [r.measure for r in comparison.results]
    assert measures == ["lvid_d_mm", "lvid_s_mm", "ef_percent", "fs_percent"]
    for result in comparison.results:
        keys = [k for k in by_mouse if k in manual and by_mouse[k].get(result.measure) is not None]
        keys = [k for k in keys if manual[k][result.measure] != ""]
        auto_values = [by_mouse[k][result.measure] for k in keys]
        manual_values = [float(manual[k][result.measure]) for k in keys]
        assert_matches(result, expected(auto_values, manual_values))
    assert len(comparison.manual_only) == 252 and comparison.auto_only == []
    assert comparison.results[0].n == 520


def test_per_mouse_takes_kept_beats_else_all_beats(tmp_path):
    header = ["study", "mouse_id", "file", "lvid_d_mm_all", "lvid_s_mm_all",
              "heart_rate_bpm_all", "lvid_d_mm_high", "lvid_s_mm_high"]  # fmt: skip
    path = write_rows(
        tmp_path / "rec.csv",
        [header,
         ["S", "1", "a", "3.0", "1.5", "600", "2.8", "1.2"],
         ["S", "1", "b", "3.4", "1.6", "620", "", ""],
         ["S", "1", "c", "2.0", "1.0", "640", "3.2", "1.4"]],
    )  # fmt: skip
    (mouse,) = reference.per_mouse(path)
    assert mouse["lvid_d_mm"] == pytest.approx(3.2)  # median of 2.8, 3.4 (all), 3.2
    assert mouse["lvid_s_mm"] == pytest.approx(1.4)
    assert mouse["fs_percent"] == pytest.approx(100 * (3.2 - 1.4) / 3.2)
    volume = [7 / (2.4 + d) * d**3 for d in (3.2, 1.4)]
    assert mouse["ef_percent"] == pytest.approx(100 * (volume[0] - volume[1]) / volume[0])


def test_columns_map_a_labs_names(tables, tmp_path, capsys):
    auto, _ = tables
    renamed = [["Animal", "LVID;d", "HR"], *[row[:3] for row in MANUAL[1:]]]
    manual = write_rows(tmp_path / "lab.csv", [[c.strip() for c in renamed[0]], *renamed[1:]])
    auto_renamed = write_rows(tmp_path / "ours.csv", [["Animal", *AUTO[0][1:]], *AUTO[1:]])
    out = tmp_path / "out"
    assert agreement.main(["--auto", str(auto_renamed), "--manual", str(manual), "--key",
                           "Animal", "--column", "lvid_d_mm=LVID;d", "--column",
                           "heart_rate_bpm = HR", "--out", str(out)]) == 0  # fmt: skip
    mapped = read_agreement_csv(out / "agreement.csv")
    assert agreement.main(["--auto", str(auto), "--manual", str(tables[1]), "--key",
                           "mouse_id", "--out", str(tmp_path / "plain")]) == 0  # fmt: skip
    assert mapped == read_agreement_csv(tmp_path / "plain" / "agreement.csv")
    assert agreement.main(["--auto", str(auto_renamed), "--manual", str(manual), "--key",
                           "Animal", "--column", "lvid_d_mm=LVID;d", "--measure", "lvid_d_mm",
                           "--out", str(tmp_path / "one")]) == 0  # fmt: skip
    assert list(read_agreement_csv(tmp_path / "one" / "agreement.csv")) == ["lvid_d_mm"]


def test_composite_key(tmp_path):
    manual = write_rows(tmp_path / "m.csv", [["study", "mouse_id", "lvid_d_mm"],
                                             ["A", "1", "3.0"], ["B", "1", "2.0"],
                                             ["A", "2", "3.5"], ["B", "2", "2.5"]])  # fmt: skip
    auto = write_rows(tmp_path / "a.csv", [["mouse_id", "study", "lvid_d_mm"],
                                           [" 1", "B ", "2.1"], ["1", "A", "3.0"],
                                           ["2", "A", "3.6"], ["2", "B", "2.4"]])  # fmt: skip
    comparison = agreement.compare(
        agreement.read_table(auto, ["study", "mouse_id"]),
        agreement.read_table(manual, ["study", "mouse_id"]),
    )
    assert_matches(comparison.results[0], expected([3.0, 2.1, 3.6, 2.4], [3.0, 2.0, 3.5, 2.5]))


def test_unmatched_keys_are_named(tables, tmp_path, capsys):
    auto, manual = tables
    out = tmp_path / "out"
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key", "mouse_id",
                           "--out", str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("warning: 1 keys") and "m8" in line for line in err)
    assert any(line.startswith("warning: 1 keys") and "m7" in line for line in err)
    with open(out / "unmatched.csv", newline="") as f:
        assert list(csv.reader(f)) == [["key", "only_in"], ["m8", "auto"], ["m7", "manual"]]
    many = write_rows(tmp_path / "many.csv", [*MANUAL, *[[f"x{i}", "3", ""] for i in range(24)]])
    assert agreement.main(["--auto", str(auto), "--manual", str(many), "--key", "mouse_id",
                           "--out", str(tmp_path / "many")]) == 0  # fmt: skip
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "m7" in ln]
    assert line.startswith("warning: 25 keys") and "x18" in line and "x19" not in line
    assert line.endswith("and 5 more.")


def test_a_measurement_with_too_few_pairs_is_left_out_with_a_warning(tmp_path, capsys):
    manual = write_rows(tmp_path / "m.csv", [row if i < 3 else [*row[:2], "", ""]
                                             for i, row in enumerate(MANUAL)])  # fmt: skip
    auto = write_rows(tmp_path / "a.csv", AUTO)
    out = tmp_path / "out"
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key", "mouse_id",
                           "--out", str(out)]) == 0  # fmt: skip
    assert list(read_agreement_csv(out / "agreement.csv")) == ["lvid_d_mm"]
    assert "warning: heart_rate_bpm has only 2 keys" in capsys.readouterr().err


def bad_inputs(tmp_path):
    """(name, argv, what the error must name): one case of each kind of bad input."""
    auto = write_rows(tmp_path / "auto.csv", AUTO)
    manual = write_rows(tmp_path / "manual.csv", MANUAL)
    duplicated = write_rows(tmp_path / "dup.csv", [*MANUAL, ["m3", "4.1", "510", ""]])
    text = write_rows(tmp_path / "text.csv", [*AUTO[:3], ["m3", "4,2", "520"], *AUTO[4:]])
    others = write_rows(tmp_path / "others.csv", [AUTO[0], ["z1", "3", "600"], ["z2", "3", "6"]])
    few = write_rows(tmp_path / "few.csv", [*AUTO[:3]])
    no_measure = write_rows(tmp_path / "bare.csv", [["mouse_id", "weight_g"], ["m1", "25"]])
    twice = write_rows(
        tmp_path / "twice.csv", [[*MANUAL[0], "lvid_d_mm"], *[[*row, "9"] for row in MANUAL[1:]]]
    )
    underscore = write_rows(
        tmp_path / "underscore.csv", [*AUTO[:2], ["m2", "2.9", "1_000"], *AUTO[3:]]
    )
    in_cm = write_rows(
        tmp_path / "cm.csv",
        [MANUAL[0], *[[r[0], str(float(r[1]) / 10), *r[2:]] for r in MANUAL[1:]]],
    )
    huge = write_rows(tmp_path / "huge.csv", [*AUTO[:3], ["m3", "1e200", "520"], *AUTO[4:]])
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("\n".join(";".join(row) for row in MANUAL) + "\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "\n".join(",".join(row) for row in MANUAL).replace(",a", ",Müller").encode("latin-1")
    )
    base = ["--key", "mouse_id", "--out", str(tmp_path / "out")]
    return [
        ("missing file", ["--auto", str(tmp_path / "none.csv"), "--manual", str(manual)],
         "none.csv"),
        ("folder as file", ["--auto", str(tmp_path), "--manual", str(manual)], str(tmp_path)),
        ("missing key column", ["--auto", str(auto), "--manual", str(manual), "--key", "id"],
         "'id'"),
        ("missing measure", ["--auto", str(auto), "--manual", str(manual), "--measure",
                             "ef_percent"], "'ef_percent'"),
        ("missing mapped column", ["--auto", str(auto), "--manual", str(manual), "--column",
                                   "lvid_d_mm=LVID;d"], "'LVID;d'"),
        ("bad mapping", ["--auto", str(auto), "--manual", str(manual), "--column", "lvid_d_mm"],
         "AUTO_COL=MANUAL_COL"),
        ("no shared measure", ["--auto", str(no_measure), "--manual", str(manual)], "--column"),
        ("duplicated key", ["--auto", str(auto), "--manual", str(duplicated)], "m3"),
        ("non-numeric cell", ["--auto", str(text), "--manual", str(manual)], "line 4"),
        ("no overlap", ["--auto", str(others), "--manual", str(manual)], "no key"),
        ("fewer than 3 pairs", ["--auto", str(few), "--manual", str(manual)], "fewer than 3"),
        ("header only", ["--auto", str(write_rows(tmp_path / "head.csv", AUTO[:1])),
                         "--manual", str(manual)], "has a header but no rows"),
        ("repeated column", ["--auto", str(auto), "--manual", str(twice)],
         "has two columns named 'lvid_d_mm' (columns 2 and 5)"),
        ("underscore in a number", ["--auto", str(underscore), "--manual", str(manual)],
         "holds '1_000', not a number"),
        ("table in cm", ["--auto", str(auto), "--manual", str(in_cm)], "like cm rather than mm"),
        ("cell beyond any unit", ["--auto", str(huge), "--manual", str(manual)],
         "holds '1e200', which is no lvid_d_mm"),
        ("semicolon-separated", ["--auto", str(auto), "--manual", str(semicolons)],
         "looks semicolon-separated"),
        ("not UTF-8", ["--auto", str(auto), "--manual", str(latin)], "is not UTF-8 text"),
        ("key column named otherwise", ["--auto", str(auto), "--manual", str(manual), "--key",
                                        "mouse_id=Mouse ID"], "no key column 'Mouse ID'"),
        ("bad key mapping", ["--auto", str(auto), "--manual", str(manual), "--key",
                             "mouse_id="], "is not NAME or AUTO_COL=MANUAL_COL"),
    ], base  # fmt: skip


def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, capsys):
    cases, base = bad_inputs(tmp_path)
    for name, argv, named in cases:
        assert agreement.main([*base, *argv]) == 2, name  # a later --key wins
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, captured.err)
        assert named in lines[0], (name, lines[0])
        assert "Traceback" not in captured.err and captured.out == "", name
        assert not (tmp_path / "out").exists(), name


def test_non_numeric_cell_names_file_line_column_and_value(tmp_path, capsys):
    cases, base = bad_inputs(tmp_path)
    (argv,) = [argv for name, argv, _ in cases if name == "non-numeric cell"]
    assert agreement.main([*base, *argv]) == 2
    err = capsys.readouterr().err
    for part in ("text.csv", "line 4", "'lvid_d_mm'", "'4,2'"):
        assert part in err, part
    (argv,) = [argv for name, argv, _ in cases if name == "duplicated key"]
    assert agreement.main([*base, *argv]) == 2
    err = capsys.readouterr().err
    for part in ("key m3", "dup.csv", "lines 4 and 9"):
        assert part in err, part


def test_entry_point_reports_without_traceback(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "agreement", "--auto", str(tmp_path / "none.csv"),
         "--manual", str(tmp_path / "none.csv"), "--key", "mouse_id", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr and not out.exists()


def test_figure_has_one_panel_per_measurement(tables, tmp_path):
    import matplotlib.pyplot as plt

    comparison = agreement.compare(*(agreement.read_table(p, ["mouse_id"]) for p in tables))
    fig = bland_altman_figure(comparison.pairs, comparison.results)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["lvid_d_mm (mm), n = 5",
                                                 "heart_rate_bpm (bpm), n = 6"]  # fmt: skip
    assert all(len(ax.collections[0].get_offsets()) == r.n
               for ax, r in zip(panels, comparison.results, strict=True))  # fmt: skip
    labels = [t.get_text() for t in panels[0].texts]
    assert labels == ["+1.96 SD +0.41 mm", "bias +0.1 mm", "-1.96 SD -0.21 mm"]
    plt.close(fig)
    out = tmp_path / "out"
    auto, manual = tables
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key", "mouse_id",
                           "--out", str(out)]) == 0  # fmt: skip
    image = np.asarray(Image.open(out / "bland_altman.png").convert("L"))
    assert image.shape[1] > 2 * 400 and image.std() > 10


def run_agreement(auto, manual, out, *more) -> int:
    return agreement.main(["--auto", str(auto), "--manual", str(manual), "--key", "mouse_id",
                           "--out", str(out), *more])  # fmt: skip


def one_error(capsys) -> str:
    """The one line a refused run wrote on stderr (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_a_repeated_column_heading_is_refused_not_read_as_the_last(tmp_path, capsys):
    twice = write_rows(tmp_path / "twice.csv", [[*MANUAL[0], "lvid_d_mm"],
                                                *[[*row, "9"] for row in MANUAL[1:]]])  # fmt: skip
    assert run_agreement(write_rows(tmp_path / "a.csv", AUTO), twice, tmp_path / "out") == 2
    assert one_error(capsys) == (
        f"error: {twice} has two columns named 'lvid_d_mm' (columns 2 and 5); rename or "
        "remove one of them."
    )


@pytest.mark.parametrize(
    "cell", ["1_000", "inf", "-Infinity", "nan", "NaN", "1,000", "3,1", "1e999", "0x10", "６00",
             "٣", "1.2.3", "e5", "."],
)  # fmt: skip
def test_only_plain_decimal_numbers_are_read(tmp_path, capsys, cell):
    auto = write_rows(tmp_path / "a.csv", [*AUTO[:2], ["m2", "2.9", cell], *AUTO[3:]])
    manual = write_rows(tmp_path / "m.csv", MANUAL)
    assert run_agreement(auto, manual, tmp_path / "out") == 2
    assert one_error(capsys) == (
        f"error: line 3 of {auto}, column 'heart_rate_bpm', holds {cell!r}, not a number; "
        "correct it or leave the cell empty."
    )
    assert not (tmp_path / "out").exists()


def test_plain_numbers_in_every_spelling_are_read_and_na_is_empty():
    read = agreement.files.read_number
    for text, value in [("3", 3.0), ("+3.5", 3.5), ("-2", -2.0), ("3.", 3.0), (".5", 0.5),
                        ("2.5e1", 25.0), ("1E-3", 0.001), (" 4.25 ", 4.25)]:  # fmt: skip
        assert read(text, 2, "x.csv", "c") == value, text
    for text in ("", "  ", "NA", "na", "N/A"):
        assert read(text, 2, "x.csv", "c") is None, text


@pytest.mark.parametrize(
    "measure, scale, median, unit_named, factor",
    [
        ("lvid_d_mm", 0.1, "0.35", "cm rather than mm", "10"),  # a manual table in cm
        ("lvid_d_mm", 1000, "3.5e+03", "µm rather than mm", "0.001"),
        ("heart_rate_bpm", 1 / 60, "10.2", "beats per second rather than bpm", "60"),
    ],
)
def test_a_column_in_another_unit_is_refused_with_its_factor(
    tmp_path, capsys, measure, scale, median, unit_named, factor
):
    column = MANUAL[0].index(measure)
    rows = [[f"{float(c) * scale:g}" if i == column else c for i, c in enumerate(row)]
            for row in MANUAL[1:]]  # fmt: skip
    manual = write_rows(tmp_path / "m.csv", [MANUAL[0], *rows])
    assert run_agreement(write_rows(tmp_path / "a.csv", AUTO), manual, tmp_path / "out") == 2
    low, high = agreement_tables.PLAUSIBLE[measure]
    unit = agreement.unit(measure)
    assert one_error(capsys) == (
        f"error: {manual}: the median of column {measure!r} is {median}, which looks like "
        f"{unit_named} (mice: {low:g}-{high:g} {unit}); multiply the column by {factor} to "
        f"convert it to {unit}."
    )
    assert not (tmp_path / "out").exists()


def test_a_fraction_for_a_percentage_is_refused_under_the_labs_column_name(tmp_path, capsys):
    auto = write_rows(
        tmp_path / "a.csv",
        [["mouse_id", "ef_percent"], *[[f"m{i}", str(60 + i)] for i in range(5)]],
    )
    manual = write_rows(
        tmp_path / "m.csv", [["mouse_id", "EF"], *[[f"m{i}", str(0.6 + i / 100)] for i in range(5)]]
    )
    assert run_agreement(auto, manual, tmp_path / "out", "--column", "ef_percent=EF") == 2
    assert one_error(capsys) == (
        f"error: {manual}: the median of column 'EF' (ef_percent) is 0.62, which looks like a "
        "fraction rather than % (mice: 20-95 %); multiply the column by 100 to convert it to %."
    )  # fmt: skip


def test_unusual_mice_in_the_right_unit_are_compared(tmp_path):
    """Dilated hearts (LVIDd 5-7 mm) and slow ones (200 bpm) lie outside the usual ranges
    but by no unit's factor: they are measured, not refused."""
    rows = [[f"m{i}", str(5 + i / 2), str(200 + i)] for i in range(5)]
    manual = write_rows(tmp_path / "m.csv", [AUTO[0], *rows])
    auto = write_rows(tmp_path / "a.csv", [AUTO[0], *[[r[0], str(float(r[1]) + 0.1), r[2]]
                                                      for r in rows]])  # fmt: skip
    assert run_agreement(auto, manual, tmp_path / "out") == 0
    assert list(read_agreement_csv(tmp_path / "out" / "agreement.csv")) == [
        "lvid_d_mm", "heart_rate_bpm"]  # fmt: skip


def test_no_plausible_median_is_taken_for_another_units():
    """Each unit's factor exceeds the span of its ranges times SLIP_MARGIN squared: a median
    up to SLIP_MARGIN off its range never converts to within SLIP_MARGIN of it."""
    margin = agreement_tables.SLIP_MARGIN
    for measure, (low, high) in agreement_tables.PLAUSIBLE.items():
        assert measure in agreement.SUMMARY_MEASURES, measure
        for _, factor in agreement_tables.UNIT_SLIPS.get(agreement.unit(measure), ()):
            assert max(factor, 1 / factor) > high / low * margin**2, (measure, factor)


@pytest.mark.filterwarnings("error")  # an overflow's RuntimeWarning fails the test
@pytest.mark.parametrize(
    "column, cells, line, named",
    [
        ("lvid_d_mm", {3: "1e200"}, 4, "which is no lvid_d_mm of a mouse in any unit (mice: "
         "2.5-4 mm)"),
        ("lvid_d_mm", {i: f"{i}e299" for i in range(1, 8)}, 2, "which is no lvid_d_mm of a "
         "mouse in any unit (mice: 2.5-4 mm)"),
        ("heart_rate_bpm", {2: "-4e9"}, 3, "which is no heart_rate_bpm of a mouse in any unit "
         "(mice: 300-900 bpm)"),
        ("weight_g", {1: "1e200"}, 2, "which is beyond any measurement of a mouse in any unit"),
    ],
)  # fmt: skip
def test_a_cell_beyond_any_unit_is_refused_by_line_and_column(
    tmp_path, capsys, column, cells, line, named
):
    header = [*AUTO[0], "weight_g"]
    rows = [[*row, "25"] for row in AUTO[1:]]
    for index, text in cells.items():
        rows[index - 1][header.index(column)] = text
    auto = write_rows(tmp_path / "a.csv", [header, *rows])
    manual = write_rows(tmp_path / "m.csv", [header, *[[*r[:3], "25"] for r in MANUAL[1:]]])
    assert run_agreement(auto, manual, tmp_path / "out", "--measure", column) == 2
    text = rows[line - 2][header.index(column)]
    assert one_error(capsys) == (
        f"error: line {line} of {auto}, column {column!r}, holds {text!r}, {named}; correct it "
        "or leave the cell empty."
    )
    assert not (tmp_path / "out").exists()


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_an_earlier_result_is_refused_without_overwrite(tables, tmp_path, capsys):
    auto, manual = tables
    out = tmp_path / "out"
    assert run_agreement(auto, manual, out) == 0
    (out / "notes.txt").write_text("the lab's own notes")
    before = snapshot(out)
    capsys.readouterr()
    assert run_agreement(auto, manual, out) == 2
    assert one_error(capsys) == (
        f"error: --out {out} holds the results of an earlier run (e.g. agreement.csv); pass "
        "--overwrite to replace them, or choose another folder with --out."
    )
    assert snapshot(out) == before
    other = write_rows(tmp_path / "other.csv", [AUTO[0], *[[r[0], "3.3", r[2]] for r in AUTO[1:]]])
    assert run_agreement(other, manual, out, "--overwrite") == 0
    after = snapshot(out)
    assert sorted(after) == ["agreement.csv", "bland_altman.png", "notes.txt", "unmatched.csv"]
    assert after["notes.txt"] == before["notes.txt"]
    assert after["agreement.csv"] != before["agreement.csv"]


def test_a_failed_run_leaves_the_earlier_result_as_it_was(tables, tmp_path, capsys, monkeypatch):
    auto, manual = tables
    out = tmp_path / "out"
    assert run_agreement(auto, manual, out) == 0
    before = snapshot(out)
    bad = write_rows(tmp_path / "bad.csv", [*AUTO[:2], ["m2", "2,9", "640"], *AUTO[3:]])
    assert run_agreement(bad, manual, out, "--overwrite") == 2  # bad input
    assert snapshot(out) == before

    def full_disk(path, *args, **kwargs):  # the figure, written after both tables
        raise agreement.WriteError(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(agreement, "save_bland_altman", full_disk)
    other = write_rows(tmp_path / "other.csv", [AUTO[0], *[[r[0], "3.3", r[2]] for r in AUTO[1:]]])
    capsys.readouterr()
    assert run_agreement(other, manual, out, "--overwrite") == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        f"error: cannot write {out / 'bland_altman.png'} (No space left on device); free space "
        "or choose another folder with --out."
    )
    assert snapshot(out) == before  # no new table beside the old figure, no temporary folder
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert run_agreement(other, manual, tmp_path / "new") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["auto.csv", "manual.csv", "bad.csv", "other.csv", "out"])  # fmt: skip


def test_a_new_out_gets_the_permissions_of_a_plain_folder(tables, tmp_path):
    mask = os.umask(0o022)
    try:
        assert run_agreement(*tables, tmp_path / "deep" / "out") == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "deep" / "out").stat().st_mode) == 0o755
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]


def test_the_key_may_be_named_otherwise_in_the_manual_table(tmp_path, capsys):
    auto = write_rows(tmp_path / "a.csv", [["study", *AUTO[0]], *[["S", *r] for r in AUTO[1:]]])
    manual = write_rows(tmp_path / "m.csv", [["Study", "Mouse ID", *MANUAL[0][1:]],
                                             *[["S", *r] for r in MANUAL[1:]]])  # fmt: skip
    plain = write_rows(tmp_path / "p.csv", [["study", *MANUAL[0]],
                                            *[["S", *r] for r in MANUAL[1:]]])  # fmt: skip
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key",
                           'study=Study, mouse_id = Mouse ID', "--out",
                           str(tmp_path / "mapped")]) == 0  # fmt: skip
    assert agreement.main(["--auto", str(auto), "--manual", str(plain), "--key",
                           "study,mouse_id", "--out", str(tmp_path / "plain")]) == 0  # fmt: skip
    for name in ("agreement.csv", "unmatched.csv"):
        assert (tmp_path / "mapped" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    capsys.readouterr()
    assert agreement.main(["--auto", str(auto), "--manual", str(manual), "--key",
                           "study,mouse_id", "--out", str(tmp_path / "out")]) == 2  # fmt: skip
    assert one_error(capsys).endswith(
        "name the columns that identify a mouse with --key, as AUTO_COL=MANUAL_COL where the "
        "two tables name one differently."
    )


def test_semicolons_and_latin_1_get_the_way_to_save_the_table(tmp_path, capsys):
    auto = write_rows(tmp_path / "a.csv", AUTO)
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("\n".join(";".join(row) for row in MANUAL) + "\n")
    assert run_agreement(auto, semicolons, tmp_path / "out") == 2
    assert one_error(capsys) == (
        f"error: {semicolons} looks semicolon-separated; save it as comma-separated UTF-8 "
        "(CSV UTF-8)."
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes("mouse_id,lvid_d_mm,owner\nm1,2.0,Müller\n".encode("latin-1"))
    assert run_agreement(auto, latin, tmp_path / "out") == 2
    assert one_error(capsys) == f"error: {latin} is not UTF-8 text; save it as CSV UTF-8."


@pytest.mark.filterwarnings("error")  # a missing glyph's UserWarning fails the test
def test_names_the_font_lacks_draw_without_warnings(tmp_path, capsys):
    name = "左心室_mm"
    rows = [[f"小鼠{i}", str(3 + i / 10)] for i in range(5)]
    auto = write_rows(tmp_path / "a.csv", [["mouse_id", name], *rows])
    manual = write_rows(tmp_path / "m.csv", [["mouse_id", "左心室"], *rows])
    assert run_agreement(auto, manual, tmp_path / "out", "--column", f"{name}=左心室") == 0
    assert "warning" not in capsys.readouterr().err.lower()
    assert (tmp_path / "out" / "bland_altman.png").stat().st_size > 0
