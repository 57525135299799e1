"""Synthetic recordings: deterministic, physiological, truth consistent with the traces."""

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import points_of_before

from mmode.images import read_gray
from mmode.scanner import TYPICAL_TIME_RES_S
from preprocessing import artefacts, simulator, synthetic

# Small but physiological: 128 rows x 0.07 mm = 8.96 mm deep, 400 columns = 0.33 s.
SMALL = ["--recordings", "2", "--height", "128", "--width", "400", "--depth-res", "0.07"]
BEAT_KEYS = (
    "beat_ed_time_s",
    "beat_lvid_d_mm",
    "beat_es_time_s",
    "beat_lvid_s_mm",
    "beat_heart_rate_bpm",
    "beat_end_time_s",
    "beat_corrupted",
    "beat_artefacts",
)


def make_set(out_dir: Path, seed: int, *extra: str) -> Path:
    assert synthetic.main(["--out", str(out_dir), "--seed", str(seed), *SMALL, *extra]) == 0
    return out_dir


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Two sets with seed 3 and one with seed 4; and seed 3 without artefacts."""
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "a": make_set(root / "a", 3),
        "a_again": make_set(root / "a_again", 3),
        "b": make_set(root / "b", 4),
        "clean": make_set(root / "clean", 3, "--no-artefacts"),
    }


def all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def read_traces(csv_path: Path, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower trace at every column, linear between the CSV points."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = np.arange(width)
    traces = []
    for name in ("upper", "lower"):
        points = np.array([(float(r["x"]), float(r["y"])) for r in rows if r["trace"] == name])
        traces.append(np.interp(columns, points[:, 0], points[:, 1]))
    return traces[0], traces[1]


def recordings(folder: Path):
    """(image, upper, lower, truth) for every recording in a set."""
    for png in sorted((folder / "recordings").glob("*.png")):
        image = read_gray(png)
        upper, lower = read_traces(folder / "annotations" / f"{png.stem}.csv", image.shape[1])
        truth = json.loads((folder / "truth" / f"{png.stem}.json").read_text())
        yield image, upper, lower, truth


def test_same_seed_gives_identical_files_and_other_seed_differs(sets):
    first, again, other = (all_files(sets[k]) for k in ("a", "a_again", "b"))
    assert first == again
    assert first.keys() == other.keys()
    assert first["recordings/synth_000.png"] != other["recordings/synth_000.png"]
    assert first["truth/synth_000.json"] != other["truth/synth_000.json"]


def test_layout_sidecars_and_window_pairs(sets):
    folder = sets["a"]
    names = ["synth_000", "synth_001"]
    for name in names:
        sidecar = json.loads((folder / "recordings" / f"{name}.json").read_text())
        assert sidecar == {"time_res_s": 0.00083, "depth_res_mm": 0.07}
        header = (folder / "annotations" / f"{name}.csv").read_text().splitlines()[0]
        assert header == "trace,x,y"
        assert read_gray(folder / "recordings" / f"{name}.png").shape == (128, 400)
    img = sorted(p.name for p in (folder / "img").glob("*.png"))
    mask = sorted(p.name for p in (folder / "mask").glob("*.png"))
    assert img == mask
    assert {n.rsplit("_win", 1)[0] for n in img} == set(names)
    for file_name in img:
        window = read_gray(folder / "img" / file_name)
        cavity = read_gray(folder / "mask" / file_name) > 0
        assert window.shape == cavity.shape == (128, 128)
        assert 0.2 < cavity.mean() < 0.7
        assert window[cavity].mean() < 0.5 * window[~cavity].mean()


def test_truth_is_physiological(sets):
    for _, _, _, truth in recordings(sets["a"]):
        assert 2.5 <= truth["lvid_d_mm"] <= 3.8
        assert 0.9 <= truth["lvid_s_mm"] <= 2.5
        assert 25 <= truth["fs_percent"] <= 65
        assert truth["fs_percent"] < truth["ef_percent"] < 100
        assert 550 <= truth["heart_rate_bpm"] <= 780
        assert truth["n_beats"] >= 2
        for key in BEAT_KEYS:
            assert len(truth[key]) == truth["n_beats"]
        ed_s, es_s = np.array(truth["beat_ed_time_s"]), np.array(truth["beat_es_time_s"])
        rr_s = np.array(truth["beat_end_time_s"]) - ed_s
        # Systole is the shorter part of each cycle, unless a premature beat cuts it short.
        regular = np.array(["premature" not in words for words in truth["beat_artefacts"]])
        assert np.all((es_s - ed_s)[regular] < 0.5 * rr_s[regular])


def test_truth_medians_follow_from_the_beats(sets):
    for _, _, _, truth in recordings(sets["a"]):
        d_mm, s_mm = np.array(truth["beat_lvid_d_mm"]), np.array(truth["beat_lvid_s_mm"])
        # EF by the scanner's Teichholz formula, D in mm.
        edv, esv = 7 / (2.4 + d_mm) * d_mm**3, 7 / (2.4 + s_mm) * s_mm**3
        assert truth["lvid_d_mm"] == pytest.approx(np.median(d_mm), abs=1e-5)
        assert truth["lvid_s_mm"] == pytest.approx(np.median(s_mm), abs=1e-5)
        assert truth["fs_percent"] == pytest.approx(100 * np.median(1 - s_mm / d_mm), abs=1e-3)
        assert truth["ef_percent"] == pytest.approx(100 * np.median(1 - esv / edv), abs=1e-3)


def local_maxima(values: np.ndarray, half_window: int) -> np.ndarray:
    """Columns holding the largest value within +-half_window columns."""
    padded = np.pad(values, half_window, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_window + 1)
    return np.flatnonzero(values == windows.max(axis=1))


def test_truth_agrees_with_the_annotated_traces(sets):
    for _, upper, lower, truth in recordings(sets["a"]):
        # Beats are at least 70 ms (85 columns) apart, so +-30 columns finds each ED once.
        assert_truth_follows_traces(upper, lower, truth, 30)


def assert_truth_follows_traces(
    upper: np.ndarray, lower: np.ndarray, truth: dict, half_window: int
) -> None:
    """The truth's EDs, ESs, diameters and beat lengths are those of the traces."""
    time_res_s = truth["time_res_s"]
    lvid_mm = (lower - upper) * truth["depth_res_mm"]
    ed_cols = local_maxima(lvid_mm, half_window)
    ed_cols = ed_cols[(ed_cols > 0) & (ed_cols < lvid_mm.size - 1)]
    true_ed_cols = np.array(truth["beat_ed_time_s"]) / time_res_s
    # Every true ED shows as a maximum within a column, with the true diameter.
    nearest = ed_cols[np.abs(ed_cols[:, None] - true_ed_cols).argmin(axis=0)]
    assert np.all(np.abs(nearest - true_ed_cols) <= 1.0)
    assert lvid_mm[nearest] == pytest.approx(truth["beat_lvid_d_mm"], abs=0.005)
    # ES is the minimum up to the next ED.
    ends = np.array([*nearest[1:], ed_cols[ed_cols > nearest[-1]][0]])
    es_cols = np.array([a + lvid_mm[a:b].argmin() for a, b in zip(nearest, ends, strict=True)])
    true_es_cols = np.array(truth["beat_es_time_s"]) / time_res_s
    assert np.all(np.abs(es_cols - true_es_cols) <= 1.0)
    assert lvid_mm[es_cols] == pytest.approx(truth["beat_lvid_s_mm"], abs=0.005)
    # Heart rate: each beat's length within the 2 columns that whole-column EDs allow.
    rr_cols = ends - nearest
    true_rr_cols = 60 / np.array(truth["beat_heart_rate_bpm"]) / time_res_s
    assert np.all(np.abs(rr_cols - true_rr_cols) <= 2.0)
    assert truth["heart_rate_bpm"] == pytest.approx(np.median(truth["beat_heart_rate_bpm"]))


def mean_between(image: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> float:
    """Mean grey value between two row positions given per column."""
    rows = np.arange(image.shape[0])[:, None]
    return image[(rows >= top) & (rows <= bottom)].mean()


def test_cavity_is_darker_than_the_walls_around_it(sets):
    for image, upper, lower, _ in recordings(sets["a"]):
        # Septum and posterior wall are at least 0.8 mm (11 rows) thick here.
        cavity = mean_between(image, upper + 2, lower - 2)
        assert cavity < 0.5 * mean_between(image, upper - 7, upper - 2)
        assert cavity < 0.5 * mean_between(image, lower + 2, lower + 7)


def test_speckle_moves_with_the_tissue():
    """Along the posterior wall, neighbouring columns look alike; white noise would not."""
    recording = simulator.simulate_recording(
        simulator.recording_rng(0, 0), height=128, width=400, depth_res_mm=0.07
    )
    columns = np.arange(400)
    wall = np.stack(
        [recording.image[np.round(recording.lower_px).astype(int) + d, columns] for d in (3, 4, 5)]
    ).astype(float)
    wall -= wall.mean(axis=1, keepdims=True)
    neighbours = np.corrcoef(wall[:, :-1].ravel(), wall[:, 1:].ravel())[0, 1]
    assert neighbours > 0.7


def test_csv_traces_follow_the_true_borders_within_a_fraction_of_a_pixel(tmp_path):
    recording = simulator.simulate_recording(
        simulator.recording_rng(0, 1), height=128, width=401, depth_res_mm=0.07
    )
    csv_path = tmp_path / "traces.csv"
    csv_path.write_text(synthetic.trace_csv(recording.upper_px, recording.lower_px))
    upper, lower = read_traces(csv_path, 401)
    assert np.abs(upper - recording.upper_px).max() < 0.15
    assert np.abs(lower - recording.lower_px).max() < 0.15


def test_drawn_hearts_fit_the_minimum_depth():
    time_s = np.arange(1440) * TYPICAL_TIME_RES_S
    for index in range(200):
        rng = np.random.default_rng([99, index])
        heart = simulator.draw_heart(rng)
        beats = simulator.draw_beats(heart, time_s[-1], rng)
        lvid_mm = simulator.lvid_curve_mm(beats, time_s)
        drift_mm = simulator.breathing_mm(heart, time_s)
        assert simulator.required_depth_mm(heart, lvid_mm, drift_mm) < simulator.MIN_DEPTH_MM


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--height", "64"], "too shallow"),
        (["--width", "100", "--height", "128", "--depth-res", "0.07"], "too short"),
        (["--recordings", "0"], "--recordings must be a positive number"),
        (["--depth-res", "inf"], "--depth-res must be a positive number"),
        (["--seed", "-1"], "--seed must be 0 or more"),
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path, capsys, extra, expected):
    assert synthetic.main(["--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_non_empty_out_needs_overwrite(sets, call_main):
    before = all_files(sets["a"])
    result = call_main(synthetic.main, "--out", sets["a"], *SMALL)
    assert result.code == 2
    assert "--overwrite" in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err
    assert result.out == ""
    assert all_files(sets["a"]) == before


def test_overwrite_with_fewer_recordings_leaves_no_old_files(tmp_path):
    out = make_set(tmp_path / "out", 5)
    argv = ["--out", str(out), "--overwrite", "--recordings", "1", *SMALL[2:]]
    assert synthetic.main(argv) == 0
    assert sorted(p.name for p in (out / "truth").iterdir()) == ["synth_000.json"]
    assert {p.name.rsplit("_win", 1)[0] for p in (out / "img").iterdir()} == {"synth_000"}


# ---- artefacts

# What the generator wrote for SMALL with seed 3 before artefacts existed: the pixels of
# every image but the masks, the annotations at the points of then, and the truth keys of
# then, less EF (its volume formula changed since).
CLEAN_FINGERPRINT = "26e5746c88946e49fc624b000da0af0e69d2b6c0fc61cbf385dc53b7037c1c80"
OLD_TRUTH_KEYS = (
    "lvid_d_mm",
    "lvid_s_mm",
    "heart_rate_bpm",
    "fs_percent",
    "n_beats",
    "time_res_s",
    "depth_res_mm",
    "beat_ed_time_s",
    "beat_lvid_d_mm",
    "beat_es_time_s",
    "beat_lvid_s_mm",
    "beat_heart_rate_bpm",
)
NO_ARTEFACTS = artefacts.Rates(0, 0, 0, 0, 0, 0)


def fingerprint(folder: Path) -> str:
    """A hash of a set's content but its masks (drawn from the annotations' points, denser
    now); pixels rather than PNG bytes, which zlib may change."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if relative.parts[0] == "mask":
            continue
        digest.update(str(relative).encode())
        if path.suffix == ".png":
            digest.update(read_gray(path).tobytes())
        elif relative.parts[0] == "annotations":
            digest.update(points_of_before(path.read_text()))
        elif relative.parts[0] == "truth":
            truth = json.loads(path.read_text())
            digest.update(json.dumps([truth[key] for key in OLD_TRUTH_KEYS]).encode())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_no_artefacts_writes_the_recordings_of_before(sets):
    assert fingerprint(sets["clean"]) == CLEAN_FINGERPRINT
    assert fingerprint(sets["a"]) != CLEAN_FINGERPRINT


def simulate(index: int, rates: artefacts.Rates | None, width: int = 400):
    """A small recording with artefacts at `rates`, or without any for None."""
    return simulator.simulate_recording(
        simulator.recording_rng(7, index),
        height=128,
        width=width,
        depth_res_mm=0.07,
        artefact_rng=simulator.artefact_rng(7, index) if rates else None,
        rates=rates or NO_ARTEFACTS,
    )


def only(**rates: float) -> artefacts.Rates:
    return dataclasses.replace(NO_ARTEFACTS, **rates)


def stretch_columns(recording, kind: str, margin: int = 0) -> np.ndarray:
    """Which columns the recording's stretches of this kind cover, widened by margin."""
    time_res_s = recording.truth["time_res_s"]
    covered = np.zeros(recording.image.shape[1], dtype=bool)
    for name, start_s, end_s in recording.truth["artefact_spans_s"]:
        if name == kind:
            first, last = round(start_s / time_res_s), round(end_s / time_res_s)
            covered[max(first - margin, 0) : last + margin + 1] = True
    return covered


def test_default_rates_corrupt_some_beats_of_some_recordings():
    truths = [simulate(index, artefacts.DEFAULT_RATES).truth for index in range(12)]
    beats = sum(truth["n_beats"] for truth in truths)
    corrupted = [sum(truth["beat_corrupted"]) for truth in truths]
    assert 0 < sum(corrupted) < 0.4 * beats
    assert 0 in corrupted
    assert not any(simulate(0, None).truth["beat_corrupted"])


def test_truth_lists_align_and_clean_medians_leave_out_corrupted_beats():
    recording = simulate(5, artefacts.Rates(1, 30, 3, 0, 0.2, 0.05), width=1200)
    truth = recording.truth
    for key in BEAT_KEYS:
        assert len(truth[key]) == truth["n_beats"]
    assert truth["beat_corrupted"] == [artefacts.corrupts(w) for w in truth["beat_artefacts"]]
    clean = ~np.array(truth["beat_corrupted"])
    assert 0 < truth["n_beats_clean"] == clean.sum() < truth["n_beats"]
    for key in ("lvid_d_mm", "lvid_s_mm", "heart_rate_bpm"):
        beats = np.array(truth[f"beat_{key}"])
        assert truth[f"clean_{key}"] == pytest.approx(np.median(beats[clean]), abs=1e-5)
        assert truth[key] == pytest.approx(np.median(beats), abs=1e-5)


def test_dropout_columns_are_dark_and_leave_the_rest_alone():
    clean, dropped = simulate(0, None), simulate(0, only(dropout_per_s=60))
    lost = stretch_columns(dropped, "dropout")
    # The beam's width blurs a column into its neighbours, 2 columns at most.
    near = stretch_columns(dropped, "dropout", margin=3)
    assert lost.any()
    assert dropped.image[:, lost].mean() < 0.6 * clean.image[:, lost].mean()
    assert np.array_equal(dropped.image[:, ~near], clean.image[:, ~near])


def test_noise_bursts_brighten_the_cavity_where_they_are():
    clean, noisy = simulate(1, None), simulate(1, only(noise_per_s=15))
    burst = stretch_columns(noisy, "noise")
    assert burst.any()
    rows = np.arange(128)[:, None]
    cavity = (rows >= clean.upper_px + 2) & (rows <= clean.lower_px - 2)
    in_burst = cavity & burst
    assert noisy.image[in_burst].mean() > 1.5 * clean.image[in_burst].mean()
    assert np.array_equal(noisy.image[:, ~burst], clean.image[:, ~burst])
    assert_beats_marked_where_touched(noisy, "noise")


def truth_words_of(recording, word: str) -> list[bool]:
    """Per beat, whether its artefacts name `word`."""
    return [word in words for words in recording.truth["beat_artefacts"]]


def assert_beats_marked_where_touched(recording, kind: str) -> None:
    """Exactly the beats a stretch of `kind` touches (within REACH_S) name it; all corrupted."""
    truth = recording.truth
    time_res_s = truth["time_res_s"]
    touched = stretch_columns(recording, kind, margin=round(artefacts.REACH_S / time_res_s))
    named = truth_words_of(recording, kind)
    assert any(named)
    for k, start_s in enumerate(truth["beat_ed_time_s"]):
        first, last = round(start_s / time_res_s), round(truth["beat_end_time_s"][k] / time_res_s)
        assert named[k] == touched[first : last + 1].any()
        assert truth["beat_corrupted"][k] or not named[k]


def test_probe_motion_is_left_out_of_the_annotation_and_corrupts_its_beats():
    clean, slipped = simulate(2, None, 900), simulate(2, only(probe_motion_per_s=6), 900)
    moved = stretch_columns(slipped, "probe_motion")
    assert moved.any()
    first, last = slipped.annotated_cols
    assert last - first + 1 >= 128  # a whole training window fits
    assert not moved[first : last + 1].any()
    csv_text = synthetic.trace_csv(slipped.upper_px, slipped.lower_px, slipped.annotated_cols)
    xs = np.array([float(line.split(",")[1]) for line in csv_text.splitlines()[1:]])
    assert xs.min() == first and xs.max() == last
    # The heart is elsewhere in the image there, but its true edges stay the clean ones.
    assert np.abs(slipped.image[:, moved].astype(int) - clean.image[:, moved]).mean() > 20
    assert np.array_equal(slipped.lower_px, clean.lower_px)
    assert_beats_marked_where_touched(slipped, "probe_motion")


def test_chordae_brighten_the_cavity_but_leave_the_edges_and_the_beats():
    clean, chorded = simulate(3, None), simulate(3, only(intracavity_share=1))
    assert np.array_equal(chorded.upper_px, clean.upper_px)
    assert np.array_equal(chorded.lower_px, clean.lower_px)
    rows = np.arange(128)[:, None]
    near_wall = (rows >= clean.lower_px - 0.4 / 0.07) & (rows <= clean.lower_px - 2)
    assert chorded.image[near_wall].mean() > 1.2 * clean.image[near_wall].mean()
    assert all(truth_words_of(chorded, "intracavity"))
    assert not any(chorded.truth["beat_corrupted"])


def test_irregular_beats_change_the_rhythm_but_keep_true_diameters():
    recording = simulate(6, only(premature_per_beat=0.3, pause_per_beat=0.15), width=1200)
    truth = recording.truth
    premature, pause = truth_words_of(recording, "premature"), truth_words_of(recording, "pause")
    assert any(premature) and any(pause)
    rr_s = np.array(truth["beat_end_time_s"]) - np.array(truth["beat_ed_time_s"])
    regular = ~np.array(premature) & ~np.array(pause)
    usual_s = np.median(rr_s[regular])
    # A premature ED cuts one beat short; the pause after it lengthens the next.
    off = rr_s[premature] / usual_s
    assert np.all((off < 0.85) | (off > 1.15)) and off.min() < 0.85 and off.max() > 1.15
    assert np.all(rr_s[pause] > 1.7 * usual_s)
    assert all(truth["beat_corrupted"][k] for k in np.flatnonzero(~regular))
    # Premature beats come 55 columns after the one before at the least.
    assert_truth_follows_traces(recording.upper_px, recording.lower_px, truth, 20)


def test_heldout_beats_hold_a_flat_maximum_before_contraction_starts():
    from preprocessing.heldout import BeatShape
    from preprocessing.simulator import Beats, lvid_curve_mm

    ed_s = np.array([0.0, 0.1, 0.2])
    beats = Beats(ed_s, np.array([3.5, 3.5, 3.5]), ed_s[:-1] + 0.04, np.array([2.0, 2.0]))
    shape = BeatShape(1.0, 0.35, 0.2, 0.2, hold_s=0.008)
    before = lvid_curve_mm(beats, np.linspace(0.092, 0.1, 9), shape=shape)
    after = lvid_curve_mm(beats, np.array([0.1, 0.104]), shape=shape)
    assert np.ptp(before) < 1e-9 and before[0] == pytest.approx(3.5)
    assert after[1] < after[0] - 0.01  # and contraction starts at the drawn end-diastole


def test_heldout_settings_keep_the_mouse_and_change_its_beats():
    from preprocessing.simulator import artefact_rng, heldout_rng, recording_rng, simulate_recording

    tuned = simulate_recording(recording_rng(5, 0), artefact_rng=artefact_rng(5, 0))
    held = simulate_recording(
        recording_rng(5, 0), artefact_rng=artefact_rng(5, 0), heldout_rng=heldout_rng(5, 0)
    )
    assert tuned.image.shape == held.image.shape
    assert held.truth["lvid_d_mm"] == pytest.approx(tuned.truth["lvid_d_mm"], rel=0.06)
    assert held.truth["beat_ed_time_s"] != tuned.truth["beat_ed_time_s"]
    assert not np.array_equal(tuned.image, held.image)


def test_a_dropout_over_a_depth_band_darkens_only_that_band():
    amplitude = np.ones((50, 20))
    band = artefacts.Stretch("dropout", 5, 7, strength=20.0, rows=(10, 19))
    dropped = artefacts.drop_out(amplitude, [band])
    assert np.allclose(dropped[10:20, 5:8], 0.1)
    dropped[10:20, 5:8] = 1.0
    assert np.array_equal(dropped, amplitude)  # nothing else changed


def test_the_annotation_keeps_every_columns_edge_of_a_sharp_end_systole(tmp_path):
    # A held-out beat turns at end-systole within a few columns: traced every other column
    # and drawn linearly between the points, its tip is cut (0.8 rows wide on seed 57), and
    # a model trained on such masks learns LVIDs wide.
    recording = simulator.simulate_recording(
        simulator.recording_rng(57, 0), heldout_rng=simulator.heldout_rng(57, 0)
    )
    path = tmp_path / "traces.csv"
    path.write_text(
        synthetic.trace_csv(recording.upper_px, recording.lower_px, recording.annotated_cols)
    )
    upper, lower = read_traces(path, recording.image.shape[1])
    first, last = recording.annotated_cols
    for traced, simulated in ((upper, recording.upper_px), (lower, recording.lower_px)):
        np.testing.assert_allclose(traced[first : last + 1], simulated[first : last + 1], atol=6e-4)
