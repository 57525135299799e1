"""The classes of a label mask and DATA/labels.json, the file that names them.

Binary data (no labels.json): a mask's non-zero pixels are the LV cavity, one class.
Four-border data: label masks with WALL_LABELS' values, from the top of the image down:
0 background, 1 septum (between ivs_top and upper), 2 cavity (between upper and lower),
3 posterior wall (between lower and lvpw_bottom). labels.json names them the way nnU-Net's
dataset.json does: {"labels": {"background": 0, "septum": 1, ...}}.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime import files

LABELS_FILE = "labels.json"
WALL_LABELS = {"background": 0, "septum": 1, "cavity": 2, "posterior_wall": 3}
CAVITY = "cavity"


def measurable(labels: list[str] | None) -> bool:
    """Whether test.py measures recordings with a model of these classes (in value order):
    a cavity model (binary data, None) or a wall model of WALL_LABELS. Other classes can be
    trained and scored on test sets, but give no LV edges to measure."""
    return labels is None or labels == list(WALL_LABELS)


class LabelsError(ValueError):
    """A labels.json that cannot be used; the message names the file and the fix."""


def write_labels(folder: Path, labels: dict[str, int] = WALL_LABELS) -> Path:
    """Write FOLDER/labels.json, atomically."""
    path = Path(folder) / LABELS_FILE
    files.write_text(path, json.dumps({"labels": labels}, indent=2) + "\n")
    return path


def read_labels(folder: Path) -> list[str] | None:
    """The class names in value order (index = mask value), or None without labels.json.

    The values must be 0, 1, ..., K-1 with 0 named background; LabelsError otherwise.
    """
    path = Path(folder) / LABELS_FILE
    content = files.read_json(path, LabelsError)
    if content is None:
        return None
    labels = content.get("labels") if isinstance(content, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise LabelsError(
            f'{path} has no "labels" object; write e.g. {{"labels": {{"background": 0, '
            '"cavity": 1}}, or remove it for binary cavity masks.'
        )
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values())
    if not whole or sorted(labels.values()) != list(range(len(labels))):
        raise LabelsError(
            f"{path} must give the mask values 0, 1, ..., {len(labels) - 1} one name each, "
            f"got {sorted(labels.items(), key=lambda item: str(item[1]))}."
        )
    names = [name for name, _ in sorted(labels.items(), key=lambda item: item[1])]
    if names[0] != "background":
        raise LabelsError(f"{path} must name the value 0 background, not {names[0]!r}.")
    return names
