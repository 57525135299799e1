"""Write simulated recordings with known LV traces, and cut them into a training set.

    python -m preprocessing.synthetic --out data/synthetic

A new user can train and measure with no data of their own, and tests and benchmarks
get realistic recordings with exact answers. The simulation is preprocessing/simulator.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from mmode.labels import LABELS_FILE
from mmode.scanner import TYPICAL_TIME_RES_S, sidecar_text
from preprocessing import cli
from preprocessing.heldout import PHYSIOLOGIES
from preprocessing.make_dataset import build_dataset
from preprocessing.simulator import (
    DEFAULT_DEPTH_RES_MM,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    LOOKS,
    MIN_DEPTH_MM,
    SCANNER_DURATION_S,
    Recording,
    Sweep,
    artefact_rng,
    draw_sweep,
    heldout_rng,
    recording_rng,
    scanner_width,
    simulate_recording,
    sweep_rng,
)
from runtime.errors import SetupError, WriteError
from runtime.files import make_output_folder, save_png, write_text

DEFAULT_RECORDINGS = 8
DEFAULT_SEED = 0
# Shortest recording that still holds one complete beat at the slowest heart rate.
MIN_DURATION_S = 0.3
# A point in every column: every other one cuts a sharp end-systole's tip (0.7 rows).
TRACE_STEP_COLS = 1

NAME_PREFIX = "synth_"
OUTPUT_FOLDERS = ("recordings", "annotations", "truth", "img", "mask")
COMMAND = "synthetic"


def trace_csv(
    upper_px: np.ndarray,
    lower_px: np.ndarray,
    span: tuple[int, int] | None = None,
    walls: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """The traces as `trace,x,y` rows, every TRACE_STEP_COLS columns and the last one.

    span: the first and last column to trace (default: all of them). walls: the ivs_top
    and lvpw_bottom traces, for a four-border annotation (default: two borders).
    """
    first_col, last_col = span or (0, upper_px.size - 1)
    columns = np.arange(first_col, last_col + 1, TRACE_STEP_COLS)
    if columns[-1] != last_col:
        columns = np.append(columns, last_col)
    lines = ["trace,x,y"]
    traces = [("upper", upper_px), ("lower", lower_px)]
    if walls is not None:
        traces = [("ivs_top", walls[0]), *traces, ("lvpw_bottom", walls[1])]
    for name, trace_px in traces:
        lines += [f"{name},{x},{trace_px[x]:.3f}" for x in columns]
    return "\n".join(lines) + "\n"


def write_recording(out_dir: Path, name: str, recording: Recording, walls: bool = False) -> None:
    """Image with its sidecar, annotation CSV and truth JSON, each written atomically.

    walls: annotate all four borders (the septum's and posterior wall's outer edges too).
    """
    truth = recording.truth
    save_png(out_dir / "recordings" / f"{name}.png", recording.image)
    sidecar = sidecar_text(truth["time_res_s"], truth["depth_res_mm"])
    write_text(out_dir / "recordings" / f"{name}.json", sidecar)
    write_text(
        out_dir / "annotations" / f"{name}.csv",
        trace_csv(
            recording.upper_px,
            recording.lower_px,
            recording.annotated_cols,
            (recording.ivs_top_px, recording.lvpw_bottom_px) if walls else None,
        ),
    )
    write_text(out_dir / "truth" / f"{name}.json", json.dumps(truth, indent=2) + "\n")


def recording_sweep(look: str, seed: int, index: int, given: Sweep) -> Sweep:
    """The classic look's sweep is the flags' (their defaults where None); the scanner
    look draws each recording's own, and a flag given fixes that part of it."""
    if look == "classic":
        defaults = Sweep(DEFAULT_HEIGHT, DEFAULT_WIDTH, TYPICAL_TIME_RES_S, DEFAULT_DEPTH_RES_MM)
    else:
        defaults = draw_sweep(sweep_rng(seed, index))
    time_res_s = given.time_res_s or defaults.time_res_s
    # A scanner-look recording lasts SCANNER_DURATION_S at whatever sweep speed; a classic
    # one keeps its columns.
    width = given.width or (scanner_width(time_res_s) if look == "scanner" else defaults.width)
    return Sweep(
        given.height or defaults.height,
        width,
        time_res_s,
        given.depth_res_mm or defaults.depth_res_mm,
    )


def flag_sweep(args: argparse.Namespace) -> Sweep:
    """The size and resolution flags as given (None where not)."""
    return Sweep(args.height, args.width, args.time_res, args.depth_res)


def generate(
    out_dir: Path,
    *,
    recordings: int = DEFAULT_RECORDINGS,
    seed: int = DEFAULT_SEED,
    height: int | None = None,
    width: int | None = None,
    time_res_s: float | None = None,
    depth_res_mm: float | None = None,
    with_artefacts: bool = True,
    walls: bool = False,
    look: str = "classic",
    physiology: str = "tuned",
) -> list[str]:
    """Write `recordings` recordings with annotations and truth under out_dir; their names.

    A size or resolution that is None takes the look's default (recording_sweep)."""
    for folder in ("recordings", "annotations", "truth"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    given = Sweep(height, width, time_res_s, depth_res_mm)
    names = []
    for index in range(recordings):
        name = f"{NAME_PREFIX}{index:03d}"
        sweep = recording_sweep(look, seed, index, given)
        recording = simulate_recording(
            recording_rng(seed, index),
            height=sweep.height,
            width=sweep.width,
            time_res_s=sweep.time_res_s,
            depth_res_mm=sweep.depth_res_mm,
            artefact_rng=artefact_rng(seed, index) if with_artefacts else None,
            look=look,
            heldout_rng=heldout_rng(seed, index) if physiology == "heldout" else None,
        )
        write_recording(out_dir, name, recording, walls)
        names.append(name)
    return names


def check_args(args: argparse.Namespace) -> None:
    """Raise SetupError, naming the flag to change, for numbers that cannot work."""
    for flag, value in (
        ("--recordings", args.recordings),
        ("--height", args.height),
        ("--width", args.width),
        ("--time-res", args.time_res),
        ("--depth-res", args.depth_res),
    ):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise SetupError(f"{flag} must be a positive number, got {value}.")
    if args.seed < 0:
        raise SetupError(f"--seed must be 0 or more, got {args.seed}.")
    if args.step is not None and args.step < 1:
        raise SetupError(f"--step must be at least 1 column, got {args.step}.")
    if args.look == "scanner" and args.height is not None and args.depth_res is None:
        raise SetupError(
            "--height needs --depth-res with --look scanner (its depth resolution is drawn "
            "per recording); give both, or neither."
        )
    if args.look == "scanner" and None in (args.height, args.width):
        return  # drawn per recording: always as deep and as long as a heart needs
    sweep = recording_sweep(args.look, 0, 0, flag_sweep(args))
    depth_mm = sweep.height * sweep.depth_res_mm
    if depth_mm < MIN_DEPTH_MM:
        raise SetupError(
            f"--height {sweep.height} x --depth-res {sweep.depth_res_mm} mm is {depth_mm:.2f} mm, "
            f"too shallow for a mouse heart; raise either so their product is at least "
            f"{MIN_DEPTH_MM} mm."
        )
    duration_s = sweep.width * sweep.time_res_s
    if duration_s < MIN_DURATION_S:
        raise SetupError(
            f"--width {sweep.width} x --time-res {sweep.time_res_s} s is {duration_s:.3f} s, "
            f"too short for a complete heart beat; raise either so their product is at least "
            f"{MIN_DURATION_S} s."
        )
    if sweep.width < sweep.height:
        raise SetupError(
            f"--width {sweep.width} is less than --height {sweep.height}, so no square training "
            "window fits; raise --width or lower --height."
        )


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless --overwrite; then remove earlier synthetic files.

    Only files this command writes (synth_* in its folders) are removed, so a smaller
    --recordings does not leave older recordings behind.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SetupError(f"--out {out_dir} is a file; pass a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise SetupError(
            f"--out {out_dir} is not empty; pass --overwrite to replace the synthetic "
            "files in it, or choose another folder."
        )
    make_output_folder(out_dir, "--out")  # first: an --out that cannot be made removes nothing
    for folder in OUTPUT_FOLDERS:
        for path in sorted((out_dir / folder).glob(f"{NAME_PREFIX}*")):
            path.unlink()
    # An earlier --walls run's, so that a run without --walls makes a binary set again.
    (out_dir / LABELS_FILE).unlink(missing_ok=True)


def cut_windows(out_dir: Path, names: list[str], step: int | None) -> tuple[list[str], int]:
    """Cut the training windows with the shared pipeline; (problems, windows written).

    Any problem here is a bug: the generator's own recordings and traces must pass.
    """
    try:
        summary = build_dataset(
            out_dir / "recordings",
            out_dir / "annotations",
            out_dir,
            step=step,
            overwrite=True,
            progress=False,
        )
    except SetupError as err:
        return [str(err)], 0
    except WriteError as err:
        return [err.advice("--out")], 0
    missing = sorted(set(names) - set(summary.done))
    problems = summary.problems + [f"{name}: no training windows were made." for name in missing]
    return problems, summary.windows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m preprocessing.synthetic",
        description=(
            "Simulate M-mode echocardiograms of a mouse left ventricle with known inner "
            "diameters, and cut them into a training set. Writes DIR/recordings/REC.png "
            "(+ REC.json resolutions), DIR/annotations/REC.csv (upper and lower traces), "
            "DIR/truth/REC.json (LVIDd, LVIDs, heart rate per beat; their medians, EF, FS; "
            "which beats artefacts corrupt, and the medians over the clean ones) and DIR/img, "
            "DIR/mask (square training windows). Recordings have the artefacts of real ones "
            "(chordae in the cavity, dropout columns, noise bursts, probe motion, irregular "
            "beats) unless --no-artefacts; stretches of probe motion are not annotated. With "
            "--walls the annotations trace all four borders, and DIR/mask holds label masks "
            "(1 septum, 2 cavity, 3 posterior wall) named in DIR/labels.json. The truth also "
            "holds IVS, LVPW and LV mass per beat. The defaults make 8 recordings 9.6 mm deep "
            "and 1.2 s long."
        ),
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (required)"
    )
    parser.add_argument(
        "--recordings",
        type=int,
        metavar="N",
        default=DEFAULT_RECORDINGS,
        help="how many (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        default=DEFAULT_SEED,
        help="same seed and flags, same files (default: %(default)s)",
    )
    parser.add_argument(
        "--height",
        type=int,
        metavar="ROWS",
        default=None,
        help=f"rows (depth) (default: {DEFAULT_HEIGHT}; scanner look: as deep as each heart needs)",
    )
    parser.add_argument(
        "--width",
        type=int,
        metavar="COLS",
        default=None,
        help=f"columns (time) (default: {DEFAULT_WIDTH}; scanner look: {SCANNER_DURATION_S} s)",
    )
    parser.add_argument(
        "--time-res",
        type=float,
        metavar="S",
        default=None,
        help=f"seconds per column (default: {TYPICAL_TIME_RES_S}, about 1200 columns per second; "
        "scanner look: drawn per recording from 0.0005-0.002)",
    )
    parser.add_argument(
        "--depth-res",
        type=float,
        metavar="MM",
        default=None,
        help=f"millimetres per row; height x depth-res must be at least {MIN_DEPTH_MM} mm "
        f"(default: {DEFAULT_DEPTH_RES_MM}; scanner look: drawn per recording from 0.01-0.05)",
    )
    parser.add_argument(
        "--step",
        type=int,
        metavar="COLS",
        default=None,
        help="columns between training windows (default: half the height)",
    )
    parser.add_argument(
        "--artefacts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the artefacts of real recordings; --no-artefacts makes clean ones, "
        "otherwise the same recordings (default: on)",
    )
    parser.add_argument(
        "--look",
        choices=LOOKS,
        default="classic",
        help="classic: bright walls on a dark cavity, one sweep; scanner: the dark, "
        "low-contrast look of real scanners, with gain, contrast, speckle, sweep speed and "
        "depth resolution drawn per recording (default: %(default)s)",
    )
    parser.add_argument(
        "--physiology",
        choices=PHYSIOLOGIES,
        default="tuned",
        help="tuned: what the rules were tuned on; heldout: the same mice with other beat "
        "shapes, rhythm, wall echoes and dropouts (default: %(default)s)",
    )
    parser.add_argument(
        "--walls",
        action="store_true",
        help="annotate the septum's and posterior wall's outer borders too (ivs_top, "
        "lvpw_bottom), so the training set has label masks and labels.json (default: the "
        "cavity only, binary masks)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing earlier synthetic files",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        prepare_out_dir(args.out, args.overwrite)
        names = generate(
            args.out,
            recordings=args.recordings,
            seed=args.seed,
            height=args.height,
            width=args.width,
            time_res_s=args.time_res,
            depth_res_mm=args.depth_res,
            with_artefacts=args.artefacts,
            walls=args.walls,
            look=args.look,
            physiology=args.physiology,
        )
    except SetupError as err:
        print(f"{COMMAND}: error: {err}", file=sys.stderr)
        return 2
    except WriteError as err:  # a full disk: one sentence, and the files already written stay
        print(f"{COMMAND}: error: {err.advice('--out')}", file=sys.stderr)
        return 1
    problems, windows = cut_windows(args.out, names, args.step)
    if problems:
        print(f"{COMMAND}: cutting the training windows failed:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(
        f"{COMMAND}: wrote {len(names)} recordings and {windows} training windows "
        f"to {args.out} (recordings/, annotations/, truth/, img/, mask/"
        f"{', labels.json' if args.walls else ''})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
