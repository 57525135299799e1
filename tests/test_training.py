"""run.py, trainer.py and dataset.py: data checks, outputs, checkpoints, resuming, signals."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, TINY, load_checkpoint, same_weights
from PIL import Image

import run
import trainer
from dataset import DataError, augment_batch, find_pairs, load_pairs, split_names
from quicknat import FORMAT_VERSION, QuickNat
from runtime import files
from training import outputs
from training.config import CPU_MODEL_FLAGS, build_parser

CHECKPOINT_KEYS = {
    "epoch", "net_state_dict", "optimizer", "loss", "dice", "mse", "best_dice", "best_mse",
    "model_config", "args", "split", "history", "rng_state", "format_version",
}  # fmt: skip


def train(data: Path, out: Path, *extra: str) -> int:
    return run.main(["-d", str(data), "-o", str(out), *TINY, *extra])


def signal_running_training(data: Path, out: Path, signum: int, *extra: str) -> tuple[int, str]:
    """Start run.py, send `signum` once its first last.pt exists; (exit code, stderr).

    A process of its own: what a signal does to a process is the point of these tests.
    """
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "-d", str(data), "-o", str(out), *TINY, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


# ---- data ---------------------------------------------------------------------------


def test_pairs_by_stem_with_mask_suffixes_and_formats(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    gray = np.full((16, 16), 90, np.uint8)
    Image.fromarray(gray).save(tmp_path / "img" / "a.png")
    Image.fromarray(gray).save(tmp_path / "img" / "b.jpg")
    Image.fromarray(gray).save(tmp_path / "img" / "c.tif")
    Image.fromarray(gray).save(tmp_path / "img" / "d.bmp")
    np.save(tmp_path / "img" / "e.npy", gray)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:9] = 1
    Image.fromarray(mask).save(tmp_path / "mask" / "a.png")
    Image.fromarray(mask * 255).save(tmp_path / "mask" / "b_m.png")
    Image.fromarray(np.stack([mask * 200] * 3, axis=2)).save(tmp_path / "mask" / "c_mask.png")
    palette = Image.fromarray(mask).convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.save(tmp_path / "mask" / "d.png")
    np.save(tmp_path / "mask" / "e.npy", mask.astype(bool))

    pairs = find_pairs(tmp_path)
    assert {p.name: p.mask.name for p in pairs} == {
        "a": "a.png", "b": "b_m.png", "c": "c_mask.png", "d": "d.png", "e": "e.npy",
    }  # fmt: skip
    data = load_pairs(pairs, 16)
    assert data.images.dtype == torch.uint8 and data.images.shape == (5, 1, 16, 16)
    expected = torch.from_numpy(mask.astype(np.uint8))
    for i in range(5):
        assert torch.equal(data.masks[i, 0], expected), data.names[i]
    assert data.warnings == []


def test_rgb_image_becomes_luminance(tmp_path, make_data):
    make_data(tmp_path, n=2)
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 100
    Image.fromarray(rgb).save(tmp_path / "img" / "rec0.png")
    data = load_pairs(find_pairs(tmp_path), 40)
    assert int(data.images[data.names.index("rec0")].max()) == round(100 * 0.2989)


def test_masks_with_more_than_two_values_warn_once_naming_the_file(tmp_path, make_data):
    make_data(tmp_path, n=3)
    mask = np.zeros((40, 40), np.uint8)
    mask[5:10], mask[10:20] = 128, 255
    Image.fromarray(mask).save(tmp_path / "mask" / "rec1.png")
    data = load_pairs(find_pairs(tmp_path), 40)
    assert len(data.warnings) == 1
    assert "rec1.png [0, 128, 255]" in data.warnings[0]
    assert int(data.masks[data.names.index("rec1")].sum()) == 15 * 40


def test_resize_keeps_masks_binary_and_images_antialiased(tmp_path, make_data):
    make_data(tmp_path, n=2, size=40)
    data = load_pairs(find_pairs(tmp_path), 32)
    assert set(data.masks.unique().tolist()) == {0, 1}
    source = torch.from_numpy(np.array(Image.open(tmp_path / "img" / "rec0.png")))[None].float()
    from torchvision.transforms.v2 import functional as TF

    expected = TF.resize(source, [32, 32], antialias=True).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(data.images[0], expected)


def test_split_is_deterministic_per_seed():
    names = [f"n{i}" for i in range(20)]
    a = split_names(names, 20, seed=1)
    assert a == split_names(list(reversed(names)), 20, seed=1)
    assert a != split_names(names, 20, seed=2)
    assert len(a["val"]) == 4 and sorted(a["train"] + a["val"]) == sorted(names)


def test_data_problems_are_listed_together(tmp_path, make_data):
    make_data(tmp_path, n=4)
    for i in range(12):
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "img" / f"lonely{i}.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "mask" / "orphan.png")
    with pytest.raises(DataError) as err:
        find_pairs(tmp_path)
    message = str(err.value)
    assert "images without a mask" in message and "and 2 more" in message
    assert "masks without an image" in message and "orphan.png" in message


def test_augmentation_moves_image_and_mask_together_and_never_flips_vertically():
    torch.manual_seed(0)
    masks = torch.zeros(16, 1, 32, 32)
    masks[:, :, 4:12, 6:20] = 1  # top part, off-centre in time
    images = 0.2 + 0.6 * masks
    out_images, out_masks = augment_batch(images, masks)
    assert set(out_masks.unique().tolist()) <= {0.0, 1.0}
    rows = torch.arange(32.0)[None, :, None]
    for image, mask in zip(out_images, out_masks, strict=True):
        fg = mask[0] > 0
        assert image[0][fg].mean() > image[0][~fg].mean() + 0.2  # still aligned
        assert (rows[0] * fg).sum() / fg.sum() < 12  # the top stays on top
    # Columns 6-19 become 12-25 when time is reversed: both kinds must occur.
    flipped = [bool(m[0, 8, 23]) and not bool(m[0, 8, 8]) for m in out_masks]
    assert any(flipped) and not all(flipped)


# ---- command line errors --------------------------------------------------------------


def _bad_checkpoints(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save(QuickNat({"num_filters": 16, "kernel_h": 3, "kernel_w": 3}).state_dict(), other)
    return {"corrupt": corrupt, "other": other}


@pytest.mark.parametrize(
    "case, message",
    [
        ("no-data", "does not exist"),
        ("data-is-file", "is a file; pass the folder that holds img/ and mask/."),
        ("no-mask-dir", "mask missing"),
        ("v-zero", "-v must be between 0 and 100"),
        ("v-100", "-v must be between 0 and 100"),
        ("b-zero", "-b must be at least 1"),
        ("e-zero", "-e must be at least 1"),
        ("p-odd", "-p must be a multiple of 16"),
        ("p-huge", "-p must be at most 1024 pixels, got 100000"),
        ("p-stretched-huge", "-p 1024 with --time-stretch 2 makes windows of 1024 x 2048"),
        ("l-inf", "-l must be a finite positive number, got inf."),
        ("l-nan", "-l must be a finite positive number, got nan."),
        ("too-few", "too few to hold out"),
        ("one-pair", "at least 2 needed"),
        ("size-mismatch", "but its mask"),
        ("unreadable", "cannot read it as an image (cannot identify image file"),
        ("output-is-file", "is a file"),
        ("output-unwritable", "cannot write to the output folder"),
        ("ckpt-missing", "does not exist; check the path"),
        ("ckpt-corrupt", "not a readable PyTorch checkpoint"),
        ("ckpt-other-architecture", "other.pt: the weights do not fit"),
        ("existing-run", "already holds last.pt"),
    ],
)
def test_user_errors_exit_2_with_one_clear_message(tmp_path, call_main, case, message, make_data):
    data = make_data(n=4)
    out = tmp_path / "out"
    ckpts = _bad_checkpoints(tmp_path)
    args = ["-d", str(data), "-o", str(out), *TINY]
    if case == "no-data":
        args[1] = str(tmp_path / "nowhere")
    elif case == "no-mask-dir":
        os.rename(data / "mask", tmp_path / "elsewhere")
    elif case == "data-is-file":
        args[1] = str(data / "img" / "rec0.png")
    elif case in ("v-zero", "v-100", "b-zero", "e-zero", "p-odd", "p-huge", "l-inf", "l-nan"):
        flag, value = {"v-zero": ("-v", "0"), "v-100": ("-v", "100"), "b-zero": ("-b", "0"),
                       "e-zero": ("-e", "0"), "p-odd": ("-p", "40"), "p-huge": ("-p", "100000"),
                       "l-inf": ("-l", "inf"), "l-nan": ("-l", "nan")}[case]  # fmt: skip
        args += [flag, value]
    elif case == "p-stretched-huge":
        args += ["-p", "1024", "--time-stretch", "2"]
    elif case == "too-few":
        args += ["-v", "99"]
    elif case == "one-pair":
        for i in range(1, 4):
            (data / "img" / f"rec{i}.png").unlink()
            (data / "mask" / f"rec{i}.png").unlink()
    elif case == "size-mismatch":
        Image.fromarray(np.zeros((20, 40), np.uint8)).save(data / "mask" / "rec2.png")
    elif case == "unreadable":
        (data / "img" / "rec3.png").write_bytes(b"\x89PNG broken")
    elif case == "output-is-file":
        out.write_text("x")
    elif case == "output-unwritable":
        (tmp_path / "file").write_text("x")
        args[3] = str(tmp_path / "file" / "out")
    elif case == "ckpt-missing":
        args += ["-f", str(tmp_path / "nope.pt")]
    elif case == "ckpt-corrupt":
        args += ["-f", str(ckpts["corrupt"])]
    elif case == "ckpt-other-architecture":
        args += ["-f", str(ckpts["other"])]
    elif case == "existing-run":
        out.mkdir()
        (out / "last.pt").write_bytes(b"earlier run")
    result = call_main(run.main, *args)
    assert result.code == 2, result.err
    assert message in result.err
    assert "Traceback" not in result.err and ".." not in result.err
    assert len(result.err.strip().splitlines()) == 1
    if case == "existing-run":
        assert (out / "last.pt").read_bytes() == b"earlier run"
    elif case == "output-is-file":
        assert out.read_text() == "x"
    else:
        assert not out.exists()


def test_pickle_that_runs_code_is_refused_and_not_run(
    tmp_path, call_main, make_data, evil_checkpoint
):
    data = make_data(n=4)
    evil, marker = evil_checkpoint
    result = call_main(run.main, "-d", data, "-o", tmp_path / "out", *TINY, "-f", evil)
    assert result.code == 2
    assert "refused to load" in result.err and "Traceback" not in result.err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


# ---- training runs ------------------------------------------------------------------


def test_one_epoch_writes_every_output(tmp_path, make_data):
    data = make_data()
    out = tmp_path / "out"
    assert train(data, out, "-e", "1", "--save-every", "1") == 0
    for name in ("last.pt", "best.pt", "epoch_1.pt", "metrics.csv", "curves.png", "split.json"):
        assert (out / name).is_file(), name
    assert (out / "samples" / "epoch_001.png").is_file()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1
    assert {"train_loss", "val_loss", "val_dice", "val_iou", "val_mse", "lr", "seconds"} <= set(
        rows[0]
    )
    checkpoint = load_checkpoint(out / "last.pt")
    assert CHECKPOINT_KEYS <= set(checkpoint)
    assert checkpoint["epoch"] == 1 and checkpoint["model_config"]["num_filters"] == 8
    split = json.loads((out / "split.json").read_text())
    assert checkpoint["split"]["val"] == split["val"] and len(split["val"]) == 2
    assert not list(out.glob(".*.tmp"))


def test_best_checkpoint_follows_validation_dice(tmp_path, make_data):
    data = make_data()
    out = tmp_path / "out"
    assert train(data, out, "-e", "4", "-l", "0.01") == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    best_row = max(rows, key=lambda r: (float(r["val_dice"]), -float(r["val_loss"])))
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == int(best_row["epoch"])
    assert best["best_dice"] == pytest.approx(float(best_row["val_dice"]))


def test_resume_is_exact(tmp_path, make_data):
    data = make_data()
    assert train(data, tmp_path / "a", "-e", "2", "--augment") == 0
    assert train(data, tmp_path / "b", "-e", "1", "--augment") == 0
    last = tmp_path / "b" / "last.pt"
    assert train(data, tmp_path / "b", "-e", "1", "--augment", "-f", str(last)) == 0
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(last)
    assert b["epoch"] == 2
    assert same_weights(a, b)
    assert a["history"][1]["val_loss"] == b["history"][1]["val_loss"]


def test_stored_model_config_wins_and_changed_v_is_reported(tmp_path, capsys, make_data):
    data = make_data()
    out = tmp_path / "out"
    assert train(data, out, "-e", "1") == 0
    capsys.readouterr()
    resumed = ["-f", str(out / "last.pt"), "-e", "1", "-v", "40"]
    argv = ["-d", str(data), "-o", str(out), "-p", "32", "--num-filters", "16", *resumed]
    assert run.main(argv) == 0
    captured = capsys.readouterr()
    assert "num_filters=8 (flag: 16)" in captured.err
    assert "Reusing the checkpoint's split" in captured.out
    assert load_checkpoint(out / "last.pt")["model_config"]["num_filters"] == 8


@pytest.mark.parametrize("form", ["original", "bare-ddp"])
def test_foreign_checkpoints_start_at_epoch_one(tmp_path, capsys, form, make_data):
    data = make_data()
    model = QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3})
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 32, 32)).mean().backward()
    optimizer.step()
    if form == "original":
        obj = {
            "epoch": 7,
            "net_state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
        }
    else:
        obj = {"module." + k: v for k, v in model.state_dict().items()}
    path = tmp_path / "foreign.pt"
    torch.save(obj, path)
    assert train(data, tmp_path / "out", "-e", "1", "-f", str(path)) == 0
    said = capsys.readouterr().out
    expected = "weights and optimizer state" if form == "original" else "weights from"
    assert expected in said
    assert load_checkpoint(tmp_path / "out" / "last.pt")["epoch"] == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, capsys, make_data
):
    data = make_data()
    out = tmp_path / "out"
    real_loss, calls = trainer.segmentation_loss, {"n": 0}

    def loss_that_breaks(logits, target, kind):
        calls["n"] += int(torch.is_grad_enabled())
        loss = real_loss(logits, target, kind)
        return loss * float("nan") if calls["n"] == 4 else loss  # epoch 2, step 2

    monkeypatch.setattr(trainer, "segmentation_loss", loss_that_breaks)
    assert train(data, out, "-e", "3") == 1
    assert "epoch 2, step 2" in capsys.readouterr().err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


def test_tensorboard_flag_without_the_package_says_so(tmp_path, capsys, make_data):
    if outputs.importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed here")
    data = make_data()
    assert train(data, tmp_path / "out", "-e", "1", "--tensorboard") == 0
    assert "pip install tensorboard" in capsys.readouterr().err


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "last.pt"
    files.torch_save({"epoch": 1}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("crash halfway through the write")

    with pytest.raises(RuntimeError):
        files.torch_save({"epoch": 2, "big": torch.zeros(10_000), "x": Unsaveable()}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_sigterm_writes_interrupted_checkpoint_that_resumes_exactly(tmp_path, make_data):
    data = make_data()
    out = tmp_path / "out"
    epochs = "10"
    returncode, stderr = signal_running_training(
        data, out, signal.SIGTERM, "-e", epochs, "--augment"
    )
    assert returncode == 143, stderr
    assert "Resume with" in stderr and "Traceback" not in stderr
    interrupted = load_checkpoint(out / "interrupted.pt")
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1
    done = interrupted["epoch"]
    assert done < int(epochs)

    # The printed command resumes exactly where an uninterrupted run ends.
    command = stderr.split("Resume with:")[1].split()
    assert command[:2] == ["python", "run.py"]
    assert command[command.index("-e") + 1] == str(int(epochs) - done)
    assert run.main(command[2:]) == 0
    assert train(data, tmp_path / "straight", "-e", epochs, "--augment") == 0
    assert same_weights(
        load_checkpoint(out / "last.pt"), load_checkpoint(tmp_path / "straight" / "last.pt")
    )


def test_help_and_docs_name_the_model_size_measured_for_cpu_only_labs(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"On a CPU without a GPU, train with {CPU_MODEL_FLAGS}" in text
    speed, readme = (
        " ".join((ROOT / page).read_text().split()) for page in ("docs/speed.md", "README.md")
    )
    assert f"Train with **`{CPU_MODEL_FLAGS}`** instead" in speed
    assert f"On a CPU without a GPU, add `{CPU_MODEL_FLAGS}`" in readme  # the workflow's step 4
    assert "Model sizes for CPU-only labs" in (ROOT / "bench" / "RESULTS.md").read_text()


def test_help_documents_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-h"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--datapath", "--epochs", "--batch-size", "--im-size", "--learning-rate",
                 "--load", "--validation", "--output-path", "--seed", "--device", "--workers",
                 "--augment", "--loss", "--num-filters", "--kernel", "--se", "--dropout",
                 "--precision", "--channels-last", "--compile", "--cache-limit", "--save-every",
                 "--tensorboard", "--overwrite"):  # fmt: skip
        assert flag in text, flag
    defaults = (
        "1",
        "256",
        "0.001",
        "20.0",
        "./checkpoints",
        "64",
        "5",
        "NONE",
        "0.2",
        "4.0",
        "bce",
    )
    for default in defaults:
        assert f"(default: {default})" in text, default


def test_exact_mask_name_wins_and_ambiguous_names_are_reported(tmp_path):
    gray = np.full((16, 16), 90, np.uint8)
    for folder in ("img", "mask"):
        (tmp_path / folder).mkdir()
        for name in ("A", "A_m", "B"):
            Image.fromarray(gray).save(tmp_path / folder / f"{name}.png")
    assert {p.name: p.mask.name for p in find_pairs(tmp_path)} == {
        "A": "A.png", "A_m": "A_m.png", "B": "B.png",
    }  # fmt: skip
    Image.fromarray(gray).save(tmp_path / "img" / "B.jpg")
    (tmp_path / "mask" / "A.png").unlink()  # now A and A_m both fit A_m.png
    with pytest.raises(DataError) as err:
        find_pairs(tmp_path)
    assert "same name in" in str(err.value) and "B.jpg and B.png" in str(err.value)
    assert "A_m.png (A.png, A_m.png)" in str(err.value)


def test_empty_masks_are_counted_and_allowed(tmp_path, make_data):
    make_data(tmp_path, n=3)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "mask" / "rec1.png")
    data = load_pairs(find_pairs(tmp_path), 32)
    assert data.warnings == ["1 of 3 masks are entirely empty (allowed)"]


@pytest.mark.parametrize("loss", ["dice", "bce+dice"])
def test_dice_losses_train(tmp_path, loss, make_data):
    data = make_data()
    assert train(data, tmp_path / "out", "-e", "1", "--loss", loss) == 0
    assert load_checkpoint(tmp_path / "out" / "last.pt")["args"]["loss"] == loss


def test_foreign_optimizer_keeps_this_runs_learning_rate_or_is_replaced(
    tmp_path, capsys, make_data
):
    data = make_data()
    model = QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3})
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model(torch.rand(2, 1, 32, 32)).mean().backward()
    optimizer.step()
    path = tmp_path / "foreign.pt"
    torch.save({"net_state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    assert train(data, tmp_path / "out", "-e", "1", "-l", "0.0002", "-f", str(path)) == 0
    saved = load_checkpoint(tmp_path / "out" / "last.pt")["optimizer"]["param_groups"][0]
    assert saved["lr"] == 0.0002 and saved["fused"] is True

    other = QuickNat({"num_filters": 8, "kernel_h": 5, "kernel_w": 5})
    torch.save(
        {"net_state_dict": model.state_dict(),
         "optimizer": torch.optim.Adam(other.parameters()).state_dict() | {
             "state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(8, 1, 5, 5),
                           "exp_avg_sq": torch.zeros(8, 1, 5, 5)}}}},
        path,
    )  # fmt: skip
    capsys.readouterr()
    assert train(data, tmp_path / "out2", "-e", "1", "-f", str(path)) == 0
    assert "does not fit this model; starting a fresh one" in capsys.readouterr().err


def test_sigint_stops_with_exit_130_and_a_resumable_checkpoint(tmp_path, make_data):
    data = make_data()
    out = tmp_path / "out"
    returncode, stderr = signal_running_training(data, out, signal.SIGINT, "-e", "50")
    assert returncode == 130, stderr
    assert "Stopped by SIGINT" in stderr and "Traceback" not in stderr
    assert load_checkpoint(out / "interrupted.pt")["format_version"] == FORMAT_VERSION
