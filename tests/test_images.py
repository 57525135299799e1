"""Reading images: bit depths, hidden files and names used twice."""

import numpy as np
import pytest
from PIL import Image

from dataset import find_pairs
from measurement.recordings import list_recordings
from mmode.images import list_files, read_gray


def test_16_bit_images_are_scaled_by_their_bit_depth_not_their_maximum(tmp_path):
    """Two recordings with the same tissue echo read the same, whatever their brightest pixel."""
    dim = np.full((8, 8), 4112, np.uint16)  # 4112 / 65535 * 255 = 16
    bright = dim.copy()
    bright[0, 0] = 65535
    for name, array in (("dim", dim), ("bright", bright)):
        Image.fromarray(array).save(tmp_path / f"{name}.png")
        np.save(tmp_path / f"{name}.npy", array)
    for suffix in (".png", ".npy"):
        dim_gray = read_gray(tmp_path / f"dim{suffix}")
        bright_gray = read_gray(tmp_path / f"bright{suffix}")
        assert dim_gray[4, 4] == bright_gray[4, 4] == 16, suffix
        assert bright_gray[0, 0] == 255


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_wide_integer_arrays_of_gray_levels_are_read_as_they_are(tmp_path, dtype):
    array = np.arange(64, dtype=dtype).reshape(8, 8) * 4  # 0..252, numpy's default int
    np.save(tmp_path / "levels.npy", array)
    assert np.array_equal(read_gray(tmp_path / "levels.npy"), array.astype(np.uint8))


def test_hidden_files_are_never_read(tmp_path):
    for folder in ("img", "mask"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / folder / "a.png")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / folder / "b.png")
    (tmp_path / "img" / "._a.png").write_bytes(b"macOS resource fork, not an image")
    assert [pair.name for pair in find_pairs(tmp_path)] == ["a", "b"]
    assert [p.name for p in list_recordings(tmp_path / "img")] == ["a.png", "b.png"]


def test_names_used_twice_are_reported_and_both_recordings_listed(tmp_path):
    for name in ("rec.png", "rec.tif", "other.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    found, clashes = list_files(tmp_path)
    assert sorted(found) == ["other", "rec"]
    assert [(kept.name, other.name) for kept, other in clashes] == [("rec.png", "rec.tif")]
    assert [p.name for p in list_recordings(tmp_path)] == ["other.png", "rec.png", "rec.tif"]
