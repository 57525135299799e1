"""Measure hearts with a trained QuickNAT, or score it on a test set.

    python test.py -d DATA -m best.pt        DATA/img + DATA/mask: Dice, IoU, HD95, overlays
    python test.py -d REC.png -m best.pt     one recording: LVID, volume, beats, EF, FS
    python test.py -d FOLDER -m best.pt      every image in FOLDER, plus OUT/summary.csv

Usage errors end at once with one sentence on stderr and exit status 2. A recording that
fails is reported and skipped; the others are measured, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import atomic_io
from cli_flags import add_model_flags, add_speed_flags, model_settings
from dataset import CachedData, DataError, find_pairs, load_pairs
from evaluate import evaluate, metrics_table, score_test_set, write_evaluation
from hardware import SetupError, pick_device, pick_precision
from images import IMAGE_SUFFIXES, ImageReadError, read_gray
from inference import checkpoint_im_size, load_model, segment_recording
from measure import (
    BEAT_FIELDS,
    DEFAULT_DEPTH_RES_MM,
    DEFAULT_TIME_RES_S,
    Resolution,
    cavity_mask,
    find_beats,
    lvid_mm,
    read_sidecar,
    resolve_resolution,
    summarize,
    teichholz_volume_ul,
)
from quicknat import CheckpointError, QuickNat
from report import recording_overlay, save_report, summary_line

DEFAULT_SIZE = 256
SUMMARY_FIELDS = (
    "name", "status", "n_beats", "lvid_d_mm", "lvid_s_mm", "heart_rate_bpm", "ef_percent",
    "fs_percent", "time_res_s", "depth_res_mm", "time_res_assumed", "depth_res_assumed", "error",
)  # fmt: skip


class RecordingError(ValueError):
    """One recording that cannot be measured; the message names it."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure the left ventricle on M-mode recordings with a trained QuickNAT "
        "(-d an image or a folder of images), or score it on a test set (-d a folder with img/ "
        "and mask/). Results go to -o.",
    )
    p.add_argument(
        "-d", "--datapath", required=True, help="test set (img/ + mask/), image, or image folder"
    )
    p.add_argument("-m", "--model", required=True, help="checkpoint (.pt) to load")
    p.add_argument(
        "-s",
        "--size",
        type=int,
        default=None,
        help="windows are resized to SIZE x SIZE (default: the -p the checkpoint was trained "
        f"with, else {DEFAULT_SIZE})",
    )
    p.add_argument(
        "-o", "--output", default="./results", help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto (cuda, then mps, then cpu), cuda, mps or cpu (default: auto)",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="windows predicted at once (default: %(default)s)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="cavity probability threshold (default: %(default)s)",
    )
    p.add_argument(
        "--overlap",
        type=float,
        default=0.5,
        help="share of a window that its neighbour overlaps, 0 to below 1 (default: %(default)s)",
    )
    p.add_argument(
        "--time-res",
        type=float,
        default=None,
        help="seconds per column; wins over NAME.json (default: NAME.json, else "
        f"{DEFAULT_TIME_RES_S}, with a warning)",
    )
    p.add_argument(
        "--depth-res",
        type=float,
        default=None,
        help="millimetres per row; wins over NAME.json (default: NAME.json, else "
        f"{DEFAULT_DEPTH_RES_MM}, with a warning)",
    )
    p.add_argument(
        "--max-hr",
        type=float,
        default=900.0,
        help="highest heart rate in bpm; end-diastoles are at least 60/MAX_HR s apart "
        "(default: %(default)s)",
    )
    add_model_flags(p, "QuickNAT, for checkpoints of other tools (ours bring their own)")
    add_speed_flags(p)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise SetupError for flag values that cannot work."""
    if args.size is not None and args.size < 16:
        raise SetupError(f"-s must be at least 16 pixels, got {args.size}.")
    if args.batch_size < 1:
        raise SetupError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if not 0 < args.threshold < 1:
        raise SetupError(f"--threshold must be between 0 and 1, got {args.threshold:g}.")
    if not 0 <= args.overlap < 1:
        raise SetupError(f"--overlap must be at least 0 and below 1, got {args.overlap:g}.")
    for flag, value in (
        ("--time-res", args.time_res),
        ("--depth-res", args.depth_res),
        ("--max-hr", args.max_hr),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SetupError(f"{flag} must be a positive number, got {value:g}.")
    path = Path(args.datapath)
    if not path.exists():
        raise SetupError(f"{path} does not exist; pass a test set, an image or a folder.")
    if path.is_file() and path.suffix.lower() in (".dcm", ".dicom"):
        raise SetupError(
            f"{path} is a DICOM file; convert it first with "
            "python -m preprocessing.dicom_to_png, then pass the PNG."
        )
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise SetupError(f"{path} is not an image this tool reads ({', '.join(IMAGE_SUFFIXES)}).")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise SetupError(f"output path {output} is a file; pass a folder with -o.")


def list_recordings(path: Path) -> list[Path]:
    """The image itself, or the images directly in a folder (sidecars and others skipped)."""
    if path.is_file():
        return [path]
    found = [
        p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not found:
        raise SetupError(
            f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no img/ and mask/ "
            "folders; pass a test set, an image or a folder of images."
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        device = pick_device(args.device)
        args.precision = pick_precision(args.precision, device)
        model, checkpoint = load_model(args.model, model_settings(args), device, args.channels_last)
        trained_size = checkpoint_im_size(checkpoint)
        if args.size is None:
            args.size = trained_size or DEFAULT_SIZE
        elif trained_size and args.size != trained_size:
            print(
                f"warning: the model was trained on {trained_size} px windows (-p), but -s is "
                f"{args.size}; it may segment worse at another scale.",
                file=sys.stderr,
            )
        path, out = Path(args.datapath), Path(args.output)
        if (path / "img").is_dir() and (path / "mask").is_dir():
            data = load_pairs(find_pairs(path, min_pairs=1), args.size)
            out.mkdir(parents=True, exist_ok=True)
            return evaluate_test_set(model, data, args, device, out)
        recordings = list_recordings(path)
        out.mkdir(parents=True, exist_ok=True)
    except (SetupError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot use output folder {args.output} ({err.strerror}).", file=sys.stderr)
        return 2
    return measure_recordings(model, recordings, args, device, out, folder=path.is_dir())


def evaluate_test_set(
    model: QuickNat, data: CachedData, args: argparse.Namespace, device: torch.device, out: Path
) -> int:
    """Mode 1: scores, per-image rows and overlays of a test set."""
    for message in data.warnings:
        print(f"warning: {message}", file=sys.stderr)
    rows, preds = evaluate(model, data, args.threshold, args.batch_size, device, args.precision)
    metrics = {**score_test_set(rows), "size": args.size, "threshold": args.threshold}
    write_evaluation(out, data, rows, preds, metrics)
    print(f"Test set {args.datapath} at {args.size} px:")
    print(metrics_table(metrics))
    print(f"metrics.json, per_image.csv and overlays/ are in {out}.")
    return 0


def measure_recordings(
    model: QuickNat,
    recordings: list[Path],
    args: argparse.Namespace,
    device: torch.device,
    out: Path,
    folder: bool,
) -> int:
    """Mode 2: measure each recording; a failure is reported and the rest go on."""
    rows, failed, done = [], [], set()
    for path in tqdm(recordings, desc="recordings", unit="rec", file=sys.stderr):
        name = path.stem
        try:
            if name in done:
                raise RecordingError(
                    f"{path}: another recording named {name} was measured already; rename one."
                )
            summary = measure_recording(model, path, args, device, out)
            done.add(name)
            rows.append({"name": name, "status": "ok", **summary})
            tqdm.write(f"{name}: {summary_line(summary)}")
        except (RecordingError, ImageReadError, OSError) as err:
            failed.append(str(err))
            rows.append({"name": name, "status": "failed", "error": str(err)})
            tqdm.write(f"error: {err}", file=sys.stderr)
    if folder:
        atomic_io.write_text(out / "summary.csv", summary_csv(rows))
    print(f"Measured {len(recordings) - len(failed)} of {len(recordings)} recording(s); "
          f"results are in {out}.")  # fmt: skip
    if failed:
        print(f"{len(failed)} recording(s) failed:", file=sys.stderr)
        for message in failed:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


def measure_recording(
    model: QuickNat, path: Path, args: argparse.Namespace, device: torch.device, out: Path
) -> dict:
    """Segment and measure one recording, write its files; its summary."""
    image = read_gray(path)
    try:
        sidecar = read_sidecar(path)
    except ValueError as err:
        raise RecordingError(str(err)) from None
    resolution = resolve_resolution(sidecar, args.time_res, args.depth_res)
    warn_assumed(path.stem, resolution)
    prob = segment_recording(
        model, image, args.size, args.overlap, args.batch_size, device, args.precision
    )
    mask = cavity_mask(prob, args.threshold)
    lvid = lvid_mm(mask, resolution.depth_res_mm, prob, args.threshold)
    volume = teichholz_volume_ul(lvid)
    beats = find_beats(lvid, resolution.time_res_s, args.max_hr)
    summary = {**summarize(beats), **asdict(resolution)}
    name = path.stem
    overlay = recording_overlay(image, mask)
    atomic_io.save_png(out / f"{name}_mask.png", mask.astype(np.uint8) * 255)
    atomic_io.save_png(out / f"{name}_overlay.png", overlay)
    atomic_io.write_text(out / f"{name}_lvid.csv", lvid_csv(lvid, volume, resolution.time_res_s))
    atomic_io.write_text(
        out / f"{name}_beats.csv",
        csv_text(BEAT_FIELDS, [asdict(beat) for beat in beats]),
    )
    atomic_io.write_text(out / f"{name}_summary.json", json.dumps(summary, indent=2) + "\n")
    save_report(out / f"{name}_report.png", overlay, lvid, volume, beats, resolution, name, summary)
    return summary


def warn_assumed(name: str, resolution: Resolution) -> None:
    assumed = []
    if resolution.time_res_assumed:
        assumed.append(f"{resolution.time_res_s} s per column (--time-res)")
    if resolution.depth_res_assumed:
        assumed.append(f"{resolution.depth_res_mm} mm per row (--depth-res)")
    if assumed:
        tqdm.write(
            f"warning: {name}: no resolution given by flag or {name}.json sidecar; ASSUMING "
            f"{' and '.join(assumed)}. Millimetres, volumes and heart rates are only as right "
            "as this guess.",
            file=sys.stderr,
        )


def lvid_csv(lvid: np.ndarray, volume_ul: np.ndarray, time_res_s: float) -> str:
    """time_s, lvid_mm, volume_ul per column; empty cells where there is no cavity."""
    rows = [
        {"time_s": column * time_res_s, "lvid_mm": d, "volume_ul": v}
        for column, (d, v) in enumerate(zip(lvid, volume_ul, strict=True))
    ]
    return csv_text(("time_s", "lvid_mm", "volume_ul"), rows)


def csv_text(fields: tuple[str, ...], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: cell(k, v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def cell(key: str, value: object) -> object:
    """Times with 6 decimals, other floats with 6 significant digits; NaN, None empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and (key == "time_s" or key.startswith("t_")):
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def summary_csv(rows: list[dict]) -> str:
    return csv_text(SUMMARY_FIELDS, rows)


if __name__ == "__main__":
    sys.exit(main())
