"""QuickNAT settings: the ai-med `params` dict, as a validated dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mmode.tensors import INPUT_NORMS

SE_BLOCKS = ("NONE", "CSE", "SSE", "CSSE")
_INT_KEYS = (
    "num_channels", "num_class", "num_filters", "kernel_h", "kernel_w", "kernel_c",
    "stride_conv", "pool", "stride_pool", "time_stretch",
)  # fmt: skip
MAX_TIME_STRETCH = 4  # beyond it a window costs more than its sharper time is worth


@dataclass(frozen=True)
class QuickNatConfig:
    """The keys and defaults of the original QuickNAT `params` dict."""

    num_channels: int = 1
    num_class: int = 1
    num_filters: int = 64
    kernel_h: int = 5
    kernel_w: int = 5
    kernel_c: int = 1
    stride_conv: int = 1
    pool: int = 2
    stride_pool: int = 2
    se_block: str = "NONE"
    drop_out: float = 0.2
    # Ours, not the original's: how each input image is normalised (mmode.tensors). The
    # default is the original's /255, so that its checkpoints, and ours without this field,
    # measure as they were trained; run.py trains "rank" models.
    input_norm: str = "unit"
    # Ours: how many pixels wide the network sees a window for each pixel of its height. A
    # window holds as many columns as its recording has rows (3-4 columns a pixel at 128 px),
    # which blurs the fast end-systolic turn; 2 keeps twice the time resolution at twice the
    # cost. 1, square, for the original's checkpoints and ours without this field.
    time_stretch: int = 1

    def __post_init__(self) -> None:
        for key in _INT_KEYS:
            object.__setattr__(self, key, _as_int(key, getattr(self, key)))
        for key in ("num_channels", "num_class", "num_filters"):
            if getattr(self, key) < 1:
                raise ValueError(f"QuickNAT {key} must be at least 1, got {getattr(self, key)}.")
        for key in ("kernel_h", "kernel_w"):
            value = getattr(self, key)
            if value < 1 or value % 2 == 0:
                raise ValueError(
                    f"QuickNAT {key} must be an odd positive number (1, 3, 5, 7, ...) so that "
                    f"'same' padding keeps the image size, got {value}."
                )
        # The dense blocks concatenate a block's input with its conv outputs, and the
        # classifier has no padding: only these values keep the shapes consistent.
        if self.kernel_c != 1:
            raise ValueError(
                f"QuickNAT kernel_c must be 1 (a 1x1 classifier), got {self.kernel_c}."
            )
        if self.stride_conv != 1:
            raise ValueError(f"QuickNAT stride_conv must be 1, got {self.stride_conv}.")
        if self.pool < 2:
            raise ValueError(f"QuickNAT pool must be 2 or more, got {self.pool}.")
        if self.stride_pool != self.pool:
            raise ValueError(
                f"QuickNAT stride_pool must equal pool ({self.pool}), got {self.stride_pool}."
            )
        se_block = "NONE" if self.se_block is None else str(self.se_block).upper()
        if se_block not in SE_BLOCKS:
            raise ValueError(
                f"QuickNAT se_block must be one of {', '.join(SE_BLOCKS)}, got {self.se_block!r}."
            )
        object.__setattr__(self, "se_block", se_block)
        drop_out = self.drop_out
        if isinstance(drop_out, bool) or not isinstance(drop_out, (int, float)):
            raise ValueError(f"QuickNAT drop_out must be a number in [0, 1), got {drop_out!r}.")
        if not 0.0 <= drop_out < 1.0:
            raise ValueError(f"QuickNAT drop_out must be in [0, 1), got {drop_out}.")
        object.__setattr__(self, "drop_out", float(drop_out))
        if not 1 <= self.time_stretch <= MAX_TIME_STRETCH:
            raise ValueError(
                f"QuickNAT time_stretch must be 1 to {MAX_TIME_STRETCH}, got {self.time_stretch}."
            )
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(
                f"QuickNAT input_norm must be one of {', '.join(INPUT_NORMS)}, "
                f"got {self.input_norm!r}."
            )

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (four poolings)."""
        return self.pool**4

    def input_shape(self, size: int) -> tuple[int, int]:
        """(rows, columns) of the network's input for windows resized to `size` rows."""
        return size, size * self.time_stretch

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> QuickNatConfig:
        """Build from an ai-med style params dict; missing keys take the defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown QuickNAT setting(s) {', '.join(map(repr, unknown))}; "
                f"the settings are {', '.join(sorted(known))}."
            )
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"QuickNAT {key} must be a whole number, got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"QuickNAT {key} must be a whole number, got {value!r}.")
