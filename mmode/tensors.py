"""Images as the network sees them: resized to the training size, scaled to [0, 1], and
normalised per image by the model itself (normalise_input, which QuickNat.forward calls).

Training, test-set scoring and the measurement of recordings all prepare images here,
so that the network sees the same pixels in each.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# The largest window side (-p, -s): QuickNAT keeps ~10 maps of 64 x S x S floats per image,
# 2.7 GB at 1024 px, so larger windows exhaust a machine's memory instead of helping.
MAX_WINDOW_PX = 1024

Shape = int | tuple[int, int]  # the network's input: a square's side, or (rows, columns)


def as_shape(size: Shape) -> tuple[int, int]:
    """(rows, columns) of a Shape."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize_image(array: np.ndarray, size: Shape) -> torch.Tensor:
    """uint8 (H, W) -> uint8 (1, rows, columns), antialiased bilinear (torchvision's resize)."""
    tensor = torch.from_numpy(np.array(array))[None, None]
    shape = as_shape(size)
    if tensor.shape[-2:] != shape:
        tensor = F.interpolate(
            tensor.float(), size=shape, mode="bilinear", align_corners=False, antialias=True
        )
        tensor = tensor.round_().clamp_(0, 255).to(torch.uint8)
    return tensor[0]


def resize_mask(array: np.ndarray, size: Shape) -> torch.Tensor:
    """Mask (H, W) -> uint8 (1, rows, columns), nearest neighbour so that its values are
    kept: 0/1 stay 0/1, and a label mask's classes stay classes (no blends between them)."""
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))[None, None]
    shape = as_shape(size)
    if tensor.shape[-2:] != shape:
        tensor = F.interpolate(tensor, size=shape, mode="nearest-exact")
    return tensor[0]


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 gray levels -> float32 in [0, 1], the network's input."""
    return images.float().div_(255)


# How a model normalises each input image, written in its checkpoint's model_config:
# "unit" takes the grey levels / 255 as they are (the original tool's input, and that of
# every checkpoint whose model_config has no input_norm), "rank" replaces each grey level
# by its mid-rank among the image's pixels, so that any monotone change of brightness
# (gain, gamma, contrast, dynamic range) gives the network the same input: real scanners
# differ in all of them.
INPUT_NORMS = ("unit", "rank")
GREY_LEVELS = 256


def normalise_input(images: torch.Tensor, mode: str) -> torch.Tensor:
    """float (N, C, H, W) in [0, 1] -> the network's input under `mode` (INPUT_NORMS).

    "rank": per image, the share of its pixels darker than each pixel's grey level plus
    half of those as bright (ties share a rank), in [0, 1]; grey levels are counted on
    256 steps, the resolution of the uint8 images it is meant for.
    """
    if mode == "unit":
        return images
    n = images.shape[0]
    levels = (images.detach().float() * (GREY_LEVELS - 1)).round_().clamp_(0, GREY_LEVELS - 1)
    levels = levels.long().view(n, -1)
    offset = torch.arange(n, device=images.device)[:, None] * GREY_LEVELS
    # bincount without weights counts exactly and deterministically, on a GPU too.
    counts = torch.bincount((levels + offset).view(-1), minlength=n * GREY_LEVELS)
    counts = counts.view(n, GREY_LEVELS).float()
    mid_rank = counts.cumsum(dim=1) - counts / 2
    ranked = mid_rank.gather(1, levels) / levels.shape[1]
    return ranked.view(images.shape).to(images.dtype)


def gaussian_blur(images: torch.Tensor, sigma_px: torch.Tensor, max_px: float) -> torch.Tensor:
    """Each image (N, 1, H, W) blurred along both axes by its own sigma (N,), in pixels, at
    most max_px (given, so that the kernel's size needs no wait for the device)."""
    n = images.shape[0]
    radius = max(1, math.ceil(2 * max_px))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    # A sigma of 0 is a kernel of one tap: the image is kept as it is.
    weights = torch.exp(-0.5 * (offsets / sigma_px.clamp(min=1e-3)[:, None]) ** 2)
    weights = weights / weights.sum(dim=1, keepdim=True)
    padded = F.pad(images.transpose(0, 1), (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, weights.view(n, 1, -1, 1), groups=n)
    return F.conv2d(rows, weights.view(n, 1, 1, -1), groups=n).transpose(0, 1)
