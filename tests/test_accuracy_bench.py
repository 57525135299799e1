"""bench.accuracy: beats matched by end-diastole, rejection shares and the targets."""

import json

import pytest
from helpers import TINY

import run
from bench import accuracy
from preprocessing import synthetic
from runtime import files

BEAT_FIELDS = ["t_ed_s", "t_es_s", "lvid_d_mm", "lvid_s_mm", "accepted"]


def write_case(root, measured_beats: list[dict], corrupted: list[bool]) -> None:
    """One recording of four true beats, 0.1 s apart, and what test.py 'measured'."""
    (root / "truth").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(exist_ok=True)
    truth = {
        "lvid_d_mm": 3.0, "lvid_s_mm": 1.5, "heart_rate_bpm": 600.0, "ef_percent": 80.0,
        "n_beats": 4, "beat_ed_time_s": [0.1, 0.2, 0.3, 0.4],
        "beat_lvid_d_mm": [3.0, 3.1, 2.9, 3.0], "beat_lvid_s_mm": [1.5, 1.6, 1.4, 1.5],
        "beat_heart_rate_bpm": [600.0, 500.0, 600.0, 600.0],
        "beat_corrupted": corrupted, "n_beats_clean": corrupted.count(False),
        "clean_lvid_d_mm": 3.05, "clean_lvid_s_mm": 1.55, "clean_heart_rate_bpm": 600.0,
        "clean_ef_percent": 79.0,
    }  # fmt: skip
    files.write_text(root / "truth" / "rec.json", json.dumps(truth))
    accepted = [b for b in measured_beats if b["accepted"]]
    summary = {
        "n_beats": len(measured_beats), "n_beats_accepted": len(accepted),
        "lvid_d_mm": 3.07, "lvid_s_mm": 1.55, "heart_rate_bpm": 603.0, "ef_percent": 79.5,
    }  # fmt: skip
    files.write_text(root / "results" / "rec_summary.json", json.dumps(summary))
    files.write_csv(root / "results" / "rec_beats.csv", BEAT_FIELDS, measured_beats)


def beat(t_ed_s: float, d: float, s: float, accepted: bool) -> dict:
    return {"t_ed_s": t_ed_s, "t_es_s": t_ed_s + 0.04, "lvid_d_mm": d, "lvid_s_mm": s,
            "accepted": accepted}  # fmt: skip


def test_beats_match_by_end_diastole_and_missing_beats_count_as_rejected(tmp_path):
    measured = [
        beat(0.104, 3.02, 1.52, True),  # true beat 0, clean: accepted, errors 0.02 / 0.02
        beat(0.300, 2.80, 1.40, False),  # true beat 2, corrupted: rejected
        beat(0.47, 3.00, 1.50, True),  # 70 ms from beat 3: no match
    ]  # true beat 1 (corrupted) was not found; true beat 3 (clean) was not matched
    write_case(tmp_path, measured, [False, True, True, False])
    (rec,) = accuracy.load_recordings(tmp_path / "truth", tmp_path / "results")
    stats = accuracy.beat_stats([rec])
    assert (stats.corrupted, stats.corrupted_rejected) == (2, 2)
    assert (stats.clean, stats.clean_accepted) == (2, 1)
    assert stats.lvid_d_errors_mm == pytest.approx([0.02])
    assert stats.lvid_s_errors_mm == pytest.approx([0.02])


def test_recordings_are_compared_with_the_clean_beats_medians(tmp_path):
    write_case(tmp_path, [beat(0.1, 3.0, 1.5, True)], [False, True, False, False])
    (rec,) = accuracy.load_recordings(tmp_path / "truth", tmp_path / "results")
    errors = accuracy.recording_errors(rec)
    assert errors["lvid_d_mm"] == pytest.approx(0.02)  # 3.07 vs clean 3.05, not 3.0
    # The clean beats' 600 bpm, not 3 beats / (0.3 + 0.12) s over all four.
    assert errors["heart_rate_bpm"] == pytest.approx(0.5)  # percent
    assert errors["ef_percent"] == pytest.approx(0.5)


def test_walls_are_checked_only_when_test_py_measured_them(tmp_path):
    write_case(tmp_path, [beat(0.1, 3.0, 1.5, True)], [False, True, False, False])
    (rec,) = accuracy.load_recordings(tmp_path / "truth", tmp_path / "results")
    assert not any("IVSd" in label for label, _ in accuracy.checks([rec], None))
    rec.truth.update(clean_ivs_d_mm=0.80, clean_ivs_s_mm=1.10, clean_lvpw_d_mm=0.70,
                     clean_lvpw_s_mm=1.00, clean_lv_mass_mg=90.0)  # fmt: skip
    rec.summary.update(ivs_d_mm=0.83, ivs_s_mm=1.30, lvpw_d_mm=0.70, lvpw_s_mm=1.02,
                       lv_mass_mg=99.0)  # fmt: skip
    errors = accuracy.recording_errors(rec)
    assert errors["ivs_d_mm"] == pytest.approx(0.03) and errors["lv_mass_mg"] == pytest.approx(10)
    verdicts = dict(accuracy.checks([rec], None))
    assert verdicts["median IVSd error (mm) 0.030 <= 0.05"]
    assert not verdicts["worst IVSs error (mm) 0.200 <= 0.1"]
    assert verdicts["worst LV mass error (%) 10.000 <= 15.0"]
    assert not verdicts["median LV mass error (%) 10.000 <= 8.0"]


def test_exit_status_follows_the_targets(tmp_path, capsys):
    good = [beat(t, 3.05, 1.55, t != 0.2) for t in (0.1, 0.2, 0.3, 0.4)]
    write_case(tmp_path / "good", good, [False, True, False, False])
    args = ["--truth", str(tmp_path / "good" / "truth"), "--results"]
    assert accuracy.main([*args, str(tmp_path / "good" / "results")]) == 0
    # Every corrupted beat accepted: the rejection target fails, and says so.
    write_case(tmp_path / "bad", good, [False, True, True, False])
    args = ["--truth", str(tmp_path / "bad" / "truth"), "--results"]
    assert accuracy.main([*args, str(tmp_path / "bad" / "results")]) == 1
    assert "FAIL  corrupted beats rejected: 1 of 2" in capsys.readouterr().out


def test_with_a_model_it_times_test_py_on_the_widest_recording(tmp_path, make_data, capsys):
    assert run.main(["-d", str(make_data()), "-o", str(tmp_path / "run"), *TINY]) == 0
    heldout = tmp_path / "heldout"
    small = ["--height", "128", "--width", "400", "--depth-res", "0.07", "--recordings", "1"]
    assert synthetic.main(["--out", str(heldout), *small]) == 0
    capsys.readouterr()
    argv = ["--truth", str(heldout / "truth"), "--results", str(tmp_path / "nothing")]
    accuracy.main([*argv, "--model", str(tmp_path / "run" / "last.pt")])
    assert "test.py measures synth_000 (400 columns) in " in capsys.readouterr().out


def test_timing_errors_of_the_clean_beats_found_are_reported(tmp_path):
    measured = [
        {**beat(0.104, 3.0, 1.5, False), "t_es_s": 0.141},  # clean, rejected: still timed
        {**beat(0.300, 3.0, 1.5, True), "t_es_s": 0.340},  # corrupted: not timed
    ]
    write_case(tmp_path, measured, [False, True, True, False])
    (rec,) = accuracy.load_recordings(tmp_path / "truth", tmp_path / "results")
    rec.truth["beat_es_time_s"] = [0.14, 0.24, 0.34, 0.44]
    stats = accuracy.beat_stats([rec])
    assert stats.ed_errors_ms == pytest.approx([4.0]) and stats.es_errors_ms == pytest.approx([1.0])
    line = accuracy.timing_line([rec])
    assert "over 1 clean beats found" in line and "end-diastole 4.00 / 4.00 ms" in line
