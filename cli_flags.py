"""Command-line flags that run.py and test.py share: the QuickNAT settings and speed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hardware import PRECISIONS, SetupError
from quicknat import (
    SE_BLOCKS,
    CheckpointError,
    QuickNatConfig,
    choose_config,
    describe_mismatch,
    extract_state_dict,
    infer_config,
)


def add_model_flags(parser: argparse.ArgumentParser, title: str) -> None:
    """--num-filters, --kernel, --se, --dropout; None when not given, so a checkpoint can win."""
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


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags as QuickNAT params; None means not given."""
    return {
        "num_filters": args.num_filters,
        "kernel_h": args.kernel,
        "kernel_w": args.kernel,
        "se_block": args.se,
        "drop_out": args.dropout,
    }


def add_speed_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--precision and --channels-last; returns the group for flags of one tool only."""
    group = parser.add_argument_group("speed")
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (the default): bf16 on GPUs and CPUs that support it, fp16 on older GPUs, "
        "else fp32",
    )
    group.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="channels_last memory format for the model (default: on)",
    )
    return group


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


def load_checkpoint_weights(model: nn.Module, checkpoint: Any, name: str) -> None:
    """Load the checkpoint's weights strictly; a mismatch names the file and the flags that fit."""
    state_dict = extract_state_dict(checkpoint, name)
    mismatch = describe_mismatch(model, state_dict)
    if mismatch:
        raise CheckpointError(f"{name}: {mismatch}{fitting_flags(state_dict)}")
    model.load_state_dict(state_dict, strict=True)


def fitting_flags(state_dict: dict[str, torch.Tensor]) -> str:
    """A sentence naming the model flags that fit these weights, or '' if they don't show."""
    inferred = infer_config(state_dict)
    if "num_filters" not in inferred or inferred["kernel_h"] != inferred["kernel_w"]:
        return ""
    flags = f"--num-filters {inferred['num_filters']} --kernel {inferred['kernel_h']}"
    return f" Pass {flags} --se {inferred['se_block']} to fit them."
