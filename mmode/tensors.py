"""Images as the network sees them: resized to the training size, scaled to [0, 1].

Training, test-set scoring and the measurement of recordings all prepare images here,
so that the network sees the same pixels in each.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# The largest window side (-p, -s): QuickNAT keeps ~10 maps of 64 x S x S floats per image,
# 2.7 GB at 1024 px, so larger windows exhaust a machine's memory instead of helping.
MAX_WINDOW_PX = 1024


def resize_image(array: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W) -> uint8 (1, size, size), antialiased bilinear (torchvision's resize)."""
    tensor = torch.from_numpy(np.array(array))[None, None]
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(
            tensor.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        tensor = tensor.round_().clamp_(0, 255).to(torch.uint8)
    return tensor[0]


def resize_mask(array: np.ndarray, size: int) -> torch.Tensor:
    """Mask (H, W) -> uint8 (1, size, size), nearest neighbour so that its values are kept:
    0/1 stay 0/1, and a label mask's classes stay classes (no blends between them)."""
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8))[None, None]
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="nearest-exact")
    return tensor[0]


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 gray levels -> float32 in [0, 1], the network's input."""
    return images.float().div_(255)
