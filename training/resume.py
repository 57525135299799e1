"""Bringing a run back: its optimizer and random state; adopting the optimizer of another
tool's checkpoint when it fits; and starting a new run from a checkpoint's weights
(--start-from), which takes nothing of that run but the model."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from quicknat import TrainingCheckpoint, load_weights
from quicknat.schema import Progress, incomplete
from runtime.distributed import say, warn
from training.config import DEFAULT_IM_SIZE, TrainConfig


def restore_checkpoint(
    checkpoint: Any,
    our_checkpoint: TrainingCheckpoint | None,
    source: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    learning_rate: float,
    im_size: int,
) -> Progress:
    """Weights and optimizer state from a checkpoint read with -f; the run's progress
    (that of our checkpoint, a fresh one for another tool's)."""
    load_weights(model, checkpoint, source)
    if our_checkpoint is None:
        loaded = adopt_foreign_optimizer(checkpoint, optimizer, model)
        say(f"Loaded weights{' and optimizer state' if loaded else ''} from {source}.")
        return Progress()
    restore_optimizer(optimizer, our_checkpoint.optimizer, learning_rate, source)
    say(f"Resuming from {source} after epoch {our_checkpoint.progress.epoch}.")
    if our_checkpoint.im_size is not None and our_checkpoint.im_size != im_size:
        # Allowed (fine-tuning at another scale is legitimate), but never silent: a resume
        # without -p gets the default 256, and the metrics change scale at this epoch.
        warn(
            f"{source} was trained on {our_checkpoint.im_size} px windows but -p is {im_size}, so "
            f"training goes on at {im_size} px and its metrics from epoch "
            f"{our_checkpoint.progress.epoch + 1} on are not comparable to before; pass -p "
            f"{our_checkpoint.im_size} to keep the checkpoint's scale."
        )
    return our_checkpoint.progress


def start_config(config: TrainConfig, our_checkpoint: TrainingCheckpoint | None) -> TrainConfig:
    """A --start-from run's flags with -p settled: without -p, the size the checkpoint was
    trained at (DEFAULT_IM_SIZE for another tool's, which records none); a -p that differs
    from it is used, with a warning. Other runs' flags as they are."""
    if config.start_from is None:
        return config
    trained = our_checkpoint.im_size if our_checkpoint is not None else None
    if config.im_size is None:
        config = dataclasses.replace(config, im_size=trained or DEFAULT_IM_SIZE)
        config.check()  # the size was not known when the flags were checked
    elif trained is not None and trained != config.im_size:
        # Allowed, as on resume, but the model then sees its structures at another scale.
        warn(
            f"{config.start_from} was trained on {trained} px windows but -p is "
            f"{config.im_size}, so the new run trains at {config.im_size} px; leave out -p to "
            "keep the checkpoint's scale."
        )
    return config


def load_start_weights(
    checkpoint: Any, our_checkpoint: TrainingCheckpoint | None, source: str, model: torch.nn.Module
) -> str:
    """The --start-from checkpoint's weights into the new run's model (its optimizer, split,
    epochs, schedule and random state stay behind); `source`, for the run to record."""
    load_weights(model, checkpoint, source)
    after = (
        f" (after epoch {our_checkpoint.progress.epoch} of its run)"
        if our_checkpoint is not None
        else ""
    )
    say(
        f"Starting a new run from the weights of {source}{after}: a fresh split, optimizer "
        "and epoch count."
    )
    return source


def started_from(our_checkpoint: TrainingCheckpoint) -> str | None:
    """The checkpoint a resumed run first started from with --start-from, if it did."""
    origin = our_checkpoint.args.get("start_from")
    return origin if isinstance(origin, str) else None


def restore_optimizer(
    optimizer: torch.optim.Optimizer, state: dict, learning_rate: float, source: str
) -> None:
    """Our checkpoint's optimizer state, with this run's learning rate."""
    try:
        optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as err:
        raise incomplete(source, err) from None
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def adopt_foreign_optimizer(
    checkpoint: Any, optimizer: torch.optim.Optimizer, model: torch.nn.Module
) -> bool:
    """Another tool's optimizer state where its shapes fit (with this run's -l and kernel)."""
    state = checkpoint.get("optimizer") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        return False
    params = list(model.parameters())
    try:
        shapes_fit = all(
            t.shape == params[i].shape
            for i, s in state.get("state", {}).items()
            for t in s.values()
            if isinstance(t, torch.Tensor) and t.dim() > 0
        )
        if shapes_fit:
            fused = optimizer.param_groups[0].get("fused")
            optimizer.load_state_dict(state)
            for group in optimizer.param_groups:
                group["lr"], group["fused"] = optimizer.defaults["lr"], fused
            return True
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    warn("the checkpoint's optimizer state does not fit this model; starting a fresh one.")
    return False


def get_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed_process(state: dict[str, Any] | None, seed: int, rank: int, progress: Progress) -> None:
    """The global random state for dropout and augmentation: a resumed run's, or a fresh one.

    Each process draws its own; only rank 0's state is saved, so the others must not
    repeat its draws on resume.
    """
    if state is None:
        torch.manual_seed(seed + rank)
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if rank:
        torch.manual_seed(seed + rank + 7919 * progress.epoch)


def grad_scaler(device: torch.device, precision: str, state: dict | None) -> torch.amp.GradScaler:
    """fp16's loss scaling (a no-op otherwise), as a resumed run left it."""
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if state:
        scaler.load_state_dict(state)
    return scaler


def optimizer_state_cpu(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state_dict with its tensors on the CPU, for a checkpoint."""
    state = optimizer.state_dict()
    state["state"] = {
        i: {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
        for i, s in state["state"].items()
    }
    return state


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)
