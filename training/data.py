"""The data a run trains on: checked, kept in memory or streamed, and split."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from dataset import (
    CachedData,
    CachedPairs,
    DataError,
    augment_batch,
    cache_bytes,
    collate_batch,
    find_pairs,
    load_pairs,
    split_names,
)
from mmode.tensors import Shape, to_unit_float
from mmode.timescale import WindowRuleError, read_window_s
from runtime.distributed import say, warn
from training.config import TrainConfig

GPU_CACHE_SHARE = 0.25  # of a GPU's memory that a cached data set may take there


def load_data(
    config: TrainConfig, input_shape: Shape, labels: list[str] | None = None
) -> CachedData:
    """The checked pairs resized to the model's input_shape, kept in memory unless they
    exceed --cache-limit; with `labels` (DATA/labels.json's classes) label masks."""
    try:
        pairs = find_pairs(config.datapath)
        needed = cache_bytes(len(pairs), input_shape)
        cache = needed <= config.cache_limit * 1e9
        if not cache:
            say(
                f"The resized data set needs {needed / 1e9:.1f} GB, more than --cache-limit "
                f"{config.cache_limit:g} GB: streaming it from disk instead (more --workers help)."
            )
        data = load_pairs(pairs, input_shape, keep=cache, labels=labels)
    except OSError as err:  # a folder or file that cannot be listed or read (permissions)
        where = err.filename or config.datapath
        raise DataError(
            f"cannot read {where} ({err.strerror}); make it readable or pass another -d."
        ) from None
    for message in data.warnings:
        warn(message)
    return data


def data_window_s(config: TrainConfig) -> float | None:
    """The window_s -d's windows were cut with (DATA/windows.json); None: square windows."""
    try:
        return read_window_s(config.datapath)
    except WindowRuleError as err:
        raise DataError(str(err)) from None


def choose_split(config: TrainConfig, data: CachedData, stored: dict | None) -> dict:
    """A resumed run's stored split, else a new one seeded by --seed."""
    if isinstance(stored, dict):
        return stored_split(stored, data, config.validation)
    split = {**split_names(data.names, config.validation, config.seed)}
    split.update(seed=config.seed, val_percent=config.validation)
    return split


def stored_split(stored: dict, data: CachedData, val_percent: float) -> dict:
    """The checkpoint's split, checked against the data set that is here now."""
    names = set(data.names)
    missing = [n for n in stored["train"] + stored["val"] if n not in names]
    if missing:
        raise DataError(
            f"the data set has changed since the checkpoint: {len(missing)} pair(s) of its split "
            f"are gone ({', '.join(missing[:10])}); resume with the same data or start afresh."
        )
    new = len(names) - len(stored["train"]) - len(stored["val"])
    if new:
        warn(f"{new} pair(s) not in the checkpoint's split are left out of this run.")
    if float(stored.get("val_percent", val_percent)) != float(val_percent):
        say(f"Reusing the checkpoint's split ({stored.get('val_percent')}%); -v is ignored.")
    return stored


def batch_loader(
    dataset: Dataset, batches: list[list[int]], workers: int, seed: int, pin_memory: bool
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Exactly these batches, in this order: cut from a cached data set, or from a
    DataLoader when streaming."""
    if isinstance(dataset, CachedPairs):
        return cached_batches(dataset, batches)
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate_batch,
        pin_memory=pin_memory,
        # Its own generator, so that loading never draws from the global RNG
        # that dropout and augmentation use: resumed runs stay exact.
        generator=torch.Generator().manual_seed(seed),
    )


def in_batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def epoch_batches(
    dataset: Dataset, epoch: int, world: int, rank: int, config: TrainConfig
) -> list[list[int]]:
    """A process's batches for an epoch: a seeded shuffle, the same on every resume."""
    sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=config.seed)
    sampler.set_epoch(epoch)
    return in_batches(list(sampler), config.batch_size)


def batch_to_device(
    images: torch.Tensor,
    masks: torch.Tensor,
    device: torch.device,
    memory_format: torch.memory_format,
    augment: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch as the model takes it: float images in [0, 1] and float masks (0/1, or the
    classes of label masks) on `device`, augmented there, the whole batch at once, if
    `augment`."""
    # Copy the batch as it comes (pinned when streamed to a GPU; a cache kept on the GPU is
    # there already), a quarter of the bytes when uint8, and convert on the device.
    non_blocking = device.type == "cuda"
    images = images.to(device, non_blocking=non_blocking)
    masks = masks.to(device, non_blocking=non_blocking).float()
    if images.dtype == torch.uint8:
        images = to_unit_float(images)
    if augment:
        images, masks = augment_batch(images, masks)
    return images.contiguous(memory_format=memory_format), masks


def keep_on_device(dataset: Dataset, device: torch.device) -> Dataset:
    """A cached data set moved into the GPU's memory when it takes at most
    GPU_CACHE_SHARE of it: batches are then cut there, with no copy per step. Else, and on
    the CPU or when streamed, the data set as it is."""
    if device.type != "cuda" or not isinstance(dataset, CachedPairs):
        return dataset
    total = torch.cuda.get_device_properties(device).total_memory
    if dataset.nbytes() > GPU_CACHE_SHARE * total:
        return dataset
    return dataset.to(device)


def cached_batches(
    dataset: CachedPairs, batches: list[list[int]]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches cut straight from the cached tensors, where they are: no DataLoader."""
    for batch in batches:
        yield dataset.__getitems__(batch)
