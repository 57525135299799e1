"""make_masks, make_windows and make_dataset on tiny folders: outputs, problems, exit codes."""

import json
import os
import re

import numpy as np
import pytest
from helpers import full_disk
from PIL import Image

from preprocessing import dicom_to_png, make_dataset, make_masks, make_windows
from preprocessing.make_dataset import build_dataset
from runtime.errors import SetupError as UsageError

HEIGHT, WIDTH = 20, 60


def recording(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)


def write_annotation(path, upper, lower):
    rows = [f"upper,{x},{y}" for x, y in upper] + [f"lower,{x},{y}" for x, y in lower]
    path.write_text("trace,x,y\n" + "\n".join(rows) + "\n")


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture
def folders(tmp_path):
    """rec_a spans columns 5..50 (46 >= 20: full windows), rec_b columns 10..19 (short)."""
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    for name, seed in (("rec_a", 1), ("rec_b", 2)):
        Image.fromarray(recording(seed)).save(images / f"{name}.png")
    (images / "rec_a.json").write_text(json.dumps({"time_res_s": 0.01, "depth_res_mm": 0.1}))
    write_annotation(annotations / "rec_a.csv", [(5, 4), (50, 6.5)], [(2, 14), (55, 15)])
    write_annotation(annotations / "rec_b.csv", [(10, 12), (19, 12)], [(10, 17), (19, 19)])
    return tmp_path


def test_dataset_windows_pair_up_and_stay_in_the_span(folders):
    out = folders / "data"
    summary = build_dataset(folders / "images", folders / "annotations", out, progress=False)
    assert summary.problems == [] and summary.done == ["rec_a", "rec_b"]
    img_names = sorted(p.name for p in (out / "img").iterdir())
    assert img_names == sorted(p.name for p in (out / "mask").iterdir())
    # rec_a: span 5..50, side 20, step 10 -> starts 5, 15, 25, 31; rec_b: one 10x10 window
    assert img_names == [f"rec_a_win{k}.png" for k in range(4)] + ["rec_b_win0.png"]
    assert summary.windows == 5
    image = recording(1)
    for k, start in enumerate([5, 15, 25, 31]):
        np.testing.assert_array_equal(
            read_png(out / "img" / f"rec_a_win{k}.png"), image[:, start : start + 20]
        )
        window_mask = read_png(out / "mask" / f"rec_a_win{k}.png")
        assert set(np.unique(window_mask)) == {0, 255} and window_mask.any(axis=0).all()
    short = read_png(out / "mask" / "rec_b_win0.png")
    assert short.shape == (10, 10) and short.any(axis=0).all()
    # rec_b LV rows 12..17-19, centre about 15: rows 10..19
    np.testing.assert_array_equal(
        read_png(out / "img" / "rec_b_win0.png"), recording(2)[10:20, 10:20]
    )


def test_masks_then_windows_equal_the_one_step_dataset(folders):
    summary = make_masks.make_masks(
        folders / "images", folders / "annotations", folders / "masks", progress=False
    )
    assert summary.done == ["rec_a", "rec_b"]
    mask = read_png(folders / "masks" / "rec_a.png")
    assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == np.uint8
    assert np.flatnonzero(mask.any(axis=0)).tolist() == list(range(5, 51))
    make_windows.make_windows(
        folders / "images", folders / "masks", folders / "two", progress=False
    )
    build_dataset(folders / "images", folders / "annotations", folders / "one", progress=False)
    for path in sorted((folders / "one").rglob("*.png")):
        np.testing.assert_array_equal(
            read_png(path), read_png(folders / "two" / path.relative_to(folders / "one"))
        )


def test_one_bad_recording_does_not_stop_the_others(folders):
    images, annotations = folders / "images", folders / "annotations"
    (images / "broken.png").write_bytes(b"not a png")
    write_annotation(annotations / "broken.csv", [(0, 1), (9, 1)], [(0, 5), (9, 5)])
    Image.fromarray(recording(3)).save(images / "lonely.png")
    write_annotation(annotations / "orphan.csv", [(0, 1), (9, 1)], [(0, 5), (9, 5)])
    Image.fromarray(recording(4)).save(images / "crossed.png")
    write_annotation(annotations / "crossed.csv", [(0, 1), (9, 8)], [(0, 5), (9, 5)])
    Image.fromarray(recording(5)).save(images / "outside.png")
    write_annotation(annotations / "outside.csv", [(0, 1), (60, 1)], [(0, 5), (9, 5)])
    Image.fromarray(recording(6)).save(images / "nolower.png")
    (annotations / "nolower.csv").write_text("trace,x,y\nupper,1,2\nupper,5,2\n")
    Image.fromarray(recording(7)).save(images / "a_nullpoints.png")  # first of the batch
    shapes = [
        {"label": "upper", "points": None, "shape_type": "linestrip"},
        {"label": "lower", "points": [[0, 5], [9, 5]], "shape_type": "linestrip"},
    ]
    (annotations / "a_nullpoints.json").write_text(json.dumps({"shapes": shapes}))
    summary = build_dataset(images, annotations, folders / "data", progress=False)
    assert summary.done == ["rec_a", "rec_b"]
    problems = "\n".join(summary.problems)
    assert len(summary.problems) == 7
    assert "a_nullpoints.json: shape 1 (upper) has points None, not a list" in problems
    assert "broken.png: cannot read it as an image" in problems
    assert "lonely.png: recording without an annotation" in problems
    assert "orphan.csv: an annotation without its recording" in problems
    assert (
        "crossed.csv: the upper trace is below the lower trace in 4 column(s): 6, 7, 8, 9."
        in problems
    )
    assert "outside.csv: 1 point(s) of the upper trace lie outside the 20x60 image" in problems
    assert "nolower.csv: the lower trace is missing" in problems


def test_existing_outputs_need_overwrite_and_stale_windows_go(folders):
    images, annotations, out = folders / "images", folders / "annotations", folders / "data"
    build_dataset(images, annotations, out, progress=False)
    again = build_dataset(images, annotations, out, progress=False)
    assert again.done == [] and len(again.problems) == 2
    assert "already exist; pass --overwrite" in again.problems[0]
    (out / "img" / "rec_a_win9.png").write_bytes(b"stale")
    (out / "mask" / "rec_a_win9.png").write_bytes(b"stale")
    replaced = build_dataset(images, annotations, out, step=20, overwrite=True, progress=False)
    assert replaced.problems == [] and replaced.windows == 4  # starts 5, 25, 31 and rec_b
    assert sorted(p.name for p in (out / "img").iterdir()) == [
        "rec_a_win0.png",
        "rec_a_win1.png",
        "rec_a_win2.png",
        "rec_b_win0.png",
    ]


def test_quality_restricts_windows_and_reports_missing_recordings(folders):
    quality = folders / "quality.csv"
    quality.write_text(
        "Recording,Good-Start,Good-End,Bad-Start,Bad-End\nrec_a,0.1 0.3,0.45 0.6,0.2,0.22\n"
    )
    summary = build_dataset(
        folders / "images",
        folders / "annotations",
        folders / "data",
        quality_csv=quality,
        time_res_s=0.01,
        progress=False,
    )
    # rec_a allowed: span 5..50 within good 10..45 minus bad 20..22 -> 10..19 and 23..45
    assert summary.done == ["rec_a"] and summary.windows == 3
    assert [read_png(folders / "data" / "img" / f"rec_a_win{k}.png").shape for k in range(3)] == [
        (10, 10),
        (20, 20),
        (20, 20),
    ]
    [problem] = summary.problems
    assert problem.startswith(f"{quality}: no row for recording rec_b, so it gets no windows")
    quality.write_text("Recording,Good-Start,Good-End\nrec_a,0.55,0.58\nrec_b,0.55,0.58\n")
    skipped = build_dataset(
        folders / "images",
        folders / "annotations",
        folders / "other",
        quality_csv=quality,
        time_res_s=0.01,
        progress=False,
    )
    assert skipped.problems == [] and skipped.done == [] and len(skipped.skipped) == 2


def test_labelme_made_on_another_image_size_is_a_problem(folders):
    (folders / "annotations" / "rec_b.csv").unlink()
    shapes = [
        {"label": "upper", "points": [[1, 2], [9, 2]], "shape_type": "linestrip"},
        {"label": "lower", "points": [[1, 8], [9, 8]], "shape_type": "linestrip"},
    ]
    content = {"shapes": shapes, "imageHeight": 30, "imageWidth": 60, "imagePath": "rec_b.png"}
    (folders / "annotations" / "rec_b.json").write_text(json.dumps(content))
    summary = make_masks.make_masks(
        folders / "images", folders / "annotations", folders / "m", progress=False
    )
    json_path = folders / "annotations" / "rec_b.json"
    assert summary.problems == [f"{json_path}: annotated on a 30x60 image, but rec_b.png is 20x60."]


def test_whole_command_problems_raise_usage_error(folders):
    with pytest.raises(UsageError, match="images folder .* does not exist"):
        build_dataset(folders / "nope", folders / "annotations", folders / "data")
    with pytest.raises(UsageError, match="--quality needs --time-res"):
        build_dataset(
            folders / "images",
            folders / "annotations",
            folders / "data",
            quality_csv=folders / "q.csv",
        )
    with pytest.raises(UsageError, match="masks would replace the recordings"):
        make_masks.make_masks(folders / "images", folders / "annotations", folders / "images")


@pytest.mark.parametrize("command", [make_masks, make_windows, make_dataset, dicom_to_png])
def test_help_documents_every_flag_with_its_default(command):
    text = command.build_parser().format_help().split("options:")[1]
    blocks = re.split(r"\n  (?=-)", text)[1:]  # one block per option
    assert len(blocks) >= 5
    for block in blocks:
        if not block.startswith("-h"):
            assert "(default" in block or "(required)" in block, block


def test_cli_usage_error_is_one_sentence_and_exit_2(folders, call_main):
    result = call_main(
        make_dataset.main,
        "--no-progress",
        "--images",
        folders / "nope",
        "--annotations",
        folders,
        "--out",
        folders / "d",
    )
    assert result.code == 2
    assert "images folder" in result.err and "does not exist" in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (folders / "d").exists()


def test_cli_lists_recording_problems_and_exits_1(folders, call_main):
    (folders / "annotations" / "rec_b.csv").write_text("trace,x,y\nupper,1,2\nside,3,4\n")
    result = call_main(
        make_masks.main,
        "--no-progress",
        "--images",
        folders / "images",
        "--annotations",
        folders / "annotations",
        "--out",
        folders / "m",
    )
    assert result.code == 1
    assert "rec_b.csv: unknown trace label 'side' on line 3" in result.err
    assert "1 recording(s) done" in result.out
    assert "Traceback" not in result.err
    assert (folders / "m" / "rec_a.png").is_file() and not (folders / "m" / "rec_b.png").exists()


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        (make_windows, ["--masks", "M", "--quality", "q.csv"], "--quality needs --time-res"),
        (make_masks, ["--annotations", "A", "--units", "mm,s"], "--units mm,s needs --depth-res"),
        (make_dataset, ["--annotations", "A", "--step", "0"], "--step must be at least 1"),
        (make_windows, ["--masks", "M"], "the following arguments are required: --out"),
    ],
)
def test_usage_errors_exit_2_with_one_sentence(folders, call_main, command, args, message):
    for name in ("M", "A"):
        (folders / name).mkdir()
    args = [folders / a if a in ("M", "A", "q.csv") else a for a in args]
    argv = ["--images", folders / "images", *args]
    if "required" not in message:
        argv += ["--out", folders / "out"]
    result = call_main(command.main, *argv)
    assert result.code == 2 and message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_dicom_usage_error_names_the_missing_input(tmp_path, capsys):
    code = dicom_to_png.main(["--in", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert (
        code == 2
        and "does not exist; pass a DICOM file or folder with --in" in capsys.readouterr().err
    )


def test_windows_refuse_masks_of_another_size_or_empty(folders):
    masks = folders / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((HEIGHT, WIDTH + 1), np.uint8)).save(masks / "rec_a.png")
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(masks / "rec_b.png")
    summary = make_windows.make_windows(folders / "images", masks, folders / "data", progress=False)
    assert summary.done == [] and summary.windows == 0
    assert "rec_a.png: the mask is 20x61 but the recording is 20x60." in summary.problems[0]
    assert "rec_b.png: the mask has no foreground" in summary.problems[1]


# ---- outputs that cannot be written ------------------------------------------------------


def _inputs(folders, command) -> list:
    if command is make_windows:
        make_masks.make_masks(folders / "images", folders / "annotations", folders / "m")
        return ["--images", folders / "images", "--masks", folders / "m"]
    return ["--images", folders / "images", "--annotations", folders / "annotations"]


@pytest.mark.parametrize("command", [make_masks, make_windows, make_dataset])
def test_an_out_that_cannot_be_created_is_one_sentence(folders, call_main, command):
    (folders / "file").write_text("x")
    out = folders / "file" / "out"
    result = call_main(command.main, "--no-progress", *_inputs(folders, command), "--out", out)
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip() == (
        f"{command.__name__.split('.')[-1]}: error: cannot create the output folder {out} "
        "(Not a directory); pass a folder you can write with --out."
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_out_is_one_sentence(folders, call_main):
    (folders / "ro").mkdir(mode=0o555)
    args = _inputs(folders, make_dataset)
    result = call_main(make_dataset.main, "--no-progress", *args, "--out", folders / "ro" / "d")
    assert result.code == 2 and "Traceback" not in result.err
    assert "cannot create the output folder" in result.err and "(Permission denied)" in result.err


def test_a_full_disk_stops_make_dataset_naming_the_file(folders, call_main, monkeypatch):
    full_disk(monkeypatch, f"{os.sep}img{os.sep}.")
    data = folders / "data"
    args = _inputs(folders, make_dataset)
    result = call_main(make_dataset.main, "--no-progress", *args, "--out", data)
    assert (
        result.code == 1 and "Traceback" not in result.err and "windows written" not in result.out
    )
    assert result.err.strip() == (
        f"make_dataset: error: cannot write {data / 'img' / 'rec_a_win0.png'} (No space left "
        "on device); free space or choose another folder with --out."
    )
    # Nothing half-written: no mask without its image, no temporary file.
    assert sorted(p.name for p in (data / "mask").iterdir()) == []
    assert sorted(p.name for p in (data / "img").iterdir()) == []
