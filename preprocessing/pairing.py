"""Find recordings, annotations and masks in folders and pair them by name.

A recording's name is its file name without the suffix: `REC.png` is recording `REC`, and
its annotation is `REC.csv` or `REC.json`, its mask `REC.png`. Files whose suffix is not an
image suffix (such as the `REC.json` resolution sidecars that dicom_to_png and the synthetic
generator write next to the images) are not recordings. Hidden files are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmode.images import IMAGE_SUFFIXES, list_files
from mmode.scanner import is_sidecar

ANNOTATION_SUFFIXES = (".csv", ".json")


def _named(
    folder: Path, suffixes: tuple[str, ...], ignore: Callable[[Path], bool] | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Files by name, and a problem for each name used twice."""
    found, clashes = list_files(folder, suffixes, ignore)
    problems = [
        f"{other}: {kept.name} has the same name; keep only one of them." for kept, other in clashes
    ]
    return found, problems


def list_images(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Recordings (or masks) in `folder` by name, any image suffix."""
    return _named(folder, IMAGE_SUFFIXES)


def list_annotations(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """CSV and LabelMe annotations in `folder` by recording name, skipping resolution sidecars."""
    return _named(folder, ANNOTATION_SUFFIXES, ignore=is_sidecar)


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
