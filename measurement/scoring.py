"""Score a model on a test set of image/mask windows (test.py's first mode).

Images and masks are paired, validated and resized exactly as for training, so the
scores are comparable with the validation scores of run.py.

A model of K > 1 classes (trained on label masks, DATA/labels.json) is scored on label
masks: a pixel's class is its most probable one (--threshold is for one-class models);
dice_<name> per foreground class; dice and iou, their mean over the foreground classes;
mse, the share of pixels of the wrong class; loss, the cross-entropy; hd95_px, the mean over
the foreground classes where it is defined; true_px and pred_px count foreground pixels.
The overlays outline the cavity, as for a one-class model.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dataset import CachedData
from measurement.inference import Model, predict_probabilities
from measurement.report import evaluation_overlay
from mmode.labels import CAVITY, LABELS_FILE
from mmode.scores import class_scores, hd95_px, per_image_scores
from mmode.tensors import to_unit_float
from mmode.timescale import WindowRuleError, cut_as, read_window_s
from runtime import files
from runtime.errors import SetupError

SCORES = ("dice", "iou", "mse", "loss", "hd95_px", "true_px", "pred_px")
N_OVERLAYS = 10  # worst and first images drawn


def check_classes(
    classes: int,
    labels: list[str] | None,
    model: str,
    data: str,
    model_labels: list[str] | None = None,
) -> None:
    """SetupError unless the model's output classes (and, where its checkpoint names them,
    their names) fit the test set's masks."""
    if classes == 1 and labels:
        raise SetupError(
            f"{model} segments one class (the cavity), but {data} holds label masks of "
            f"{len(labels)} classes ({LABELS_FILE}); score it on binary cavity masks."
        )
    if classes > 1 and not labels:
        raise SetupError(
            f"{model} segments {classes} classes, but {data} holds binary masks (no "
            f"{LABELS_FILE}); score it on label masks with a {LABELS_FILE} naming its classes."
        )
    if labels and classes != len(labels):
        raise SetupError(
            f"{model} segments {classes} classes, but {data}/{LABELS_FILE} names "
            f"{len(labels)}; score it on label masks of its own classes."
        )
    if labels and model_labels and model_labels != labels:
        raise SetupError(
            f"{model} was trained on the classes {', '.join(model_labels)}, but "
            f"{data}/{LABELS_FILE} names {', '.join(labels)}; score it on label masks of its "
            "own classes."
        )


def score_batch(
    probs: torch.Tensor, masks: torch.Tensor, threshold: float, labels: list[str] | None = None
) -> list[dict]:
    """Per-image scores of probabilities (N, 1, S, S) against 0/1 masks (N, 1, S, S), or with
    `labels` of probabilities (N, K, S, S) against label masks (score_classes)."""
    if labels:
        return score_classes(probs, masks, labels)
    target = masks.bool()
    pred = probs > threshold
    scores = per_image_scores(pred, target)
    # BCE on the probabilities, per image (torch clamps the logs at -100).
    loss = F.binary_cross_entropy(probs.double(), target.double(), reduction="none")
    scores["loss"] = loss.mean(dim=(1, 2, 3))
    scores["hd95_px"] = torch.tensor(
        [hd95_px(p[0], t[0]) for p, t in zip(pred, target, strict=True)]
    )
    scores["true_px"] = target.sum(dim=(1, 2, 3))
    scores["pred_px"] = pred.sum(dim=(1, 2, 3))
    return [{k: scores[k][i].item() for k in SCORES} for i in range(pred.shape[0])]


def score_classes(probs: torch.Tensor, masks: torch.Tensor, labels: list[str]) -> list[dict]:
    """Per-image scores of class probabilities (N, K, S, S) against label masks (N, 1, S, S):
    the SCORES (see the module's docstring), dice_<name> per foreground class and
    overlap_px, the foreground pixels of the right class (for dice_global)."""
    target = masks.long()
    pred = probs.argmax(1, keepdim=True)
    scores = class_scores(pred, target, labels)
    # Cross-entropy of the probabilities, its logs clamped at -100 as BCE's are.
    true_prob = probs.double().gather(1, target)
    scores["loss"] = -true_prob.log().clamp(min=-100).mean(dim=(1, 2, 3))
    hd95 = torch.tensor(
        [
            [hd95_px(p[0] == c, t[0] == c) for c in range(1, len(labels))]
            for p, t in zip(pred, target, strict=True)
        ]
    )
    defined = ~hd95.isnan()
    scores["hd95_px"] = torch.where(defined, hd95, 0).sum(1) / defined.sum(1)  # NaN: none
    scores["true_px"] = (target != 0).sum(dim=(1, 2, 3))
    scores["pred_px"] = (pred != 0).sum(dim=(1, 2, 3))
    scores["overlap_px"] = ((pred == target) & (target != 0)).sum(dim=(1, 2, 3))
    return [{k: v[i].item() for k, v in scores.items()} for i in range(pred.shape[0])]


def evaluate(
    model: Model,
    data: CachedData,
    threshold: float,
    batch_size: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> tuple[list[dict], torch.Tensor]:
    """Per-image scores and the predictions (N, 1, S, S), in batches: boolean, or with
    data.labels each pixel's class."""
    rows, preds = [], []
    starts = range(0, len(data.names), batch_size)
    for start in tqdm(starts, desc="test set", unit="batch", leave=False, file=sys.stderr):
        images = to_unit_float(data.images[start : start + batch_size])
        probs = predict_probabilities(model, images, device, precision)
        masks = data.masks[start : start + batch_size]
        rows += score_batch(probs, masks, threshold, data.labels)
        preds.append(probs.argmax(1, keepdim=True) if data.labels else probs > threshold)
    return rows, torch.cat(preds)


def score_test_set(rows: list[dict]) -> dict[str, float | int | None]:
    """Means of the per-image scores, and Dice over all pixels of all images.

    HD95 is averaged over the images where it is defined (not where exactly one of the
    true and predicted masks is empty); hd95_undefined counts the others. For label masks
    also dice_<name>, the mean Dice of each foreground class, and dice_global pools the
    foreground classes: 2 x pixels of the right class / (true + predicted foreground pixels).
    """
    areas = [row["true_px"] + row["pred_px"] for row in rows]
    if "overlap_px" in rows[0]:
        overlap2 = sum(2 * row["overlap_px"] for row in rows)
    else:  # Dice = 2 overlap / areas, so the overlaps sum back from each image's Dice.
        overlap2 = sum(row["dice"] * area for row, area in zip(rows, areas, strict=True))
    hd95 = [row["hd95_px"] for row in rows if not math.isnan(row["hd95_px"])]
    per_class = [key for key in rows[0] if key.startswith("dice_")]
    return {
        "n_images": len(rows),
        "dice": float(np.mean([row["dice"] for row in rows])),
        **{key: float(np.mean([row[key] for row in rows])) for key in per_class},
        "dice_global": overlap2 / sum(areas) if sum(areas) else 1.0,
        "iou": float(np.mean([row["iou"] for row in rows])),
        "mse": float(np.mean([row["mse"] for row in rows])),
        "loss": float(np.mean([row["loss"] for row in rows])),
        "hd95_px": float(np.mean(hd95)) if hd95 else None,
        "hd95_undefined": len(rows) - len(hd95),
    }


def write_evaluation(
    out: Path, data: CachedData, rows: list[dict], preds: torch.Tensor, metrics: dict
) -> None:
    """OUT/metrics.json, OUT/per_image.csv and OUT/overlays/ (worst and first images)."""
    files.write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    named = [{"name": name, **row} for name, row in zip(data.names, rows, strict=True)]
    per_class = [key for key in rows[0] if key.startswith("dice_")]
    files.write_csv(out / "per_image.csv", ["name", *SCORES, *per_class], named)
    # A label model's overlays outline the cavity (else all foreground): the class measured.
    labels = data.labels or []
    if labels:
        drawn = labels.index(CAVITY) if CAVITY in labels else None
        true, preds = (m != 0 if drawn is None else m == drawn for m in (data.masks, preds))
    else:
        true = data.masks
    (out / "overlays").mkdir(exist_ok=True)
    worst = sorted(range(len(rows)), key=lambda i: rows[i]["dice"])[:N_OVERLAYS]
    first = range(min(N_OVERLAYS, len(rows)))
    for label, indices in (("worst", worst), ("first", first)):
        for rank, i in enumerate(indices, start=1):
            overlay = evaluation_overlay(
                data.images[i, 0].numpy(), true[i, 0].numpy(), preds[i, 0].numpy()
            )
            path = out / "overlays" / f"{label}_{rank:02d}_{data.names[i]}.png"
            files.save_png(path, overlay)


def metrics_table(metrics: dict) -> str:
    """The metrics as aligned text lines."""
    lines, width = [], max(15, *(len(key) + 1 for key in metrics))  # room for dice_<name>
    for key, value in metrics.items():
        shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else value)
        lines.append(f"  {key:<{width}}{shown}")
    return "\n".join(lines)


def window_span_warning(path: Path, model_window_s: float | None) -> str | None:
    """A warning where a test set's windows were cut otherwise than the model's training
    windows (mmode/timescale.py); None where alike."""
    try:
        data_window_s = read_window_s(path)
    except WindowRuleError as err:
        raise SetupError(str(err)) from None
    if data_window_s == model_window_s:
        return None
    return (
        f"{path}'s windows were cut {cut_as(data_window_s)}, the model's training windows "
        f"{cut_as(model_window_s)}; its scores here may not be those of its measurements."
    )
