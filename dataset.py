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

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmode.images import (
    IMAGE_SUFFIXES,
    ImageReadError,
    list_files,
    read_gray,
    read_label_mask,
    read_mask,
)
from mmode.labels import LABELS_FILE, LabelsError, read_labels
from mmode.tensors import resize_image, resize_mask
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

    images (N,1,P,P) uint8 and masks (N,1,P,P) uint8 0/1, or None when streaming. With
    `labels` (the class names of DATA/labels.json, in value order) the masks hold classes.
    """

    names: list[str]
    pairs: list[Pair]
    size: int
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


def cache_bytes(n_pairs: int, size: int) -> int:
    """Memory that caching n_pairs resized pairs takes (uint8 image + uint8 mask)."""
    return n_pairs * size * size * 2


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


def read_pair(pair: Pair, size: int, classes: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair decoded and resized as in training: uint8 (1,P,P) image and 0/1 mask, or
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


def _resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[torch.Tensor, ...]:
    return resize_image(image, size), resize_mask(mask, size)


def load_pairs(
    pairs: list[Pair], size: int, keep: bool = True, labels: list[str] | None = None
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
    if labels:
        problems += label_problems(label_values, labels)
    if problems:
        named = "; ".join(problem.rstrip(".") for problem in problems)
        raise DataError(f"{len(problems)} unusable pair(s): {named}.")
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


def label_problems(values: dict[Path, np.ndarray], labels: list[str]) -> list[str]:
    """The label masks whose values labels.json does not name, one problem each; a folder of
    binary masks (0 and 255), or one that mixes them with label masks, as one problem."""
    if not values:
        return []
    k = len(labels)
    bad = {path: v for path, v in values.items() if v.size and (v.min() < 0 or v.max() >= k)}
    binary = [path for path, v in bad.items() if set(v.tolist()) <= {0, 255}]
    folder = next(iter(values)).parent
    names = folder.parent / LABELS_FILE
    if binary and len(binary) == len(bad) == len(values):
        return [
            f"{folder} holds binary masks (0 and 255), but {names} names {k} classes; remove "
            f"{names} to train on binary cavity masks, or write label masks (0-{k - 1})"
        ]
    if binary and len(bad) < len(values):
        good = [path.name for path in values if path not in bad]
        return [
            f"{folder} mixes binary masks (0 and 255: {_name_some([p.name for p in binary])}) "
            f"with label masks (0-{k - 1}: {_name_some(good)}); make them all label masks, as "
            f"{names} says, or all binary and remove {names}"
        ]
    return [
        f"{path} holds the value(s) {v[(v < 0) | (v >= k)][:6].tolist()}, which {names} does "
        f"not name (0-{k - 1}); fix the mask or name the value in {names}"
        for path, v in bad.items()
    ]


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
    """Indexes the cached tensors; `__getitems__` lets DataLoader fetch a batch in one go."""

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
        rows = torch.as_tensor(indices, dtype=torch.long)
        return self.images[rows], self.masks[rows]


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


def collate_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached batches arrive stacked by `__getitems__`; streamed ones as a list of pairs."""
    if isinstance(batch, tuple):
        return batch
    images, masks = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(masks)


@functools.cache
def _geometry() -> Any:
    """Random geometry for image and mask together. Horizontal flips reverse time, which is
    still a valid M-mode; vertical flips are never used, since the heart has a top.

    Built on first use, so that runs without --augment do not import torchvision.
    """
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=0.0, translate=(0.05, 0.05), scale=(0.9, 1.1)),
        ]
    )


def augment_batch(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random geometry on image and mask, random gamma, contrast and noise on the image.

    images: float (N, 1, H, W) in [0, 1]; masks: (N, 1, H, W), 0/1 or classes, moved by
    nearest neighbour (torchvision's rule for a Mask), so their values are kept. Uses torch's
    global RNG, so a seeded run augments the same way every time.
    """
    from torchvision import tv_tensors

    out_images, out_masks = [], []
    for image, mask in zip(images, masks, strict=True):
        image, mask = _geometry()(tv_tensors.Image(image), tv_tensors.Mask(mask))
        gamma = torch.empty(()).uniform_(-0.35, 0.35).exp()
        contrast = torch.empty(()).uniform_(-0.25, 0.25).exp()
        noise_sigma = torch.empty(()).uniform_(0.0, 0.03)
        image = image.as_subclass(torch.Tensor).clamp(0, 1) ** gamma
        image = (image - image.mean()) * contrast + image.mean()
        image = image + noise_sigma * torch.randn_like(image)
        out_images.append(image.clamp_(0, 1))
        out_masks.append(mask.as_subclass(torch.Tensor))
    return torch.stack(out_images), torch.stack(out_masks)
