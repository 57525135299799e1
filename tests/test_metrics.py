"""Losses and per-image scores."""

import pytest
import torch

from mmode.scores import per_image_scores
from training.losses import segmentation_loss, soft_dice_loss


def test_soft_dice_loss_is_near_zero_for_a_confident_match_and_near_one_for_a_miss():
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6] = 1
    right = torch.where(target > 0, 20.0, -20.0)
    assert soft_dice_loss(right, target).item() < 1e-3
    assert soft_dice_loss(-right, target).item() > 0.95


def test_combined_loss_is_the_sum_and_unknown_loss_is_refused():
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    both = segmentation_loss(logits, target, "bce+dice")
    parts = segmentation_loss(logits, target, "bce") + segmentation_loss(logits, target, "dice")
    assert both.item() == pytest.approx(parts.item())
    with pytest.raises(ValueError, match="unknown loss"):
        segmentation_loss(logits, target, "focal")


def test_per_image_scores_on_known_masks():
    target = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    pred = torch.zeros_like(target)
    target[0, 0, :2], pred[0, 0, 1:3] = True, True  # 4 of 8 + 8 overlap
    target[1, 0, 0, 0] = True  # missed entirely
    scores = per_image_scores(pred, target)  # image 2: both empty
    assert scores["dice"].tolist() == [0.5, 0.0, 1.0]
    assert scores["iou"].tolist() == pytest.approx([4 / 12, 0.0, 1.0])
    assert scores["mse"].tolist() == [0.5, 1 / 16, 0.0]
