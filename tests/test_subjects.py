"""--subjects and per_mouse.csv: a mouse's numbers pool the accepted beats of its recordings."""

import csv

import pytest

from measurement.beats import make_beat
from measurement.subjects import per_mouse_rows, read_subjects, write_per_mouse
from runtime.errors import SetupError


def recording(name, beats):
    """(name, (beats, accepted)) from (LVIDd mm, LVIDs mm, HR bpm, accepted) per beat."""
    made = [make_beat(0.1 * k, d, 0.1 * k + 0.04, s, 60 / hr, "scanner")
            for k, (d, s, hr, _) in enumerate(beats)]  # fmt: skip
    return name, (made, [ok for *_, ok in beats])


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def subjects(tmp_path):
    return read_subjects(
        write(
            tmp_path / "subjects.csv",
            "recording,mouse_id,genotype,body_weight_g\n"
            "m1_a,M1,ko,25.1\nm1_b.png,M1,ko,25.1\nm2_a,M2,wt,27.0\nm3_a,M3,wt,30.0\n",
        )
    )


def test_a_mouse_gets_the_medians_over_the_accepted_beats_of_all_its_recordings(subjects):
    measured = dict(
        [
            recording(
                "m1_a", [(3.0, 1.5, 600, True), (3.2, 1.7, 600, True), (9.0, 0.1, 900, False)]
            ),
            recording("m1_b", [(3.4, 1.9, 500, True), (3.6, 2.1, 500, True)]),
            recording("m2_a", [(4.0, 2.0, 700, False)]),
        ]
    )
    rows = per_mouse_rows(subjects, measured, ["m1_a", "m1_b", "m2_a", "other"])
    assert [row["mouse_id"] for row in rows] == ["M1", "M2"]  # M3 has no recording here
    m1, m2 = rows
    # By hand: accepted LVIDd 3.0, 3.2, 3.4, 3.6 -> 3.3; LVIDs 1.5, 1.7, 1.9, 2.1 -> 1.8;
    # FS per beat (d - s) / d = 50, 46.875, 44.1176, 41.6667 % -> median 45.4963 %.
    assert (m1["n_recordings"], m1["n_beats"], m1["n_beats_accepted"]) == (2, 5, 4)
    assert m1["lvid_d_mm"] == pytest.approx(3.3)
    assert m1["lvid_s_mm"] == pytest.approx(1.8)
    assert m1["fs_percent"] == pytest.approx((46.875 + 44.11764706) / 2)
    # Beats per time: 4 beats in 0.1 + 0.1 + 0.12 + 0.12 s -> 4 / 0.44 x 60 = 545.45 bpm.
    assert m1["heart_rate_bpm"] == pytest.approx(4 / 0.44 * 60)
    assert (m1["genotype"], m1["body_weight_g"]) == ("ko", "25.1")
    assert (m2["n_beats"], m2["n_beats_accepted"], m2["lvid_d_mm"]) == (1, 0, None)


def test_unlisted_recordings_and_rows_without_a_recording_are_named(subjects, tmp_path, capsys):
    measured = dict([recording("m1_a", [(3.0, 1.5, 600, True)]), recording("stray", [])])
    write_per_mouse(tmp_path / "per_mouse.csv", subjects, measured, ["m1_a", "stray"])
    err = capsys.readouterr().err
    assert "1 recording(s) are not in" in err and "mouse: stray." in err
    assert "names 3 recording(s) that are not among the measured ones: m1_b, m2_a, m3_a." in err
    with open(tmp_path / "per_mouse.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["mouse_id"], r["n_recordings"], r["lvid_d_mm"]) for r in rows] == [("M1", "1", "3")]
    assert list(rows[0])[-2:] == ["genotype", "body_weight_g"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("recording,genotype\na,ko\n", "has no column named mouse_id (its columns: recording, "
         "genotype); it needs recording and mouse_id."),
        ("", "has no column named recording (its columns: none)"),
        ("recording,mouse_id\na,M1\nb,M1\na,M2\n", "names recording a twice (lines 2 and 4); "
         "keep one row per recording."),
        ("recording,mouse_id,sex\na,M1,f\nb,M1,m\n", "gives mouse M1 two values of sex ('f' on "
         "line 2, 'm' on line 3); a mouse's rows must agree."),
        ("recording,mouse_id\na,\n", "line 2 has no mouse_id; fill it in or delete the row."),
        ("recording,mouse_id,lvid_d_mm\na,M1,3.1\n", "has a column named lvid_d_mm, which "
         "per_mouse.csv computes; rename or remove it."),
        ("recording,mouse_id\n", "lists no recordings; add one row per recording."),
        ("recording,mouse_id,genotype\na,M1,ko,extra\n", "line 2 has more cells than its "
         "header (4 for 3); quote cells that hold commas"),
        ("recording,mouse_id,genotype,sex,genotype\na,M1,ko,f,wt\n", "has two columns named "
         "'genotype' (columns 3 and 5); rename or remove one of them."),
        ("recording;mouse_id;genotype\na;M1;ko\n", "looks semicolon-separated; save it as "
         "comma-separated UTF-8 (CSV UTF-8)."),
        ("recording,mouse_id,owner\na,M1,Müller\n".encode("latin-1"), "is not UTF-8 text; "
         "save it as CSV UTF-8."),
        (b"\xff\xferecording,mouse_id\n", "is not UTF-8 text; save it as CSV UTF-8."),
    ],
)  # fmt: skip
def test_a_bad_subjects_file_is_named_with_the_fix(tmp_path, text, message):
    path = tmp_path / "subjects.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SetupError, match="^--subjects|^cannot read --subjects") as caught:
        read_subjects(path)
    assert message in str(caught.value)
    assert str(caught.value).count("\n") == 0


def test_a_missing_subjects_file_is_named(tmp_path):
    with pytest.raises(SetupError, match="cannot read --subjects .*nope.csv as a CSV file"):
        read_subjects(tmp_path / "nope.csv")


def test_repeated_empty_headings_are_read(tmp_path):
    """A spreadsheet's trailing blank columns have empty headings; no cell is read by them."""
    path = write(tmp_path / "subjects.csv", "recording,mouse_id,genotype,,\na,M1,ko,,\n")
    subjects = read_subjects(path)
    assert subjects.columns == ["genotype"] and subjects.about == {"M1": {"genotype": "ko"}}
