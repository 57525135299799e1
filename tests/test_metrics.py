"""Losses and per-image scores."""

import pytest
import torch

from mmode.scores import per_image_scores
from training.losses import LOSSES, segmentation_loss, soft_dice_loss


def test_soft_dice_loss_is_near_zero_for_a_confident_match_and_near_one_for_a_miss():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6] = 1
    right = torch.where(target > 0, 20.0, -20.0)
    assert soft_dice_loss(right, target).item() < 1e-3
    assert soft_dice_loss(-right, target).item() > 0.95


def band_target() -> torch.Tensor:
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:11] = 1
    return target


def predictions_from_good_to_bad(target: torch.Tensor) -> list[torch.Tensor]:
    """Logits that get more pixels wrong, and are less sure of the right ones, one by one."""
    right = torch.where(target > 0, 1.0, -1.0)
    order = torch.randperm(target.numel(), generator=torch.Generator().manual_seed(0))
    predictions = []
    for wrong, confidence in ((0, 8.0), (0, 2.0), (10, 2.0), (40, 2.0), (120, 2.0), (0, -2.0)):
        sign = right.clone().view(-1)
        sign[order[:wrong]] *= -1
        predictions.append(confidence * sign.view_as(target))
    return predictions


@pytest.mark.parametrize("kind", LOSSES)
def test_every_loss_is_lower_for_a_better_prediction(kind):
    target = band_target()
    losses = [
        segmentation_loss(p, target, kind).item() for p in predictions_from_good_to_bad(target)
    ]
    assert losses == sorted(losses) and len(set(losses)) == len(losses), losses
    assert losses[0] < 0.01  # confidently right costs next to nothing


def test_the_combined_loss_ranks_predictions_as_each_of_its_parts_does():
    target = band_target()
    torch.manual_seed(1)
    predictions = [torch.randn_like(target) * 3 + (target - 0.5) * k for k in range(8)]
    for kind in ("bce", "dice", "bce+dice"):
        losses = [segmentation_loss(p, target, kind).item() for p in predictions]
        # More weight on the right answer (larger k) is better by every loss.
        assert losses == sorted(losses, reverse=True), (kind, losses)
    # Neither part is left out: for an imperfect prediction each adds to the combined loss.
    for p in predictions:
        both = segmentation_loss(p, target, "bce+dice")
        for part in ("bce", "dice"):
            assert both > segmentation_loss(p, target, part)


@pytest.mark.parametrize("kind", LOSSES)
def test_every_loss_pulls_each_pixel_towards_its_label(kind):
    target = band_target()
    logits = torch.zeros_like(target, requires_grad=True)  # undecided everywhere
    segmentation_loss(logits, target, kind).backward()
    # Gradient descent raises the cavity's logits and lowers the background's.
    assert (logits.grad[target > 0] < 0).all() and (logits.grad[target == 0] > 0).all()


def test_an_unknown_loss_is_refused_naming_the_choices():
    target = band_target()
    with pytest.raises(ValueError, match="unknown loss 'focal'") as err:
        segmentation_loss(torch.zeros_like(target), target, "focal")
    assert all(choice in str(err.value) for choice in ("bce", "dice", "bce+dice"))


def test_per_image_scores_on_known_masks():
    target = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    pred = torch.zeros_like(target)
    target[0, 0, :2], pred[0, 0, 1:3] = True, True  # 4 of 8 + 8 overlap
    target[1, 0, 0, 0] = True  # missed entirely
    scores = per_image_scores(pred, target)  # image 2: both empty
    assert scores["dice"].tolist() == [0.5, 0.0, 1.0]
    assert scores["iou"].tolist() == pytest.approx([4 / 12, 0.0, 1.0])
    assert scores["mse"].tolist() == [0.5, 1 / 16, 0.0]
