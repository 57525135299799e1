"""The classes a run trains: one (binary cavity masks) or those DATA/labels.json names.

Label data trains QuickNAT with num_class = the number of labels (background included), and
the class names go into the checkpoint; a resume, and a new run started from its weights,
must bring data of the same classes. Classes that test.py cannot measure recordings with
(mmode.labels.measurable, e.g. a "lumen") train, with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset import read_data_labels
from mmode.labels import LABELS_FILE, WALL_LABELS, measurable
from quicknat import CheckpointError, TrainingCheckpoint
from runtime.distributed import warn
from training.config import TrainConfig


def run_classes(
    config: TrainConfig, our_checkpoint: TrainingCheckpoint | None, source: Path | None
) -> list[str] | None:
    """The class names of -d's labels.json (None for binary data), checked against the
    checkpoint resumed or started from; DataError for a bad labels.json, CheckpointError for
    others."""
    labels = read_data_labels(config.datapath)
    if our_checkpoint is not None and our_checkpoint.labels != labels:
        if config.start_from is not None:
            fix = "start from it with data of those classes, or afresh without --start-from."
        else:
            fix = "resume with data of the checkpoint's classes, or start afresh without -f."
        raise CheckpointError(
            f"{source} was trained on {describe(our_checkpoint.labels)}, but "
            f"{config.datapath} holds {describe(labels)}; {fix}"
        )
    if not measurable(labels):
        # Warned, not refused: such a model still segments and scores test sets; only
        # test.py's measuring needs the cavity (and walls) under the names it knows.
        warn(
            f"{Path(config.datapath) / LABELS_FILE} names the classes {', '.join(labels)}; "
            "test.py measures hearts only with a cavity model (binary masks, no "
            f"{LABELS_FILE}) or one of {', '.join(WALL_LABELS)}, so this model can be "
            "scored on test sets but cannot measure recordings."
        )
    if labels and config.loss != "bce":
        warn(
            f"--loss {config.loss} applies to binary masks only; {LABELS_FILE} data always "
            "trains with softmax cross-entropy plus soft Dice over the foreground classes."
        )
    return labels


def describe(labels: list[str] | None) -> str:
    if labels is None:
        return "binary cavity masks (no labels.json)"
    return f"the classes {', '.join(labels)} ({LABELS_FILE})"


def class_settings(settings: dict[str, Any], labels: list[str] | None) -> dict[str, Any]:
    """QuickNAT settings with num_class = the number of labels (None, the default 1, without)."""
    return {**settings, "num_class": len(labels) if labels else None}
