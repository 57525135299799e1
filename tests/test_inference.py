"""Windows, batched prediction, stitching and model loading for whole recordings."""

import numpy as np
import pytest
import torch
from helpers import exact_model
from PIL import Image

from dataset import find_pairs, load_pairs
from measurement.inference import (
    load_model,
    overlap_step,
    predict_probabilities,
    prepare_windows,
    segment_recording,
)
from mmode.windows import window_starts
from quicknat import CheckpointError, QuickNat, QuickNatConfig, choose_config

TINY = {"num_filters": 8, "kernel_h": 3, "kernel_w": 3}
NO_FLAGS = dict.fromkeys(("num_filters", "kernel_h", "kernel_w", "se_block", "drop_out"))


def pixelwise_model(batch):
    """Logits that depend on each pixel only, so every window agrees where they overlap."""
    return 4 * batch - 2


def band_mask(height, width, seed=0):
    """A cavity band whose edges wander from column to column."""
    rng = np.random.default_rng(seed)
    top = rng.integers(5, height // 2 - 2, width)
    bottom = rng.integers(height // 2 + 2, height - 5, width)
    rows = np.arange(height)[:, None]
    return (rows >= top) & (rows <= bottom)


@pytest.mark.parametrize("width, side, step", [(100, 32, 16), (96, 32, 16), (33, 32, 16)])
def test_windows_cover_every_column_and_end_at_the_edge(width, side, step):
    starts = window_starts(0, width - 1, side, step)
    covered = np.zeros(width, dtype=int)
    for start in starts:
        covered[start : start + side] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] == width - side
    assert all(b - a <= step for a, b in zip(starts, starts[1:], strict=False))


def test_overlap_step():
    assert overlap_step(320, 0.5) == 160
    assert overlap_step(320, 0.0) == 320
    assert overlap_step(3, 0.99) == 1


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.75])
def test_stitching_reproduces_the_mask_when_each_window_is_exact(overlap):
    mask = band_mask(32, 101)
    image = np.where(mask, 255, 0).astype(np.uint8)
    prob = segment_recording(exact_model, image, size=32, overlap=overlap, batch_size=3)
    assert prob.shape == (32, 101)
    np.testing.assert_array_equal(prob > 0.5, mask)


def test_overlapping_windows_are_averaged_not_summed():
    image = np.random.default_rng(2).integers(0, 256, (32, 150)).astype(np.uint8)
    prob = segment_recording(pixelwise_model, image, size=32, overlap=0.75, batch_size=2)
    expected = torch.sigmoid(torch.from_numpy(image / 255.0 * 4 - 2)).numpy()
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def edge_blind_model(batch):
    """Right everywhere (cavity) but in each window's first and last three columns."""
    logits = torch.full_like(batch, 10.0)
    logits[..., :3] = logits[..., -3:] = -10.0
    return logits


@pytest.mark.parametrize("width", [32, 100, 161])
def test_window_edges_and_recording_ends_do_not_decide(width):
    image = np.zeros((32, width), dtype=np.uint8)
    prob = segment_recording(edge_blind_model, image, size=32, overlap=0.5)
    assert (prob > 0.5).all()


def test_recording_narrower_than_high_is_one_mirrored_window():
    mask = band_mask(32, 12, seed=3)
    image = np.where(mask, 255, 0).astype(np.uint8)
    prob = segment_recording(exact_model, image, size=32)
    assert prob.shape == (32, 12)
    np.testing.assert_array_equal(prob > 0.5, mask)


def test_probabilities_come_back_at_full_resolution():
    mask = np.zeros((64, 200), dtype=bool)
    mask[20:44] = True
    image = np.where(mask, 200, 30).astype(np.uint8)
    prob = segment_recording(exact_model, image, size=32)
    assert prob.shape == (64, 200)
    np.testing.assert_array_equal(prob[:, 100] > 0.5, mask[:, 100])


def test_only_one_window_at_a_time_is_brought_back_to_full_size(monkeypatch):
    """Memory: a batch of windows of a 12000-row recording is 8 x 0.6 GB at full size."""
    import measurement.inference as inference

    upsampled = []
    original = inference.F.interpolate

    def counting_interpolate(tensor, *args, **kwargs):
        upsampled.append(tensor.shape[0])
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(inference.F, "interpolate", counting_interpolate)
    mask = np.zeros((64, 400), dtype=bool)
    mask[20:44] = True
    image = np.where(mask, 200, 30).astype(np.uint8)
    prob = segment_recording(exact_model, image, size=32, batch_size=8)
    np.testing.assert_array_equal(prob[:, 200] > 0.5, mask[:, 200])
    assert len(upsampled) > 8 and set(upsampled) == {1}


def test_windows_are_prepared_exactly_as_in_training(tmp_path):
    rng = np.random.default_rng(4)
    windows = [rng.integers(0, 256, (48, 48)).astype(np.uint8) for _ in range(2)]
    for folder in ("img", "mask"):
        (tmp_path / folder).mkdir()
    for i, window in enumerate(windows):
        Image.fromarray(window).save(tmp_path / "img" / f"w{i}.png")
        Image.fromarray(window > 128).save(tmp_path / "mask" / f"w{i}.png")
    data = load_pairs(find_pairs(tmp_path), 32)
    torch.testing.assert_close(prepare_windows(windows, 32), data.images.float() / 255)


def test_batch_size_does_not_change_the_result():
    torch.manual_seed(0)
    model = QuickNat(TINY).eval()
    image = np.random.default_rng(5).integers(0, 256, (32, 130)).astype(np.uint8)
    one = segment_recording(model, image, size=32, batch_size=1)
    many = segment_recording(model, image, size=32, batch_size=5)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_our_checkpoint_brings_its_config(tmp_path):
    torch.manual_seed(0)
    net = QuickNat(TINY)
    path = tmp_path / "ours.pt"
    torch.save({"net_state_dict": net.state_dict(), "model_config": net.config.to_dict()}, path)
    model, _, _, _ = load_model(path, NO_FLAGS, torch.device("cpu"))
    assert model.config.num_filters == 8 and not model.training
    torch.testing.assert_close(model.state_dict(), net.state_dict())


def test_foreign_checkpoint_uses_defaults_unless_flags_say_otherwise(tmp_path):
    torch.manual_seed(0)
    net = QuickNat(TINY)
    path = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    with pytest.raises(CheckpointError, match="num_filters=8"):
        load_model(path, NO_FLAGS, torch.device("cpu"))
    flags = {**NO_FLAGS, "num_filters": 8, "kernel_h": 3, "kernel_w": 3}
    model, _, _, _ = load_model(path, flags, torch.device("cpu"))
    assert model.config.kernel_h == 3


def test_model_config_defaults_and_flags():
    assert choose_config(None, NO_FLAGS) == (QuickNatConfig(), [])
    config, _ = choose_config({"net_state_dict": {}}, {**NO_FLAGS, "se_block": "CSSE"})
    assert config.se_block == "CSSE"
    stored = {"model_config": QuickNatConfig(**TINY).to_dict()}
    config, ignored = choose_config(stored, {**NO_FLAGS, "num_filters": 16})
    assert config.num_filters == 8 and ignored == ["num_filters=8 (flag: 16)"]


def test_predictions_run_under_the_chosen_precision():
    seen = []

    def spy(batch):
        enabled = torch.is_autocast_enabled("cpu")
        seen.append(torch.get_autocast_dtype("cpu") if enabled else None)
        return batch

    predict_probabilities(spy, torch.rand(1, 1, 16, 16), "cpu", "bf16")
    predict_probabilities(spy, torch.rand(1, 1, 16, 16), "cpu", "fp32")
    assert seen == [torch.bfloat16, None]


def test_load_model_in_channels_last(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(QuickNat(TINY).state_dict(), path)
    flags = {**NO_FLAGS, **TINY}
    model, _, _, _ = load_model(path, flags, torch.device("cpu"), channels_last=True)
    assert model.encode1.conv2.weight.is_contiguous(memory_format=torch.channels_last)
