"""Measure hearts with a trained QuickNAT, or score it on a test set.

    python test.py -d DATA -m best.pt        DATA/img + DATA/mask: Dice, IoU, HD95, overlays
                                             (and Dice per class with DATA/labels.json)
    python test.py -d REC.png -m best.pt     one recording: LVID, volume, beats, EF, FS, SV, CO
                                             (and the walls, for a wall model), OUT/index.html
    python test.py -d FOLDER -m best.pt      every image in FOLDER, plus OUT/summary.csv and
                                             OUT/index.html, the page to review them on

Without -m the shipped model (measurement.inference.SHIPPED_MODEL, trained on synthetic
recordings only) measures. Every output names the model that measured.

A study goes faster spread out: --workers N processes draw and write one recording while
the network measures the next (default: one per CPU core), --no-report skips the report
images, and `torchrun --nproc-per-node K test.py -d FOLDER ...` (on one machine or
several) shares the recordings among K processes; rank 0 writes summary.csv, per_mouse.csv
and index.html once all have finished. The outputs are the same, byte for byte, however the
work is spread.

Usage errors end at once with one sentence on stderr and exit status 2. A recording that
fails is reported and skipped; the others are measured, and the exit status is 1. Ctrl-C
ends with one line and exit status 130; the recordings finished by then keep their files,
summary.csv and index.html, and the ones being measured leave none.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from pathlib import Path

INTERRUPTED = "interrupted before any recording was measured; run again to measure them."

try:  # importing torch takes seconds: a Ctrl-C then is an answer, not a traceback
    from dataset import CachedData, DataError, find_pairs, load_pairs, read_data_labels
    from measurement import inference
    from measurement.beats import MAX_HR_BPM
    from measurement.inference import Model, load_model
    from measurement.outputs import claim_output
    from measurement.pipeline import MeasureSettings
    from measurement.recordings import Measuring, list_recordings
    from measurement.scoring import (
        check_classes,
        evaluate,
        metrics_table,
        score_test_set,
        window_span_warning,
        write_evaluation,
    )
    from measurement.study import default_workers, measure_recordings
    from measurement.subjects import check_overlap, read_subjects
    from measurement.walls import check_measurable
    from mmode.images import IMAGE_SUFFIXES
    from mmode.scanner import (
        DEFAULT_VOLUME_FORMULA,
        TYPICAL_DEPTH_RES_MM,
        TYPICAL_TIME_RES_S,
        VOLUME_FORMULAS,
        resolution_problem,
    )
    from mmode.tensors import MAX_WINDOW_PX
    from quicknat import CheckpointError
    from quicknat.flags import add_model_flags, model_settings
    from runtime.distributed import (
        distributed_rank,
        first_failure,
        is_main_process,
        process_device,
        say,
        start_processes,
        stop_processes,
        warn,
    )
    from runtime.errors import SetupError, WriteError
    from runtime.hardware import add_device_flag, add_speed_flags, pick_device, pick_precision
except KeyboardInterrupt:
    print(f"error: {INTERRUPTED}", file=sys.stderr)
    sys.exit(130)

DEFAULT_SIZE = 256
STUDY_TIMEOUT = datetime.timedelta(days=1)  # a torchrun process waits this long for the others


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure the left ventricle on M-mode recordings with a trained QuickNAT "
        "(-d an image or a folder of images), or score it on a test set (-d a folder with img/ "
        "and mask/). Results go to -o.",
    )
    p.add_argument(
        "-d", "--datapath", required=True, help="test set (img/ + mask/), image, or image folder"
    )
    p.add_argument(
        "-m",
        "--model",
        default=None,
        help="checkpoint (.pt) to load (default: the shipped model "
        f"{inference.SHIPPED_MODEL}, trained on synthetic recordings only)",
    )
    p.add_argument(
        "-s",
        "--size",
        type=int,
        default=None,
        help="windows are resized to SIZE x SIZE (default: the -p the checkpoint was trained "
        f"with, else {DEFAULT_SIZE})",
    )
    p.add_argument(
        "-o",
        "--output",
        default="./results",
        help="output folder, not inside a -d folder (default: %(default)s)",
    )
    add_device_flag(p)
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
        f"{TYPICAL_TIME_RES_S}, with a warning)",
    )
    p.add_argument(
        "--depth-res",
        type=float,
        default=None,
        help="millimetres per row; wins over NAME.json (default: NAME.json, else "
        f"{TYPICAL_DEPTH_RES_MM}, with a warning)",
    )
    p.add_argument(
        "--max-hr",
        type=float,
        default=MAX_HR_BPM,
        help="highest heart rate in bpm; beats' steep falls are at least 60/MAX_HR s apart "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--volume-formula",
        choices=VOLUME_FORMULAS,
        default=DEFAULT_VOLUME_FORMULA,
        help="Teichholz volume 7 / (2.4 + D) x D^3: scanner (D in mm gives uL, as mouse "
        "scanners report) or clinical (D in cm gives mL, reported in uL) (default: %(default)s)",
    )
    p.add_argument(
        "--subjects",
        default=None,
        help="CSV with recording and mouse_id columns (others, e.g. genotype, are copied): "
        "also write per_mouse.csv",
    )
    p.add_argument(
        "--export-annotations",
        action="store_true",
        help="write each recording's accepted edges as annotations to correct in LabelMe "
        "(OUT/annotations/csv and OUT/annotations/labelme)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier run in -o: its files only, never others "
        "(without it such a folder is refused)",
    )
    add_model_flags(p, "QuickNAT, for checkpoints of other tools (ours bring their own)")
    speed = add_speed_flags(p)
    speed.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that draw and write the recordings while the network measures the "
        "next (default: one per CPU core, shared among torchrun's processes; 1: all in one)",
    )
    speed.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw NAME_report.png for each recording, most of the time after the network "
        "(default: on; --no-report writes the tables, masks, overlays and review page only)",
    )
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise SetupError for flag values that cannot work."""
    if args.size is not None and not 16 <= args.size <= MAX_WINDOW_PX:
        raise SetupError(f"-s must be 16 to {MAX_WINDOW_PX} pixels, got {args.size}.")
    if args.batch_size < 1:
        raise SetupError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if args.workers is not None and args.workers < 1:
        raise SetupError(f"--workers must be at least 1, got {args.workers}.")
    if not 0 < args.threshold < 1:
        raise SetupError(f"--threshold must be between 0 and 1, got {args.threshold:g}.")
    if not 0 <= args.overlap < 1:
        raise SetupError(f"--overlap must be at least 0 and below 1, got {args.overlap:g}.")
    if args.max_hr is not None and not (math.isfinite(args.max_hr) and args.max_hr > 0):
        raise SetupError(f"--max-hr must be a positive number, got {args.max_hr:g}.")
    for flag, key, value in (
        ("--time-res", "time_res_s", args.time_res),
        ("--depth-res", "depth_res_mm", args.depth_res),
    ):
        problem = resolution_problem(key, value)
        if problem:
            raise SetupError(f"{flag} {problem}, got {value:g}.")
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
    if path.is_dir():
        check_outside(output, path)


def check_outside(output: Path, folder: Path) -> None:
    """SetupError for an -o that is the -d folder or inside it. In the folder itself the
    result images would replace a recording's namesake (a lab's a_mask.png) and be measured
    as recordings by the next run; a folder inside it is refused too, so that results and
    recordings stay apart however the folder is later copied or measured."""
    out, inside = output.resolve(), folder.resolve()
    if out == inside or inside in out.parents:
        where = "the input folder" if out == inside else "inside the input folder"
        raise SetupError(
            f"-o {output} is {where} {folder}, and test.py keeps its results apart from the "
            "recordings, so that none is taken for a recording; choose an -o outside it."
        )


def choose_model(given: str | None) -> tuple[Path, str]:
    """The checkpoint to load and the name the outputs give it: -m as given, else the
    shipped model by its path in the repository (SetupError when this copy lacks it)."""
    if given is not None:
        return Path(given), given
    path, name = inference.shipped_model_path(), inference.SHIPPED_MODEL
    if not path.is_file():
        raise SetupError(
            f"the shipped model {name} is missing from this copy of the tool ({path}); "
            "pass your own checkpoint with -m."
        )
    say(
        f"Using the shipped model {name} (trained on synthetic recordings only); "
        "pass -m for your own."
    )
    return path, name


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # torchrun's processes share flags and results, not tensors: gloo, on the CPU, with
    # time for one process to finish its share long after another.
    start_processes(pick_device("cpu"), timeout=STUDY_TIMEOUT)
    try:
        return measure_or_score(args)
    finally:
        stop_processes()


def measure_or_score(args: argparse.Namespace) -> int:
    lock = None
    try:
        check_args(args)
        checkpoint, model_name = choose_model(args.model)
        device = process_device(pick_device(args.device))
        model_flags = model_settings(
            args.num_filters, args.kernel, args.se, args.dropout, args.input_norm,
            args.time_stretch,
        )  # fmt: skip
        precision = pick_precision(args.precision, device)
        model, trained_size, model_labels, window_s = load_model(
            checkpoint, model_flags, device, args.channels_last, precision
        )
        settings = MeasureSettings(
            size=args.size or trained_size or DEFAULT_SIZE,
            overlap=args.overlap,
            batch_size=args.batch_size,
            threshold=args.threshold,
            device=device,
            precision=precision,
            max_hr_bpm=args.max_hr,
            volume_formula=args.volume_formula,
            window_s=window_s,
        )
        measuring = Measuring(
            settings=settings,
            time_res_s=args.time_res,
            depth_res_mm=args.depth_res,
            export_annotations=args.export_annotations,
            model=model_name,
            report=args.report,
            workers=args.workers or default_workers(),
        )
        if trained_size and settings.size != trained_size:
            warn(
                f"the model was trained on {trained_size} px windows (-p), but -s is "
                f"{settings.size}; it may segment worse at another scale."
            )
        path, out = Path(args.datapath), Path(args.output)
        if (path / "img").is_dir() and (path / "mask").is_dir():
            if distributed_rank()[1] > 1:
                raise SetupError(
                    f"{path} is a test set (img/ and mask/), which test.py scores in one "
                    "process; run it without torchrun."
                )
            labels = read_data_labels(path)  # label masks of several classes, or binary
            span_warning = window_span_warning(path, window_s)
            if span_warning:
                warn(span_warning)
            check_classes(model.config.num_class, labels, model_name, str(path), model_labels)
            shape = model.config.input_shape(settings.size)
            data = load_pairs(find_pairs(path, min_pairs=1), shape, labels=labels)
            lock = claim_output(out, args.overwrite, [])
            try:
                return score_test_set_folder(model, data, measuring, path, out)
            except KeyboardInterrupt:
                print(
                    f"error: interrupted while scoring the test set; run again with "
                    f"--overwrite for a complete {out}.",
                    file=sys.stderr,
                )
                return 130
            finally:
                lock.release()
        check_measurable(model.config.num_class, model_labels, model_name)
        recordings = list_recordings(path)
        subjects = read_subjects(Path(args.subjects)) if args.subjects else None
        if subjects is not None:
            check_overlap(subjects, recordings)
        if is_main_process():  # the one process that removes earlier results and locks
            lock = claim_output(out, args.overwrite, recordings, args.export_annotations)
        failure = None
    except KeyboardInterrupt:
        failure = (INTERRUPTED, 130)
    except WriteError as err:
        failure = (err.advice("-o"), 1)
    except (SetupError, DataError, CheckpointError) as err:
        failure = (str(err), 2)
    except OSError as err:
        failure = (f"cannot use output folder {args.output} ({err.strerror}).", 2)
    # Under torchrun all processes stop when one fails, and rank 0 says why.
    agreed = first_failure(failure)
    if agreed is not None:
        rank, (message, code) = agreed
        if lock is not None:
            lock.release()
        if is_main_process():
            where = f"process {rank} of {distributed_rank()[1]}: " if rank else ""
            print(f"error: {where}{message}", file=sys.stderr)
        return code
    try:
        return measure_recordings(model, recordings, measuring, out, path.is_dir(), subjects)
    finally:
        if lock is not None:
            lock.release()


def score_test_set_folder(
    model: Model, data: CachedData, measuring: Measuring, path: Path, out: Path
) -> int:
    """Mode 1: scores, per-image rows and overlays of a test set."""
    for message in data.warnings:
        warn(message)
    settings = measuring.settings
    rows, preds = evaluate(
        model, data, settings.threshold, settings.batch_size, settings.device, settings.precision
    )
    metrics = {
        **score_test_set(rows),
        "size": settings.size,
        "threshold": settings.threshold,
        "model": measuring.model,
    }
    write_evaluation(out, data, rows, preds, metrics)
    print(f"Test set {path} at {settings.size} px:")
    print(metrics_table(metrics))
    print(f"metrics.json, per_image.csv and overlays/ are in {out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
