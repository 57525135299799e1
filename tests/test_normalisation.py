"""Per-image input normalisation: the model sees the same input whatever the gain."""

import torch
from conftest import write_band_data
from helpers import TINY, load_checkpoint

import run
import trainer
from dataset import augment_batch
from mmode.tensors import gaussian_blur, normalise_input
from quicknat import QuickNat, QuickNatConfig, stored_config
from quicknat.schema import choose_config
from training.config import parse_config


def dark_images(seed: int = 0) -> torch.Tensor:
    """Float images in [0, 1] whose grey levels (of 256) are all below 64, so that a gain of
    2 or 4, or a gamma that stretches them to white, maps each level to a level of its own:
    monotone changes that merge no two levels."""
    generator = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 64, (3, 1, 32, 32), generator=generator)
    return levels.float() / 255


def test_rank_input_is_the_same_after_any_monotone_change_of_grey_levels():
    images = dark_images()
    levels = (images * 255).round()
    doubled = levels * 2 / 255
    gamma = 255 * (levels / 63) ** 0.8  # rises by 3 or more grey levels per level
    for changed in (doubled, gamma.round() / 255, (levels * 4 + 3) / 255):
        torch.testing.assert_close(
            normalise_input(changed, "rank"), normalise_input(images, "rank")
        )
    assert not torch.allclose(normalise_input(doubled, "unit"), normalise_input(images, "unit"))


def test_rank_is_the_mid_rank_of_each_grey_level():
    image = torch.tensor([0.0, 0.0, 10.0, 20.0]).view(1, 1, 2, 2) / 255
    # The share of pixels darker plus half the share as bright: two pixels share level 0
    # (0 + 2 / 2) / 4, then (2 + 1 / 2) / 4 and (3 + 1 / 2) / 4.
    expected = torch.tensor([1 / 4, 1 / 4, 5 / 8, 7 / 8]).view(1, 1, 2, 2)
    torch.testing.assert_close(normalise_input(image, "rank"), expected)


def test_a_rank_model_predicts_the_same_for_a_brighter_copy_and_a_unit_model_does_not():
    torch.manual_seed(0)
    images = dark_images(1)
    brighter = (images * 255).round() * 2 / 255
    for norm, same in (("rank", True), ("unit", False)):
        model = QuickNat(QuickNatConfig(num_filters=8, kernel_h=3, kernel_w=3, input_norm=norm))
        model.eval()
        with torch.no_grad():
            equal = torch.allclose(model(images), model(brighter), atol=1e-5)
        assert equal == same, norm


def test_checkpoints_without_input_norm_read_grey_levels_over_255():
    """The original tool's and our earlier checkpoints: no input_norm in model_config."""
    old = {"model_config": {"num_filters": 8, "kernel_h": 3, "kernel_w": 3}}
    assert stored_config(old).input_norm == "unit"
    assert choose_config(None, {"num_filters": 8})[0].input_norm == "unit"
    assert choose_config(old, {"input_norm": None})[0].input_norm == "unit"


def test_blur_of_zero_keeps_an_image_and_a_blur_smooths_it():
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    blurred = gaussian_blur(images, torch.tensor([0.0, 1.0]), 1.0)
    torch.testing.assert_close(blurred[0], images[0])
    assert blurred[1].std() < 0.7 * images[1].std()


def test_augmentation_changes_gain_and_keeps_masks_binary():
    torch.manual_seed(3)
    images = torch.full((8, 1, 32, 32), 0.3)
    masks = torch.zeros(8, 1, 32, 32)
    masks[:, :, 10:20] = 1
    out, moved = augment_batch(images, masks)
    means = out.mean(dim=(1, 2, 3))
    assert means.max() - means.min() > 0.1  # gain, gamma and contrast differ per image
    assert set(moved.unique().tolist()) <= {0.0, 1.0}


def prepare(*argv: object):
    """The Trainer run.py would build for these flags, before its first step."""
    return trainer.prepare_training(parse_config([str(a) for a in argv]))


def test_run_py_trains_rank_models_and_a_resumed_unit_checkpoint_stays_unit(tmp_path):
    data = write_band_data(tmp_path / "data", n=4, size=32)
    fresh = prepare("-d", data, "-o", tmp_path / "new", *TINY)
    assert fresh.model.config.input_norm == "rank"
    unit = prepare("-d", data, "-o", tmp_path / "unit", *TINY, "--input-norm", "unit")
    assert unit.model.config.input_norm == "unit"
    assert run.main(["-d", str(data), "-o", str(tmp_path / "unit"), *TINY, "--input-norm",
                     "unit", "-e", "1"]) == 0  # fmt: skip
    saved = load_checkpoint(tmp_path / "unit" / "last.pt")
    assert saved["model_config"]["input_norm"] == "unit"
    resumed = prepare("-d", data, "-o", tmp_path / "unit", "-f", tmp_path / "unit" / "last.pt")
    assert resumed.model.config.input_norm == "unit"
