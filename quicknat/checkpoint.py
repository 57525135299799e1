"""Load QuickNAT weights from any checkpoint people have, safely.

Accepted: this project's checkpoints, the ai-med/original tool's dicts with a
`net_state_dict` entry, and bare state_dicts, with or without the `module.`
prefix that DataParallel/DistributedDataParallel add. Files are always read with
`torch.load(..., weights_only=True)`: a checkpoint is untrusted input, and
unpickling arbitrary objects could run code.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the fix."""


def read_checkpoint(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True, turning every failure into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path.")
    damaged = damaged_part(path)
    if damaged:
        raise CheckpointError(
            f"{path} is damaged: the checksum of its part {damaged} does not match (a bad copy "
            "or disk?); copy it again or use another checkpoint."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        if found is None:
            raise CheckpointError(
                f"{path} is not a readable PyTorch checkpoint (corrupt?)."
            ) from None
        raise CheckpointError(
            f"refused to load {path}: it contains the Python object {found.group(1)}, and "
            "unpickling it could run code; only tensors, numbers, strings, lists and dicts are "
            "accepted. Re-save just the weights (the state_dict) from a Python session you trust."
        ) from None
    except (KeyError, IndexError):  # the legacy (non-zip) reader, fed a text file
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (a text file?); pass the .pt file a training "
            "run wrote."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        reason = str(err).split(". ")[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or cut short?): {reason}."
        ) from None


def damaged_part(path: Path) -> str | None:
    """The first part of a zip checkpoint whose CRC does not match; None if all match, or
    if it is no zip (torch.load then names the problem)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None


def extract_state_dict(checkpoint: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model weights inside a checkpoint, with DDP/compile prefixes stripped."""
    if isinstance(checkpoint, dict):
        for key in ("net_state_dict", "state_dict", "model_state_dict"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if (
        not isinstance(checkpoint, dict)
        or not checkpoint
        or not all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    ):
        raise CheckpointError(
            f"{source} holds no model weights: expected a state_dict or a dict with a "
            "'net_state_dict' entry."
        )
    return {_strip_prefixes(k): v for k, v in checkpoint.items()}


def _strip_prefixes(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def infer_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The QuickNAT settings that the weights' shapes reveal (dropout and pooling do not show)."""
    inferred: dict[str, Any] = {}
    conv1 = state_dict.get("encode1.conv1.weight")
    if conv1 is not None and conv1.dim() == 4:
        inferred.update(
            num_filters=conv1.shape[0],
            num_channels=conv1.shape[1],
            kernel_h=conv1.shape[2],
            kernel_w=conv1.shape[3],
        )
    classifier = state_dict.get("classifier.conv.weight")
    if classifier is not None and classifier.dim() == 4:
        inferred["num_class"] = classifier.shape[0]
    if any(".SELayer.cSE." in k for k in state_dict):
        inferred["se_block"] = "CSSE"
    elif any(".SELayer.fc1." in k for k in state_dict):
        inferred["se_block"] = "CSE"
    elif any(".SELayer.conv." in k for k in state_dict):
        inferred["se_block"] = "SSE"
    elif inferred:
        inferred["se_block"] = "NONE"
    return inferred


def describe_mismatch(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> str | None:
    """None when the weights fit the model exactly, else one readable paragraph."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            parts.append(f"{label}: {', '.join(items[:5])}{more}")
    message = "the weights do not fit this QuickNAT architecture (" + "; ".join(parts) + ")."
    inferred = infer_config(state_dict)
    if inferred:
        settings = ", ".join(f"{k}={v}" for k, v in inferred.items())
        message += f" The weights look like a QuickNAT with {settings}."
    return message


def fitting_flags(state_dict: dict[str, torch.Tensor]) -> str:
    """A sentence naming the command-line model flags that fit these weights, or ''."""
    inferred = infer_config(state_dict)
    if "num_filters" not in inferred or inferred["kernel_h"] != inferred["kernel_w"]:
        return ""
    flags = f"--num-filters {inferred['num_filters']} --kernel {inferred['kernel_h']}"
    return f" Pass {flags} --se {inferred['se_block']} to fit them."


def load_weights(model: nn.Module, source: str | os.PathLike | dict, name: str = "") -> Any:
    """Load weights strictly into `model` from a file or an already-loaded checkpoint.

    Returns the checkpoint object, so callers can read its other entries. A mismatch is a
    CheckpointError naming the file (or `name`) and the settings that would fit.
    """
    checkpoint = read_checkpoint(source) if not isinstance(source, dict) else source
    name = name or (str(source) if not isinstance(source, dict) else "checkpoint")
    state_dict = extract_state_dict(checkpoint, name)
    mismatch = describe_mismatch(model, state_dict)
    if mismatch:
        raise CheckpointError(f"{name}: {mismatch}{fitting_flags(state_dict)}")
    model.load_state_dict(state_dict, strict=True)
    return checkpoint
