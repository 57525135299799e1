"""run.py against careless users and failing machines: its output folder's history and
lock, --overwrite, a full disk, unparseable flags, unreadable data, Ctrl-C."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TINY, full_disk, load_checkpoint, same_weights

import dataset
import run
from dataset import FileChanged, StreamingPairs, find_pairs, load_pairs
from runtime import files
from runtime.errors import SetupError
from trainer import prepare_training
from training.config import parse_config
from training.data import batch_loader


def tiny_run(call_main, data, out, *extra):
    return call_main(run.main, "-d", data, "-o", out, *TINY, *extra)


def one_error_line(result) -> str:
    """The one line of stderr, an error; progress bars (tqdm's, redrawn with \\r) aside."""
    assert "Traceback" not in result.err, result.err
    lines = [line for line in re.split(r"[\r\n]", result.err) if line.strip()]
    lines = [line for line in lines if not re.match(r"epoch \d+: ", line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


# ---- the history of a folder ---------------------------------------------------------


@pytest.mark.parametrize("older", ["epoch_1.pt", "best.pt"])
def test_resuming_an_older_checkpoint_into_its_folder_is_refused(
    tmp_path, call_main, make_data, older
):
    data, out = make_data(n=4), tmp_path / "out"
    assert tiny_run(call_main, data, out, "-e", "2", "--save-every", "1").code == 0
    if older == "best.pt":  # best.pt older than last.pt: validation got worse in epoch 2
        shutil.copy(out / "epoch_1.pt", out / "best.pt")
    before = {n: (out / n).read_bytes() for n in ("last.pt", "best.pt", "metrics.csv")}
    result = tiny_run(call_main, data, out, "-f", out / older)
    line = one_error_line(result)
    assert result.code == 2
    assert line == (
        f"error: {out / older} (after epoch 1) is older than {out / 'last.pt'} (after epoch 2), "
        f"and resuming it into {out} would overwrite that newer history; resume from "
        f"{out / 'last.pt'}, choose another folder with -o, or pass --overwrite to rewind "
        f"{out} to it."
    )
    assert {n: (out / n).read_bytes() for n in before} == before
    assert not (out / ".lock").exists()
    # Elsewhere it is a new run's start; last.pt itself resumes in place.
    assert tiny_run(call_main, data, tmp_path / "other", "-f", out / older).code == 0
    assert tiny_run(call_main, data, out, "-f", out / "last.pt").code == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


def test_overwrite_rewinds_deliberately_and_clears_only_the_runs_files(
    tmp_path, call_main, make_data
):
    data, out = make_data(n=4), tmp_path / "out"
    assert tiny_run(call_main, data, out, "-e", "2", "--save-every", "1").code == 0
    stale = ["interrupted.pt", "epoch_7.pt", "samples/epoch_009.png", ".best.pt.x1.tmp",
             "tensorboard/events.out.tfevents.1.host"]  # fmt: skip
    kept = ["notes.txt", "samples/mine.png", "tensorboard/README"]
    for name in stale + kept:
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_bytes(b"x")
    result = tiny_run(call_main, data, out, "-f", out / "epoch_1.pt", "--overwrite")
    assert result.code == 0, result.err
    assert [n for n in stale if (out / n).exists()] == []
    assert all((out / n).read_bytes() == b"x" for n in kept)
    assert (out / "epoch_1.pt").is_file()  # the checkpoint it resumed from
    assert not (out / "epoch_2.pt").exists() and not (out / "samples/epoch_001.png").exists()
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_a_second_run_on_a_folder_in_use_stops_naming_the_holder(tmp_path, call_main, make_data):
    data, out = make_data(n=4), tmp_path / "out"
    lock = files.lock_folder(out, "run.py", "-o")  # as a first run.py holds it
    try:
        result = tiny_run(call_main, data, out)
    finally:
        lock.release()
    assert result.code == 2
    assert one_error_line(result) == (
        f"error: {out} is in use by another run.py (pid {os.getpid()}); wait for it or "
        "choose another folder with -o."
    )
    assert list(out.iterdir()) == []
    assert tiny_run(call_main, data, out).code == 0
    assert not (out / ".lock").exists()


def test_the_lock_is_taken_when_writing_starts_not_when_preparing(tmp_path, make_data):
    data, out = make_data(n=4), tmp_path / "out"
    config = parse_config(["-d", str(data), "-o", str(out), *TINY])
    first, second = prepare_training(config), prepare_training(config)  # as bench does
    assert not out.exists()
    lock = files.lock_folder(out, "run.py", "-o")  # another run.py started meanwhile
    with pytest.raises(SetupError, match=rf"{out} is in use by another run.py"):
        first.run_training()
    lock.release()
    assert second.run_training() == 0 and not (out / ".lock").exists()


def test_a_lock_dies_with_its_process(tmp_path):
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys; from pathlib import Path; "
         "from runtime.files import lock_folder; lock_folder(Path(sys.argv[1]), 'x', '-o'); "
         "os.kill(os.getpid(), signal.SIGKILL)", str(tmp_path)],
        cwd=ROOT,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL and (tmp_path / ".lock").exists()
    files.lock_folder(tmp_path, "run.py", "-o").release()  # the stale file blocks nobody


# ---- write errors -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["last.pt", "metrics.csv"])
def test_a_full_disk_is_one_sentence_naming_the_file_and_keeps_the_last_good_one(
    tmp_path, call_main, make_data, monkeypatch, name
):
    data, out = make_data(n=4), tmp_path / "out"
    assert tiny_run(call_main, data, out).code == 0
    before = (out / name).read_bytes()
    full_disk(monkeypatch, f"/.{name}.")
    result = tiny_run(call_main, data, out, "-f", out / "last.pt")
    assert result.code == 1
    assert one_error_line(result) == (
        f"error: cannot write {out / name} (No space left on device); free space or choose "
        "another folder with -o."
    )
    assert (out / name).read_bytes() == before
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()


# ---- flags and data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "cpu:abc"], "error: --device 'cpu:abc' is not a device name; use auto, "
         "cpu, cuda, cuda:N or mps."),
        (["--seed", "12345678901234567890"], "error: --seed must be a whole number from 0 to "
         "4294967295, got 12345678901234567890."),
        (["--seed", "-1"], "error: --seed must be a whole number from 0 to 4294967295, got -1."),
    ],
)  # fmt: skip
def test_unusable_device_and_seed_are_one_sentence(tmp_path, call_main, make_data, flags, message):
    result = tiny_run(call_main, make_data(n=4), tmp_path / "out", *flags)
    assert result.code == 2 and one_error_line(result) == message
    assert not (tmp_path / "out").exists()


def test_an_unreadable_mask_folder_is_one_sentence(tmp_path, call_main, make_data, monkeypatch):
    data = make_data(n=4)
    mask = data / "mask"
    if os.name == "posix" and os.geteuid() == 0:  # root reads any folder: refuse as chmod 0 would
        listed = Path.iterdir

        def iterdir(self):
            if self == mask:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return listed(self)

        monkeypatch.setattr(Path, "iterdir", iterdir)
    mask.chmod(0)
    try:
        result = tiny_run(call_main, data, tmp_path / "out")
    finally:
        mask.chmod(0o755)
    assert result.code == 2
    assert one_error_line(result) == (
        f"error: cannot read {mask} (Permission denied); make it readable or pass another -d."
    )
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_importing_is_one_line_and_exit_130():
    # Ctrl-C lands while torch is being imported: an import hook raises it there.
    code = (
        "import builtins, runpy, sys\n"
        "real = builtins.__import__\n"
        "def hook(name, *args, **kwargs):\n"
        "    if name == 'torch':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
        "sys.argv = ['run.py', '-h']\n"
        "runpy.run_path('run.py', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr == "error: interrupted before training started; nothing was written.\n"


def test_another_window_size_on_resume_is_said(tmp_path, call_main, make_data):
    data, out = make_data(n=4), tmp_path / "out"
    assert tiny_run(call_main, data, out).code == 0
    result = tiny_run(call_main, data, out, "-f", out / "last.pt", "-p", "48")
    assert result.code == 0
    assert (
        f"warning: {out / 'last.pt'} was trained on 32 px windows but -p is 48, so training "
        "goes on at 48 px and its metrics from epoch 2 on are not comparable to before; pass "
        "-p 32 to keep the checkpoint's scale." in result.err
    )


# ---- files that change while streamed ------------------------------------------------

STREAM = ["--cache-limit", "0.000001"]  # too small for any data: every pair read from disk


def test_a_streamed_image_that_turns_to_garbage_saves_interrupted_pt_and_resumes_exactly(
    tmp_path, call_main, make_data, monkeypatch
):
    data = make_data(n=12)  # 10 training pairs: 3 steps, and 10 + 10 + 2 reads per epoch
    common = ["-e", "3", "--augment", *STREAM]
    assert tiny_run(call_main, data, tmp_path / "straight", *common).code == 0

    real_read_pair, calls, broken = dataset.read_pair, 0, {}

    def read_pair(pair, *args):  # the 27th read (epoch 2, second batch) finds garbage
        nonlocal calls
        calls += 1
        if calls == 27:
            broken[pair.image] = pair.image.read_bytes()
            pair.image.write_bytes(b"not a png any more")
        return real_read_pair(pair, *args)

    monkeypatch.setattr(dataset, "read_pair", read_pair)
    out = tmp_path / "out"
    result = tiny_run(call_main, data, out, *common)
    monkeypatch.undo()
    assert result.code == 1 and "Traceback" not in result.err, result.err
    [(image, original)] = broken.items()
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert errors[0].startswith(
        f"error: {image} changed or became unreadable during training (cannot read it as an image ("
    )
    assert errors[0].endswith(
        f"); restore it and resume from interrupted.pt, or remove the pair {image.stem} and "
        "start a new run."
    )
    interrupted = load_checkpoint(out / "interrupted.pt")
    assert (interrupted["epoch"], interrupted["progress"]["step"]) == (1, 1)
    assert f"Stopped in epoch 2; saved {out / 'interrupted.pt'}. Resume with:" in result.err

    image.write_bytes(original)  # restored: the printed command goes on as if nothing happened
    command = result.err.split("Resume with:")[1].split()
    assert command[:2] == ["python", "run.py"]
    assert run.main(command[2:]) == 0
    assert same_weights(
        load_checkpoint(out / "last.pt"), load_checkpoint(tmp_path / "straight" / "last.pt")
    )


def test_a_vanished_mask_in_a_loader_worker_is_the_same_one_sentence(tmp_path, make_data):
    pairs = find_pairs(make_data(n=4))
    streamed = StreamingPairs(load_pairs(pairs, 32, keep=False), [p.name for p in pairs])
    pairs[2].mask.unlink()
    loader = batch_loader(streamed, [[0, 1], [2, 3]], workers=1, seed=0, pin_memory=False)
    with pytest.raises(FileChanged) as caught:
        list(loader)
    assert str(caught.value) == (
        f"{pairs[2].mask} changed or became unreadable during training (cannot read it as an "
        f"image ([Errno 2] No such file or directory: '{pairs[2].mask}')); restore it and "
        "resume from interrupted.pt, or remove the pair rec2 and start a new run."
    )
