"""--time-stretch: the network sees each window K times as wide as it is deep, in training,
test-set scoring and measuring, so that a short end-systole survives the resize."""

import numpy as np
import pytest
import torch
from conftest import write_band_data
from helpers import TINY, load_checkpoint

import dataset
import run
import test as test_script
import trainer
from measurement.inference import segment_recording
from quicknat import QuickNat, QuickNatConfig
from training.config import parse_config

HEIGHT, WIDTH, BEAT_COLUMNS = 64, 400, 80
TOP_ROW, BOTTOM_ROW = 10, 50  # the cavity's edges in diastole
DIP_ROWS, DIP_HALF_COLUMNS = 20, 8  # the lower edge's sharp end-systolic turn


class ExactQuickNat(QuickNat):
    """A QuickNat (so that its config's time stretch counts) that is a perfect network:
    each window is its own mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0.5).float() * 20 - 10


def sharp_turn_recording() -> np.ndarray:
    """A cavity whose lower edge dips DIP_ROWS in a V only 2 x DIP_HALF_COLUMNS wide."""
    columns = np.arange(WIDTH)
    from_turn = np.abs((columns % BEAT_COLUMNS) - BEAT_COLUMNS / 2)
    bottom = BOTTOM_ROW - DIP_ROWS * np.clip(1 - from_turn / DIP_HALF_COLUMNS, 0, None)
    rows = np.arange(HEIGHT)[:, None]
    return ((rows >= TOP_ROW) & (rows < bottom)).astype(np.uint8) * 255


def systolic_rows(time_stretch: int) -> float:
    """The narrowest cavity, in rows, that an exact model of this stretch measures."""
    model = ExactQuickNat(
        {"num_filters": 8, "kernel_h": 3, "kernel_w": 3, "time_stretch": time_stretch}
    )
    prob = segment_recording(model.eval(), sharp_turn_recording(), size=32)
    return float((prob > 0.5).sum(axis=0)[BEAT_COLUMNS // 2 : -BEAT_COLUMNS // 2].min())


def test_a_stretched_window_keeps_the_end_systolic_turn_that_a_square_one_blurs():
    true_rows = BOTTOM_ROW - DIP_ROWS - TOP_ROW
    square_error = systolic_rows(1) - true_rows
    stretched_error = systolic_rows(2) - true_rows
    # A square 64 px window shrunk to 32 px averages the V's tip with its sides, reading
    # end-systole wide; twice the columns keep the tip.
    assert square_error >= 2
    assert abs(stretched_error) <= square_error / 2


def test_the_time_stretch_is_one_to_four_and_square_by_default():
    assert QuickNatConfig().time_stretch == 1
    assert QuickNatConfig.from_dict({"num_filters": 8}).input_shape(32) == (32, 32)
    assert QuickNatConfig(time_stretch=2).input_shape(32) == (32, 64)
    for bad in (0, 5):
        with pytest.raises(ValueError, match="time_stretch must be 1 to 4"):
            QuickNatConfig(time_stretch=bad)


def test_a_stretched_model_is_given_windows_twice_as_wide_as_deep():
    torch.manual_seed(0)
    model = QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3, "time_stretch": 2}).eval()
    shapes = []
    model.register_forward_pre_hook(lambda _, args: shapes.append(tuple(args[0].shape[-2:])))
    image = np.random.default_rng(0).integers(0, 256, (48, 130)).astype(np.uint8)
    prob = segment_recording(model, image, size=32)
    assert prob.shape == (48, 130)
    assert set(shapes) == {(32, 64)}


@pytest.fixture(scope="module")
def stretched_run(tmp_path_factory):
    """best.pt of one epoch with --time-stretch 2, and its data folder."""
    root = tmp_path_factory.mktemp("stretched")
    data = write_band_data(root / "data", n=6, size=40, seed=0)
    flags = ["-d", str(data), "-o", str(root / "run"), *TINY, "-e", "1", "--time-stretch", "2"]
    assert run.main(flags) == 0
    return root / "run" / "best.pt", data


def test_training_resizes_windows_to_the_stretched_shape_and_the_checkpoint_keeps_it(
    stretched_run, tmp_path
):
    best, data = stretched_run
    assert load_checkpoint(best)["model_config"]["time_stretch"] == 2
    # A run that starts from it takes its stretch without the flag, and trains at it.
    flags = ["-d", str(data), "-o", str(tmp_path / "next"), "--start-from", str(best), "-e", "1"]
    started = trainer.prepare_training(parse_config(flags))
    assert started.model.config.time_stretch == 2
    assert tuple(started.train_set.images.shape[-2:]) == (32, 64)


def test_a_test_set_is_scored_at_the_models_stretched_shape(stretched_run, tmp_path, monkeypatch):
    best, data = stretched_run
    shapes = []

    def recording_load_pairs(pairs, size, **kwargs):
        shapes.append(size)
        return real_load_pairs(pairs, size, **kwargs)

    real_load_pairs = dataset.load_pairs
    monkeypatch.setattr(test_script, "load_pairs", recording_load_pairs)
    code = test_script.main(["-d", str(data), "-m", str(best), "-o", str(tmp_path / "scores")])
    assert code == 0
    assert shapes == [(32, 64)]
