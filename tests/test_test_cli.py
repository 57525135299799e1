"""test.py end to end with a tiny trained model: every output file, and bad inputs."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch
from helpers import TRAINED_DEPTH_RES_MM as DEPTH_RES_MM
from helpers import TRAINED_TIME_RES_S as TIME_RES_S
from PIL import Image

from measurement.beats import BEAT_FIELDS
from measurement.quality import QUALITY_FIELDS
from mmode import images
from mmode.scanner import TYPICAL_DEPTH_RES_MM as DEFAULT_DEPTH_RES_MM
from mmode.scanner import TYPICAL_TIME_RES_S as DEFAULT_TIME_RES_S
from quicknat import QuickNat

RECORDING_FILES = ("mask.png", "overlay.png", "lvid.csv", "beats.csv", "summary.json", "report.png")


# How close the tiny model's measurements of its own training recordings come to the
# truth (48 rows of 0.2 mm, 240 columns of 4 ms, ~10 beats each). Measured over three
# --seed values and 10 to 16 epochs: LVIDd and LVIDs within 0.36 mm (1.8 rows), heart
# rate within 4.3 %, beat count exact (short of 10 epochs, up to 1.1 mm and one beat
# missed). Hence 0.5 mm; 6 %, since a beat is 20-26 columns and an end-diastole one
# column off moves a beat's rate by 4-5 %; and one beat.
LVID_TOLERANCE_MM = 0.5
HEART_RATE_TOLERANCE = 0.06
BEATS_TOLERANCE = 1


def assert_near_truth(measured: dict, truth: dict, name: str) -> None:
    for key in ("lvid_d_mm", "lvid_s_mm"):
        assert measured[key] == pytest.approx(truth[key], abs=LVID_TOLERANCE_MM), (name, key)
    assert measured["heart_rate_bpm"] == pytest.approx(
        truth["heart_rate_bpm"], rel=HEART_RATE_TOLERANCE
    ), name
    assert abs(measured["n_beats"] - truth["n_beats"]) <= BEATS_TOLERANCE, name


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_scores_a_test_set(trained, tmp_path, run_cli):
    data, checkpoint = trained
    code, out, _ = run_cli("-d", data, "-m", checkpoint, "-o", tmp_path)
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    n_windows = len(list((data / "img").iterdir()))
    assert metrics["n_images"] == n_windows
    assert metrics["size"] == 48  # the checkpoint's -p, as -s was not given
    assert metrics["dice"] > 0.8 and metrics["dice_global"] > 0.8
    for key in ("iou", "mse", "loss", "hd95_px"):
        assert np.isfinite(metrics[key])
    assert "dice_global" in out
    rows = read_csv(tmp_path / "per_image.csv")
    assert len(rows) == n_windows
    # The summary is the per-image scores' mean, and Dice over all pixels is their
    # overlaps over their areas.
    for key in ("dice", "iou", "mse", "loss"):
        assert metrics[key] == pytest.approx(np.mean([float(r[key]) for r in rows]), rel=1e-6)
    areas = [float(r["true_px"]) + float(r["pred_px"]) for r in rows]
    overlaps = [float(r["dice"]) * area for r, area in zip(rows, areas, strict=True)]
    assert metrics["dice_global"] == pytest.approx(sum(overlaps) / sum(areas), rel=1e-6)
    # true_px counts the mask's cavity pixels (windows are 48 px, scored at 48 px).
    for row in rows[:3]:
        mask = np.asarray(Image.open(data / "mask" / f"{row['name']}.png")) > 0
        assert int(row["true_px"]) == mask.sum()
    overlays = sorted(p.name for p in (tmp_path / "overlays").iterdir())
    assert len(overlays) == 20
    worst = min(rows, key=lambda r: float(r["dice"]))["name"]
    assert f"worst_01_{worst}.png" in overlays
    # worst_01..worst_10 are the ten lowest Dice, lowest first.
    dice = {r["name"]: float(r["dice"]) for r in rows}
    shown = [dice[name.split("_", 2)[2][:-4]] for name in overlays if name.startswith("worst_")]
    assert shown == sorted(shown) and shown[-1] <= min(sorted(dice.values())[10:])
    assert f"first_01_{rows[0]['name']}.png" in overlays
    overlay = np.asarray(Image.open(tmp_path / "overlays" / overlays[0]))
    assert overlay.shape == (96, 96, 3)


def test_measures_a_folder_and_survives_a_bad_recording(trained, tmp_path, run_cli):
    data, checkpoint = trained
    folder = tmp_path / "in"
    shutil.copytree(data / "recordings", folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"not a png")
    out_dir = tmp_path / "out"
    code, out, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 1
    assert "broken.png" in err and "Traceback" not in err
    names = [f"synth_{i:03d}" for i in range(3)]
    for name in names:
        for suffix in RECORDING_FILES:
            assert (out_dir / f"{name}_{suffix}").is_file(), f"{name}_{suffix}"
    rows = read_csv(out_dir / "summary.csv")
    assert [(r["name"], r["status"]) for r in rows] == [("broken", "failed")] + [
        (name, "ok") for name in names
    ]
    assert "broken.png" in rows[0]["error"]
    assert all(row["volume_formula"] == "scanner" for row in rows[1:])
    assert all(float(row["sv_ul"]) > 0 and float(row["co_ml_min"]) > 0 for row in rows[1:])
    assert not (out_dir / "notes_summary.json").exists()

    name = names[0]
    summary = json.loads((out_dir / f"{name}_summary.json").read_text())
    assert summary["time_res_s"] == TIME_RES_S and summary["depth_res_mm"] == DEPTH_RES_MM
    assert not summary["time_res_assumed"] and not summary["depth_res_assumed"]
    assert summary["volume_formula"] == "scanner"
    for other in names:  # every recording's numbers agree with its truth file
        measured = json.loads((out_dir / f"{other}_summary.json").read_text())
        truth = json.loads((data / "truth" / f"{other}.json").read_text())
        assert_near_truth(measured, truth, other)

    mask = np.asarray(Image.open(out_dir / f"{name}_mask.png")) > 0
    lvid = read_csv(out_dir / f"{name}_lvid.csv")
    assert len(lvid) == mask.shape[1] == 240
    assert float(lvid[10]["time_s"]) == pytest.approx(10 * TIME_RES_S)
    column = next(i for i, row in enumerate(lvid) if row["lvid_mm"])
    rows = float(lvid[column]["lvid_mm"]) / DEPTH_RES_MM  # sub-pixel: within a row of the mask
    assert abs(rows - mask[:, column].sum()) <= 1
    assert float(lvid[column]["volume_ul"]) > 0

    beats = read_csv(out_dir / f"{name}_beats.csv")
    assert tuple(beats[0]) == (*BEAT_FIELDS, *QUALITY_FIELDS)
    assert len(beats) == summary["n_beats"]
    assert {b["accepted"] for b in beats} <= {"true", "false"}
    accepted = [b for b in beats if b["accepted"] == "true"]
    assert len(accepted) == summary["n_beats_accepted"] > 0
    assert all((b["reasons"] == "") == (b["accepted"] == "true") for b in beats)
    lvid_d = np.median([float(b["lvid_d_mm"]) for b in accepted])
    assert lvid_d == pytest.approx(summary["lvid_d_mm"], rel=1e-5)
    for key in ("sv_ul", "co_ml_min"):
        median = np.median([float(b[key]) for b in accepted])
        assert median == pytest.approx(summary[key], rel=1e-5), key
    image = np.asarray(Image.open(folder / f"{name}.png"))
    assert np.asarray(Image.open(out_dir / f"{name}_overlay.png")).shape == (*image.shape, 3)


def test_clinical_volume_formula_scales_every_volume(trained, tmp_path, run_cli):
    data, checkpoint = trained
    recording = data / "recordings" / "synth_000.png"
    outputs = {}
    for formula, flags in (("scanner", []), ("clinical", ["--volume-formula", "clinical"])):
        code, _, _ = run_cli("-d", recording, "-m", checkpoint, "-o", tmp_path / formula, *flags)
        assert code == 0
        summary = json.loads((tmp_path / formula / "synth_000_summary.json").read_text())
        assert summary["volume_formula"] == formula
        lvid = read_csv(tmp_path / formula / "synth_000_lvid.csv")
        beats = read_csv(tmp_path / formula / "synth_000_beats.csv")
        outputs[formula] = summary, lvid, beats

    def clinical_over_scanner(d_mm):
        # 1000 x 7 / (2.4 + D / 10) x (D / 10)^3 over 7 / (2.4 + D) x D^3.
        return (2.4 + d_mm) / (2.4 + d_mm / 10)

    (summary, lvid, beats), (clinical_summary, clinical_lvid, clinical_beats) = outputs.values()
    measured = [(s, c) for s, c in zip(lvid, clinical_lvid, strict=True) if s["lvid_mm"]]
    assert measured
    for scanner_row, clinical_row in measured:
        assert clinical_row["lvid_mm"] == scanner_row["lvid_mm"]
        ratio = clinical_over_scanner(float(scanner_row["lvid_mm"]))
        assert float(clinical_row["volume_ul"]) == pytest.approx(
            ratio * float(scanner_row["volume_ul"]), rel=1e-4
        )
    assert beats and len(clinical_beats) == len(beats)
    for scanner_beat, clinical_beat in zip(beats, clinical_beats, strict=True):
        for size in ("d", "s"):
            ratio = clinical_over_scanner(float(scanner_beat[f"lvid_{size}_mm"]))
            assert float(clinical_beat[f"volume_{size}_ul"]) == pytest.approx(
                ratio * float(scanner_beat[f"volume_{size}_ul"]), rel=1e-4
            )
        for beat in (scanner_beat, clinical_beat):
            sv_ul = float(beat["volume_d_ul"]) - float(beat["volume_s_ul"])
            assert float(beat["sv_ul"]) == pytest.approx(sv_ul, rel=1e-4)
            co_ml_min = sv_ul * float(beat["heart_rate_bpm"]) / 1000
            assert float(beat["co_ml_min"]) == pytest.approx(co_ml_min, rel=1e-4)
    # The clinical form reads mouse hearts larger and their EF higher.
    assert clinical_summary["sv_ul"] > 1.5 * summary["sv_ul"]
    assert clinical_summary["ef_percent"] > summary["ef_percent"]
    assert clinical_summary["fs_percent"] == summary["fs_percent"]


def test_single_image_without_sidecar_assumes_resolution_loudly(trained, tmp_path, run_cli):
    data, checkpoint = trained
    shutil.copy(data / "recordings" / "synth_001.png", tmp_path / "rec.png")
    code, _, err = run_cli("-d", tmp_path / "rec.png", "-m", checkpoint, "-o", tmp_path)
    assert "ASSUMING" in err
    # The typical resolution assumed is far from this tiny recording's (0.2 mm, 4 ms), so
    # its diameters and rates leave physiology, and no beat passes the quality checks.
    assert code == 1 and "rec: no beat passed the quality checks" in err
    assert "out_of_range" in err
    summary = json.loads((tmp_path / "rec_summary.json").read_text())
    assert summary["time_res_assumed"] and summary["depth_res_assumed"]
    assert summary["time_res_s"] == DEFAULT_TIME_RES_S
    assert summary["depth_res_mm"] == DEFAULT_DEPTH_RES_MM
    assert not (tmp_path / "summary.csv").exists()


def test_flags_override_the_sidecar(trained, tmp_path, run_cli):
    data, checkpoint = trained
    recording = data / "recordings" / "synth_002.png"
    code, _, err = run_cli("-d", recording, "-m", checkpoint, "-o", tmp_path, "--time-res", 0.002)
    assert code == 0 and "ASSUMING" not in err
    summary = json.loads((tmp_path / "synth_002_summary.json").read_text())
    assert summary["time_res_s"] == 0.002 and summary["depth_res_mm"] == DEPTH_RES_MM
    assert float(read_csv(tmp_path / "synth_002_lvid.csv")[1]["time_s"]) == 0.002


def test_unreadable_sidecar_fails_that_recording(trained, tmp_path, run_cli):
    data, checkpoint = trained
    shutil.copy(data / "recordings" / "synth_000.png", tmp_path / "rec.png")
    (tmp_path / "rec.json").write_text("{broken")
    code, _, err = run_cli("-d", tmp_path / "rec.png", "-m", checkpoint, "-o", tmp_path)
    assert code == 1 and "rec.json" in err and "Traceback" not in err


BAD_RESOLUTIONS = {
    "depth_res_huge": ["--depth-res", 1e300],
    "time_res_nan": ["--time-res", "nan"],
    "time_res_ms": ["--time-res", 0.83],  # milliseconds given as seconds
    "size_huge": ["-s", 100000],  # 40 GB per window
}


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_data", "does not exist"),
        ("no_checkpoint", "does not exist"),
        ("corrupt_checkpoint", "not a readable PyTorch checkpoint"),
        ("bare_state_dict", "num_filters=8"),
        ("threshold", "--threshold"),
        (
            "depth_res_huge",
            "--depth-res must be a number above 0 and at most 1 mm per row, got 1e+300.",
        ),
        (
            "time_res_nan",
            "--time-res must be a number above 0 and at most 0.1 s per column, got nan.",
        ),
        (
            "time_res_ms",
            "--time-res must be a number above 0 and at most 0.1 s per column, got 0.83.",
        ),
        ("size_huge", "-s must be 16 to 1024 pixels, got 100000."),
        ("dicom", "dicom_to_png"),
        ("empty_folder", "holds no images"),
        ("output_is_file", "is a file"),
        ("mask_missing_for_image", "without a mask"),
    ],
)
def test_bad_inputs_end_with_one_sentence_and_status_2(trained, tmp_path, run_cli, case, message):
    data, checkpoint = trained
    recording = data / "recordings" / "synth_000.png"
    argv = ["-d", recording, "-m", checkpoint, "-o", tmp_path / "out"]
    if case == "no_data":
        argv[1] = tmp_path / "missing.png"
    elif case == "no_checkpoint":
        argv[3] = tmp_path / "missing.pt"
    elif case == "corrupt_checkpoint":
        argv[3] = tmp_path / "bad.pt"
        argv[3].write_bytes(b"garbage")
    elif case == "bare_state_dict":
        torch.save(QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3}).state_dict(),
                   tmp_path / "bare.pt")  # fmt: skip
        argv[3] = tmp_path / "bare.pt"
    elif case == "threshold":
        argv += ["--threshold", 2]
    elif case in BAD_RESOLUTIONS:
        argv += BAD_RESOLUTIONS[case]
    elif case == "dicom":
        argv[1] = tmp_path / "scan.dcm"
        argv[1].write_bytes(b"\0" * 200)
    elif case == "empty_folder":
        argv[1] = tmp_path / "empty"
        argv[1].mkdir()
    elif case == "output_is_file":
        argv[5] = tmp_path / "taken"
        argv[5].write_text("")
    elif case == "mask_missing_for_image":
        argv[1] = tmp_path / "set"
        shutil.copytree(data, argv[1], ignore=shutil.ignore_patterns("recordings", "truth"))
        next((argv[1] / "mask").iterdir()).unlink()
    code, _, err = run_cli(*argv)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_foreign_checkpoint_loads_with_the_quicknat_flags(trained, tmp_path, run_cli):
    data, checkpoint = trained
    state = torch.load(checkpoint, weights_only=True)["net_state_dict"]
    torch.save({"net_state_dict": state}, tmp_path / "foreign.pt")
    recording = data / "recordings" / "synth_000.png"
    argv = ["-d", recording, "-m", tmp_path / "foreign.pt", "-o", tmp_path, "-s", 48]
    # A bare state_dict carries no normalisation: the flag gives the one it was trained with.
    code, _, _ = run_cli(*argv, "--num-filters", 8, "--kernel", 3, "--input-norm", "unit")
    assert code == 0
    foreign = json.loads((tmp_path / "synth_000_summary.json").read_text())
    code, _, _ = run_cli("-d", recording, "-m", checkpoint, "-o", tmp_path, "--overwrite")
    assert code == 0
    ours = json.loads((tmp_path / "synth_000_summary.json").read_text())
    # The same numbers; each names the checkpoint that measured.
    assert (foreign.pop("model"), ours.pop("model")) == (
        str(tmp_path / "foreign.pt"),
        str(checkpoint),
    )
    assert foreign == ours


def test_scores_a_one_pair_test_set_in_bf16_and_fp32(trained, tmp_path, run_cli):
    data, checkpoint = trained
    one = tmp_path / "one"
    (one / "img").mkdir(parents=True)
    (one / "mask").mkdir()
    name = sorted((data / "img").iterdir())[0].name
    shutil.copy(data / "img" / name, one / "img" / name)
    shutil.copy(data / "mask" / name, one / "mask" / name)
    dice = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        code, _, _ = run_cli("-d", one, "-m", checkpoint, "-o", out, "--precision", precision)
        assert code == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n_images"] == 1
        dice[precision] = metrics["dice"]
    assert abs(dice["fp32"] - dice["bf16"]) < 0.02


def test_an_over_size_image_is_named_and_the_other_recordings_measured(
    trained, tmp_path, run_cli, monkeypatch
):
    data, checkpoint = trained
    folder, out_dir = tmp_path / "in", tmp_path / "out"
    shutil.copytree(data / "recordings", folder)
    Image.fromarray(np.zeros((48, 480), np.uint8)).save(folder / "huge.png")  # read first
    monkeypatch.setattr(images, "MAX_PIXELS", 48 * 240)  # the good recordings' size
    code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 1 and "Traceback" not in err
    message = f"{folder / 'huge.png'} is 480 x 48 pixels, more than the 0.01152 million"
    assert f"error: {message}" in err
    rows = read_csv(out_dir / "summary.csv")
    assert [(r["name"], r["status"]) for r in rows] == [("huge", "failed")] + [
        (f"synth_{i:03d}", "ok") for i in range(3)
    ]


def test_subjects_pool_each_mouse_and_name_the_strays(trained, tmp_path, run_cli):
    data, checkpoint = trained
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(
        "recording,mouse_id,genotype\nsynth_000,M1,ko\nsynth_001.png,M1,ko\n"
        "synth_002,M2,wt\nghost,M3,wt\n"
    )
    out_dir = tmp_path / "out"
    code, _, err = run_cli(
        "-d", data / "recordings", "-m", checkpoint, "-o", out_dir, "--subjects", subjects
    )
    assert code == 0
    assert "names 1 recording(s) that are not among the measured ones: ghost." in err
    rows = {row["mouse_id"]: row for row in read_csv(out_dir / "per_mouse.csv")}
    assert sorted(rows) == ["M1", "M2"]
    m1 = rows["M1"]
    assert (m1["n_recordings"], m1["genotype"]) == ("2", "ko")
    beats = [b for n in ("synth_000", "synth_001") for b in read_csv(out_dir / f"{n}_beats.csv")]
    kept = [b for b in beats if b["accepted"] == "true"]
    assert int(m1["n_beats_accepted"]) == len(kept) and int(m1["n_beats"]) == len(beats)
    for key in ("lvid_d_mm", "lvid_s_mm", "ef_percent"):
        expected = np.median([float(b[key]) for b in kept])
        assert float(m1[key]) == pytest.approx(expected, rel=1e-5), key
    assert (out_dir / "index.html").is_file()


@pytest.mark.parametrize(
    "text, message",
    [
        ("recording,genotype\nsynth_000,ko\n", "has no column named mouse_id"),
        ("recording,mouse_id\nsynth_000,M1\nsynth_000,M2\n", "names recording synth_000 twice"),
        (
            "recording,mouse_id\nrec_1,M1\n",
            "names none of the 3 recording(s) to measure (it "
            "has 'rec_1', they are e.g. 'synth_000')",
        ),
    ],
)
def test_a_bad_subjects_file_stops_before_anything_is_written(
    trained, tmp_path, run_cli, text, message
):
    data, checkpoint = trained
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(text)
    out_dir = tmp_path / "out"
    code, _, err = run_cli(
        "-d", data / "recordings", "-m", checkpoint, "-o", out_dir, "--subjects", subjects
    )
    assert code == 2 and message in err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out_dir.exists()


def test_earlier_results_are_kept_unless_overwrite_which_leaves_nothing_stale(
    trained, tmp_path, run_cli
):
    data, checkpoint = trained
    folder, out_dir = tmp_path / "in", tmp_path / "out"
    shutil.copytree(data / "recordings", folder)
    assert run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)[0] == 0
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}
    (out_dir / "notes.txt").write_text("the lab's own file")
    code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 2 and "holds the results of an earlier run" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir() if p.name != "notes.txt"} == before
    for suffix in ("png", "json"):  # one recording fewer: its old files must not stay
        (folder / f"synth_002.{suffix}").unlink()
    assert run_cli("-d", folder, "-m", checkpoint, "-o", out_dir, "--overwrite")[0] == 0
    assert not list(out_dir.glob("synth_002_*"))
    assert (out_dir / "notes.txt").read_text() == "the lab's own file"
    assert [row["name"] for row in read_csv(out_dir / "summary.csv")] == ["synth_000", "synth_001"]


def test_exported_annotations_give_back_the_measured_mask(trained, tmp_path, run_cli):
    from preprocessing import make_masks

    data, checkpoint = trained
    out_dir, folder = tmp_path / "out", tmp_path / "in"
    folder.mkdir()
    for suffix in ("png", "json"):
        shutil.copy(data / "recordings" / f"synth_000.{suffix}", folder)
    recording = folder / "synth_000.png"
    assert run_cli("-d", recording, "-m", checkpoint, "-o", out_dir, "--export-annotations")[0] == 0
    masks = {}
    for form in ("csv", "labelme"):
        annotations = out_dir / "annotations" / form
        assert [p.stem for p in annotations.iterdir()] == ["synth_000"]
        argv = ["--images", folder, "--annotations", annotations,
                "--out", tmp_path / form, "--no-progress"]  # fmt: skip
        assert make_masks.main([str(a) for a in argv]) == 0
        masks[form] = np.asarray(Image.open(tmp_path / form / "synth_000.png")) > 0
    measured = np.asarray(Image.open(out_dir / "synth_000_mask.png")) > 0
    span = masks["csv"].any(axis=0)
    assert span.sum() > measured.shape[1] / 2  # most of the recording was accepted
    for form, mask in masks.items():
        inter = (mask & measured)[:, span].sum()
        union = (mask | measured)[:, span].sum()
        assert inter / union >= 0.98, form


def test_an_output_folder_in_use_or_unwritable_is_refused_before_measuring(
    trained, tmp_path, run_cli, monkeypatch
):
    from runtime import files

    data, checkpoint = trained
    out_dir = tmp_path / "out"
    lock = files.lock_folder(out_dir, "test.py", "-o")  # another run writing there
    code, _, err = run_cli("-d", data / "recordings", "-m", checkpoint, "-o", out_dir)
    lock.release()
    assert code == 2 and f"{out_dir} is in use by another test.py (pid " in err
    assert err.count("\n") == 1 and list(out_dir.iterdir()) == []

    def read_only(*args, **kwargs):  # root writes anywhere, so chmod cannot show this
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "TemporaryFile", read_only)
    code, _, err = run_cli("-d", data / "recordings", "-m", checkpoint, "-o", out_dir)
    assert code == 2 and "cannot write to the output folder" in err and "(Permission denied)" in err
    assert "Traceback" not in err and list(out_dir.iterdir()) == []


def copy_recordings(data, folder, names=("synth_000", "synth_001", "synth_002")):
    """The trained fixture's recordings `names` (image and sidecar) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in ("png", "json"):
            shutil.copy(data / "recordings" / f"{name}.{suffix}", folder)
    return folder


def error_lines(err):
    return [line for line in err.splitlines() if "error: " in line]


def test_overwrite_removes_only_the_files_the_earlier_run_wrote(trained, tmp_path, run_cli):
    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in"), tmp_path / "out"
    argv = ["-d", folder, "-m", checkpoint, "-o", out_dir, "--export-annotations"]
    assert run_cli(*argv)[0] == 0
    labelme = out_dir / "annotations" / "labelme"
    exported = sorted(p.name for p in labelme.iterdir())
    assert exported == ["synth_000.json", "synth_001.json", "synth_002.json"]
    # The user's own files: a folder of theirs in annotations/, a file in test.py's folder,
    # and a file named like a result of a recording this folder never measured.
    (out_dir / "annotations" / "mine").mkdir()
    (out_dir / "annotations" / "mine" / "notes.txt").write_text("the lab's notes")
    (labelme / "reference.json").write_text("{}")
    (out_dir / "pilot_mask.png").write_bytes(b"the lab's own mask")
    for suffix in ("png", "json"):  # one recording fewer: its old files must not stay
        (folder / f"synth_002.{suffix}").unlink()
    code, _, err = run_cli(*argv, "--overwrite")
    assert code == 0, err
    assert (out_dir / "annotations" / "mine" / "notes.txt").read_text() == "the lab's notes"
    assert (labelme / "reference.json").read_text() == "{}"
    assert (out_dir / "pilot_mask.png").read_bytes() == b"the lab's own mask"
    assert sorted(p.name for p in labelme.iterdir()) == [
        "reference.json", "synth_000.json", "synth_001.json",
    ]  # fmt: skip
    assert not list(out_dir.glob("synth_002_*"))
    assert not (out_dir / "annotations" / "csv" / "synth_002.csv").exists()

    # An exported annotation corrected in LabelMe since: --overwrite would delete the work.
    edited = labelme / "synth_001.json"
    later = (out_dir / "index.html").stat().st_mtime_ns + 10**9
    os.utime(edited, ns=(later, later))
    before = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    code, _, err = run_cli(*argv, "--overwrite")
    assert code == 2 and "Traceback" not in err
    assert err == (
        f"error: {edited} changed after test.py exported it, and --overwrite would delete the "
        "correction; move it away (e.g. to train on it), or choose another folder with -o.\n"
    )
    assert {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()} == before


def test_a_file_of_the_users_that_this_run_would_write_is_refused(trained, tmp_path, run_cli):
    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in"), tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "synth_001_mask.png").write_bytes(b"the lab's own mask")
    for flags in ([], ["--overwrite"]):
        code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir, *flags)
        assert code == 2 and err == (
            f"error: {out_dir / 'synth_001_mask.png'} is not a result of an earlier test.py "
            "run, but this run would write it; move it away, or choose another folder with -o.\n"
        )
        assert sorted(p.name for p in out_dir.iterdir()) == ["synth_001_mask.png"]
    assert (out_dir / "synth_001_mask.png").read_bytes() == b"the lab's own mask"


@pytest.mark.parametrize("inside", [None, "results"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_folder_that_is_or_lies_in_the_input_folder_is_refused(
    trained, tmp_path, run_cli, inside, overwrite
):
    data, checkpoint = trained
    folder = copy_recordings(data, tmp_path / "in")
    (folder / "synth_000_mask.png").write_bytes(b"the lab's own mask")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out_dir = folder if inside is None else folder / inside
    flags = ["--overwrite"] if overwrite else []
    code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir, *flags)
    where = "the input folder" if inside is None else "inside the input folder"
    assert code == 2 and err == (
        f"error: -o {out_dir} is {where} {folder}, and test.py keeps its results apart from "
        "the recordings, so that none is taken for a recording; choose an -o outside it.\n"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_recording_among_the_earlier_results_in_the_output_is_refused(trained, tmp_path, run_cli):
    data, checkpoint = trained
    recording, out_dir = data / "recordings" / "synth_000.png", tmp_path / "out"
    assert run_cli("-d", recording, "-m", checkpoint, "-o", out_dir)[0] == 0
    overlay = out_dir / "synth_000_overlay.png"
    before = overlay.read_bytes()
    code, _, err = run_cli("-d", overlay, "-m", checkpoint, "-o", out_dir, "--overwrite")
    assert code == 2 and err == (
        f"error: {overlay} is a result of an earlier run in -o {out_dir}, which this run would "
        "replace; copy the recordings to measure out of it first, or choose another folder "
        "with -o.\n"
    )
    assert overlay.read_bytes() == before


def test_recordings_of_the_same_name_are_refused_before_anything_is_measured(
    trained, tmp_path, run_cli
):
    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in", ["synth_000"]), tmp_path / "out"
    image = Image.open(folder / "synth_000.png")
    image.save(folder / "synth_000.tif")
    image.save(folder / "other.png")
    code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 2 and err == (
        f"error: {folder} holds recordings of the same name (synth_000.png and synth_000.tif), "
        "and test.py names every output by the file name without its extension; rename one "
        "of each.\n"
    )
    assert not out_dir.exists()


def test_a_recording_without_a_complete_beat_fails(trained, tmp_path, run_cli):
    """A uniform image and a transposed recording: no beat, so failed, not 'measured'."""
    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in", ["synth_000"]), tmp_path / "out"
    image = np.asarray(Image.open(folder / "synth_000.png"))
    Image.fromarray(np.full_like(image, 120)).save(folder / "uniform.png")
    Image.fromarray(np.ascontiguousarray(image.T)).save(folder / "transposed.png")
    for name in ("uniform", "transposed"):
        shutil.copy(folder / "synth_000.json", folder / f"{name}.json")
    code, out, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 1 and "Traceback" not in err
    assert "Measured 1 of 3 recording(s); 2 failed (named above)" in out
    rows = {row["name"]: row for row in read_csv(out_dir / "summary.csv")}
    assert {name: row["status"] for name, row in rows.items()} == {
        "synth_000": "ok", "transposed": "failed", "uniform": "failed",
    }  # fmt: skip
    uniform = (
        "uniform: no complete heart beat was found (the model found no cavity in any "
        "column); check that it is an M-mode recording through the LV and its resolution "
        "(0.004 s per column, from uniform.json; 0.2 mm per row, from uniform.json)."
    )
    assert rows["uniform"]["error"] == uniform
    assert rows["transposed"]["error"].startswith(
        "transposed: no complete heart beat was found (fewer than two end-diastoles in its "
    )
    # Each failure is printed once, as it happens, and not listed again at the end.
    assert error_lines(err) == [f"error: {rows[n]['error']}" for n in ("transposed", "uniform")]
    assert err.count(uniform) == 1
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    assert page.count('<tr class="failed">') == 2
    summary = json.loads((out_dir / "uniform_summary.json").read_text())
    assert summary["n_beats"] == 0 and summary["error"] in uniform


def interrupted_cli(run_cli, *argv):
    """run_cli, failing the test (not ending the session) when the Ctrl-C escapes test.py."""
    try:
        return run_cli(*argv)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped test.py's main")


def test_ctrl_c_mid_recording_leaves_it_absent_and_the_finished_ones_listed(
    trained, tmp_path, run_cli, monkeypatch
):
    from measurement import recordings

    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in"), tmp_path / "out"
    real_save_report, reports = recordings.save_report, []

    def save_report(path, *args, **kwargs):  # Ctrl-C while the second report is drawn
        reports.append(path)
        if len(reports) == 2:
            raise KeyboardInterrupt
        real_save_report(path, *args, **kwargs)

    monkeypatch.setattr(recordings, "save_report", save_report)
    # One process: the third recording is not begun (with workers it may be, and is kept).
    argv = ["-d", folder, "-m", checkpoint, "-o", out_dir, "--export-annotations", "--workers", "1"]
    code, _, err = interrupted_cli(run_cli, *argv)
    assert code == 130 and "Traceback" not in err
    assert error_lines(err) == [
        f"error: interrupted; the recordings measured so far (1 of 3) are in {out_dir}, "
        "listed in summary.csv and index.html; run again with --overwrite to measure them all."
    ]
    for suffix in RECORDING_FILES:
        assert (out_dir / f"synth_000_{suffix}").is_file()
    assert not list(out_dir.glob("synth_001*")) and not list(out_dir.glob("synth_002*"))
    assert [p.stem for p in (out_dir / "annotations" / "labelme").iterdir()] == ["synth_000"]
    assert [row["name"] for row in read_csv(out_dir / "summary.csv")] == ["synth_000"]
    assert "synth_001" not in (out_dir / "index.html").read_text(encoding="utf-8")
    monkeypatch.setattr(recordings, "save_report", real_save_report)
    code, _, _ = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir, "--overwrite")
    assert code == 0  # the interrupted folder is an earlier run's, replaced as a whole


def test_ctrl_c_before_measuring_is_one_line(trained, tmp_path, run_cli, monkeypatch, measure_cli):
    data, checkpoint = trained

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(measure_cli, "load_model", interrupted)
    argv = ["-d", data / "recordings", "-m", checkpoint, "-o", tmp_path / "out"]
    code, _, err = interrupted_cli(run_cli, *argv)
    assert code == 130
    assert err == (
        "error: interrupted before any recording was measured; run again to measure them.\n"
    )


def test_a_dim_16_bit_recording_is_named_as_such(trained, tmp_path, run_cli):
    """A 12-bit image in a 16-bit PNG reads nearly black: measured, it gets a warning;
    failed, its error says why."""
    data, checkpoint = trained
    folder, out_dir = copy_recordings(data, tmp_path / "in", []), tmp_path / "out"
    image = np.asarray(Image.open(data / "recordings" / "synth_000.png")).astype(np.uint16)
    Image.fromarray(image * 16).save(folder / "twelve.png")  # 12 bits of 16
    Image.fromarray(np.full_like(image, 2000)).save(folder / "blank.png")
    for name in ("twelve", "blank"):
        shutil.copy(data / "recordings" / "synth_000.json", folder / f"{name}.json")
    code, _, err = run_cli("-d", folder, "-m", checkpoint, "-o", out_dir)
    assert code == 1
    note = "where its 16-bit file holds up to 65535, so it reads nearly black (a "
    # Whatever the model makes of them (a uniform image fails; the 12-bit one may measure,
    # with a warning, or fail), each one's line on stderr ends with the note on its depth.
    blank = [line for line in err.splitlines() if line.startswith("error: blank: no ")]
    assert len(blank) == 1
    assert blank[0].endswith(
        f"; its brightest pixel is 2000 {note}11-bit image saved as 16 bits?); save it as 8 "
        "bits, or scaled to the full 16 bits."
    )
    brightest = int(image.max()) * 16
    twelve = [line for line in err.splitlines() if "twelve: " in line]
    assert len(twelve) == 1
    assert f"its brightest pixel is {brightest} {note}12-bit image" in twelve[0]


def test_no_motion_names_the_depth_resolution_used(trained, tmp_path, run_cli):
    """A depth resolution 20 times too fine shrinks the heart's motion below a beat's."""
    data, checkpoint = trained
    recording = data / "recordings" / "synth_000.png"
    code, _, err = run_cli("-d", recording, "-m", checkpoint, "-o", tmp_path, "--depth-res", 0.01)
    assert code == 1
    assert error_lines(err) == [
        "error: synth_000: no cardiac motion found (LVID changes by less than 0.1 mm); at the "
        "0.01 mm per row used (from --depth-res) that is 10 rows, so check that the "
        "recording shows the LV in M-mode and that its depth resolution is right."
    ]
