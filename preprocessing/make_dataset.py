"""Recordings + annotations -> a data set that `python run.py -d DATA` trains on, in one step.

    python -m preprocessing.make_dataset --images DIR --annotations DIR --out DATA

is make_masks followed by make_windows, without writing the full-length masks: it writes
DATA/img/REC_winK.png and DATA/mask/REC_winK.png. The same decisions apply (see those
modules); --time-res serves both --quality and --units mm,s. Four-border annotations give
label-mask windows and DATA/labels.json (see label_masks.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from preprocessing import cli
from preprocessing.annotations import PhysicalUnits
from preprocessing.label_masks import claim_folder, read_run_annotations
from preprocessing.make_masks import (
    add_input_flags,
    add_units_flags,
    annotated_recordings,
    parse_units,
    recording_and_mask,
)
from preprocessing.make_windows import (
    add_window_flags,
    check_window_options,
    claim_windows,
    recording_time_res,
    write_recording_windows,
)
from preprocessing.summary import Summary


def build_dataset(
    images_dir: Path,
    annotations_dir: Path,
    out_dir: Path,
    *,
    step: int | None = None,
    quality_csv: Path | None = None,
    time_res_s: float | None = None,
    window_s: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
    units: PhysicalUnits | None = None,
) -> Summary:
    """Write the training windows of every annotated recording to out_dir/img and out_dir/mask.

    Per-recording problems end up in the summary; SetupError for a whole-command problem.
    """
    images_dir = cli.require_dir(images_dir, "images", "--images")
    annotations_dir = cli.require_dir(annotations_dir, "annotations", "--annotations")
    quality = check_window_options(step, quality_csv, time_res_s, window_s)
    out_dir = cli.make_data_dir(out_dir, [images_dir, annotations_dir])

    pairs, problems = annotated_recordings(images_dir, annotations_dir)
    traces, labels = read_run_annotations(pairs, units)
    claim_folder(out_dir, labels, out_dir / "mask", "--out")
    claim_windows(out_dir, window_s)
    summary = Summary(problems=problems)
    for name, image_path, annotation_path in cli.progress(pairs, progress):
        with summary.recording(name, image_path):
            image, mask = recording_and_mask(image_path, annotation_path, units, traces.get(name))
            summary.windows += write_recording_windows(
                name,
                image,
                mask,
                out_dir,
                step=step,
                quality=quality,
                time_res_s=recording_time_res(image_path, time_res_s, window_s),
                window_s=window_s,
                overwrite=overwrite,
                mask_source=str(annotation_path),
                labelled=labels is not None,
            )
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog="python -m preprocessing.make_dataset",
        description="Turn recordings and trace annotations into DATA/img and DATA/mask windows.",
    )
    add_input_flags(parser)
    cli.add_path_flag(parser, "--out", "DATA", "data set folder DATA")
    add_units_flags(parser)
    add_window_flags(parser, "seconds per column, for --quality and --units mm,s (default: none)")
    cli.add_overwrite_and_progress_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> Summary:
        return build_dataset(
            args.images,
            args.annotations,
            args.out,
            step=args.step,
            quality_csv=args.quality,
            time_res_s=args.time_res,
            window_s=args.window_s,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            units=parse_units(args.units, args.depth_res, args.time_res),
        )

    return cli.finish("make_dataset", run, count_windows=True)


if __name__ == "__main__":
    sys.exit(main())
