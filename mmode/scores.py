"""Per-image segmentation scores of boolean masks: Dice, IoU, MSE and HD95.

Training validation and test-set scoring both score here, so their numbers compare.
"""

from __future__ import annotations

import torch


def per_image_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Dice, IoU and the original tool's MSE for each image of boolean (N, 1, H, W) masks.

    An empty prediction of an empty mask scores Dice 1 and IoU 1.
    """
    pred, target = pred.bool(), target.bool()
    dims = tuple(range(1, pred.dim()))
    overlap = (pred & target).sum(dims).double()
    pred_n, target_n = pred.sum(dims).double(), target.sum(dims).double()
    union = pred_n + target_n - overlap
    both_empty = (pred_n + target_n) == 0
    dice = torch.where(both_empty, 1.0, 2 * overlap / (pred_n + target_n).clamp(min=1))
    iou = torch.where(both_empty, 1.0, overlap / union.clamp(min=1))
    mse = (pred != target).double().mean(dims)  # squared error of 0/1 values
    return {"dice": dice, "iou": iou, "mse": mse}


def class_scores(
    pred: torch.Tensor, target: torch.Tensor, labels: list[str]
) -> dict[str, torch.Tensor]:
    """Per-image scores of class maps (N, 1, H, W): dice_<name> for each foreground class;
    dice and iou, their mean over the foreground classes; mse, the share of pixels whose
    class is wrong (for 0/1 masks the same as per_image_scores' MSE)."""
    scores: dict[str, torch.Tensor] = {}
    per_class = [per_image_scores(pred == c, target == c) for c in range(1, len(labels))]
    for name, class_score in zip(labels[1:], per_class, strict=True):
        scores[f"dice_{name}"] = class_score["dice"]
    for key in ("dice", "iou"):
        scores[key] = torch.stack([s[key] for s in per_class]).mean(0)
    scores["mse"] = (pred != target).double().mean(tuple(range(1, pred.dim())))
    return scores


def hd95_px(pred, target) -> float:
    """Symmetric 95th-percentile Hausdorff distance in pixels between two 2-D masks.

    The distances from each boundary pixel of one mask to the nearest boundary pixel of
    the other, both ways, pooled. 0 when both masks are empty, NaN when only one is.
    The image border closes a mask, so a cavity cut by the window edge has an edge there.
    """
    import numpy as np  # here, so that training does not load scipy
    from scipy import ndimage

    pred, target = np.asarray(pred, dtype=bool), np.asarray(target, dtype=bool)
    if not pred.any() and not target.any():
        return 0.0
    if not pred.any() or not target.any():
        return float("nan")
    pred_edge = pred & ~ndimage.binary_erosion(pred, border_value=0)
    target_edge = target & ~ndimage.binary_erosion(target, border_value=0)
    to_target = ndimage.distance_transform_edt(~target_edge)[pred_edge]
    to_pred = ndimage.distance_transform_edt(~pred_edge)[target_edge]
    return float(np.percentile(np.concatenate([to_target, to_pred]), 95))
