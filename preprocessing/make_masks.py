"""Draw the full-length mask of every annotated recording.

    python -m preprocessing.make_masks --images DIR --annotations DIR --out DIR

writes OUT/REC.png: 8-bit, 0 background and 255 inside the left ventricle, the size of the
recording (see masks.py for the rule, annotations.py for the formats). Four-border
annotations give label masks instead (0 background, 1 septum, 2 cavity, 3 posterior wall)
and OUT/labels.json (see label_masks.py).

Decisions where the issue is silent:
- A LabelMe file made on an image of another size than the recording is a problem.
- --units mm,s converts CSV annotations only; LabelMe files are always in pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mmode.images import read_gray
from preprocessing import cli
from preprocessing.annotations import PhysicalUnits, Traces, read_annotation
from preprocessing.label_masks import claim_folder, mask_of, read_run_annotations
from preprocessing.masks import TraceError
from preprocessing.pairing import list_annotations, list_images, pair_by_name
from preprocessing.summary import Summary
from runtime.errors import RecordingError, SetupError
from runtime.files import make_output_folder, save_png


def recording_and_mask(
    image_path: Path,
    annotation_path: Path,
    units: PhysicalUnits | None = None,
    traces: Traces | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The recording (uint8 H x W) and its 0/255 mask, or 0-3 label mask for four borders.

    traces: the annotation already read (else it is read here). RecordingError naming the
    bad file.
    """
    image = read_gray(image_path)
    if traces is None:
        traces = read_annotation(annotation_path, units)
    height, width = image.shape
    if traces.image_size not in (None, (height, width)):
        raise RecordingError(
            f"{annotation_path}: annotated on a {traces.image_size[0]}x{traces.image_size[1]} "
            f"image, but {image_path.name} is {height}x{width}."
        )
    try:
        mask = mask_of(traces, height, width)
    except TraceError as err:
        raise RecordingError(f"{annotation_path}: {err}") from None
    return image, mask


def annotated_recordings(
    images_dir: Path, annotations_dir: Path
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """(name, image, annotation) for each annotated recording; and the listing problems."""
    images, problems = list_images(images_dir)
    annotations, annotation_problems = list_annotations(annotations_dir)
    pairs, pair_problems = pair_by_name(
        images, images_dir, annotations, annotations_dir, "an annotation"
    )
    return pairs, problems + annotation_problems + pair_problems


def parse_units(
    units: str, depth_res_mm: float | None, time_res_s: float | None
) -> PhysicalUnits | None:
    """None for pixels; PhysicalUnits for `mm,s`, which needs both resolutions."""
    cli.require_positive(depth_res_mm, "--depth-res")
    cli.require_positive(time_res_s, "--time-res")
    if units == "px":
        return None
    if units != "mm,s":
        raise SetupError(f"--units must be px or mm,s, got {units!r}.")
    if depth_res_mm is None or time_res_s is None:
        raise SetupError(
            "--units mm,s needs --depth-res (mm per row) and --time-res (s per column)."
        )
    return PhysicalUnits(depth_res_mm=depth_res_mm, time_res_s=time_res_s)


def make_masks(
    images_dir: Path,
    annotations_dir: Path,
    out_dir: Path,
    *,
    units: PhysicalUnits | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Write out_dir/REC.png for every recording in images_dir annotated in annotations_dir."""
    images_dir = cli.require_dir(images_dir, "images", "--images")
    annotations_dir = cli.require_dir(annotations_dir, "annotations", "--annotations")
    if Path(out_dir).resolve() == images_dir.resolve():
        raise SetupError("--out is the images folder; masks would replace the recordings.")
    out_dir = make_output_folder(out_dir, "--out")

    pairs, problems = annotated_recordings(images_dir, annotations_dir)
    traces, labels = read_run_annotations(pairs, units)
    claim_folder(out_dir, labels, out_dir, "--out")
    summary = Summary(problems=problems)
    for name, image_path, annotation_path in cli.progress(pairs, progress):
        out_path = out_dir / f"{name}.png"
        with summary.recording(name, out_path):
            if out_path.exists() and not overwrite:
                raise RecordingError(f"{out_path}: already exists; pass --overwrite to replace it.")
            _, mask = recording_and_mask(image_path, annotation_path, units, traces.get(name))
            save_png(out_path, mask)
    return summary


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    """--images and --annotations, shared with make_dataset."""
    cli.add_path_flag(parser, "--images", "DIR", "folder of recordings")
    cli.add_path_flag(
        parser, "--annotations", "DIR", "folder of REC.csv or LabelMe REC.json annotations"
    )


def add_units_flags(parser: argparse.ArgumentParser) -> None:
    """--units and --depth-res, shared with make_dataset (which also has --time-res)."""
    parser.add_argument(
        "--units",
        metavar="UNITS",
        choices=("px", "mm,s"),
        default="px",
        help="units of CSV annotations: px (pixels) or mm,s (depth in mm, time in s; "
        "needs --depth-res and --time-res) (default: px)",
    )
    parser.add_argument(
        "--depth-res",
        metavar="MM",
        type=float,
        help="millimetres per row, for --units mm,s (default: none)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog="python -m preprocessing.make_masks",
        description="Draw the mask between the upper and lower trace of every annotated recording.",
    )
    add_input_flags(parser)
    cli.add_path_flag(parser, "--out", "DIR", "folder for the masks")
    add_units_flags(parser)
    cli.add_time_res_flag(parser, "seconds per column, for --units mm,s (default: none)")
    cli.add_overwrite_and_progress_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.finish(
        "make_masks",
        lambda: make_masks(
            args.images,
            args.annotations,
            args.out,
            units=parse_units(args.units, args.depth_res, args.time_res),
            overwrite=args.overwrite,
            progress=not args.no_progress,
        ),
        count_windows=False,
    )


if __name__ == "__main__":
    sys.exit(main())
