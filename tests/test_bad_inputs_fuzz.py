"""Every command against a list of bad inputs: each ends with the
exit status it should, no traceback, and, when it refuses to run, one `error:` line and
an output folder it has not touched.

One table, CASES, holds them all: which command, how its argv is made, and the exit status
expected (2 for an unusable input, refused before anything is written; 1 where one
recording is a problem, named, and the others are done). Every case's output folder is
tmp_path / "out", so that the test can snapshot it before and after. Commands run in this
process (conftest's call_main): an exception escaping main(), a traceback when run as a
process, fails the case too. A case whose command misbehaves names the defect and is a
strict xfail until it is fixed.
"""

import json
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY
from PIL import Image

import run
from agreement import command as agreement
from preprocessing import dicom_to_png, make_dataset, make_masks, make_windows, synthetic

COMMANDS = {
    "run": run.main,
    "make_masks": make_masks.main,
    "make_windows": make_windows.main,
    "make_dataset": make_dataset.main,
    "synthetic": synthetic.main,
    "dicom_to_png": dicom_to_png.main,
    "agreement": agreement.main,
}  # and "test": test.py's main, from the measure_cli fixture

# Synthetic recordings 32 rows of 0.3 mm deep, 128 columns of 4 ms long: about 5 beats.
SMALL_SYNTHETIC = ["--height", "32", "--width", "128", "--depth-res", "0.3", "--time-res", "0.004"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(a folder with one synthetic recording and its sidecar, a checkpoint trained one
    epoch on its windows): the smallest real model test.py loads."""
    root = tmp_path_factory.mktemp("tiny")
    assert (
        synthetic.main(
            ["--out", str(root / "data"), *SMALL_SYNTHETIC, "--recordings", "1",
             "--no-artefacts"]
        )
        == 0
    )  # fmt: skip
    argv = ["-d", root / "data", "-o", root / "model", *TINY, "-e", "1", "--device", "cpu"]
    assert run.main([str(a) for a in argv]) == 0
    return root / "data" / "recordings", root / "model" / "best.pt"


@dataclass
class Inputs:
    """What a case builds its argv from: its own tmp_path and the shared tiny model."""

    tmp: Path
    make_data: Callable[..., Path]  # conftest's: img/ and mask/ pairs in tmp/data
    recordings: Path  # shared: never written to
    checkpoint: Path  # shared: copy it before damaging it

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def file(self, name: str, text: str = "x") -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height: as cheap to write as to refuse, but a
    reader that decodes before checking the size would need gigabytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )
    return path


# ---- run.py -------------------------------------------------------------------------


def train(i: Inputs, *extra, data: Path | None = None) -> list:
    """run.py's argv: four 40x40 pairs (or `data`) into i.out, a tiny model."""
    data = i.make_data(n=4) if data is None else data
    return ["-d", data, "-o", i.out, *TINY, "--device", "cpu", *extra]


def flipped_checkpoint(i: Inputs) -> Path:
    """The tiny checkpoint with 2000 bytes in its middle inverted."""
    data = bytearray(i.checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0xFF for b in data[middle : middle + 2000])
    path = i.tmp / "flipped.pt"
    path.write_bytes(bytes(data))
    return path


def resume_flipped(i: Inputs) -> list:
    return train(i, "-f", flipped_checkpoint(i))


def damaged_checkpoint(i: Inputs, field: str, value: object) -> Path:
    """The tiny checkpoint, saved again with one field of our format replaced."""
    checkpoint = torch.load(i.checkpoint, weights_only=True)
    checkpoint[field] = value
    path = i.tmp / f"damaged_{field}.pt"
    torch.save(checkpoint, path)
    return path


def resume_damaged(field: str, value: object) -> Callable[[Inputs], list]:
    return lambda i: train(i, "-f", damaged_checkpoint(i, field, value))


def data_with_nan_pixel(i: Inputs) -> list:
    argv = train(i)
    image = np.linspace(0, 1, 40 * 40, dtype=np.float32).reshape(40, 40)
    image[10, 10] = np.nan
    np.save(argv[1] / "img" / "nan.npy", image)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(argv[1] / "mask" / "nan.png")
    return argv


def data_with_huge_image(i: Inputs) -> list:
    argv = train(i)
    png_header(argv[1] / "img" / "huge.png", 20000, 12000)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(argv[1] / "mask" / "huge.png")
    return argv


def out_is_file(i: Inputs) -> list:
    i.file("out")
    return train(i)


def data_is_file(i: Inputs) -> list:
    return train(i, data=i.make_data(n=4) / "img" / "rec0.png")


# ---- test.py ------------------------------------------------------------------------


def measure(i: Inputs, *extra, data: Path | None = None, model: Path | None = None) -> list:
    """test.py's argv: one good recording (or `data`) with the tiny model (or `model`)."""
    data = i.recordings / "synth_000.png" if data is None else data
    model = i.checkpoint if model is None else model
    return ["-d", data, "-m", model, "-o", i.out, "--device", "cpu", *extra]


def measure_flipped(i: Inputs) -> list:
    return measure(i, model=flipped_checkpoint(i))


def subjects_without_mouse_id(i: Inputs) -> list:
    return measure(i, "--subjects", i.file("s.csv", "recording,genotype\nsynth_000,ko\n"))


def earlier_results(i: Inputs) -> list:
    i.out.mkdir()
    (i.out / "summary.csv").write_text("name,status\nsynth_000,ok\n")
    (i.out / "synth_000_summary.json").write_text("{}")
    return measure(i)


def folder_with_one_huge_image(i: Inputs) -> list:
    folder = i.tmp / "in"
    shutil.copytree(i.recordings, folder)
    png_header(folder / "huge.png", 20000, 12000)
    return measure(i, data=folder)


def recording_with_sidecar(i: Inputs, name: str, image: np.ndarray) -> Path:
    """`image` saved as name (.png or .npy) in i.tmp/in, with the synthetic recordings'
    resolutions beside it (so that no warning about them is printed)."""
    folder = i.tmp / "in"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if path.suffix == ".npy":
        np.save(path, image)
    else:
        Image.fromarray(image).save(path)
    shutil.copy(i.recordings / "synth_000.json", path.with_suffix(".json"))
    return path


def flat_recording(i: Inputs) -> list:
    black = np.zeros((32, 128), np.uint8)
    return measure(i, data=recording_with_sidecar(i, "black.png", black))


def recording_with_nan_pixel(i: Inputs) -> list:
    image = np.asarray(Image.open(i.recordings / "synth_000.png"), np.float32) / 255
    image[5, 5] = np.nan
    return measure(i, data=recording_with_sidecar(i, "nan.npy", image))


def scoring_set_with_huge_image(i: Inputs) -> list:
    data = i.make_data(n=2)
    png_header(data / "img" / "huge.png", 20000, 12000)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(data / "mask" / "huge.png")
    return measure(i, data=data)


# ---- preprocessing ------------------------------------------------------------------


def labelme_null_points(i: Inputs) -> list:
    """Two recordings; the first's LabelMe upper trace has "points": null."""
    images, annotations = i.tmp / "images", i.tmp / "annotations"
    images.mkdir()
    annotations.mkdir()
    for name in ("a_null", "good"):
        Image.fromarray(np.full((20, 60), 128, np.uint8)).save(images / f"{name}.png")
    good = [[[0, 5], [59, 5]], [[0, 15], [59, 15]]]
    for name, upper in (("a_null", None), ("good", good[0])):
        shapes = [
            {"label": "upper", "points": upper, "shape_type": "linestrip"},
            {"label": "lower", "points": good[1], "shape_type": "linestrip"},
        ]
        (annotations / f"{name}.json").write_text(json.dumps({"shapes": shapes}))
    return ["--images", images, "--annotations", annotations, "--out", i.out, "--no-progress"]


def masks_with_huge_image(i: Inputs) -> list:
    """make_masks's inputs with an over-size recording (annotated) before the good one."""
    argv = labelme_null_points(i)
    (i.tmp / "annotations" / "a_null.json").unlink()
    png_header(i.tmp / "images" / "a_huge.png", 20000, 12000)
    shutil.copy(i.tmp / "annotations" / "good.json", i.tmp / "annotations" / "a_huge.json")
    return argv


def windows_with_huge_mask(i: Inputs) -> list:
    """make_windows's inputs: two recordings and their masks, the first mask over-size."""
    images, masks = i.tmp / "images", i.tmp / "masks"
    images.mkdir()
    masks.mkdir()
    mask = np.zeros((20, 60), np.uint8)
    mask[5:15] = 255
    for name in ("a_huge", "good"):
        Image.fromarray(np.full((20, 60), 128, np.uint8)).save(images / f"{name}.png")
        Image.fromarray(mask).save(masks / f"{name}.png")
    png_header(masks / "a_huge.png", 20000, 12000)
    return ["--images", images, "--masks", masks, "--out", i.out, "--no-progress"]


def out_under_a_file(i: Inputs) -> list:
    """Good recordings and annotations, and an --out inside a regular file (i.out): a
    folder that cannot be created."""
    i.file("out")
    argv = labelme_null_points(i)
    (i.tmp / "annotations" / "a_null.json").unlink()
    return [*argv[:4], "--out", i.out / "sub", "--no-progress"]


def synthetic_out_under_a_file(i: Inputs) -> list:
    return ["--out", i.file("out") / "sub", *SMALL_SYNTHETIC]


def dicom_in_missing(i: Inputs) -> list:
    return ["--in", i.tmp / "none.dcm", "--out", i.out, "--no-progress"]


def windows_images_missing(i: Inputs) -> list:
    missing = i.tmp / "none"
    return ["--images", missing, "--masks", missing, "--out", i.out, "--no-progress"]


# ---- agreement ----------------------------------------------------------

AUTO = "mouse_id,lvid_d_mm\nm1,2.1\nm2,2.9\nm3,4.2\nm4,5.0\n"
MANUAL = "mouse_id,lvid_d_mm\nm1,2.0\nm2,3.0\nm3,4.0\nm4,5.0\n"
DUPLICATED = MANUAL + "m3,4.1\n"
OTHER_MICE = "mouse_id,lvid_d_mm\nz1,2.1\nz2,2.9\nz3,4.2\n"
DECIMAL_COMMA = AUTO.replace("4.2", '"4,2"')


def compare(i: Inputs, auto: str | None = AUTO, manual: str = MANUAL) -> list:
    """agreement's argv for two tables (auto None: a file that does not exist)."""
    auto_path = i.tmp / "none.csv" if auto is None else i.file("auto.csv", auto)
    manual_path = i.file("manual.csv", manual)
    return ["--auto", auto_path, "--manual", manual_path, "--key", "mouse_id", "--out", i.out]


@dataclass(frozen=True)
class Case:
    id: str
    command: str  # a key of COMMANDS, or "test"
    make_argv: Callable[[Inputs], list]
    expected_code: int
    says: str = ""  # what the error (exit 2) or problem line (exit 1) must hold
    defect: str = ""  # what the command gets wrong; the case is then a strict xfail


# Refused by its header, before decoding: a reader that decodes first fails differently.
HUGE = "huge.png is 20000 x 12000 pixels, more than the"
A_HUGE = "a_" + HUGE
NULL_POINTS = "a_null.json: shape 1 (upper) has points None"

CASES = [
    # ---- run.py ----
    # the data folder is missing (item 9's neighbour: said "does not exist" for a file too)
    Case("run-data-missing", "run", lambda i: train(i, data=i.tmp / "nowhere"), 2),
    # item 9: -d pointing at a file said "does not exist"
    Case("run-data-is-file", "run", data_is_file, 2),
    # item 5: a text file as -f was an IndexError/KeyError traceback
    Case("run-text-checkpoint", "run", lambda i: train(i, "-f", i.file("notes.pt")), 2),
    # item 5: a checkpoint with 2000 flipped bytes loaded silently with changed weights
    Case("run-flipped-checkpoint", "run", resume_flipped, 2, "flipped.pt is damaged"),
    # item 5: our own checkpoints with a damaged split, rng_state or progress
    Case("run-checkpoint-bad-split", "run", resume_damaged("split", "rec0"), 2),
    Case("run-checkpoint-bad-rng-state", "run", resume_damaged("rng_state", {}), 2),
    Case("run-checkpoint-bad-progress", "run", resume_damaged("progress", {"epoch": -1}), 2),
    # item 9: -l inf was accepted
    Case("run-lr-inf", "run", lambda i: train(i, "-l", "inf"), 2),
    # item 9: -l nan, its twin
    Case("run-lr-nan", "run", lambda i: train(i, "-l", "nan"), 2),
    # -p not a multiple of 16 (the window-size check item 3's cap sits beside)
    Case("run-p-40", "run", lambda i: train(i, "-p", "40"), 2),
    # item 3: -p 100000 was an allocation traceback
    Case("run-p-huge", "run", lambda i: train(i, "-p", "100000"), 2),
    # item 8: --device cpu:abc was a traceback
    Case("run-device-cpu-abc", "run", lambda i: train(i, "--device", "cpu:abc"), 2),
    # item 8: a 20-digit --seed was a traceback
    Case("run-seed-20-digits", "run", lambda i: train(i, "--seed", "12345678901234567890"), 2),
    # item 7: -o is a regular file
    Case("run-out-is-file", "run", out_is_file, 2),
    # item 6: a NaN pixel in a float image silently turned the image to 0/1
    Case("run-nan-pixel", "run", data_with_nan_pixel, 2, "nan.npy: 1 pixel(s) are NaN"),
    # item 3: an over-size image in the data (its header says 20000 x 12000)
    Case("run-huge-image", "run", data_with_huge_image, 2, HUGE),
    # ---- test.py ----
    # item 5: a text file as -m was an IndexError/KeyError traceback
    Case("test-text-model", "test", lambda i: measure(i, model=i.file("notes.pt")), 2),
    # item 5: a checkpoint with flipped bytes as -m
    Case("test-flipped-model", "test", measure_flipped, 2, "flipped.pt is damaged"),
    # item 5's neighbour: -m names no file
    Case("test-model-missing", "test", lambda i: measure(i, model=i.tmp / "none.pt"), 2),
    # item 3: -s 100000 was an allocation traceback
    Case("test-s-huge", "test", lambda i: measure(i, "-s", "100000"), 2),
    # item 9: a NaN resolution went into summary.json
    Case("test-time-res-nan", "test", lambda i: measure(i, "--time-res", "nan"), 2),
    # item 9: 1e300 mm per row was accepted and wrote NaN into summary.json
    Case("test-depth-res-1e300", "test", lambda i: measure(i, "--depth-res", "1e300"), 2),
    # a DICOM file given to test.py instead of its PNG (dicom_to_png converts it)
    Case("test-dicom", "test", lambda i: measure(i, data=i.file("scan.dcm", "\0" * 200)), 2),
    # -d names no file
    Case("test-data-missing", "test", lambda i: measure(i, data=i.tmp / "none.png"), 2),
    # --subjects without its mouse_id column
    Case("test-subjects-no-mouse-id", "test", subjects_without_mouse_id, 2),
    # item 2: test.py silently replaced earlier results in -o
    Case("test-earlier-results", "test", earlier_results, 2),
    # item 3: one over-size image stopped the batch; now it is named and the other measured
    Case("test-one-huge-among-good", "test", folder_with_one_huge_image, 1, HUGE),
    # item 3: the same image in a test set to score (img/ and mask/) refuses the set
    Case("test-set-huge-image", "test", scoring_set_with_huge_image, 2, HUGE),
    # item 1: an all-black recording got "HR 565 bpm, EF 0 %"
    Case("test-flat-recording", "test", flat_recording, 1, "black: no cardiac motion found"),
    # item 6: a NaN pixel in a float recording silently turned it to 0/1
    Case("test-nan-pixel", "test", recording_with_nan_pixel, 1, "nan.npy: 1 pixel(s) are NaN"),
    # ---- preprocessing ----
    # item 4: LabelMe "points": null was a TypeError that skipped every later recording
    Case("make_masks-null-points", "make_masks", labelme_null_points, 1, NULL_POINTS),
    Case("make_dataset-null-points", "make_dataset", labelme_null_points, 1, NULL_POINTS),
    # item 3: one over-size image stopped make_masks and make_windows
    Case("make_masks-huge-image", "make_masks", masks_with_huge_image, 1, A_HUGE),
    Case("make_windows-huge-mask", "make_windows", windows_with_huge_mask, 1, A_HUGE),
    # item 7: an --out that cannot be created was a traceback
    Case("make_masks-out-under-file", "make_masks", out_under_a_file, 2),
    Case("make_dataset-out-under-file", "make_dataset", out_under_a_file, 2),
    Case("synthetic-out-under-file", "synthetic", synthetic_out_under_a_file, 2),
    # a missing --in
    Case("dicom_to_png-in-missing", "dicom_to_png", dicom_in_missing, 2),
    # a missing --images folder
    Case("make_windows-images-missing", "make_windows", windows_images_missing, 2),
    # ---- agreement ----
    # a key twice in one table
    Case("agreement-duplicated-key", "agreement", lambda i: compare(i, manual=DUPLICATED), 2),
    # no key in both tables
    Case("agreement-no-overlap", "agreement", lambda i: compare(i, auto=OTHER_MICE), 2),
    # a cell that is not a number (a decimal comma)
    Case("agreement-non-numeric", "agreement", lambda i: compare(i, auto=DECIMAL_COMMA), 2),
    # the same comma unquoted: a row with more cells than the header
    Case(
        "agreement-extra-cell",
        "agreement",
        lambda i: compare(i, auto=AUTO.replace("4.2", "4,2")),
        2,
        says="has more cells than its header",
    ),
    # --auto names no file
    Case("agreement-auto-missing", "agreement", lambda i: compare(i, auto=None), 2),
]


def snapshot(path: Path) -> dict[str, bytes] | None:
    """The names and bytes under `path` (a file: its bytes); None if it does not exist."""
    if path.is_file():
        return {"": path.read_bytes()}
    if not path.is_dir():
        return None
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"/"
            for p in sorted(path.rglob("*"))}  # fmt: skip


def stderr_lines(err: str) -> list[str]:
    """stderr's lines; a progress bar's redraws (\\r) count as lines of their own."""
    return [line for line in re.split(r"[\r\n]", err) if line.strip()]


ERROR_LINE = re.compile(r"^(\w+: )?error: ")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=case.defect))
        if case.defect
        else pytest.param(case, id=case.id)
        for case in CASES
    ],
)
def test_a_bad_input_ends_cleanly(case, tmp_path, make_data, tiny, call_main, measure_cli):
    recordings, checkpoint = tiny
    inputs = Inputs(tmp_path, make_data, recordings, checkpoint)
    argv = case.make_argv(inputs)
    before = snapshot(inputs.out)
    main = measure_cli.main if case.command == "test" else COMMANDS[case.command]
    result = call_main(main, *argv)
    assert "Traceback" not in result.err, result.err
    assert result.code == case.expected_code, result.err
    lines = stderr_lines(result.err)
    if case.expected_code == 2:  # refused: one sentence, and -o as it was
        assert len(lines) == 1 and ERROR_LINE.match(lines[0]), result.err
        assert case.says in lines[0]
        assert snapshot(inputs.out) == before
    else:  # one recording's problem, named; the others done, and something written
        problems = [line for line in lines if ERROR_LINE.match(line) or line.startswith("  ")]
        assert any(case.says in line for line in problems), result.err
        assert snapshot(inputs.out), "a run that went on wrote nothing"
