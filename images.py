"""Read recordings, windows and masks from disk as numpy arrays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")


class ImageReadError(ValueError):
    """A file that is not a readable image; the message names the file."""


def _read_array(path: Path, palette_index: bool = False) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with Image.open(path) as im:
            im.load()
            if im.mode == "P" and palette_index:
                # Palette masks: keep the palette index, so index 0 is background.
                return np.asarray(im)
            if im.mode == "P":
                im = im.convert("RGB")
            if im.mode in ("RGBA", "LA", "PA"):
                im = im.convert("RGB" if im.mode == "RGBA" else "L")
            if im.mode in ("RGB", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageReadError(f"{path}: cannot read it as an image ({err}).") from None


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """A grayscale image as uint8 (H, W); RGB becomes luminance, 16-bit and float are rescaled."""
    path = Path(path)
    array = _read_array(path)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3].astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D image, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    is_float = np.issubdtype(array.dtype, np.floating)
    array = array.astype(np.float64)
    if is_float and array.size and array.min() >= 0.0 and array.max() <= 1.0:
        array = array * 255.0
    elif array.size and array.max() > 255:
        array = array * (255.0 / array.max())
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def read_mask(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A mask as bool (H, W): any non-zero pixel is foreground.

    Also returns the distinct raw values, so callers can warn about masks that
    hold more than two.
    """
    path = Path(path)
    array = _read_array(path, palette_index=True)
    if array.ndim == 3:
        array = array.max(axis=2)
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D mask, got shape {array.shape}")
    values = np.unique(array)
    return array != 0, values
