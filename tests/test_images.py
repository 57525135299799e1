"""Reading images: bit depths, signed and non-finite pixels, hidden files, names used twice
and the pixel budget."""

import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from dataset import find_pairs
from measurement.recordings import list_recordings
from mmode import images
from mmode.images import ImageReadError, list_files, read_gray, read_mask, read_recording
from runtime.errors import SetupError


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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_a_nan_or_infinite_pixel_refuses_the_image(tmp_path, bad, suffix):
    array = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    array[3, 5] = bad
    path = tmp_path / f"rec{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)
    message = f"{path}: 1 pixel(s) are NaN or infinite; save the image with finite values."
    for read in (read_gray, read_mask):
        with pytest.raises(ImageReadError, match=re.escape(message)):
            read(path)


@pytest.mark.parametrize(
    ("dtype", "levels", "gray"),
    [
        (np.int16, [-32768, -1, 0, 32767], [0, 127, 128, 255]),
        (np.int8, [-128, -1, 0, 127], [0, 127, 128, 255]),
        (np.int64, [-100, 0, 100, 155], [0, 100, 200, 255]),  # no depth: from its minimum
    ],
)
def test_signed_images_are_shifted_not_clipped_to_black(tmp_path, dtype, levels, gray):
    np.save(tmp_path / "rec.npy", np.array([levels], dtype=dtype))
    assert read_gray(tmp_path / "rec.npy").tolist() == [gray]


def test_hidden_files_are_never_read(tmp_path):
    for folder in ("img", "mask"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / folder / "a.png")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / folder / "b.png")
    (tmp_path / "img" / "._a.png").write_bytes(b"macOS resource fork, not an image")
    assert [pair.name for pair in find_pairs(tmp_path)] == ["a", "b"]
    assert [p.name for p in list_recordings(tmp_path / "img")] == ["a.png", "b.png"]


def test_names_used_twice_are_reported_and_refused_as_recordings(tmp_path):
    for name in ("rec.png", "rec.tif", "other.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    found, clashes = list_files(tmp_path)
    assert sorted(found) == ["other", "rec"]
    assert [(kept.name, other.name) for kept, other in clashes] == [("rec.png", "rec.tif")]
    # Every output is named by the name: both are refused before any is measured.
    with pytest.raises(SetupError, match=re.escape("(rec.png and rec.tif)")):
        list_recordings(tmp_path)


def test_result_images_of_an_earlier_run_in_a_folder_are_not_recordings(tmp_path, capsys):
    """Images test.py wrote (it left NAME_summary.json) are skipped; a user's are not."""
    for name in ("a.png", "a_mask.png", "a_overlay.png", "a_report.png", "b_mask.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    summary = {"n_beats": 0, "n_beats_accepted": 0, "volume_formula": "scanner"}
    (tmp_path / "a_summary.json").write_text(json.dumps(summary))
    assert [p.name for p in list_recordings(tmp_path)] == ["a.png", "b_mask.png"]
    assert "its 3 result image(s)" in capsys.readouterr().err


def test_a_dim_16_bit_image_is_read_by_its_depth_with_a_note(tmp_path):
    twelve = np.arange(64, dtype=np.uint16).reshape(8, 8) * 65  # up to 4095: 12 bits
    full = twelve * 16
    for name, array in (("twelve", twelve), ("full", full)):
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    gray, note = read_recording(tmp_path / "twelve.png")
    assert gray.max() == 16  # scaled by the file's depth, as every 16-bit image is
    assert note.startswith("its brightest pixel is 4095 where its 16-bit file holds up to 65535")
    assert "a 12-bit image saved as 16 bits?" in note
    assert read_recording(tmp_path / "full.png")[1] is None
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    assert read_recording(tmp_path / "black.png")[1] is None  # 8 bits: no depth to mistake


@pytest.mark.parametrize("suffix", [".png", ".npy"])
def test_an_image_over_the_pixel_budget_is_refused_before_it_is_decoded(
    tmp_path, monkeypatch, suffix
):
    path = tmp_path / f"long{suffix}"
    if suffix == ".png":
        Image.fromarray(np.zeros((20, 60), np.uint8)).save(path)
        monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    else:
        np.save(path, np.zeros((20, 60), np.uint8))
        monkeypatch.setattr(np, "load", refuse_a_full_read(np.load))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    message = f"{path} is 60 x 20 pixels, more than the 0.001 million this tool reads; "
    for read in (read_gray, read_mask):
        with pytest.raises(ImageReadError) as refused:
            read(path)
        assert str(refused.value) == message + "crop or split the recording."


def refuse_a_full_read(load):
    """np.load that fails the test unless it only maps the file (reading its header)."""

    def mapped_only(path, mmap_mode=None, **kwargs):
        if mmap_mode is None:
            pytest.fail("decoded")
        return load(path, mmap_mode=mmap_mode, **kwargs)

    return mapped_only


def test_an_image_at_the_pixel_budget_is_read_without_a_warning(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 50), np.uint8)).save(tmp_path / "long.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # Pillow would warn above 600
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_gray(tmp_path / "long.png").shape == (20, 50)


def test_an_image_pillow_calls_a_decompression_bomb_is_refused_as_too_large(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 60), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow refuses above 1000
    with pytest.raises(ImageReadError, match="is over 0.001 million pixels, more than the"):
        read_gray(tmp_path / "bomb.png")
