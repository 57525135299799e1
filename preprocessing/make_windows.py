"""Cut square training windows from recordings and their masks.

    python -m preprocessing.make_windows --images DIR --masks DIR --out DATA

writes DATA/img/REC_winK.png and DATA/mask/REC_winK.png (K = 0, 1, ...) with identical names,
the layout `run.py -d DATA` trains on. See windows.py for where windows go and quality.py
for --quality.

Decisions where the issue is silent:
- Windows are 8-bit grayscale PNGs (RGB recordings become luminance); masks 0/255, any
  non-zero mask pixel counting as foreground.
- Unless --masks holds labels.json: then the masks are label masks (label_masks.py), cut
  with their values unchanged (windows are cut, never resized), and labels.json is copied
  to DATA.
- If any window of a recording is already in DATA, the recording is skipped and reported,
  unless --overwrite; then its windows are rewritten and windows left from an earlier run
  with more windows (higher K) are deleted, so img and mask still pair up.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

import numpy as np

from mmode.images import read_gray, read_mask
from mmode.scanner import read_sidecar, resolve_resolution
from mmode.timescale import (
    WindowRuleError,
    check_window_s,
    claim_window_s,
    resample_columns,
    resampled_width,
)
from preprocessing import cli
from preprocessing.label_masks import checked_label_mask, claim_folder, labels_of_masks
from preprocessing.pairing import list_images, pair_by_name
from preprocessing.quality_regions import QualityTable, allowed_segments, read_quality_csv
from preprocessing.summary import SkipRecording, Summary
from preprocessing.window_plan import cut, mask_span, plan_windows
from runtime.errors import RecordingError, SetupError, WriteError
from runtime.files import save_png


def existing_windows(folder: Path, name: str) -> list[Path]:
    """`name`_winK.png files in `folder` (not those of a recording called `name`_winK)."""
    pattern = re.compile(re.escape(name) + r"_win\d+\.png")
    candidates = folder.glob(glob.escape(name) + "_win*.png")
    return sorted(path for path in candidates if pattern.fullmatch(path.name))


def write_recording_windows(
    name: str,
    image: np.ndarray,
    mask: np.ndarray,
    out_dir: Path,
    *,
    step: int | None = None,
    quality: QualityTable | None = None,
    time_res_s: float | None = None,
    window_s: float | None = None,
    overwrite: bool = False,
    mask_source: str = "the mask",
    labelled: bool = False,
) -> int:
    """Write one recording's windows to out_dir/img and out_dir/mask; return how many.

    labelled: the mask is a label mask, whose values are kept (else binarised to 0/255).
    window_s: first resample the recording along time (mmode/timescale.py), which needs its
    time_res_s.

    Raises RecordingError for a problem, SkipRecording when quality leaves nothing to cut.
    """
    width = resampled_width(*image.shape, time_res_s, window_s)
    if width != image.shape[1]:
        time_res_s *= image.shape[1] / width
        image, mask = resample_columns(image, width), resample_columns(mask, width, nearest=True)
    span = mask_span(mask)
    if span is None:
        raise RecordingError(f"{mask_source}: the mask has no foreground, so no annotated span.")
    segments = [span]
    if quality is not None:
        segments = allowed_segments(*span, quality.for_recording(name), time_res_s)
        if not segments:
            raise SkipRecording(f"{name}: no good-quality column inside the annotated span.")
    img_dir, mask_dir = out_dir / "img", out_dir / "mask"
    old = existing_windows(img_dir, name) + existing_windows(mask_dir, name)
    if old and not overwrite:
        raise RecordingError(
            f"{old[0]}: windows of {name} already exist; pass --overwrite to replace them."
        )
    windows = plan_windows(mask, segments, step)
    mask_255 = mask.astype(np.uint8) if labelled else np.where(mask != 0, 255, 0).astype(np.uint8)
    written = set()
    try:
        for k, window in enumerate(windows):
            file_name = f"{name}_win{k}.png"
            written.add(file_name)
            save_png(mask_dir / file_name, cut(mask_255, window))
            save_png(img_dir / file_name, cut(image, window))
    except WriteError:
        # No mask without its image, and no recording half cut: a rerun starts it afresh.
        for file_name in written:
            (mask_dir / file_name).unlink(missing_ok=True)
            (img_dir / file_name).unlink(missing_ok=True)
        raise
    for path in old:
        if path.name not in written:
            path.unlink(missing_ok=True)
    return len(windows)


def recording_time_res(
    image_path: Path, time_res_s: float | None, window_s: float | None
) -> float | None:
    """Seconds per column of a recording: the flag's; with --window-s, which needs one,
    else its NAME.json sidecar's, else the typical scanner's, as test.py assumes."""
    if window_s is None:
        return time_res_s
    try:
        sidecar = read_sidecar(image_path)
    except ValueError as err:
        raise RecordingError(str(err)) from None
    return resolve_resolution(sidecar, time_res_s, None).time_res_s


def claim_windows(out_dir: Path, window_s: float | None) -> None:
    """Keep the data folder's windows cut one way (mmode.timescale.claim_window_s)."""
    try:
        claim_window_s(out_dir, window_s, any((out_dir / "mask").glob("*.png")), "--out")
    except WindowRuleError as err:
        raise SetupError(str(err)) from None


def check_window_options(
    step: int | None,
    quality_csv: Path | None,
    time_res_s: float | None,
    window_s: float | None = None,
) -> QualityTable | None:
    """Usage checks for --step/--quality/--time-res/--window-s; the parsed quality CSV if
    given."""
    if step is not None and step < 1:
        raise SetupError(f"--step must be at least 1, got {step}.")
    try:
        check_window_s(window_s, "--window-s")
    except WindowRuleError as err:
        raise SetupError(str(err)) from None
    cli.require_positive(time_res_s, "--time-res")
    if quality_csv is None:
        return None
    if time_res_s is None:
        raise SetupError("--quality needs --time-res (seconds per column) to place its times.")
    return read_quality_csv(cli.require_file(quality_csv, "quality", "--quality"))


def make_windows(
    images_dir: Path,
    masks_dir: Path,
    out_dir: Path,
    *,
    step: int | None = None,
    quality_csv: Path | None = None,
    time_res_s: float | None = None,
    window_s: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Windows of every recording in images_dir that has a mask in masks_dir."""
    images_dir = cli.require_dir(images_dir, "images", "--images")
    masks_dir = cli.require_dir(masks_dir, "masks", "--masks")
    quality = check_window_options(step, quality_csv, time_res_s, window_s)
    out_dir = cli.make_data_dir(out_dir, [images_dir, masks_dir])
    labels = labels_of_masks(masks_dir)
    claim_folder(out_dir, labels, out_dir / "mask", "--out")
    claim_windows(out_dir, window_s)

    images, problems = list_images(images_dir)
    masks, mask_problems = list_images(masks_dir)
    pairs, pair_problems = pair_by_name(images, images_dir, masks, masks_dir, "a mask")
    summary = Summary(problems=problems + mask_problems + pair_problems)
    for name, image_path, mask_path in cli.progress(pairs, progress):
        with summary.recording(name, image_path):
            image = read_gray(image_path)
            if labels is None:
                mask, _ = read_mask(mask_path)
            else:
                mask = checked_label_mask(mask_path, labels)
            if mask.shape != image.shape:
                raise RecordingError(
                    f"{mask_path}: the mask is {mask.shape[0]}x{mask.shape[1]} but the "
                    f"recording is {image.shape[0]}x{image.shape[1]}."
                )
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
                mask_source=str(mask_path),
                labelled=labels is not None,
            )
    return summary


def add_window_flags(parser: argparse.ArgumentParser, time_res_help: str) -> None:
    """--step, --quality and --time-res, shared with make_dataset."""
    parser.add_argument(
        "--step",
        metavar="COLUMNS",
        type=int,
        help="columns between window starts (default: half the recording height)",
    )
    parser.add_argument(
        "--quality",
        metavar="CSV",
        type=Path,
        help="quality-classification CSV (Recording, Good-Start, Good-End[, Bad-Start, "
        "Bad-End], seconds); only good regions are cut (default: the whole span)",
    )
    cli.add_time_res_flag(parser, time_res_help)
    parser.add_argument(
        "--window-s",
        metavar="S",
        type=float,
        help="cut windows that span at most S seconds: a recording whose window (as many "
        "columns as it has rows) spans longer is resampled to more columns first, so that "
        "the network sees its beats wide; needs each recording's seconds per column (--time-res, "
        "or its NAME.json; else 0.00083 s is assumed); test.py measures the trained model's "
        "recordings the same way (default: square windows, however long they span)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog="python -m preprocessing.make_windows",
        description="Cut square windows from recordings and masks into DATA/img and DATA/mask.",
    )
    cli.add_path_flag(parser, "--images", "DIR", "folder of recordings")
    cli.add_path_flag(parser, "--masks", "DIR", "folder of masks named like the recordings")
    cli.add_path_flag(parser, "--out", "DATA", "data set folder DATA")
    add_window_flags(parser, "seconds per column, needed by --quality (default: none)")
    cli.add_overwrite_and_progress_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.finish(
        "make_windows",
        lambda: make_windows(
            args.images,
            args.masks,
            args.out,
            step=args.step,
            quality_csv=args.quality,
            time_res_s=args.time_res,
            window_s=args.window_s,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        ),
        count_windows=True,
    )


if __name__ == "__main__":
    sys.exit(main())
