"""The scanner look: dark, low-contrast recordings whose sweep and settings vary widely."""

import json
from dataclasses import replace

import numpy as np
import pytest

from bench.real_look import cavity_cv, systolic_contrast_change
from bench.real_recording import DEPTH_RES_MM, RECORDING, reference_rows
from mmode.images import read_gray
from preprocessing import simulator, synthetic
from preprocessing.annotations import read_annotation
from preprocessing.masks import interpolate_trace

REAL_MEDIAN_GREY = 30  # the real recording in tests/data/real; classic ones are ~125


@pytest.fixture(scope="module")
def scanner_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("scanner")
    assert synthetic.main(["--out", str(out), "--recordings", "6", "--look", "scanner"]) == 0
    return out


def sidecars(folder):
    return [json.loads(p.read_text()) for p in sorted((folder / "recordings").glob("*.json"))]


def test_each_recording_draws_its_own_sweep_within_the_scanners_spans(scanner_set):
    found = sidecars(scanner_set)
    time_res = [s["time_res_s"] for s in found]
    depth_res = [s["depth_res_mm"] for s in found]
    assert all(0.0005 <= t <= 0.002 for t in time_res)
    assert all(0.01 <= d <= 0.05 for d in depth_res)
    assert len(set(time_res)) == len(found) and len(set(depth_res)) == len(found)
    for sidecar, truth in zip(found, sorted((scanner_set / "truth").glob("*.json")), strict=True):
        assert json.loads(truth.read_text())["time_res_s"] == sidecar["time_res_s"]


def test_recordings_are_as_deep_as_their_heart_and_a_second_or_more_long(scanner_set):
    pngs = sorted((scanner_set / "recordings").glob("*.png"))
    for sidecar, png in zip(sidecars(scanner_set), pngs, strict=True):
        image = read_gray(png)
        depth_mm = image.shape[0] * sidecar["depth_res_mm"]
        assert simulator.MIN_DEPTH_MM - 1 < depth_mm < 14
        assert image.shape[1] * sidecar["time_res_s"] == pytest.approx(1.2, abs=0.002)


def test_scanner_recordings_are_darker_and_cover_the_real_recordings_grey(scanner_set):
    medians = [np.median(read_gray(p)) for p in sorted((scanner_set / "recordings").glob("*.png"))]
    assert min(medians) < REAL_MEDIAN_GREY < max(medians)
    assert np.median(medians) < 100  # the classic look's is about 125


def test_the_annotation_follows_the_true_cavity_and_the_cavity_is_darkest(scanner_set):
    for png in sorted((scanner_set / "recordings").glob("*.png")):
        image = read_gray(png).astype(float)
        traces = read_annotation(scanner_set / "annotations" / f"{png.stem}.csv")
        first, last = int(traces.upper[0, 0]), int(traces.upper[-1, 0])
        columns = np.arange(first, last + 1)
        upper = interpolate_trace(traces.upper, columns)
        lower = interpolate_trace(traces.lower, columns)
        rows = np.arange(image.shape[0])[:, None]
        inside = (rows > upper + 2) & (rows < lower - 2)
        wall = ((rows > lower + 2) & (rows < lower + 8)) | ((rows < upper - 2) & (rows > upper - 8))
        part = image[:, columns]
        assert np.median(part[inside]) < np.median(part[wall])


def test_the_cavity_is_as_smooth_as_the_real_recordings_in_some_and_rougher_in_others(
    scanner_set,
):
    real = read_gray(RECORDING)
    upper, lower = reference_rows(real.shape[1])
    annotated = np.flatnonzero(np.isfinite(upper) & np.isfinite(lower))
    real_cv = cavity_cv(real, upper, lower, annotated, DEPTH_RES_MM)  # about 0.22
    found = []
    for png, sidecar in zip(
        sorted((scanner_set / "recordings").glob("*.png")), sidecars(scanner_set), strict=True
    ):
        traces = read_annotation(scanner_set / "annotations" / f"{png.stem}.csv")
        columns = np.arange(int(traces.upper[0, 0]), int(traces.upper[-1, 0]) + 1)
        upper = np.full(columns[-1] + 1, np.nan)
        lower = upper.copy()
        upper[columns] = interpolate_trace(traces.upper, columns)
        lower[columns] = interpolate_trace(traces.lower, columns)
        found.append(cavity_cv(read_gray(png), upper, lower, columns, sidecar["depth_res_mm"]))
    assert min(found) < real_cv < max(found)


def test_same_seed_same_recording_and_the_classic_look_is_unchanged():
    one = simulator.simulate_recording(
        simulator.recording_rng(4, 0), height=None, width=500, depth_res_mm=0.03, look="scanner"
    )
    two = simulator.simulate_recording(
        simulator.recording_rng(4, 0), height=None, width=500, depth_res_mm=0.03, look="scanner"
    )
    classic = simulator.simulate_recording(simulator.recording_rng(4, 0), width=500)
    assert np.array_equal(one.image, two.image)
    assert classic.image.shape[0] == simulator.DEFAULT_HEIGHT
    assert not np.array_equal(one.image[:100, :100], classic.image[:100, :100])


def test_a_cusp_makes_end_systole_sharp_and_keeps_the_truth():
    beats = simulator.Beats(
        ed_s=np.array([0.0, 0.1, 0.2]),
        lvid_d_mm=np.array([3.5, 3.5, 3.5]),
        es_s=np.array([0.04, 0.14]),
        lvid_s_mm=np.array([1.5, 1.5]),
    )
    time_s = np.linspace(0, 0.2, 2001)[:-1]  # the last ED closes the last beat
    smooth = simulator.lvid_curve_mm(beats, time_s)
    sharp = simulator.lvid_curve_mm(beats, time_s, cusp=1.0)
    for curve in (smooth, sharp):  # the same ED and ES values, at the same times
        assert curve[0] == pytest.approx(3.5) and curve[400] == pytest.approx(1.5)
        assert curve.min() == pytest.approx(1.5) and curve.max() == pytest.approx(3.5)
    speed = np.abs(np.diff(sharp))[395:405].max() / np.abs(np.diff(smooth))[395:405].max()
    assert speed > 5  # the smooth curve stops at end-systole, the sharp one turns at speed


def test_height_without_depth_res_is_refused_for_the_scanner_look(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "o"), "--look", "scanner", "--height", "300"]
    assert synthetic.main(argv) == 2
    assert "--height needs --depth-res" in capsys.readouterr().err


def test_a_sweep_flag_fixes_its_part_and_the_classic_look_keeps_its_columns():
    given = simulator.Sweep(None, None, 0.002, None)
    classic = synthetic.recording_sweep("classic", 0, 0, given)
    assert (classic.width, classic.time_res_s) == (simulator.DEFAULT_WIDTH, 0.002)
    scanner = synthetic.recording_sweep("scanner", 0, 0, given)
    assert (scanner.width, scanner.time_res_s, scanner.height) == (600, 0.002, None)
    assert 0.01 <= scanner.depth_res_mm <= 0.05


def steady_walls():
    """A scanner-look heart's borders, a scanner whose walls keep their echo all beat, and
    the echo amplitude of that heart under any scanner, with the same speckle each time."""
    rng = simulator.recording_rng(5, 0)
    heart = simulator.draw_heart(rng, "scanner")
    time_s = np.arange(600) * 0.001
    lvid_mm = simulator.lvid_curve_mm(simulator.draw_beats(heart, time_s[-1], rng), time_s)
    borders = simulator.layer_borders_px(heart, lvid_mm, 0 * time_s, 0.03, 400, rng)
    steady = replace(
        simulator.draw_scanner(rng, "scanner"),
        septum_systolic_share=0.0, posterior_systolic_share=0.0, endocardium_db=0.0,
        systolic_layer=0.0,
    )  # fmt: skip

    def amplitude(scanner):  # the same speckle every time: only the levels differ
        return simulator.echo_amplitude(borders, scanner, 0.03, 0.001, np.random.default_rng(2))

    return borders, steady, amplitude


def test_each_wall_dims_or_brightens_in_systole_and_an_endocardial_echo_lines_it():
    borders, steady, amplitude = steady_walls()
    cyclic = replace(steady, septum_systolic_share=-0.5, posterior_systolic_share=0.4)

    ratio = amplitude(cyclic) / amplitude(steady)
    lvid_px = borders[simulator.LOWER_BORDER] - borders[simulator.UPPER_BORDER]
    ed, es = int(np.argmax(lvid_px)), int(np.argmin(lvid_px))
    contrast_db = steady.muscle_db - steady.blood_db
    for layer, share in ((simulator.SEPTUM_LAYER, -0.5), (simulator.POSTERIOR_LAYER, 0.4)):
        for column, expected_db in ((ed, 0.0), (es, share * contrast_db)):
            middle = int(round(borders[layer : layer + 2, column].mean()))
            assert 20 * np.log10(ratio[middle, column]) == pytest.approx(expected_db)
    cavity = int(round(borders[5:7, es].mean()))
    assert ratio[cavity, es] == pytest.approx(1.0)
    # An endocardial echo lines each wall's LV side, and only there.
    lined = amplitude(replace(steady, endocardium_db=6.0)) / amplitude(steady)
    for column in (ed, es):
        upper, lower = (
            borders[simulator.UPPER_BORDER, column],
            borders[simulator.LOWER_BORDER, column],
        )
        for just_inside in (int(np.floor(upper)) - 1, int(np.ceil(lower)) + 1):
            assert 20 * np.log10(lined[just_inside, column]) > 0.5
        for layer in (simulator.SEPTUM_LAYER, simulator.POSTERIOR_LAYER):
            middle = int(round(borders[layer : layer + 2, column].mean()))
            assert 20 * np.log10(lined[middle, column]) == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("septum, posterior", [(-0.6, 0.5), (0.0, 0.0)])
def test_the_real_looks_systolic_contrast_reads_the_simulated_share(monkeypatch, septum, posterior):
    drawn = simulator.draw_scanner

    def with_shares(rng, look="classic"):
        return replace(
            drawn(rng, look), septum_systolic_share=septum, posterior_systolic_share=posterior,
            endocardium_db=0.0, looks=16, systolic_layer=0.0,
        )  # fmt: skip

    monkeypatch.setattr(simulator, "draw_scanner", with_shares)
    recording = simulator.simulate_recording(
        simulator.recording_rng(8, 0), height=None, width=900, depth_res_mm=0.03, look="scanner"
    )
    columns = np.arange(900)
    change = systolic_contrast_change(
        recording.image, recording.upper_px, recording.lower_px, columns, 0.03
    )
    # Grey levels are nearly linear in dB, so the grey contrast changes by about the share.
    assert change["septum"] == pytest.approx(septum, abs=0.2)
    assert change["posterior wall"] == pytest.approx(posterior, abs=0.2)


def test_a_walls_systolic_change_can_lie_in_the_layer_it_gained_since_end_diastole():
    borders, steady, amplitude = steady_walls()
    layered = replace(
        steady, septum_systolic_share=-0.5, posterior_systolic_share=0.4, systolic_layer=1.0
    )

    ratio_db = 20 * np.log10(amplitude(layered) / amplitude(steady))
    lvid_px = borders[simulator.LOWER_BORDER] - borders[simulator.UPPER_BORDER]
    ed, es = int(np.argmax(lvid_px)), int(np.argmin(lvid_px))
    contrast_db = steady.muscle_db - steady.blood_db
    septum = borders[simulator.SEPTUM_LAYER : simulator.SEPTUM_LAYER + 2]
    posterior = borders[simulator.POSTERIOR_LAYER : simulator.POSTERIOR_LAYER + 2]
    for share, (outer, inner), thickness in (
        (-0.5, (septum[0, es], septum[1, es]), septum[1] - septum[0]),
        (0.4, (posterior[1, es], posterior[0, es]), posterior[1] - posterior[0]),
    ):
        gained_px = thickness[es] - thickness.min()
        assert gained_px > 4  # the wall thickens in systole by some pixels
        step = np.sign(outer - inner)  # from the LV side into the wall
        # Full change at the LV side, none beyond the layer gained: there the wall is as
        # bright as in diastole.
        lv_side = int(round(inner + step * 1.5))
        assert ratio_db[lv_side, es] == pytest.approx(
            share * contrast_db * (1 - 1.5 / gained_px), abs=0.3
        )
        beyond = int(round(inner + step * (gained_px + 2)))
        assert ratio_db[beyond, es] == pytest.approx(0.0, abs=1e-9)
        assert abs(ratio_db[beyond, es] - ratio_db[lv_side, es]) > 0.2 * contrast_db * abs(share)
    assert np.allclose(ratio_db[:, ed], 0.0)  # and nothing changes at end-diastole
