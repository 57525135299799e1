"""QuickNAT's settings as command-line flags, shared by run.py and test.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mmode.tensors import INPUT_NORMS
from runtime.errors import SetupError

from .config import MAX_TIME_STRETCH, SE_BLOCKS, QuickNatConfig
from .schema import choose_config


def add_model_flags(
    parser: argparse.ArgumentParser, title: str, input_norm_default: str = "unit"
) -> None:
    """--num-filters, --kernel, --se, --dropout, --input-norm, --time-stretch; None when not
    given, so a checkpoint can win. input_norm_default is what the help names for a model
    without one: run.py trains "rank" models, test.py reads other tools' checkpoints as
    "unit"."""
    group = parser.add_argument_group(title)
    group.add_argument(
        "--num-filters", type=int, default=None, help="filters per convolution (default: 64)"
    )
    group.add_argument(
        "--kernel", type=int, default=None, help="odd convolution kernel size (default: 5)"
    )
    group.add_argument(
        "--se",
        type=str.upper,
        choices=SE_BLOCKS,
        default=None,
        help="squeeze-and-excitation (default: NONE)",
    )
    group.add_argument("--dropout", type=float, default=None, help="dropout rate (default: 0.2)")
    group.add_argument(
        "--input-norm",
        choices=INPUT_NORMS,
        default=None,
        help="per-image input normalisation: rank (each grey level by its rank in the image, "
        "so gain, gamma and contrast do not matter) or unit (grey / 255, the original "
        f"QuickNAT's) (default: {input_norm_default})",
    )
    group.add_argument(
        "--time-stretch",
        type=int,
        default=None,
        metavar="K",
        help=f"the network sees each window K times as wide as deep (1 to {MAX_TIME_STRETCH}): "
        "sharper end-systoles at K times the cost (default: 1)",
    )


def model_settings(
    num_filters: int | None,
    kernel: int | None,
    se: str | None,
    dropout: float | None,
    input_norm: str | None = None,
    time_stretch: int | None = None,
) -> dict[str, Any]:
    """The model flags as QuickNAT params; None means not given."""
    return {
        "num_filters": num_filters,
        "kernel_h": kernel,
        "kernel_w": kernel,
        "se_block": se,
        "drop_out": dropout,
        "input_norm": input_norm,
        "time_stretch": time_stretch,
    }


def model_config(
    checkpoint: Any, settings: dict[str, Any], warn: Callable[[str], None]
) -> QuickNatConfig:
    """Our checkpoint's stored config wins over the flags' settings (warned about); else those.

    `settings` as from model_settings; an invalid value is a SetupError.
    """
    try:
        config, ignored = choose_config(checkpoint, settings)
    except ValueError as err:
        raise SetupError(str(err)) from None
    if ignored:
        warn(f"the checkpoint's model settings are used: {', '.join(ignored)}.")
    return config
