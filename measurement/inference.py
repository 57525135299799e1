"""Load a model from a checkpoint and segment whole recordings of any width.

A recording is cut into square windows whose side is its height, overlapping in time.
Each window is prepared exactly as in training (uint8 gray, antialiased bilinear resize
to the model's input shape: SIZE rows and time_stretch x SIZE columns, rounded back to
uint8, then /255), predicted in batches, and its probabilities are resized back and
averaged where windows overlap.

Decisions where the issue is silent:
- A quarter of the side is mirrored onto both ends of the recording in time (M-mode
  read backwards is still M-mode), and the average over overlapping windows is weighted
  towards each window's centre: the network errs at a window's edges, where it lacks
  context. The mirrored columns are cropped away again.
- A recording narrower than its height is mirrored the same way to one square window,
  so the network sees the same pixel aspect as in training.
- A model trained on windows cut with window_s (checkpoint key; mmode/timescale.py) sees
  the recording resampled along time as its windows were, and its probabilities are
  resampled back to the recording's columns.
- A model with one output channel segments the cavity: its probability is the sigmoid of
  the logit, and a recording's map is (H, W), as always. A model with K > 1 channels
  (mmode.labels.WALL_LABELS: background, septum, cavity, posterior wall) gives per-class
  probabilities, the softmax over its channels, and a recording's map is (K, H, W); each
  class is stitched exactly as the cavity is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mmode.tensors import Shape, resize_image, to_unit_float
from mmode.timescale import resample_columns, resampled_width
from mmode.windows import window_starts
from quicknat import (
    QuickNat,
    load_weights,
    predict_logits,
    read_checkpoint,
    trained_im_size,
    trained_labels,
    trained_window_s,
)
from quicknat.flags import model_config
from runtime.distributed import warn
from runtime.hardware import autocast, memory_format

EDGE_MARGIN_DIVISOR = 4  # a quarter of the window side is mirrored onto each end
Model = Callable[[torch.Tensor], torch.Tensor]  # float (N, 1, R, C) in [0, 1] -> (N, K, R, C)

# The model that ships with the tool, trained on synthetic recordings only, which test.py
# uses without -m. Relative to the repository, so that it is found from any working
# directory, and named so in the outputs.
SHIPPED_MODEL = "weights/synthetic.pt"
REPOSITORY = Path(__file__).resolve().parents[1]  # the folder of test.py and run.py


def shipped_model_path() -> Path:
    """Where the shipped model lies (read at call time, so that tests can point it away)."""
    return REPOSITORY / SHIPPED_MODEL


class LoadedModel(NamedTuple):
    """A model from a checkpoint, and what the checkpoint says of how it was trained
    (each None where it does not say)."""

    model: QuickNat  # in eval mode
    im_size: int | None  # the -p it was trained at
    labels: list[str] | None  # its class names
    window_s: float | None  # the longest span of its training windows; None: square


def load_model(
    path: str | os.PathLike,
    settings: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    channels_last: bool | None = None,
    precision: str = "fp32",
) -> LoadedModel:
    """The model in eval mode on `device`, and how it was trained.

    Our checkpoint's stored config wins over `settings` (QuickNAT params from the flags,
    None meaning not given; quicknat.flags.model_settings), with a warning where they differ.
    """
    checkpoint = read_checkpoint(path)
    device = torch.device(device)
    model = QuickNat(model_config(checkpoint, settings or {}, warn))
    load_weights(model, checkpoint, str(path))
    # A one-channel input batch has the same layout either way, so only the model converts.
    model = model.to(device, memory_format=memory_format(channels_last, device, precision))
    return LoadedModel(
        model.eval(),
        trained_im_size(checkpoint),
        trained_labels(checkpoint),
        trained_window_s(checkpoint),
    )


def overlap_step(side: int, overlap: float) -> int:
    """Columns between window starts for an overlap given as a share of the side."""
    return max(1, int(round(side * (1.0 - overlap))))


def input_shape(model: Model, size: int) -> tuple[int, int]:
    """The (rows, columns) a model takes windows at: its config's time stretch for a
    QuickNat, square for any other callable."""
    return model.config.input_shape(size) if isinstance(model, QuickNat) else (size, size)


def prepare_windows(windows: list[np.ndarray], size: Shape) -> torch.Tensor:
    """uint8 (side, side) windows -> float (N, 1, rows, columns) in [0, 1], as in training."""
    return to_unit_float(torch.stack([resize_image(window, size) for window in windows]))


def predict_probabilities(
    model: Model, batch: torch.Tensor, device: torch.device | str = "cpu", precision: str = "fp32"
) -> torch.Tensor:
    """Probabilities (N, K, R, C) for a float (N, 1, R, C) batch, on the CPU: the sigmoid
    of a one-channel model's logits, the softmax over the channels of a K-channel one's."""
    device = torch.device(device)
    with torch.inference_mode(), autocast(device, precision):
        if device.type == "cuda":  # copied from pinned memory, without a staging copy
            batch = batch.pin_memory()
        batch = batch.to(device, non_blocking=True)
        logits = predict_logits(model, batch) if isinstance(model, QuickNat) else model(batch)
        if logits.shape[1] == 1:
            return torch.sigmoid(logits.float()).cpu()
        return torch.softmax(logits.float(), dim=1).cpu()


def segment_recording(
    model: Model,
    image: np.ndarray,
    size: int,
    overlap: float = 0.5,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    time_res_s: float | None = None,
    window_s: float | None = None,
) -> np.ndarray:
    """Probabilities for a uint8 (H, W) recording of any width, float32: the cavity's (H, W)
    for a one-channel model, each class's (K, H, W) for a K-channel one. Windows are
    resized to `size` rows and as many columns as the model's time stretch makes; with
    window_s (the model's, which needs time_res_s) they span at most window_s."""
    height, width = image.shape
    new_width = resampled_width(height, width, time_res_s, window_s)
    if new_width != width:
        resampled = resample_columns(image, new_width)
        probs = segment_recording(model, resampled, size, overlap, batch_size, device, precision)
        return resample_columns(probs, width)
    side = height
    # Mirror a margin onto both ends, so that the recording's first and last columns are
    # not at a window's edge, where the network sees no context and errs.
    padded_width = max(width + 2 * (side // EDGE_MARGIN_DIVISOR), side)
    left = (padded_width - width) // 2
    padded = np.pad(image, ((0, 0), (left, padded_width - width - left)), mode="symmetric")
    starts = window_starts(0, padded_width - 1, side, overlap_step(side, overlap))
    # Where windows overlap, each column's average is weighted towards the centre of its
    # windows, for the same reason; the weights never reach 0, so every column counts.
    weight = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 1
    prob_sum: np.ndarray | None = None  # (K, H, padded_width), once K is known
    weight_sum = np.zeros(padded_width, dtype=np.float32)
    for i in range(0, len(starts), batch_size):
        batch_starts = starts[i : i + batch_size]
        windows = [padded[:, s : s + side] for s in batch_starts]
        batch = prepare_windows(windows, input_shape(model, size))
        probs = predict_probabilities(model, batch, device, precision)
        for start, prob in zip(batch_starts, probs, strict=True):
            # One window at a time: at full size a batch of them would need batch_size x
            # side^2 floats (8 x 0.6 GB for a 12000-row recording).
            if prob.shape[-2:] != (side, side):
                prob = F.interpolate(
                    prob[None], size=(side, side), mode="bilinear", align_corners=False,
                    antialias=True,
                )[0]  # fmt: skip
            if prob_sum is None:
                prob_sum = np.zeros((prob.shape[0], height, padded_width), dtype=np.float32)
            prob_sum[:, :, start : start + side] += prob.numpy() * weight
            weight_sum[start : start + side] += weight
    assert prob_sum is not None  # window_starts gives at least one window
    probs = prob_sum[:, :, left : left + width] / weight_sum[left : left + width]
    return probs[0] if probs.shape[0] == 1 else probs
