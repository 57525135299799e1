"""DICOM -> long PNG: region, crop, luminance, stitching of scrolling frames, resolutions."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from preprocessing.dicom_to_png import dicom_to_png, to_luminance
from preprocessing.stitch import stitch_frames

HEIGHT, WIDTH = 12, 30  # the M-mode region
TOP, LEFT = 14, 5  # where it sits in the 30 x 50 frames
OFFSETS = [0, 4, 4, 11, 20, 20, 20, 33, 40]  # scroll position of each frame; repeats = duplicates


def long_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (HEIGHT, 70), dtype=np.uint8)


def region(x0, y0, x1, y1, spatial_format, delta_x=0.0025, delta_y=0.003, units=(4, 3)):
    item = Dataset()
    item.RegionSpatialFormat = spatial_format
    item.RegionDataType = 1
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection, item.PhysicalUnitsYDirection = units
    item.PhysicalDeltaX, item.PhysicalDeltaY = delta_x, delta_y
    return item


def scanner_frames(gray: np.ndarray, offsets: list[int]) -> np.ndarray:
    """RGB frames: a 2-D view that changes every frame above a scrolling M-mode strip."""
    rng = np.random.default_rng(1)
    frames = np.full((len(offsets), 30, 50, 3), 40, dtype=np.uint8)
    for frame, offset in zip(frames, offsets, strict=True):
        frame[0:10, 0:50] = rng.integers(0, 256, (10, 50, 3))  # the B-mode region
        strip = gray[:, offset : offset + WIDTH]
        frame[TOP : TOP + HEIGHT, LEFT : LEFT + WIDTH] = strip[..., None]
    return frames


def write_dicom(path, frames, regions, syntax=ExplicitVRLittleEndian):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SequenceOfUltrasoundRegions = regions
    if syntax.is_encapsulated:
        ds.PixelData = encapsulate([b"\xff\xd8 not really compressed \xff\xd9"] * len(frames))
    else:
        ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def mmode_regions():
    return [
        region(0, 0, 49, 9, spatial_format=1),  # 2-D image
        region(LEFT, TOP, LEFT + WIDTH - 1, TOP + HEIGHT - 1, spatial_format=2),
    ]


def test_scrolling_frames_are_rebuilt_exactly_with_resolutions(tmp_path):
    gray = long_image()
    write_dicom(
        tmp_path / "scan.dcm",
        scanner_frames(gray, OFFSETS),
        mmode_regions(),
    )
    (tmp_path / "notes.txt").write_text("not DICOM")
    summary = dicom_to_png(tmp_path, tmp_path / "out", progress=False)
    assert summary.done == ["scan"] and summary.problems == [] and summary.warnings == []
    rebuilt = np.asarray(Image.open(tmp_path / "out" / "scan.png"))
    np.testing.assert_array_equal(rebuilt, gray)
    metadata = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert metadata["time_res_s"] == 0.0025
    assert metadata["depth_res_mm"] == pytest.approx(0.03)


def test_region_flag_picks_another_item_and_outputs_need_overwrite(tmp_path):
    path = write_dicom(tmp_path / "IM0001", scanner_frames(long_image(), OFFSETS), mmode_regions())
    dicom_to_png(path, tmp_path / "out", progress=False)
    again = dicom_to_png(path, tmp_path / "out", region_index=0, progress=False)
    assert "already exists; pass --overwrite" in again.problems[0]
    summary = dicom_to_png(path, tmp_path / "out", region_index=0, overwrite=True, progress=False)
    assert summary.done == ["IM0001"]
    assert np.asarray(Image.open(tmp_path / "out" / "IM0001.png")).shape[0] == 10


def test_files_without_a_single_mmode_region_are_problems(tmp_path):
    frames = scanner_frames(long_image(), OFFSETS)
    write_dicom(tmp_path / "none.dcm", frames, [region(0, 0, 49, 9, spatial_format=1)])
    write_dicom(tmp_path / "two.dcm", frames, mmode_regions() + mmode_regions()[1:])
    write_dicom(tmp_path / "big.dcm", frames, [region(0, 0, 50, 9, spatial_format=2)])
    problems = "\n".join(dicom_to_png(tmp_path, tmp_path / "out", progress=False).problems)
    assert "none.dcm: no region has RegionSpatialFormat 2 (M-mode)" in problems
    assert "two.dcm: regions [1, 2] are all M-mode; pick one with --region N." in problems
    assert "big.dcm: region 0 (0,0)-(50,9) does not fit in the 30x50 frames." in problems


def test_unexpected_units_give_null_and_a_warning(tmp_path):
    regions = [region(LEFT, TOP, LEFT + WIDTH - 1, TOP + HEIGHT - 1, 2, units=(4, 7))]
    write_dicom(tmp_path / "scan.dcm", scanner_frames(long_image(), OFFSETS), regions)
    summary = dicom_to_png(tmp_path / "scan.dcm", tmp_path / "out", progress=False)
    assert json.loads((tmp_path / "out" / "scan.json").read_text())["depth_res_mm"] is None
    assert "PhysicalUnitsYDirection is 7, not cm (3)" in summary.warnings[0]


def test_compressed_pixel_data_without_decoder_names_syntax_and_package(tmp_path):
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    frames = scanner_frames(long_image(), OFFSETS)
    write_dicom(tmp_path / "scan.dcm", frames, mmode_regions(), syntax=JPEGLSLossless)
    [problem] = dicom_to_png(tmp_path / "scan.dcm", tmp_path / "out", progress=False).problems
    assert "scan.dcm: pixel data in transfer syntax JPEG-LS Lossless" in problem
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in problem


def test_lossy_jpeg_frames_are_joined_by_best_match_with_a_warning(tmp_path):
    # Smooth echo-like content: JPEG changes every frame a little, so no overlap is exact.
    rows, cols = np.mgrid[0:HEIGHT, 0:70]
    gray = (120 + 60 * np.sin(cols / 5.0 + rows / 4.0) + 40 * np.cos(cols / 11.0)).astype(np.uint8)
    frames = scanner_frames(gray, OFFSETS)
    ds = dcmread(write_dicom(tmp_path / "raw.dcm", frames, mmode_regions()))
    jpegs = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
        jpegs.append(buffer.getvalue())
    ds.PixelData = encapsulate(jpegs)
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(tmp_path / "scan.dcm", enforce_file_format=True)
    summary = dicom_to_png(tmp_path / "scan.dcm", tmp_path / "out", progress=False)
    assert summary.done == ["scan"]
    assert "placed by best match" in summary.warnings[0]
    rebuilt = np.asarray(Image.open(tmp_path / "out" / "scan.png")).astype(int)
    assert rebuilt.shape == gray.shape
    assert np.abs(rebuilt - gray).mean() < 4


def test_luminance_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_luminance(rgb, "RGB", 8), [[76, 150, 29, 200]])
    np.testing.assert_array_equal(
        to_luminance(np.array([[0, 255]], np.uint8), "MONOCHROME1", 8), [[255, 0]]
    )


def test_stitching_starts_from_blank_columns_and_falls_back_to_best_match():
    gray = np.concatenate([np.zeros((HEIGHT, WIDTH), np.uint8), long_image()], axis=1)
    frames = [gray[:, offset : offset + WIDTH] for offset in (0, 0, 6, 15, 40, 62, 70)]
    exact = stitch_frames(frames)
    np.testing.assert_array_equal(exact.image, gray)
    assert (exact.duplicates, exact.inexact) == (1, 0)
    rng = np.random.default_rng(2)
    noisy = [
        np.clip(gray[:, offset : offset + WIDTH] + rng.integers(-2, 3, (HEIGHT, WIDTH)), 0, 255)
        for offset in (40, 49, 61, 70)
    ]
    fuzzy = stitch_frames(np.array(noisy, dtype=np.uint8))
    assert fuzzy.image.shape == (HEIGHT, 70 + WIDTH - 40)
    assert fuzzy.inexact == 3 and fuzzy.worst_mean_diff < 3
    assert np.abs(fuzzy.image.astype(int) - gray[:, 40:]).max() <= 2


@pytest.mark.parametrize(
    "delta_x, delta_y, key",
    [(-0.0025, 0.003, "time_res_s"), (0.0025, 0.0, "depth_res_mm"),
     (float("nan"), 0.003, "time_res_s"), (0.0025, 5.0, "depth_res_mm")],
)  # fmt: skip
def test_impossible_resolutions_give_null_and_a_warning(tmp_path, delta_x, delta_y, key):
    regions = [region(LEFT, TOP, LEFT + WIDTH - 1, TOP + HEIGHT - 1, 2, delta_x, delta_y)]
    write_dicom(tmp_path / "scan.dcm", scanner_frames(long_image(), OFFSETS), regions)
    summary = dicom_to_png(tmp_path / "scan.dcm", tmp_path / "out", progress=False)
    sidecar = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert sidecar[key] is None
    other = ({"time_res_s", "depth_res_mm"} - {key}).pop()
    assert sidecar[other] is not None
    assert f"gives {key}" in summary.warnings[0] and "so it is null" in summary.warnings[0]


def test_a_full_disk_stops_the_conversion_with_one_sentence(tmp_path, monkeypatch, capsys):
    from helpers import full_disk

    from preprocessing import dicom_to_png as command

    for name in ("a", "b"):
        write_dicom(
            tmp_path / f"{name}.dcm", scanner_frames(long_image(), OFFSETS), mmode_regions()
        )
    full_disk(monkeypatch, ".a.png.")
    out = tmp_path / "out"
    assert command.main(["--in", str(tmp_path), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    assert f"cannot write {out / 'a.png'} (No space left on device)" in err
    assert not (out / "b.png").exists()  # stopped: every later file would fail the same way
