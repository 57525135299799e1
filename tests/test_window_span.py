"""--window-s: windows span at most so many seconds, in cutting, training and measuring, so
that a deep or slowly swept recording's beats are not squeezed into a few pixels each."""

import json

import numpy as np
import pytest
import torch
from helpers import TINY, load_checkpoint
from PIL import Image
from test_time_stretch import (
    BEAT_COLUMNS,
    BOTTOM_ROW,
    DIP_ROWS,
    HEIGHT,
    TOP_ROW,
    WIDTH,
    ExactQuickNat,
    sharp_turn_recording,
)

import measurement.pipeline
import run
import test as test_script
from measurement.inference import load_model, segment_recording
from mmode.timescale import WINDOWS_FILE, resample_columns, time_factor
from preprocessing import make_windows
from quicknat import CheckpointError, TrainingCheckpoint, trained_window_s

TIME_RES_S = 0.01  # a 64-row window then spans 0.64 s


def systolic_rows(window_s: float | None) -> float:
    """The narrowest cavity, in rows, that an exact square model measures."""
    model = ExactQuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3}).eval()
    prob = segment_recording(
        model, sharp_turn_recording(), size=32, time_res_s=TIME_RES_S, window_s=window_s
    )
    assert prob.shape == (HEIGHT, WIDTH)
    return float((prob > 0.5).sum(axis=0)[BEAT_COLUMNS // 2 : -BEAT_COLUMNS // 2].min())


def test_windows_of_a_shorter_span_keep_the_end_systolic_turn_that_long_ones_blur():
    true_rows = BOTTOM_ROW - DIP_ROWS - TOP_ROW
    square_error = systolic_rows(None) - true_rows
    # Windows of 0.32 s: the recording is measured at twice its columns, as a model
    # trained so saw it, and its probabilities brought back to its own columns.
    short_error = systolic_rows(0.32) - true_rows
    assert square_error >= 2
    assert abs(short_error) <= square_error / 2
    # A window that spans less than window_s already is measured as it is.
    assert systolic_rows(0.64) == systolic_rows(None)


def test_resampling_along_time_is_linear_for_images_and_nearest_for_masks():
    assert time_factor(64, TIME_RES_S, None) == 1
    assert time_factor(64, TIME_RES_S, 1.0) == 1  # the window spans 0.64 s already
    assert time_factor(64, TIME_RES_S, 0.16) == pytest.approx(4)
    ramp = np.tile(np.arange(0, 100, 4, dtype=np.uint8), (3, 1))  # 25 columns
    doubled = resample_columns(ramp, 50)
    assert doubled.dtype == np.uint8 and doubled.shape == (3, 50)
    # Pixel centres: new column j lies at (j + 0.5) / 2 - 0.5 on the old axis.
    assert doubled[0, 3] == 5 and doubled[0, 0] == 0 and doubled[0, -1] == 96
    labels = np.tile(np.array([0, 1, 2, 3, 0], dtype=np.uint8), (2, 1))
    assert set(np.unique(resample_columns(labels, 13, nearest=True))) == {0, 1, 2, 3}
    back = resample_columns(resample_columns(ramp.astype(np.float32), 75), 25)
    np.testing.assert_allclose(back, ramp, atol=1e-3)


def write_recordings(folder, n: int = 3):
    """n recordings 64 x 400 with a sharp-turn cavity, their masks, and sidecars."""
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = sharp_turn_recording()
        image = np.where(mask > 0, 30, 150).astype(np.uint8) + rng.integers(0, 40, mask.shape)
        Image.fromarray(image.astype(np.uint8)).save(images / f"rec{i}.png")
        Image.fromarray(mask).save(masks / f"rec{i}.png")
        sidecar = {"time_res_s": TIME_RES_S, "depth_res_mm": 0.05}
        (images / f"rec{i}.json").write_text(json.dumps(sidecar))
    return images, masks


def test_windows_cut_with_a_span_cover_it_and_the_folder_says_so(tmp_path):
    images, masks = write_recordings(tmp_path)
    square = make_windows.make_windows(images, masks, tmp_path / "square", progress=False)
    short = make_windows.make_windows(
        images, masks, tmp_path / "short", window_s=0.32, progress=False
    )
    assert not (tmp_path / "square" / WINDOWS_FILE).exists()
    assert json.loads((tmp_path / "short" / WINDOWS_FILE).read_text()) == {"window_s": 0.32}
    # 400 columns at twice the columns: 800, in 64-column windows every 32 columns.
    assert square.windows == 3 * 12 and short.windows == 3 * 24
    window = np.array(Image.open(tmp_path / "short" / "mask" / "rec0_win1.png"))
    assert window.shape == (64, 64) and set(np.unique(window)) == {0, 255}
    # Columns 32-95 of 800 are the recording's 16-47: the V's tip (40) twice, and the
    # window half as long in time as a square one.
    cavity_rows = (window > 0).sum(axis=0)
    assert cavity_rows.min() == BOTTOM_ROW - DIP_ROWS - TOP_ROW
    assert np.sum(cavity_rows == cavity_rows.min()) == 2


def test_windows_of_another_span_are_refused_in_the_same_folder(tmp_path, capsys):
    images, masks = write_recordings(tmp_path, n=1)
    out = tmp_path / "data"
    flags = ["--images", str(images), "--masks", str(masks), "--out", str(out)]
    assert make_windows.main(flags) == 0
    code = make_windows.main([*flags, "--window-s", "0.3", "--overwrite"])
    assert code != 0
    err = capsys.readouterr().err
    assert "holds windows cut square" in err and "--out" in err
    assert "Traceback" not in err
    assert make_windows.main([*flags[:4], "--out", str(tmp_path / "new"), "--window-s", "0"]) != 0
    assert "--window-s: window_s must be 0.02 to 10 s, got 0.0." in capsys.readouterr().err


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """best.pt of one epoch on windows cut with --window-s 0.32, and the recordings."""
    root = tmp_path_factory.mktemp("window_span")
    images, masks = write_recordings(root)
    make_windows.make_windows(images, masks, root / "data", window_s=0.32, progress=False)
    flags = ["-d", str(root / "data"), "-o", str(root / "run"), *TINY, "-e", "1"]
    assert run.main(flags) == 0
    return root / "run" / "best.pt", images


def test_the_checkpoint_keeps_the_span_and_test_py_measures_with_it(
    short_run, tmp_path, monkeypatch
):
    best, images = short_run
    assert load_checkpoint(best)["window_s"] == 0.32
    assert load_model(best, {}, torch.device("cpu")).window_s == 0.32
    seen = []

    def spy(model, image, size, *args):
        seen.append(args[-2:])  # time_res_s, window_s
        return real_segment(model, image, size, *args)

    real_segment = measurement.pipeline.segment_recording
    monkeypatch.setattr(measurement.pipeline, "segment_recording", spy)
    code = test_script.main(["-d", str(images), "-m", str(best), "-o", str(tmp_path / "out")])
    assert code in (0, 1)  # a one-epoch model may find no beat; it measured all the same
    assert seen and all(args == (TIME_RES_S, 0.32) for args in seen)


def test_a_checkpoint_with_a_damaged_span_is_refused_and_others_measure_square(short_run):
    best, _ = short_run
    checkpoint = load_checkpoint(best)
    for bad in ("0.32", -1, 100):
        with pytest.raises(CheckpointError, match="its window_s is not a number of seconds"):
            TrainingCheckpoint.from_dict({**checkpoint, "window_s": bad}, "best.pt")
    without = {k: v for k, v in checkpoint.items() if k != "window_s"}
    assert TrainingCheckpoint.from_dict(without, "best.pt").window_s is None
    assert trained_window_s(checkpoint["net_state_dict"]) is None  # bare weights: square


def test_starting_from_it_on_square_windows_warns_and_the_new_model_measures_square(
    short_run, tiny_data, tmp_path, capsys
):
    best, _ = short_run
    flags = ["-d", str(tiny_data), "-o", str(tmp_path / "next"), "--start-from", str(best)]
    assert run.main([*flags, *TINY, "-e", "1"]) == 0
    err = capsys.readouterr().err
    assert "windows are cut square, but the model started from was trained on windows cut " in err
    assert "with --window-s 0.32" in err
    assert "window_s" not in load_checkpoint(tmp_path / "next" / "best.pt")


def test_scoring_a_test_set_cut_otherwise_warns(short_run, tiny_data, tmp_path, capsys):
    best, _ = short_run
    code = test_script.main(["-d", str(tiny_data), "-m", str(best), "-o", str(tmp_path / "s")])
    assert code == 0
    err = capsys.readouterr().err
    assert "windows were cut square, the model's training windows with --window-s 0.32" in err
