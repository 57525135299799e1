"""Reading images and masks, and writing files atomically with ordinary permissions."""

import os

import numpy as np
import pytest
from PIL import Image

from mmode.images import ImageReadError, read_gray, read_mask
from runtime import files


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
