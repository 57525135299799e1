"""Whether a folder's label masks hold the classes its labels.json names: binary masks
under a labels.json of more classes, binary and label masks mixed, and values it does not
name are each one problem, as a sentence that says what to fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmode.labels import LABELS_FILE
from runtime.errors import name_some

NAMED_MASKS = 10  # masks of each kind named when binary and label masks are mixed
NAMED_LABEL_MASKS = 3  # masks named when many hold values labels.json does not name


def label_problems(values: dict[Path, np.ndarray], labels: list[str]) -> list[str]:
    """What keeps label masks (their distinct `values`, by path) from being the classes
    labels.json names, one problem each:
    - a folder of binary masks, 0 and 255 or 0 and 1, though labels.json names more than
      two classes: read as classes 0 and 1, the cavity would be learned as the septum;
    - a folder mixing binary masks (0 and 255) with label masks;
    - masks with values labels.json does not name (a few named, then a count).
    """
    if not values:
        return []
    k = len(labels)
    folder = next(iter(values)).parent
    names = folder.parent / LABELS_FILE
    fix = f"remove {names} to train on binary cavity masks, or write label masks (0-{k - 1})"
    if k > 2 and all(set(v.tolist()) <= {0, 1} for v in values.values()):
        return [f"{folder} holds binary masks (0 and 1), but {names} names {k} classes; {fix}"]
    bad = {path: v for path, v in values.items() if v.size and (v.min() < 0 or v.max() >= k)}
    binary = [path for path, v in bad.items() if set(v.tolist()) <= {0, 255}]
    if binary and len(binary) == len(bad) == len(values):
        return [f"{folder} holds binary masks (0 and 255), but {names} names {k} classes; {fix}"]
    if binary and len(bad) < len(values):
        good = name_some([path.name for path in values if path not in bad], NAMED_MASKS)
        named = name_some([path.name for path in binary], NAMED_MASKS)
        return [
            f"{folder} mixes binary masks (0 and 255: {named}) with label masks "
            f"(0-{k - 1}: {good}); make them all label masks, as {names} says, or all binary "
            f"and remove {names}"
        ]
    if len(bad) == 1:
        [(path, v)] = bad.items()
        return [
            f"{path} holds the value(s) {v[(v < 0) | (v >= k)][:6].tolist()}, which {names} "
            f"does not name (0-{k - 1}); fix the mask or name the value in {names}"
        ]
    if bad:
        # Listing every mask would bury the one sentence (a wrong labels.json: all of them).
        unnamed = sorted({int(x) for v in bad.values() for x in v[(v < 0) | (v >= k)]})
        named = name_some([path.name for path in bad], NAMED_LABEL_MASKS)
        return [
            f"{len(bad)} masks in {folder} hold values {name_some(unnamed, 6)}, which {names} "
            f"does not name (0-{k - 1}): {named}; fix the masks or name the values in {names}"
        ]
    return []
