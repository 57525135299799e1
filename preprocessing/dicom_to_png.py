"""Turn multi-frame ultrasound DICOM recordings into one long M-mode image each.

    python -m preprocessing.dicom_to_png --in FILE_OR_DIR --out DIR [--region N]

For each file: take the M-mode item of the Sequence of Ultrasound Regions (0018,6011), the
one whose RegionSpatialFormat is 2, or item N (0 = first) with --region; crop every frame to
its RegionLocationMinX0/MinY0/MaxX1/MaxY1 (inclusive); convert RGB to luminance
(0.2989 R + 0.5870 G + 0.1140 B, rounded); stitch the scrolling frames (stitch.py); write
DIR/NAME.png and DIR/NAME.json with time_res_s (PhysicalDeltaX, units 4 = seconds) and
depth_res_mm (PhysicalDeltaY x 10, units 3 = cm).

Decisions where the issue is silent:
- NAME is the file name without a .dcm/.dicom suffix (scanner files often have no suffix,
  and names like 1.2.840.1 must keep their dots).
- In a folder, the files read are those ending in .dcm/.dicom or starting with the DICOM
  preamble (DICM at byte 128); other files are ignored; subfolders are not searched.
- Several M-mode regions in one file: a problem asking for --region, rather than a guess.
- A resolution whose physical unit is not the expected one, or whose value no scanner could
  have (zero, negative, NaN, beyond mmode.scanner.RESOLUTION_LIMITS), is written as null,
  with a warning.
- MONOCHROME1 is inverted so that echoes are bright; more than 8 bits are scaled to 0-255.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder, iter_pixels

from mmode.images import DICOM_SUFFIXES, recording_name, to_gray
from mmode.scanner import resolution_problem, sidecar_text
from preprocessing import cli
from preprocessing.stitch import stitch_frames
from preprocessing.summary import Summary
from runtime.errors import RecordingError, SetupError
from runtime.files import make_output_folder, save_png, write_text

MMODE_FORMAT = 2  # RegionSpatialFormat of an M-mode region
SECONDS = 4  # PhysicalUnitsXDirection / YDirection codes
CENTIMETRES = 3
# Colour data that pydicom's decoders hand over as RGB (YBR_FULL* converted, ICT/RCT by JPEG 2000).
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
PIP_NAMES = {"gdcm": "python-gdcm"}  # where a decoder's import name is not its pip name


@dataclass(frozen=True)
class MModeRegion:
    index: int  # item number in the Sequence of Ultrasound Regions, 0 = first
    min_x: int  # inclusive pixel bounds of the region in each frame
    min_y: int
    max_x: int
    max_y: int
    time_res_s: float | None  # seconds per column
    depth_res_mm: float | None  # millimetres per row
    unit_warnings: tuple[str, ...] = ()


def is_dicom_file(path: Path) -> bool:
    """A .dcm/.dicom file, or one with the DICOM preamble."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def find_mmode_region(ds: pydicom.Dataset, region_index: int | None = None) -> MModeRegion:
    """The M-mode region of a dataset (or item `region_index`); ValueError if there is none."""
    regions = ds.get("SequenceOfUltrasoundRegions")
    if not regions:
        raise ValueError("no Sequence of Ultrasound Regions (0018,6011), so no M-mode region.")
    if region_index is None:
        found = [
            i for i, item in enumerate(regions) if item.get("RegionSpatialFormat") == MMODE_FORMAT
        ]
        if not found:
            formats = [item.get("RegionSpatialFormat") for item in regions]
            raise ValueError(
                f"no region has RegionSpatialFormat 2 (M-mode); the formats are {formats}. "
                "Pick one with --region N."
            )
        if len(found) > 1:
            raise ValueError(f"regions {found} are all M-mode; pick one with --region N.")
        region_index = found[0]
    if not 0 <= region_index < len(regions):
        raise ValueError(f"--region {region_index}: the file has {len(regions)} region(s).")
    item = regions[region_index]
    bounds = [
        item.get(key)
        for key in (
            "RegionLocationMinX0",
            "RegionLocationMinY0",
            "RegionLocationMaxX1",
            "RegionLocationMaxY1",
        )
    ]
    if None in bounds:
        raise ValueError(f"region {region_index} lacks its RegionLocation bounds.")
    min_x, min_y, max_x, max_y = (int(value) for value in bounds)
    if not (0 <= min_x <= max_x < ds.Columns and 0 <= min_y <= max_y < ds.Rows):
        raise ValueError(
            f"region {region_index} ({min_x},{min_y})-({max_x},{max_y}) does not fit in "
            f"the {ds.Rows}x{ds.Columns} frames."
        )
    warnings = []
    time_res_s = _resolution(item, "X", SECONDS, "seconds (4)", warnings)
    depth_res_cm = _resolution(item, "Y", CENTIMETRES, "cm (3)", warnings)
    depth_res_mm = None if depth_res_cm is None else depth_res_cm * 10
    time_res_s = _plausible("X", "time_res_s", time_res_s, warnings)
    depth_res_mm = _plausible("Y", "depth_res_mm", depth_res_mm, warnings)
    return MModeRegion(
        region_index, min_x, min_y, max_x, max_y, time_res_s, depth_res_mm, tuple(warnings)
    )


def _resolution(
    item: pydicom.Dataset, axis: str, unit: int, unit_name: str, warnings: list[str]
) -> float | None:
    delta, units = item.get(f"PhysicalDelta{axis}"), item.get(f"PhysicalUnits{axis}Direction")
    if delta is None:
        warnings.append(f"the region has no PhysicalDelta{axis}, so its resolution is null.")
        return None
    if units != unit:
        warnings.append(
            f"PhysicalUnits{axis}Direction is {units}, not {unit_name}, so its resolution is null."
        )
        return None
    return float(delta)


def _plausible(axis: str, key: str, value: float | None, warnings: list[str]) -> float | None:
    """The resolution, or None with a warning when no scanner could have it (zero,
    negative, NaN, or beyond mmode.scanner's limits): test.py would refuse the sidecar."""
    problem = resolution_problem(key, value)
    if problem is None:
        return value
    warnings.append(f"PhysicalDelta{axis} gives {key} {value:g}, which {problem}, so it is null.")
    return None


def check_decoder(ds: pydicom.Dataset) -> None:
    """ValueError naming the transfer syntax and what to install when it cannot be decoded."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise ValueError("no Transfer Syntax UID (0002,0010) in the file meta information.")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ValueError(
            f"pixel data in transfer syntax {syntax.name} ({syntax}) cannot be decoded by "
            "pydicom; export the recording uncompressed or as JPEG from the scanner."
        ) from None
    if not decoder.is_available:
        raise ValueError(
            f"pixel data in transfer syntax {syntax.name} ({syntax}) need a decoder that is "
            f"not installed; install one of: {install_hints(decoder.missing_dependencies)}."
        )


def install_hints(missing: list[str]) -> str:
    """pydicom's 'plugin - requires a>=1 and b>=2' lines as 'pip install a b' commands."""
    hints = []
    for line in missing:
        _, _, requires = line.partition(" - requires ")
        packages = [
            re.split(r"[<>=!~ ]", name.strip())[0] for name in re.split(r",| and ", requires)
        ]
        packages = [PIP_NAMES.get(name, name) for name in packages if name and name != "numpy"]
        hints.append("pip install " + " ".join(packages) if packages else line)
    return " | ".join(hints)


def to_luminance(frame: np.ndarray, photometric: str, bits_stored: int) -> np.ndarray:
    """A decoded frame as uint8 (H, W) gray."""
    if frame.ndim == 3:
        if photometric not in COLOUR_PHOTOMETRICS:
            raise ValueError(f"photometric interpretation {photometric} is not supported.")
        gray = to_gray(frame)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric interpretation {photometric} is not supported.")
    gray = frame.astype(np.float64)
    if bits_stored > 8:
        gray = gray * (255 / (2**bits_stored - 1))
    gray = np.clip(np.rint(gray), 0, 255)
    if photometric == "MONOCHROME1":
        gray = 255 - gray
    return gray.astype(np.uint8)


def read_mmode_image(
    path: Path, region_index: int | None = None
) -> tuple[np.ndarray, MModeRegion, list[str]]:
    """The stitched M-mode image of one DICOM file, its region and warnings.

    Raises RecordingError naming the file for anything that stops the conversion.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        region = find_mmode_region(ds, region_index)
        check_decoder(ds)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
        bits_stored = int(ds.get("BitsStored", 8))
        frames = (
            to_luminance(
                frame[region.min_y : region.max_y + 1, region.min_x : region.max_x + 1],
                photometric,
                bits_stored,
            )
            for frame in iter_pixels(path)
        )
        stitched = stitch_frames(frames)
    except InvalidDicomError as err:
        raise RecordingError(f"{path}: not a DICOM file ({err}).") from None
    except (ValueError, TypeError, AttributeError, KeyError, EOFError, RuntimeError) as err:
        # pydicom reports truncated files, odd values and decoder failures in all these ways.
        raise RecordingError(f"{path}: {err}") from None
    warnings = [f"{path}: {text}" for text in region.unit_warnings]
    if stitched.inexact:
        warnings.append(
            f"{path}: {stitched.inexact} of {stitched.frames} frames had no exact overlap with "
            f"the previous one and were placed by best match (mean difference up to "
            f"{stitched.worst_mean_diff:.1f} gray levels); check the image for seams."
        )
    return stitched.image, region, warnings


def convert_dicom(
    path: Path, out_dir: Path, *, region_index: int | None = None, overwrite: bool = False
) -> list[str]:
    """Write out_dir/NAME.png and NAME.json for one DICOM file; return its warnings."""
    name = recording_name(path.name)
    png_path, json_path = out_dir / f"{name}.png", out_dir / f"{name}.json"
    existing = [p for p in (png_path, json_path) if p.exists()]
    if existing and not overwrite:
        raise RecordingError(f"{existing[0]}: already exists; pass --overwrite to replace it.")
    image, region, warnings = read_mmode_image(path, region_index)
    save_png(png_path, image)
    sidecar = sidecar_text(
        region.time_res_s, region.depth_res_mm, source=path.name, region=region.index
    )
    write_text(json_path, sidecar)
    return warnings


def list_dicom_files(in_path: Path) -> list[Path]:
    """The file itself, or the DICOM files directly inside a folder."""
    if in_path.is_file():
        return [in_path]
    if not in_path.is_dir():
        raise SetupError(f"{in_path} does not exist; pass a DICOM file or folder with --in.")
    paths = [
        path
        for path in sorted(in_path.iterdir())
        if path.is_file() and not path.name.startswith(".") and is_dicom_file(path)
    ]
    if not paths:
        raise SetupError(f"no DICOM files in {in_path}; pass a DICOM file or folder with --in.")
    return paths


def dicom_to_png(
    in_path: Path,
    out_dir: Path,
    *,
    region_index: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Summary:
    """Convert one DICOM file or every DICOM file in a folder."""
    if region_index is not None and region_index < 0:
        raise SetupError(f"--region must be 0 or more, got {region_index}.")
    paths = list_dicom_files(Path(in_path))
    out_dir = make_output_folder(out_dir, "--out")
    summary = Summary()
    names: dict[str, Path] = {}
    for path in cli.progress(paths, progress):
        name = recording_name(path.name)
        if name in names:
            summary.problems.append(f"{path}: {names[name].name} gives the same name {name}.")
            continue
        names[name] = path
        with summary.recording(name, path):
            summary.warnings += convert_dicom(
                path, out_dir, region_index=region_index, overwrite=overwrite
            )
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog="python -m preprocessing.dicom_to_png",
        description="Stitch the M-mode region of multi-frame ultrasound DICOM files into PNGs.",
    )
    parser.add_argument(
        "--in",
        dest="in_path",
        metavar="FILE_OR_DIR",
        type=Path,
        required=True,
        help="a DICOM file, or a folder whose DICOM files are converted (required)",
    )
    cli.add_path_flag(parser, "--out", "DIR", "folder for NAME.png and NAME.json")
    parser.add_argument(
        "--region",
        metavar="N",
        type=int,
        help="item of the Sequence of Ultrasound Regions to use, 0 = first "
        "(default: the one with RegionSpatialFormat 2, M-mode)",
    )
    cli.add_overwrite_and_progress_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.finish(
        "dicom_to_png",
        lambda: dicom_to_png(
            args.in_path,
            args.out,
            region_index=args.region,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        ),
        count_windows=False,
    )


if __name__ == "__main__":
    sys.exit(main())
