"""run.py against careless users and failing machines (issue 14)."""

import errno
import os
import re
import tempfile

import pytest
from helpers import TINY

import run
from runtime import files


def tiny_run(call_main, data, out, *extra):
    return call_main(run.main, "-d", data, "-o", out, *TINY, *extra)


class _FullDisk:
    """A file whose first write puts a few bytes on disk and then finds the disk full."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data) -> int:
        self.file.write(data[:5])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.file, name)


def full_disk(monkeypatch, part: str) -> None:
    """Every atomic write (runtime.files) whose temporary file's path holds `part` fails as
    on a full disk."""
    real_mkstemp, real_fdopen, names = tempfile.mkstemp, os.fdopen, {}

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        names[fd] = name
        return fd, name

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        return _FullDisk(file) if part in names.pop(fd, "") else file

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(files.os, "fdopen", fdopen)


def one_error_line(result) -> str:
    """The one line of stderr, an error; progress bars (tqdm's, redrawn with \\r) aside."""
    assert "Traceback" not in result.err, result.err
    lines = [line for line in re.split(r"[\r\n]", result.err) if line.strip()]
    lines = [line for line in lines if not re.match(r"epoch \d+: ", line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


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


# ---- flags ------------------------------------------------------------------------


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
