"""Reading images and masks; writing files atomically with ordinary permissions, one
WriteError when that fails; and folder locks."""

import errno
import os

import numpy as np
import pytest
from PIL import Image

from mmode.images import ImageReadError, read_gray, read_mask
from runtime import files
from runtime.errors import SetupError, WriteError


def test_empty_npy_is_an_image_read_error(tmp_path):
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.npy: cannot read it as an image"):
        read_gray(path)


def test_palette_image_reads_as_gray_values_and_palette_mask_as_indices(tmp_path):
    indices = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(sum(([255 - i] * 3 for i in range(256)), []))  # index i is gray 255 - i
    path = tmp_path / "p.png"
    image.save(path)
    assert read_gray(path).tolist() == [[255, 254], [253, 252]]
    mask, values = read_mask(path)
    assert mask.tolist() == [[False, True], [True, True]] and values.tolist() == [0, 1, 2, 3]


def test_atomic_files_get_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "a.txt").stat().st_mode & 0o777
    assert mode == (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_is_one_write_error_naming_the_file_and_leaves_the_old_one(
    tmp_path, monkeypatch
):
    import torch

    target = tmp_path / "last.pt"
    target.write_bytes(b"the last good one")

    def fsync(fd: int) -> None:  # the disk fills up as the data is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(WriteError) as caught:
        files.torch_save({"w": torch.zeros(3)}, target)
    assert str(caught.value) == f"cannot write {target} (No space left on device)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert caught.value.advice("-o").endswith("; free space or choose another folder with -o.")
    assert target.read_bytes() == b"the last good one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_folder_lock_is_held_once_and_freed_on_release(tmp_path):
    folder = tmp_path / "out"
    lock = files.lock_folder(folder, "run.py", "-o")
    assert (folder / ".lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(SetupError, match=rf"in use by another run.py \(pid {os.getpid()}\)"):
        files.lock_folder(folder, "run.py", "-o")
    lock.release()
    assert not (folder / ".lock").exists()
    files.lock_folder(folder, "run.py", "-o").release()


def test_a_folder_lock_under_a_file_is_one_sentence(tmp_path):
    from runtime.errors import SetupError

    (tmp_path / "file").write_text("x")
    with pytest.raises(SetupError, match="cannot write to the output folder .*file/out .*with -o"):
        files.lock_folder(tmp_path / "file" / "out", "run.py", "-o")
