"""Training losses, computed in float32 from logits, and the scores summed per epoch.

One output channel (binary cavity masks): --loss picks BCE, soft Dice or both. K > 1
channels (label masks, DATA/labels.json): always QuickNAT's own combined loss, softmax
cross-entropy plus soft Dice over the foreground classes, whatever --loss says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmode.scores import class_scores, per_image_scores
from runtime.distributed import max_over_processes

LOSSES = ("bce", "dice", "bce+dice")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


class LossWatch:
    """The step at which an epoch's loss first became NaN or infinite (0: not yet), kept on
    the device, so that steps never wait for it; `check` reads it in all processes."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first_bad_step = torch.zeros((), dtype=torch.long, device=device)

    def note(self, loss: torch.Tensor, step: int) -> None:
        good = torch.isfinite(loss) | (self.first_bad_step > 0)
        self.first_bad_step = torch.where(good, self.first_bad_step, step)

    def check(self, epoch: int, output: object) -> None:
        """Raise NonFiniteLoss if the loss became NaN or infinite in any process."""
        (step,) = max_over_processes([float(self.first_bad_step)], self.device)
        if step:
            raise NonFiniteLoss(
                f"the loss became NaN or infinite at epoch {epoch}, step {int(step)}; the last "
                f"good checkpoints in {output} are kept. Try a lower learning rate (-l)."
            )


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the batch (smoothed by 1 so empty masks are defined)."""
    prob = torch.sigmoid(logits)
    dims = tuple(range(1, logits.dim()))
    overlap = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return 1 - ((2 * overlap + 1) / (total + 1)).mean()


def class_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the softmax probabilities and the one-hot classes, per image and
    foreground class (1..K-1), smoothed by 1 as soft_dice_loss; the mean over both.

    logits (N, K, H, W); target (N, 1, H, W) class indices.
    """
    prob = torch.softmax(logits, dim=1)[:, 1:]
    one_hot = F.one_hot(target[:, 0].long(), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:]
    overlap = (prob * one_hot).sum((2, 3))
    total = prob.sum((2, 3)) + one_hot.sum((2, 3))
    return 1 - ((2 * overlap + 1) / (total + 1)).mean()


def class_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """QuickNAT's combined loss: softmax cross-entropy (mean over pixels) + class_dice_loss."""
    return F.cross_entropy(logits, target[:, 0].long()) + class_dice_loss(logits, target)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss of logits (N, K, H, W) for masks (N, 1, H, W): 0/1, or classes when K > 1."""
    logits, target = logits.float(), target.float()
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")
    if logits.shape[1] > 1:
        return class_loss(logits, target)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "dice":
        return soft_dice_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(logits, target)


def metric_names(labels: list[str] | None) -> tuple[str, ...]:
    """The metrics summed per epoch: metrics.csv's columns after train_ and val_."""
    return ("loss", "dice", "iou", "mse", *(f"dice_{name}" for name in (labels or [])[1:]))


def add_scores(
    sums: dict[str, float | torch.Tensor],
    loss: torch.Tensor,
    logits: torch.Tensor,
    masks: torch.Tensor,
    labels: list[str] | None = None,
) -> None:
    """Add a batch's images, loss and per-image scores (summed) to `sums`; with `labels`
    (K > 1 channels) the class of a pixel is its most probable one. The sums become float64
    tensors on the batch's device, so that a step never waits for the device to finish;
    sum_over_processes turns them into numbers."""
    n = logits.shape[0]
    if logits.shape[1] > 1:
        pred = logits.detach().argmax(1, keepdim=True)
        scores = class_scores(pred, masks.round().long(), labels)
    else:
        scores = per_image_scores(logits.detach() > 0, masks > 0.5)
    sums["n"] += n
    sums["loss"] = sums["loss"] + loss.detach().double() * n
    for k, v in scores.items():
        sums[k] = sums[k] + v.sum()
