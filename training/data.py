"""The data a run trains on: checked, kept in memory or streamed, and split."""

from __future__ import annotations

from dataset import CachedData, DataError, cache_bytes, find_pairs, load_pairs, split_names
from runtime.distributed import say, warn
from training.config import TrainConfig


def load_data(config: TrainConfig) -> CachedData:
    """The checked pairs, kept in memory unless they exceed --cache-limit."""
    try:
        pairs = find_pairs(config.datapath)
        needed = cache_bytes(len(pairs), config.im_size)
        cache = needed <= config.cache_limit * 1e9
        if not cache:
            say(
                f"The resized data set needs {needed / 1e9:.1f} GB, more than --cache-limit "
                f"{config.cache_limit:g} GB: streaming it from disk instead (more --workers help)."
            )
        data = load_pairs(pairs, config.im_size, keep=cache)
    except OSError as err:  # a folder or file that cannot be listed or read (permissions)
        where = err.filename or config.datapath
        raise DataError(
            f"cannot read {where} ({err.strerror}); make it readable or pass another -d."
        ) from None
    for message in data.warnings:
        warn(message)
    return data


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
