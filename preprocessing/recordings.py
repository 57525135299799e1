"""Find recordings, annotations and masks in folders and pair them by name.

A recording's name is its file name without the suffix: `REC.png` is recording `REC`, and
its annotation is `REC.csv` or `REC.json`, its mask `REC.png`. Files whose suffix is not an
image suffix (such as the `REC.json` resolution sidecars that dicom_to_png and the synthetic
generator write next to the images) are not recordings. Hidden files are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from images import IMAGE_SUFFIXES

ANNOTATION_SUFFIXES = (".csv", ".json")


def list_named_files(
    folder: Path, suffixes: tuple[str, ...], ignore: Callable[[Path], bool] | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Files in `folder` with one of `suffixes`, by name; and a problem for each name used twice."""
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in suffixes or (ignore and ignore(path)):
            continue
        if path.stem in found:
            problems.append(
                f"{path}: {found[path.stem].name} has the same name; keep only one of them."
            )
            continue
        found[path.stem] = path
    return found, problems


def list_images(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Recordings (or masks) in `folder` by name, any image suffix."""
    return list_named_files(folder, IMAGE_SUFFIXES)


def list_annotations(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """CSV and LabelMe annotations in `folder` by recording name, skipping resolution sidecars."""
    return list_named_files(folder, ANNOTATION_SUFFIXES, ignore=is_resolution_sidecar)


def is_resolution_sidecar(path: Path) -> bool:
    """True for a `{"time_res_s": ..., "depth_res_mm": ...}` file, which is no annotation."""
    if path.suffix.lower() != ".json":
        return False
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(content, dict) or "shapes" in content:
        return False
    return "time_res_s" in content or "depth_res_mm" in content


def pair_by_name(
    images: dict[str, Path],
    images_dir: Path,
    others: dict[str, Path],
    others_dir: Path,
    other_kind: str,
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """(name, image, other) for names in both; a problem for each file without its partner."""
    pairs = [(name, images[name], others[name]) for name in sorted(images) if name in others]
    problems = [
        f"{images[name]}: recording without {other_kind}: no {name}.* in {others_dir}."
        for name in sorted(images)
        if name not in others
    ]
    problems += [
        f"{others[name]}: {other_kind} without its recording: no {name}.* image in {images_dir}."
        for name in sorted(others)
        if name not in images
    ]
    return pairs, problems
