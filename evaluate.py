"""Score a model on a test set of image/mask windows (test.py's first mode).

Images and masks are paired, validated and resized exactly as for training, so the
scores are comparable with the validation scores of run.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import atomic_io
from dataset import CachedData
from inference import Model, predict_probabilities
from metrics import hd95_px, per_image_scores
from report import evaluation_overlay

SCORES = ("dice", "iou", "mse", "loss", "hd95_px")
N_OVERLAYS = 10  # worst and first images drawn


def predict_dataset(
    model: Model, images: torch.Tensor, batch_size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Probabilities (N, 1, S, S) for uint8 images (N, 1, S, S), in batches."""
    batches = range(0, images.shape[0], batch_size)
    probs = []
    for start in tqdm(batches, desc="test set", unit="batch", leave=False, file=sys.stderr):
        batch = images[start : start + batch_size].float().div_(255)
        probs.append(predict_probabilities(model, batch, device))
    return torch.cat(probs)


def score_predictions(
    probs: torch.Tensor, masks: torch.Tensor, threshold: float
) -> tuple[list[dict[str, float]], dict[str, float | int | None]]:
    """Per-image scores and the test-set metrics for probabilities and 0/1 masks."""
    target = masks.bool()
    pred = probs > threshold
    scores = per_image_scores(pred, target)
    # BCE on probabilities clamped like torch does, per image.
    loss = F.binary_cross_entropy(probs.double(), target.double(), reduction="none")
    scores["loss"] = loss.mean(dim=(1, 2, 3))
    scores["hd95_px"] = torch.tensor(
        [hd95_px(p[0], t[0]) for p, t in zip(pred, target, strict=True)]
    )
    rows = [{k: float(scores[k][i]) for k in SCORES} for i in range(pred.shape[0])]
    overlap = (pred & target).sum().item()
    total = pred.sum().item() + target.sum().item()
    hd95 = [row["hd95_px"] for row in rows if not math.isnan(row["hd95_px"])]
    metrics: dict[str, float | int | None] = {
        "n_images": len(rows),
        "dice": float(np.mean([row["dice"] for row in rows])),
        "dice_global": 2 * overlap / total if total else 1.0,
        "iou": float(np.mean([row["iou"] for row in rows])),
        "mse": float(np.mean([row["mse"] for row in rows])),
        "loss": float(np.mean([row["loss"] for row in rows])),
        "hd95_px": float(np.mean(hd95)) if hd95 else None,
        "hd95_undefined": len(rows) - len(hd95),
    }
    return rows, metrics


def write_evaluation(
    out: Path,
    data: CachedData,
    probs: torch.Tensor,
    rows: list[dict[str, float]],
    metrics: dict,
    threshold: float,
) -> None:
    """OUT/metrics.json, OUT/per_image.csv and OUT/overlays/ (worst and first images)."""
    atomic_io.write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("name", *SCORES))
    for name, row in zip(data.names, rows, strict=True):
        writer.writerow((name, *(_fmt(row[k]) for k in SCORES)))
    atomic_io.write_text(out / "per_image.csv", buffer.getvalue())
    (out / "overlays").mkdir(exist_ok=True)
    worst = sorted(range(len(rows)), key=lambda i: rows[i]["dice"])[:N_OVERLAYS]
    first = range(min(N_OVERLAYS, len(rows)))
    for label, indices in (("worst", worst), ("first", first)):
        for rank, i in enumerate(indices, start=1):
            overlay = evaluation_overlay(
                data.images[i, 0].numpy(), data.masks[i, 0].numpy(), probs[i, 0] > threshold
            )
            path = out / "overlays" / f"{label}_{rank:02d}_{data.names[i]}.png"
            atomic_io.save_png(path, overlay)


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def metrics_table(metrics: dict) -> str:
    """The metrics as aligned text lines."""
    lines = []
    for key, value in metrics.items():
        shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else value)
        lines.append(f"  {key:<15}{shown}")
    return "\n".join(lines)
