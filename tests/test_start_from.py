"""--start-from: a new run on other data from a trained model's weights, taking its model
settings, classes and -p; a fresh split, optimizer and epoch count (the fine-tuning loop)."""

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_band_data
from helpers import TINY, load_checkpoint, same_weights
from PIL import Image

import run
import trainer
from mmode.labels import WALL_LABELS, write_labels
from quicknat import QuickNat
from training.config import build_parser, parse_config


def renamed(folder: Path, prefix: str) -> Path:
    """`folder`'s pairs renamed PREFIX_NAME, so that no name is shared with another data set."""
    for sub in ("img", "mask"):
        for path in sorted((folder / sub).iterdir()):
            path.rename(path.with_name(f"{prefix}_{path.name}"))
    return folder


def write_wall_data(root: Path, n: int = 6, seed: int = 0) -> Path:
    """Band data turned into four-class label data: septum above the cavity, wall below."""
    write_band_data(root, n=n, size=40, seed=seed)
    for path in (root / "mask").iterdir():
        cavity = np.asarray(Image.open(path)) > 0
        rows = np.flatnonzero(cavity[:, 0])
        mask = np.zeros(cavity.shape, np.uint8)
        mask[max(rows[0] - 5, 0) : rows[0]] = 1
        mask[cavity] = 2
        mask[rows[-1] + 1 : rows[-1] + 6] = 3
        Image.fromarray(mask).save(path)
    write_labels(root)
    return root


def names(data: Path) -> set[str]:
    return {p.stem for p in (data / "img").iterdir()}


def prepare(*argv: object) -> trainer.Trainer:
    """The Trainer run.py would build for these flags, before its first step (writes nothing)."""
    return trainer.prepare_training(parse_config([str(a) for a in argv]))


def weights(started: trainer.Trainer) -> dict:
    """A Trainer's model weights, as same_weights compares them."""
    return {"net_state_dict": started.model.state_dict()}


@pytest.fixture(scope="module")
def trained_a(tmp_path_factory) -> Path:
    """best.pt of one epoch on data set A (pairs rec0..rec5) with 8 filters, 3x3, 32 px."""
    root = tmp_path_factory.mktemp("a")
    data = write_band_data(root / "data", n=6, seed=0)
    assert run.main(["-d", str(data), "-o", str(root / "run"), *TINY, "-e", "1"]) == 0
    return root / "run" / "best.pt"


@pytest.fixture
def data_b(tmp_path) -> Path:
    """Data set B: other images, and names A does not have."""
    return renamed(write_band_data(tmp_path / "b", n=6, seed=1), "new")


def test_a_new_run_on_other_data_starts_from_the_weights_with_the_checkpoints_settings(
    tmp_path, trained_a, data_b, capsys
):
    a = load_checkpoint(trained_a)
    out = tmp_path / "out"
    started = prepare("-d", data_b, "-o", out, "--start-from", trained_a, "-b", "4", "-e", "1")
    # No model flag and no -p typed: all of the model's configuration and its size are A's.
    assert started.model.config.to_dict() == a["model_config"]
    assert started.config.im_size == a["im_size"] == 32
    assert same_weights(weights(started), a)
    assert started.progress.epoch == 0 and started.progress.best_dice == -1
    assert not started.optimizer.state  # a fresh Adam: no moments carried over
    assert not out.exists()
    assert "Starting a new run from the weights of" in capsys.readouterr().out

    assert started.run_training() == 0
    b = load_checkpoint(out / "last.pt")
    assert b["epoch"] == 1 and len(b["history"]) == 1
    split = b["split"]
    assert set(split["train"]) | set(split["val"]) == names(data_b)
    assert not set(split["train"]) & set(split["val"]) and split["seed"] == 0
    assert b["model_config"] == a["model_config"] and b["im_size"] == 32
    assert b["args"]["start_from"] == str(trained_a)
    assert not same_weights(a, b)  # it trained


def test_the_same_seed_gives_the_same_run_and_its_resume_is_exact(tmp_path, trained_a, data_b):
    start = ["-d", str(data_b), "--start-from", str(trained_a), "-b", "4", "--augment"]
    assert run.main([*start, "-o", str(tmp_path / "twice"), "-e", "2"]) == 0
    assert run.main([*start, "-o", str(tmp_path / "again"), "-e", "2"]) == 0
    twice = load_checkpoint(tmp_path / "twice" / "last.pt")
    assert same_weights(twice, load_checkpoint(tmp_path / "again" / "last.pt"))

    assert run.main([*start, "-o", str(tmp_path / "split"), "-e", "1"]) == 0
    last = tmp_path / "split" / "last.pt"
    resume = ["-d", str(data_b), "-o", str(tmp_path / "split"), "-b", "4", "--augment"]
    assert run.main([*resume, "-p", "32", "-f", str(last), "-e", "1"]) == 0
    resumed = load_checkpoint(last)
    assert resumed["epoch"] == 2 and same_weights(twice, resumed)
    assert resumed["history"][1]["val_loss"] == twice["history"][1]["val_loss"]
    assert resumed["args"]["start_from"] == str(trained_a)  # the origin stays on record


def test_differing_model_flags_and_size_are_warned_about(tmp_path, trained_a, data_b, capsys):
    started = prepare(
        "-d", data_b, "-o", tmp_path / "out", "--start-from", trained_a,
        "--num-filters", "16", "--kernel", "3", "-p", "48",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "num_filters=8 (flag: 16)" in err and "kernel" not in err.split("used:")[1]
    assert "trained on 32 px windows but -p is 48" in err
    assert started.model.config.num_filters == 8 and started.config.im_size == 48


def test_another_tools_weights_start_a_run_with_the_model_flags(tmp_path, data_b):
    model = QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3})
    path = tmp_path / "foreign.pt"
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    started = prepare("-d", data_b, "-o", tmp_path / "out", "--start-from", path, *TINY)
    assert same_weights(weights(started), {"net_state_dict": model.state_dict()})
    assert started.config.im_size == 32 and started.progress.epoch == 0


def test_the_classes_come_with_a_four_class_checkpoint_and_binary_data_is_refused(
    tmp_path, call_main, data_b
):
    walls = write_wall_data(tmp_path / "walls_a")
    assert run.main(["-d", str(walls), "-o", str(tmp_path / "a"), *TINY, "-e", "1"]) == 0
    source = tmp_path / "a" / "last.pt"
    walls_b = renamed(write_wall_data(tmp_path / "walls_b", seed=1), "new")
    out = tmp_path / "b"
    assert run.main(["-d", str(walls_b), "-o", str(out), "--start-from", str(source)]) == 0
    b = load_checkpoint(out / "last.pt")
    assert b["labels"] == list(WALL_LABELS) and b["model_config"]["num_class"] == 4
    assert set(b["split"]["train"]) | set(b["split"]["val"]) == names(walls_b)

    refused = call_main(run.main, "-d", data_b, "-o", tmp_path / "c", "--start-from", source)
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
    assert "trained on the classes background, septum, cavity, posterior_wall" in refused.err
    assert "holds binary cavity masks" in refused.err
    assert "start from it with data of those classes, or afresh without --start-from" in (
        refused.err
    )
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("with-f", "-f resumes a run and --start-from starts a new one"),
        ("missing", "does not exist; check the path."),
        ("text-file", "is not a PyTorch checkpoint (a text file?)"),
        ("no-weights", "holds no model weights"),
        ("into-its-own-folder", "already holds last.pt, best.pt from an earlier run"),
    ],
)
def test_problems_are_one_sentence_exit_2_and_nothing_written(
    tmp_path, call_main, trained_a, data_b, case, message
):
    out = tmp_path / "out"
    source = {
        "missing": tmp_path / "nope.pt",
        "text-file": tmp_path / "notes.txt",
        "no-weights": tmp_path / "numbers.pt",
    }.get(case, trained_a)
    (tmp_path / "notes.txt").write_text("epoch 3: dice 0.9\n")
    torch.save({"epoch": 3, "dice": 0.9}, tmp_path / "numbers.pt")
    argv = ["-d", data_b, "-o", out, *TINY, "--start-from", source]
    if case == "with-f":
        argv += ["-f", trained_a]
    elif case == "into-its-own-folder":
        argv[3] = out = trained_a.parent
    before = sorted(p.stat().st_mtime_ns for p in trained_a.parent.iterdir())
    result = call_main(run.main, *argv)
    assert result.code == 2, result.err
    assert message in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    if case == "into-its-own-folder":
        assert sorted(p.stat().st_mtime_ns for p in out.iterdir()) == before
    else:
        assert not out.exists()


def test_the_resume_command_of_a_start_from_run_resumes_it_with_f_alone():
    config = parse_config(["-d", "B", "-o", "out", "--start-from", "a/best.pt", "-p", "32"])
    command = config.resume_command(Path("out/interrupted.pt"), epochs=3)
    resumed = parse_config(shlex.split(command)[2:])
    assert "--start-from" not in command
    assert resumed.load == "out/interrupted.pt" and resumed.start_from is None
    assert resumed.im_size == 32
    resumed.check()


def test_help_names_the_flag_and_that_p_comes_from_the_checkpoint(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--start-from CHECKPOINT" in text
    assert "with --start-from, the checkpoint's size (default: 256)" in text
    assert parse_config(["-d", "D"]).im_size == 256
    assert parse_config(["-d", "D", "--start-from", "x.pt"]).im_size is None
