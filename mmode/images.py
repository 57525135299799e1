"""Find and read recordings, windows and masks on disk, as numpy arrays.

A file's name is its file name without the suffix: `REC.png` is `REC`. Hidden files
(starting with a dot, such as macOS's `._REC.png`) are never read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from runtime.errors import RecordingError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
DICOM_SUFFIXES = (".dcm", ".dicom")  # converted to PNG by preprocessing.dicom_to_png
LUMINANCE = np.array([0.2989, 0.5870, 0.1140])  # ITU-R BT.601 weights of R, G and B
# The most pixels an image may have. A 2-minute recording at 1200 columns/s and 1000 rows is
# 144 million; 200 million admits it and keeps one 16-bit read (as float64) under 2 GB.
MAX_PIXELS = 200_000_000
# Pillow then warns (ignored: _check_size names the file) above it, and refuses above twice it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# An image of more than 8 bits whose brightest pixel is below this share of its depth is
# noted as reading nearly black (read_recording).
DIM_SHARE = 1 / 8


def recording_name(text: str) -> str:
    """The name a recording goes by in every file the tool writes and every table it reads:
    `dir/REC.png`, `REC.dcm` and `REC` are all `REC`. Folders and a recording file's suffix
    (any case) are dropped; a dotted name without one, such as a DICOM UID, stays whole."""
    name = Path(text.strip().replace("\\", "/")).name
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in (*IMAGE_SUFFIXES, *DICOM_SUFFIXES) else name


class ImageReadError(RecordingError):
    """A file that is not a readable image; the message names the file."""


def list_files(
    folder: str | os.PathLike,
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
    ignore: Callable[[Path], bool] | None = None,
) -> tuple[dict[str, Path], list[tuple[Path, Path]]]:
    """Files directly in `folder` with one of `suffixes` (any case), by name, sorted.

    Also returns (kept, other) for each file whose name an earlier file already has.
    """
    found: dict[str, Path] = {}
    clashes: list[tuple[Path, Path]] = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in suffixes or (ignore and ignore(path)):
            continue
        if path.stem in found:
            clashes.append((found[path.stem], path))
            continue
        found[path.stem] = path
    return found, clashes


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luminance of (..., 3) RGB values, as float64."""
    return rgb[..., :3].astype(np.float64) @ LUMINANCE


def _read_array(path: Path, palette_index: bool = False) -> tuple[np.ndarray, int | None]:
    """The pixels, and the bit depth of integer pixels (None for float and bool).

    A float image with a NaN or infinite pixel is refused: it has no gray levels to scale.
    """
    try:
        array, bits = _decode(path, palette_index)
    except ImageReadError:
        raise  # already names the file and the fix
    except Image.DecompressionBombError:
        raise _too_large(
            path, f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:g} million pixels"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageReadError(f"{path}: cannot read it as an image ({err}).") from None
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ImageReadError(
            f"{path}: {bad} pixel(s) are NaN or infinite; save the image with finite values."
        )
    return array, bits


def _too_large(path: Path, size: str) -> ImageReadError:
    """The error for an image of `size` (such as "W x H pixels") over MAX_PIXELS."""
    return ImageReadError(
        f"{path} is {size}, more than the {MAX_PIXELS / 1e6:g} million this tool reads; "
        "crop or split the recording."
    )


def _check_size(path: Path, width: int, height: int) -> None:
    """Refuse an image of more than MAX_PIXELS, before it is decoded."""
    if width * height > MAX_PIXELS:
        raise _too_large(path, f"{width} x {height} pixels")


def _decode(path: Path, palette_index: bool) -> tuple[np.ndarray, int | None]:
    """_read_array's decoding; its errors are _read_array's to name."""
    if path.suffix.lower() == ".npy":
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # reads the header only
        height, width = (*shape, 1, 1)[:2]
        _check_size(path, width, height)
        array = np.load(path, allow_pickle=False)
        return array, _bit_depth(array)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    with im:
        _check_size(path, *im.size)
        im.load()
        if im.mode == "P" and palette_index:
            # Palette masks: keep the palette index, so index 0 is background.
            return np.asarray(im), 8
        if im.mode == "I" and im.format == "PNG":
            return np.asarray(im), 16  # PNG holds at most 16 bits; Pillow reads them so
        if im.mode == "P":
            im = im.convert("RGB")
        if im.mode in ("RGBA", "LA", "PA"):
            im = im.convert("RGB" if im.mode == "RGBA" else "L")
        if im.mode in ("RGB", "CMYK", "YCbCr"):
            im = im.convert("RGB")
        array = np.asarray(im)
        return array, _bit_depth(array)


def _bit_depth(array: np.ndarray) -> int | None:
    """8 or 16 for 8- and 16-bit pixels. 32- and 64-bit integers (numpy's default, Pillow's
    mode I) carry no image depth: the smallest of 8, 16, 32 and 64 bits that holds them."""
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        return None
    if array.dtype.itemsize <= 2 or not array.size:
        return array.dtype.itemsize * 8
    return next(bits for bits in (8, 16, 32, 64) if int(array.max()) < 2**bits)


def _shift_signed(array: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Signed integer pixels shifted to start at 0, and their bit depth (see read_gray)."""
    if array.dtype.itemsize <= 2:
        return array.astype(np.int32) - np.iinfo(array.dtype).min, array.dtype.itemsize * 8
    shifted = array - array.min(initial=0)
    return shifted, _bit_depth(shifted)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """A grayscale image as uint8 (H, W); RGB becomes luminance.

    Integer images of more than 8 bits are scaled by their bit depth (65535 becomes 255 in a
    16-bit image), so that gray levels compare between recordings. Signed 8- and 16-bit
    images are first shifted by half their range (-32768 becomes 0, 32767 becomes 255);
    wider signed ones (numpy's default, no image depth) by their minimum when it is
    negative. Float images in [0, 1] are multiplied by 255; other float images, which have
    no bit depth, by 255 / their maximum. NaN or infinite pixels are refused.
    """
    return read_recording(path)[0]


def read_recording(path: str | os.PathLike) -> tuple[np.ndarray, str | None]:
    """read_gray's image, and a note when it reads nearly black because its brightest
    pixel uses under DIM_SHARE of its file's bit depth, as a 12-bit image saved in a 16-bit
    PNG does (None otherwise).

    Such an image is still scaled by its file's depth, not by the depth its maximum
    suggests: a 16-bit recording with one bright pixel would otherwise read darker than
    the same recording without it. The note lets a failure name the likely cause.
    """
    path = Path(path)
    array, bits = _read_array(path)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = to_gray(array)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D image, got shape {array.shape}.")
    if np.issubdtype(array.dtype, np.signedinteger):
        array, bits = _shift_signed(array)
    if array.dtype == np.uint8:
        return array, None
    if array.dtype == bool:
        return array.astype(np.uint8) * 255, None
    array = array.astype(np.float64)
    note = None
    if bits is not None and bits > 8:
        brightest, top = int(array.max(initial=0)), 2**bits - 1
        if brightest < top * DIM_SHARE:
            note = (
                f"its brightest pixel is {brightest} where its {bits}-bit file holds up to "
                f"{top}, so it reads nearly black (a {max(brightest.bit_length(), 1)}-bit "
                f"image saved as {bits} bits?); save it as 8 bits, or scaled to the full "
                f"{bits} bits"
            )
        array = array * (255.0 / top)
    elif bits is None and array.size and array.min() >= 0.0 and array.max() <= 1.0:
        array = array * 255.0
    elif bits is None and array.size and array.max() > 255:
        array = array * (255.0 / array.max())
    return np.clip(np.rint(array), 0, 255).astype(np.uint8), note


def read_mask(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A mask as bool (H, W): any non-zero pixel is foreground.

    Also returns the distinct raw values, so callers can warn about masks that
    hold more than two.
    """
    array = read_label_mask(path)
    return array != 0, np.unique(array)


def read_label_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask's raw values (H, W), as they are in the file: the class of each pixel in a label
    mask (mmode.labels). A palette image gives its palette index; an RGB one, per pixel, the
    largest of its channels."""
    path = Path(path)
    array, _ = _read_array(path, palette_index=True)
    if array.ndim == 3:
        array = array.max(axis=2)
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D mask, got shape {array.shape}")
    return array
