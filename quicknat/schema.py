"""The checkpoint this tool's trainer writes: one schema that resume, test-set scoring
and measurement read.

A checkpoint is a dict of plain data (tensors, numbers, strings, lists, dicts), so it
loads with `torch.load(..., weights_only=True)`. It keeps the original tool's keys
(epoch, net_state_dict, optimizer, loss, dice, mse, best_dice, best_mse), so that the
original's scripts read it, and adds ours. format_version 1 files (before `im_size` had
its own field) and other tools' checkpoints still load. A model trained on label masks
(DATA/labels.json) also keeps its class names under `labels`, one per output channel;
a binary model has no `labels` key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from mmode.timescale import WINDOW_S_RANGE

from .checkpoint import CheckpointError
from .config import QuickNatConfig

FORMAT_VERSION = 2


@dataclass
class Progress:
    """Where a run stands."""

    epoch: int = 0  # completed epochs
    step: int = 0  # training steps done in epoch + 1 (non-zero only in interrupted.pt)
    partial: dict[str, float] = field(default_factory=dict)  # train sums of that partial epoch
    best_dice: float = -1.0
    best_loss: float = math.inf
    best_mse: float = math.inf
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch


@dataclass
class TrainingCheckpoint:
    """Everything a run needs to resume exactly, and a model needs to measure."""

    config: QuickNatConfig
    state_dict: dict[str, torch.Tensor]
    im_size: int  # the -p the model was trained at: it must see windows at that scale
    optimizer: dict[str, Any]
    progress: Progress
    split: dict[str, Any]  # train and val names, seed, val_percent
    args: dict[str, Any]  # the training flags, for the record
    rng_state: dict[str, Any]
    scaler: dict[str, Any] | None = None  # fp16 loss scaling
    lr_plan: dict[str, Any] | None = None  # the learning-rate schedule (training/schedule.py)
    labels: list[str] | None = None  # class names by output channel; None: binary (cavity)
    window_s: float | None = None  # the windows' longest span (mmode/timescale.py); None: square

    def to_dict(self) -> dict[str, Any]:
        p = self.progress
        last = p.history[-1] if p.history else {}
        checkpoint = {
            # The original tool's keys.
            "epoch": p.epoch,
            "net_state_dict": self.state_dict,
            "optimizer": self.optimizer,
            "loss": last.get("val_loss", math.nan),
            "dice": last.get("val_dice", math.nan),
            "mse": last.get("val_mse", math.nan),
            "best_dice": p.best_dice,
            "best_mse": p.best_mse,
            # Ours.
            "model_config": self.config.to_dict(),
            "im_size": self.im_size,
            "args": self.args,
            "split": self.split,
            "history": p.history,
            "progress": dataclasses.asdict(p),
            "rng_state": self.rng_state,
            "format_version": FORMAT_VERSION,
        }
        if self.scaler is not None:
            checkpoint["scaler"] = self.scaler
        if self.lr_plan is not None:
            checkpoint["lr_plan"] = self.lr_plan
        if self.labels is not None:
            checkpoint["labels"] = list(self.labels)
        if self.window_s is not None:
            checkpoint["window_s"] = self.window_s
        return checkpoint

    @classmethod
    def from_dict(cls, checkpoint: dict[str, Any], source: str) -> TrainingCheckpoint:
        """Our checkpoint (see is_ours) as the schema; CheckpointError if a field is
        missing or damaged."""
        problem = damaged_field(checkpoint)
        if problem:
            raise incomplete(source, problem)
        try:
            config = QuickNatConfig.from_dict(checkpoint["model_config"])
        except (KeyError, TypeError, ValueError) as err:
            raise incomplete(source, f"its model_config is damaged: {err}") from None
        labels = checkpoint.get("labels")
        if labels is not None and len(labels) != config.num_class:
            raise incomplete(
                source, f"it names {len(labels)} labels for a model of {config.num_class} classes"
            )
        return cls(
            config=config,
            state_dict=checkpoint["net_state_dict"],
            im_size=trained_im_size(checkpoint),
            optimizer=checkpoint["optimizer"],
            progress=Progress(**checkpoint["progress"]),
            split=checkpoint["split"],
            args=checkpoint.get("args", {}),
            rng_state=checkpoint["rng_state"],
            scaler=checkpoint.get("scaler"),
            lr_plan=checkpoint.get("lr_plan"),
            labels=labels,
            window_s=checkpoint.get("window_s"),
        )


def damaged_field(checkpoint: dict[str, Any]) -> str | None:
    """What is missing or wrong among our checkpoint's fields, as a phrase; None if nothing."""
    for key, fits, expected in _FIELDS:
        if key not in checkpoint:
            if key not in _OPTIONAL:
                return f"its {key} is missing"
        elif not fits(checkpoint[key]):
            return f"its {key} is not {expected}"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _split(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _names(value.get("train"))
        and _names(value.get("val"))
        and _number(value.get("val_percent", 0))
    )


def _labels(value: Any) -> bool:
    return (
        _names(value)
        and len(value) >= 2
        and value[0] == "background"
        and len(set(value)) == len(value)
    )


def _window_s(value: Any) -> bool:
    return _number(value) and WINDOW_S_RANGE[0] <= value <= WINDOW_S_RANGE[1]


def _progress(value: Any) -> bool:
    fields = {f.name for f in dataclasses.fields(Progress)}
    return (
        isinstance(value, dict)
        and set(value) == fields
        and _count(value["epoch"])
        and _count(value["step"])
        and all(_number(value[k]) for k in ("best_dice", "best_loss", "best_mse"))
        and isinstance(value["partial"], dict)
        and all(_number(v) for v in value["partial"].values())
        and isinstance(value["history"], list)
        and all(isinstance(row, dict) for row in value["history"])
    )


def _rng_state(value: Any) -> bool:
    cpu = value.get("torch") if isinstance(value, dict) else None
    return (
        isinstance(cpu, torch.Tensor)
        and cpu.dtype == torch.uint8
        and cpu.shape == torch.get_rng_state().shape
    )


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


# (key, check, what it should be): the fields of our format that resume reads.
_FIELDS = (
    ("model_config", _is_dict, "a dict"),
    ("net_state_dict", _is_dict, "a dict"),
    ("optimizer", _is_dict, "a dict"),
    ("progress", _progress, "a dict of epoch, step, partial, best_* and history"),
    ("split", _split, "a dict with lists of names under train and val"),
    ("rng_state", _rng_state, "a dict with torch's uint8 random state under 'torch'"),
    ("args", _is_dict, "a dict"),
    ("scaler", _is_dict, "a dict"),
    ("lr_plan", _is_dict, "a dict"),
    ("labels", _labels, "a list of two or more distinct class names, background first"),
    ("window_s", _window_s, "a number of seconds from {:g} to {:g}".format(*WINDOW_S_RANGE)),
)
_OPTIONAL = ("args", "scaler", "lr_plan", "labels", "window_s")


def incomplete(source: str, problem: object) -> CheckpointError:
    """The error for our checkpoint with a part missing or damaged."""
    return CheckpointError(
        f"{source} is an incomplete or damaged checkpoint of this tool ({problem}); "
        "resume from another one or start afresh."
    )


def is_ours(checkpoint: Any) -> bool:
    """Whether this tool's trainer wrote the checkpoint (any format_version)."""
    return isinstance(checkpoint, dict) and "format_version" in checkpoint


def trained_im_size(checkpoint: Any) -> int | None:
    """The -p our checkpoint was trained at; None for other tools' checkpoints."""
    if not is_ours(checkpoint):
        return None
    size = checkpoint.get("im_size")
    if size is None:  # format_version 1 kept it only among the flags
        args = checkpoint.get("args")
        size = args.get("im_size") if isinstance(args, dict) else None
    return size if isinstance(size, int) and size > 0 else None


def trained_labels(checkpoint: Any) -> list[str] | None:
    """The class names our checkpoint was trained on (labels.json); None for a binary
    model or another tool's checkpoint."""
    labels = checkpoint.get("labels") if is_ours(checkpoint) else None
    return list(labels) if isinstance(labels, list) and _labels(labels) else None


def trained_window_s(checkpoint: Any) -> float | None:
    """The longest span of the windows our checkpoint was trained on; None for square
    windows or another tool's checkpoint."""
    window_s = checkpoint.get("window_s") if is_ours(checkpoint) else None
    return float(window_s) if _window_s(window_s) else None


def stored_config(checkpoint: Any) -> QuickNatConfig | None:
    """The model_config stored by this project's trainer, if there is one."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model_config"), dict):
        return QuickNatConfig.from_dict(checkpoint["model_config"])
    return None


def choose_config(checkpoint: Any, settings: dict[str, Any]) -> tuple[QuickNatConfig, list[str]]:
    """Our checkpoint's stored config wins over the settings given; else those settings.

    `settings` holds QuickNAT params, None meaning not given. Returns the config and, for a
    stored config, the given settings that differ from it (for a warning). An invalid
    setting raises ValueError.
    """
    stored = stored_config(checkpoint)
    if stored is None:
        return QuickNatConfig(**{k: v for k, v in settings.items() if v is not None}), []
    differ = [
        f"{k}={getattr(stored, k)} (flag: {v})"
        for k, v in settings.items()
        if v is not None and str(v).upper() != str(getattr(stored, k)).upper()
    ]
    return stored, differ
