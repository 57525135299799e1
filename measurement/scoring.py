"""Score a model on a test set of image/mask windows (test.py's first mode).

Images and masks are paired, validated and resized exactly as for training, so the
scores are comparable with the validation scores of run.py.
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
from mmode.scores import hd95_px, per_image_scores
from mmode.tensors import to_unit_float
from runtime import files

SCORES = ("dice", "iou", "mse", "loss", "hd95_px", "true_px", "pred_px")
N_OVERLAYS = 10  # worst and first images drawn


def score_batch(probs: torch.Tensor, masks: torch.Tensor, threshold: float) -> list[dict]:
    """Per-image scores of probabilities (N, 1, S, S) against 0/1 masks (N, 1, S, S)."""
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


def evaluate(
    model: Model,
    data: CachedData,
    threshold: float,
    batch_size: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> tuple[list[dict], torch.Tensor]:
    """Per-image scores and the boolean predictions (N, 1, S, S), in batches."""
    rows, preds = [], []
    starts = range(0, len(data.names), batch_size)
    for start in tqdm(starts, desc="test set", unit="batch", leave=False, file=sys.stderr):
        images = to_unit_float(data.images[start : start + batch_size])
        probs = predict_probabilities(model, images, device, precision)
        rows += score_batch(probs, data.masks[start : start + batch_size], threshold)
        preds.append(probs > threshold)
    return rows, torch.cat(preds)


def score_test_set(rows: list[dict]) -> dict[str, float | int | None]:
    """Means of the per-image scores, and Dice over all pixels of all images.

    HD95 is averaged over the images where it is defined (not where exactly one of the
    true and predicted masks is empty); hd95_undefined counts the others.
    """
    areas = [row["true_px"] + row["pred_px"] for row in rows]
    # Dice = 2 overlap / areas, so the overlaps sum back from each image's Dice.
    overlap2 = sum(row["dice"] * area for row, area in zip(rows, areas, strict=True))
    hd95 = [row["hd95_px"] for row in rows if not math.isnan(row["hd95_px"])]
    return {
        "n_images": len(rows),
        "dice": float(np.mean([row["dice"] for row in rows])),
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
    files.write_csv(out / "per_image.csv", ["name", *SCORES], named)
    (out / "overlays").mkdir(exist_ok=True)
    worst = sorted(range(len(rows)), key=lambda i: rows[i]["dice"])[:N_OVERLAYS]
    first = range(min(N_OVERLAYS, len(rows)))
    for label, indices in (("worst", worst), ("first", first)):
        for rank, i in enumerate(indices, start=1):
            overlay = evaluation_overlay(
                data.images[i, 0].numpy(), data.masks[i, 0].numpy(), preds[i, 0].numpy()
            )
            path = out / "overlays" / f"{label}_{rank:02d}_{data.names[i]}.png"
            files.save_png(path, overlay)


def metrics_table(metrics: dict) -> str:
    """The metrics as aligned text lines."""
    lines = []
    for key, value in metrics.items():
        shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else value)
        lines.append(f"  {key:<15}{shown}")
    return "\n".join(lines)
