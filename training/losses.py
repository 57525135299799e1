"""Training losses, computed in float32 from logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmode.scores import per_image_scores

LOSSES = ("bce", "dice", "bce+dice")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the batch (smoothed by 1 so empty masks are defined)."""
    prob = torch.sigmoid(logits)
    dims = tuple(range(1, logits.dim()))
    overlap = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return 1 - ((2 * overlap + 1) / (total + 1)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    logits, target = logits.float(), target.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "dice":
        return soft_dice_loss(logits, target)
    if kind == "bce+dice":
        return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")


def add_scores(
    sums: dict[str, float], loss: torch.Tensor, logits: torch.Tensor, masks: torch.Tensor
) -> None:
    """Add a batch's images, loss and per-image scores (summed) to `sums`."""
    n = logits.shape[0]
    scores = per_image_scores(logits.detach() > 0, masks > 0.5)
    sums["n"] += n
    sums["loss"] += loss.item() * n
    for k, v in scores.items():
        sums[k] += v.sum().item()
