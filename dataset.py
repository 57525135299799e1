"""Training data: image/mask pairs found, validated, decoded once and kept in memory.

Layout: DATA/img/NAME.* and DATA/mask/NAME.* (or NAME_m.*, NAME_mask.*). Images
become single-channel uint8; in masks any non-zero pixel is foreground. Images are
resized with antialiased bilinear interpolation, masks with nearest neighbour, so
that masks stay binary.

With DATA/labels.json (mmode.labels) the masks are label masks: each pixel's value is its
class, 0 to K-1, kept as it is (nearest neighbour keeps it too); a value labels.json does
not name is an error, not foreground.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmode.images import (
    IMAGE_SUFFIXES,
    ImageReadError,
    list_files,
    read_gray,
    read_label_mask,
    read_mask,
)
from mmode.label_checks import label_problems
from mmode.labels import LABELS_FILE, LabelsError, read_labels
from mmode.tensors import Shape, as_shape, gaussian_blur, resize_image, resize_mask
from runtime.errors import RecordingError, name_some

MASK_SUFFIXES = ("", "_mask", "_m")  # tried in this order for image NAME
MAX_NAMED = 10


class DataError(ValueError):
    """A data set that cannot be trained on; the message lists every problem found."""


class FileChanged(DataError):
    """A streamed file that changed or became unreadable during training; one sentence.

    An error in a DataLoader worker reaches the trainer re-made from the worker's message
    with its traceback appended: the sentence, the traceback's last line, is kept.
    """

    def __init__(self, message: str) -> None:
        if "\nOriginal Traceback" in message:
            message = message.rstrip().splitlines()[-1].split(": ", 1)[-1]
        super().__init__(message)


@dataclass
class Pair:
    name: str
    image: Path
    mask: Path


@dataclass
class CachedData:
    """Checked pairs and, when cached, all of them decoded and resized in memory.

    images (N,1,rows,columns) uint8 and masks (N,1,rows,columns) uint8 0/1, or None when
    streaming; `size` is that input shape (mmode.tensors.Shape). With
    `labels` (the class names of DATA/labels.json, in value order) the masks hold classes.
    """

    names: list[str]
    pairs: list[Pair]
    size: Shape
    images: torch.Tensor | None
    masks: torch.Tensor | None
    warnings: list[str]
    labels: list[str] | None = None


def read_data_labels(root: str | Path) -> list[str] | None:
    """The class names of ROOT/labels.json in value order; None for binary data (no file)."""
    try:
        return read_labels(Path(root))
    except LabelsError as err:
        raise DataError(str(err)) from None
    except OSError as err:  # a labels.json that cannot be read (permissions)
        raise DataError(
            f"cannot read {Path(root) / LABELS_FILE} ({err.strerror}); make it readable."
        ) from None


def cache_bytes(n_pairs: int, size: Shape) -> int:
    """Memory that caching n_pairs resized pairs takes (uint8 image + uint8 mask)."""
    rows, columns = as_shape(size)
    return n_pairs * rows * columns * 2


def _name_some(names: list[str]) -> str:
    return name_some(names, MAX_NAMED)


def find_pairs(root: str | Path, min_pairs: int = 2) -> list[Pair]:
    """Pair DATA/img and DATA/mask files by stem; raise DataError listing every problem.

    Training needs 2 pairs (one to train, one to validate); scoring a test set needs 1.
    """
    root = Path(root)
    img_dir, mask_dir = root / "img", root / "mask"
    missing = [d for d in (img_dir, mask_dir) if not d.is_dir()]
    if root.is_file():
        raise DataError(f"data folder {root} is a file; pass the folder that holds img/ and mask/.")
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; pass the folder that holds img/ and mask/."
        )
    if missing:
        raise DataError(
            f"{' and '.join(str(d) for d in missing)} missing: the data folder needs img/ "
            "(the images) and mask/ (masks with the same file names)."
        )
    (images, image_clashes), (masks, mask_clashes) = list_files(img_dir), list_files(mask_dir)
    pairs, unmatched_images, claimed_by = [], [], {}
    for stem, image in images.items():
        mask_stem = next((stem + s for s in MASK_SUFFIXES if stem + s in masks), None)
        if mask_stem is None:
            unmatched_images.append(image.name)
            continue
        claimed_by.setdefault(mask_stem, []).append(image.name)
        pairs.append(Pair(stem, image, masks[mask_stem]))
    unmatched_masks = [masks[s].name for s in masks if s not in claimed_by]
    shared = [f"{masks[s].name} ({', '.join(n)})" for s, n in claimed_by.items() if len(n) > 1]
    problems = []
    for folder, clashes in ((img_dir, image_clashes), (mask_dir, mask_clashes)):
        if clashes:
            named = [f"{kept.name} and {other.name}" for kept, other in clashes]
            problems.append(f"files with the same name in {folder}: {_name_some(named)}")
    if shared:
        problems.append(f"masks that fit more than one image: {_name_some(shared)}")
    if unmatched_images:
        problems.append(f"images without a mask in {mask_dir}: {_name_some(unmatched_images)}")
    if unmatched_masks:
        problems.append(f"masks without an image in {img_dir}: {_name_some(unmatched_masks)}")
    if len(pairs) < min_pairs:
        problems.append(
            f"found {len(pairs)} image/mask pair(s) in {root}; at least {min_pairs} needed "
            f"(readable files: {', '.join(IMAGE_SUFFIXES)})"
        )
    if problems:
        raise DataError("; ".join(problems) + ".")
    return pairs


def read_pair(pair: Pair, size: Shape, classes: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair decoded and resized as in training: uint8 (1,rows,columns) image and 0/1 mask, or
    with `classes` (K of labels.json) a label mask of 0..K-1.

    For pairs load_pairs checked before: FileChanged when one no longer reads as then.
    """
    path = pair.mask
    try:
        if classes:
            mask = read_label_mask(pair.mask)
            if mask.size and (mask.min() < 0 or mask.max() >= classes):
                raise ValueError(f"now holds values outside 0-{classes - 1}")
        else:
            mask, _ = read_mask(pair.mask)
        path = pair.image
        image = read_gray(pair.image)
        if image.shape != mask.shape:  # resized alone, it would train on a misplaced mask
            h, w = mask.shape
            raise ValueError(f"now {image.shape[1]}x{image.shape[0]}, its mask {w}x{h}")
        return _resize_pair(image, mask, size)
    except (RecordingError, OSError, ValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise FileChanged(
            f"{path} changed or became unreadable during training "
            f"({why.removeprefix(f'{path}: ').rstrip('.')}); restore it and resume from "
            f"interrupted.pt, or remove the pair {pair.name} and start a new run."
        ) from None


def _resize_pair(image: np.ndarray, mask: np.ndarray, size: Shape) -> tuple[torch.Tensor, ...]:
    return resize_image(image, size), resize_mask(mask, size)


def load_pairs(
    pairs: list[Pair], size: Shape, keep: bool = True, labels: list[str] | None = None
) -> CachedData:
    """Decode and check every pair once (and keep them, resized, if `keep`); with `labels`
    (read_data_labels) the masks are label masks, whose values must be 0..K-1.

    Raises DataError listing every bad file.
    """
    names, kept, images, masks, problems = [], [], [], [], []
    odd_masks, empty_masks, label_values = [], 0, {}
    for pair in pairs:
        try:
            image = read_gray(pair.image)
            if labels:
                mask = read_label_mask(pair.mask)
                values = label_values[pair.mask] = np.unique(mask)
            else:
                mask, values = read_mask(pair.mask)
        except ImageReadError as err:
            problems.append(str(err))
            continue
        if image.shape != mask.shape:
            problems.append(
                f"{pair.image.name} is {image.shape[1]}x{image.shape[0]} but its mask "
                f"{pair.mask.name} is {mask.shape[1]}x{mask.shape[0]}"
            )
            continue
        if not labels and len(values) > 2:
            odd_masks.append(f"{pair.mask.name} {values[:6].tolist()}")
        empty_masks += not mask.any()
        names.append(pair.name)
        kept.append(pair)
        if keep:
            image_resized, mask_resized = _resize_pair(image, mask, size)
            images.append(image_resized)
            masks.append(mask_resized)
    # The files that cannot be read (a few named, then a count), then what is wrong with
    # the label masks as a whole.
    found = []
    if problems:
        named = "; ".join(problem.rstrip(".") for problem in problems[:MAX_NAMED])
        more = f"; and {len(problems) - MAX_NAMED} more" if len(problems) > MAX_NAMED else ""
        found.append(f"{len(problems)} unusable pair(s): {named}{more}")
    if labels:
        found += label_problems(label_values, labels)
    if found:
        raise DataError("; ".join(found) + ".")
    warnings = []
    if odd_masks:
        warnings.append(
            f"{len(odd_masks)} mask(s) hold more than two values; every non-zero pixel is taken "
            f"as foreground: {_name_some(odd_masks)}"
        )
    if empty_masks:
        warnings.append(f"{empty_masks} of {len(names)} masks are entirely empty (allowed)")
    if not keep:
        return CachedData(names, kept, size, None, None, warnings, labels)
    stacked = torch.stack(images), torch.stack(masks)
    return CachedData(names, kept, size, *stacked, warnings, labels)


def split_names(names: list[str], val_percent: float, seed: int) -> dict[str, list[str]]:
    """A deterministic train/validation split of the sorted names for this seed."""
    ordered = sorted(names)
    n_val = max(1, round(len(ordered) * val_percent / 100))
    if n_val >= len(ordered):
        raise DataError(
            f"{len(ordered)} pairs are too few to hold out {val_percent:g}% for validation and "
            "still train; add data or lower -v."
        )
    random.Random(seed).shuffle(ordered)
    return {"train": sorted(ordered[n_val:]), "val": sorted(ordered[:n_val])}


class CachedPairs(torch.utils.data.Dataset):
    """Indexes the cached tensors; `__getitems__` cuts a batch in one go."""

    def __init__(self, data: CachedData, names: list[str]) -> None:
        index = {name: i for i, name in enumerate(data.names)}
        rows = torch.tensor([index[name] for name in names], dtype=torch.long)
        self.names = list(names)
        self.images = data.images[rows]
        self.masks = data.masks[rows]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.masks[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        return self.images[rows], self.masks[rows]

    def nbytes(self) -> int:
        return self.images.nbytes + self.masks.nbytes

    def to(self, device: torch.device) -> CachedPairs:
        """Itself, with its tensors moved to `device`."""
        self.images, self.masks = self.images.to(device), self.masks.to(device)
        return self


class StreamingPairs(torch.utils.data.Dataset):
    """Reads and resizes each pair from disk on every access: for data too big to cache."""

    def __init__(self, data: CachedData, names: list[str]) -> None:
        by_name = {pair.name: pair for pair in data.pairs}
        self.names = list(names)
        self.pairs = [by_name[name] for name in names]
        self.size = data.size
        self.classes = len(data.labels) if data.labels else 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return read_pair(self.pairs[i], self.size, self.classes)


def make_dataset(data: CachedData, names: list[str]) -> torch.utils.data.Dataset:
    """The cached tensors when they are in memory, else files streamed from disk."""
    return CachedPairs(data, names) if data.images is not None else StreamingPairs(data, names)


def collate_batch(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    """A streamed batch, a list of pairs, stacked (cached batches are cut stacked)."""
    images, masks = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(masks)


AUGMENT_SHIFT = 0.05  # of the width and the height, each way
AUGMENT_SCALE = (0.9, 1.1)
AUGMENT_LOG_GAMMA = 0.35
AUGMENT_LOG_CONTRAST = 0.25
AUGMENT_NOISE_SIGMA = 0.03
# Scanners differ in overall gain (saturating the brightest echoes when high) and in how
# sharply they draw borders: up to 2x either way, and a blur of up to 1.2 px.
AUGMENT_LOG_GAIN = 0.7
AUGMENT_BLUR_PX = 1.2


def augment_batch(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random geometry on image and mask, random gain, gamma, contrast, blur and noise on the
    image, for a whole batch at once on the device it is on.

    images: float (N, 1, H, W) in [0, 1]; masks: (N, 1, H, W), 0/1 or classes, returned in
    their dtype. Geometry: a time flip (M-mode read backwards is still M-mode; never a
    vertical flip, the heart has a top), a shift and a scale, bilinear for images and
    nearest neighbour for masks, so that their values are kept; outside is 0. Each image's
    parameters come from torch's global CPU generator and the noise from its device's, so a
    seeded run augments the same way every time.
    """
    n, device = images.shape[0], images.device
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    shift = torch.empty(n, 2).uniform_(-2 * AUGMENT_SHIFT, 2 * AUGMENT_SHIFT)  # in [-1, 1] units
    scale = torch.empty(n).uniform_(*AUGMENT_SCALE)
    gamma = torch.empty(n).uniform_(-AUGMENT_LOG_GAMMA, AUGMENT_LOG_GAMMA).exp()
    contrast = torch.empty(n).uniform_(-AUGMENT_LOG_CONTRAST, AUGMENT_LOG_CONTRAST).exp()
    noise_sigma = torch.empty(n).uniform_(0.0, AUGMENT_NOISE_SIGMA)
    gain = torch.empty(n).uniform_(-AUGMENT_LOG_GAIN, AUGMENT_LOG_GAIN).exp()
    blur_px = torch.empty(n).uniform_(0.0, AUGMENT_BLUR_PX)
    # Where each output pixel reads from: flip, then scale about the centre, then shift.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip / scale
    theta[:, 0, 2] = -flip * shift[:, 0] / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, 1, 2] = -shift[:, 1] / scale
    grid = F.affine_grid(theta.to(device), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    moved = F.grid_sample(masks.float(), grid, mode="nearest", align_corners=False)

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.to(device).view(n, 1, 1, 1)

    images = (images * per_image(gain)).clamp(0, 1) ** per_image(gamma)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * per_image(contrast) + mean
    images = gaussian_blur(images, blur_px.to(device), AUGMENT_BLUR_PX)
    images = images + per_image(noise_sigma) * torch.randn_like(images)
    return images.clamp_(0, 1), moved.to(masks.dtype)
