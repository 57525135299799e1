"""The quality decision: each reason rejects the beats it should, and only those."""

import json

import numpy as np
import pytest
from helpers import exact_model
from PIL import Image

from measurement.beats import find_beats, make_beat, summarize
from measurement.edges import lv_edges
from measurement.pipeline import MeasureSettings
from measurement.quality import judge_beats, rr_irregular, within_limits
from measurement.recordings import Measuring
from measurement.study import measure_recordings

TIME_RES_S, DEPTH_RES_MM = 0.00083, 0.025
HEIGHT, WIDTH, BEAT_COLUMNS = 200, 1200, 100  # 723 bpm


def heart(amplitude_rows=15.0):
    """Upper and lower edge rows: LVID 90-150 rows (2.25-3.75 mm), FS 40 %."""
    phase = 2 * np.pi * np.arange(WIDTH) / BEAT_COLUMNS
    return 40 + amplitude_rows * np.sin(phase), 160 - amplitude_rows * np.sin(phase)


def cavity_prob(upper, lower):
    rows = np.arange(HEIGHT)[:, None]
    return 1 / (1 + np.exp(-(rows - upper))) / (1 + np.exp(-(lower - rows)))


def echo(prob, seed=0):
    """A plausible image: bright walls, a dark cavity, some speckle."""
    noise = np.random.default_rng(seed).normal(0, 5, prob.shape)
    return np.clip(150 - 130 * prob + noise, 0, 255)


def judge(prob, image):
    edges = lv_edges(prob, 0.5, TIME_RES_S, DEPTH_RES_MM)
    beats = find_beats(edges.lvid_mm(DEPTH_RES_MM), TIME_RES_S)
    return beats, judge_beats(beats, edges, prob, image, TIME_RES_S, DEPTH_RES_MM)


def column_of(t_s):
    return int(round(t_s / TIME_RES_S))


def test_a_clean_recording_has_every_beat_accepted():
    prob = cavity_prob(*heart())
    beats, judged = judge(prob, echo(prob))
    assert len(beats) >= 9
    assert all(j.accepted and j.reasons == "" for j in judged)
    assert all(0.9 < j.quality <= 1 for j in judged)


@pytest.mark.parametrize("spoil", ["cavity_missing", "edge_jump", "image_artefact"])
def test_a_spoilt_end_diastole_rejects_its_beats_only(spoil):
    prob = cavity_prob(*heart())
    image = echo(prob)
    clean_beats, _ = judge(prob, image)
    ed = column_of(clean_beats[4].t_ed_s)
    if spoil == "cavity_missing":
        prob[:, ed - 2 : ed + 2] = 0.0  # bridged, but the LVIDd read there is a guess
    elif spoil == "edge_jump":
        prob[5:40, ed - 1 : ed + 2] = 1.0  # the cavity runs into the septum
    else:
        image[:, ed - 2 : ed + 2] = 0.0  # an echo dropout
    beats, judged = judge(prob, image)
    rejected = [b.t_ed_s for b, j in zip(beats, judged, strict=True) if not j.accepted]
    # The beat that ends there and the one that starts there.
    assert rejected == pytest.approx([clean_beats[3].t_ed_s, clean_beats[4].t_ed_s], abs=0.003)
    assert all(
        j.reasons == spoil for b, j in zip(beats, judged, strict=True) if b.t_ed_s in rejected
    )


def test_walls_that_move_fast_are_not_an_artefact():
    # Each beat falls over 60 columns and refills 15 rows in 8 columns: walls moving
    # 1.9 rows (0.047 mm) per 0.83 ms column, 57 mm/s. The walls' texture moves with them,
    # so that compared row by row with the column before, those columns change abruptly.
    phase = np.arange(WIDTH) % BEAT_COLUMNS
    fall = (1 - np.cos(np.pi * np.clip(phase / 60, 0, 1))) / 2
    refill = np.clip((phase - 60) / 8, 0, 1)
    swing = 15 * np.where(phase < 60, fall, 1 - refill)
    upper, lower = 40 + swing, 160 - swing
    prob = cavity_prob(upper, lower)
    rows = np.arange(HEIGHT)[:, None]
    depth_in_wall = np.where(rows < (upper + lower) / 2, upper - rows, rows - lower)
    texture = 60 * np.sin(2 * np.pi * depth_in_wall / 6) * (depth_in_wall > 0)
    beats, judged = judge(prob, echo(prob) + texture)
    assert len(beats) >= 9
    assert all(j.accepted for j in judged), [j.reasons for j in judged]


def test_dropouts_away_from_ed_and_es_are_harmless_but_a_noise_burst_is_not():
    prob = cavity_prob(*heart())
    image = echo(prob)
    clean_beats, _ = judge(prob, image)
    beat = clean_beats[4]
    ed, es = column_of(beat.t_ed_s), column_of(beat.t_es_s)
    for column in range(ed + 15, es - 12, 8):  # three 2-column dropouts, 12 columns disturbed
        image[:, column : column + 2] = 0.0
    _, judged = judge(prob, image)
    assert all(j.accepted for j in judged)
    rng = np.random.default_rng(0)
    burst = slice(ed + 15, ed + 35)  # 17 ms of noise between ED and ES
    image[:, burst] = rng.integers(0, 256, image[:, burst].shape)
    beats, judged = judge(prob, image)
    rejected = [(b.t_ed_s, j.reasons) for b, j in zip(beats, judged, strict=True) if not j.accepted]
    assert rejected == [(pytest.approx(beat.t_ed_s, abs=0.003), "image_artefact")]


def test_a_slipping_probe_is_caught_but_breathing_is_not():
    upper, lower = heart()
    columns = np.arange(WIDTH)
    # The heart slides 1 mm (40 rows) down over 30 columns, stays there, slides back.
    slip_rows = 40 * np.clip(np.minimum(columns - 470, 830 - columns) / 30, 0, 1)
    prob = cavity_prob(upper + slip_rows, lower + slip_rows)
    beats, judged = judge(prob, echo(prob))
    # A sine's contraction starts at its maximum; beats.ONSET_SHARE finds it a column later.
    verdicts = {column_of(b.t_ed_s) - 1: j for b, j in zip(beats, judged, strict=True)}
    assert verdicts[575].reasons == verdicts[675].reasons == "heart_moved"
    assert all(j.accepted for ed, j in verdicts.items() if ed < 400 or ed > 900)
    # Breathing: 0.3 mm peak to peak at 2 Hz.
    breath_rows = 6 * np.sin(2 * np.pi * 2.0 * columns * TIME_RES_S)
    prob = cavity_prob(upper + breath_rows, lower + breath_rows)
    _, judged = judge(prob, echo(prob))
    assert all(j.accepted for j in judged)


def test_a_hesitant_model_is_low_confidence():
    prob = cavity_prob(*heart())
    hesitant = 0.5 + 0.3 * (prob - 0.5)  # the same edges, probabilities 0.35-0.65
    _, judged = judge(hesitant, echo(prob))
    assert judged and all(j.reasons == "low_confidence" for j in judged)
    assert all(j.quality < 0.5 for j in judged)


def test_premature_beat_and_its_pause_are_irregular():
    rr_s = np.array([0.1] * 5 + [0.07, 0.13] + [0.1] * 5)
    assert np.flatnonzero(rr_irregular(rr_s)).tolist() == [5, 6]
    drifting = np.linspace(0.08, 0.12, 12)  # a slowing rate is not irregular
    assert not rr_irregular(drifting).any()
    # The last beat's neighbours' median is skewed by the pause, the recording's is not.
    pause = np.array([0.1] * 6 + [0.2, 0.1])
    assert np.flatnonzero(rr_irregular(pause)).tolist() == [6]
    # A pause read 17 % long (its end-diastole timed a few ms early) is still irregular,
    # while clean beats that vary by 8 % are not.
    short_read = np.array([0.117] + [0.1, 0.1, 0.108, 0.092, 0.104, 0.096, 0.1])
    assert np.flatnonzero(rr_irregular(short_read)).tolist() == [0]


def test_values_outside_physiology_and_weak_contraction_are_rejected():
    assert within_limits(make_beat(0, 3.5, 0.04, 2.0, 0.09, "scanner"))
    assert not within_limits(make_beat(0, 6.5, 0.04, 2.0, 0.09, "scanner"))  # LVIDd
    assert not within_limits(make_beat(0, 3.5, 0.04, 0.3, 0.09, "scanner"))  # LVIDs
    assert not within_limits(make_beat(0, 3.5, 0.04, 2.0, 0.05, "scanner"))  # 1200 bpm
    upper, lower = heart(amplitude_rows=2.0)  # FS 3 %
    prob = cavity_prob(upper, lower)
    _, judged = judge(prob, echo(prob))
    assert judged and all(j.reasons == "not_contracting" for j in judged)


def test_summary_is_over_accepted_beats():
    beats = [make_beat(0.1 * k, d, 0.1 * k + 0.04, 2.0, 0.1, "scanner") for k, d in
             enumerate([3.0, 3.2, 9.0, 3.4])]  # fmt: skip
    summary = summarize(beats, [True, True, False, True])
    assert (summary["n_beats"], summary["n_beats_accepted"]) == (4, 3)
    assert summary["lvid_d_mm"] == pytest.approx(3.2)
    assert summarize(beats, [False] * 4)["lvid_d_mm"] is None


def test_a_recording_without_an_accepted_beat_fails_but_keeps_its_files(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, amplitude in (("weak", 2.0), ("good", 15.0)):
        mask = cavity_prob(*heart(amplitude)) > 0.5
        Image.fromarray((mask * 255).astype(np.uint8)).save(folder / f"{name}.png")
        sidecar = {"time_res_s": TIME_RES_S, "depth_res_mm": DEPTH_RES_MM}
        (folder / f"{name}.json").write_text(json.dumps(sidecar))
    measuring = Measuring(
        MeasureSettings(size=HEIGHT, batch_size=4), time_res_s=None, depth_res_mm=None
    )
    out.mkdir()
    recordings = [folder / "good.png", folder / "weak.png"]
    assert measure_recordings(exact_model, recordings, measuring, out, folder=True) == 1
    err = capsys.readouterr().err
    assert "weak: no beat passed the quality checks (reasons: not_contracting" in err
    assert (out / "weak_beats.csv").is_file() and (out / "weak_report.png").is_file()
    assert json.loads((out / "good_summary.json").read_text())["n_beats_accepted"] > 0


def test_a_recording_without_cardiac_motion_says_so_and_fails(tmp_path, capsys):
    # One column of a heart repeated 600 times: a still LV, 120 rows (3 mm) wide.
    column = cavity_prob(*heart())[:, :1] > 0.5
    Image.fromarray((np.repeat(column, 600, axis=1) * 255).astype(np.uint8)).save(
        tmp_path / "still.png"
    )
    sidecar = {"time_res_s": TIME_RES_S, "depth_res_mm": DEPTH_RES_MM}
    (tmp_path / "still.json").write_text(json.dumps(sidecar))
    measuring = Measuring(
        MeasureSettings(size=HEIGHT, batch_size=4), time_res_s=None, depth_res_mm=None
    )
    out = tmp_path / "out"
    out.mkdir()
    assert (
        measure_recordings(exact_model, [tmp_path / "still.png"], measuring, out, folder=False) == 1
    )
    sentence = "no cardiac motion found (LVID changes by less than 0.1 mm)"
    assert f"still: {sentence}" in capsys.readouterr().err
    summary = json.loads((out / "still_summary.json").read_text())
    assert sentence in summary["error"]
    assert summary["n_beats"] == 0 and summary["heart_rate_bpm"] is None
    assert (out / "still_report.png").is_file()
