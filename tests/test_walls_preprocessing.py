"""Four-border annotations: reading them, label masks, and data folders of one kind."""

import json

import numpy as np
import pytest
from PIL import Image

from mmode.labels import LABELS_FILE, WALL_LABELS, read_labels
from preprocessing.annotations import AnnotationError, read_annotation
from preprocessing.make_dataset import build_dataset
from preprocessing.make_masks import make_masks
from preprocessing.make_windows import make_windows
from preprocessing.masks import TraceError, label_mask_from_traces
from runtime.errors import SetupError

HEIGHT, WIDTH = 20, 60
FOUR = {
    "ivs_top": [(2, 2), (57, 3)],
    "upper": [(2, 5), (57, 6)],
    "lower": [(2, 12), (57, 13)],
    "lvpw_bottom": [(2, 15), (57, 16.5)],
}


def flat(row: float, first: float = 0, last: float = 5) -> np.ndarray:
    return np.array([[first, row], [last, row]], dtype=float)


def write_csv(path, traces: dict) -> None:
    rows = [f"{name},{x},{y}" for name, points in traces.items() for x, y in points]
    path.write_text("trace,x,y\n" + "\n".join(rows) + "\n")


def test_label_mask_of_flat_traces_is_exact():
    # 12 x 6 image: septum rows 1-3, cavity 3-7 (the shared rows 3 and 7 are cavity),
    # wall 7-10; the walls' traces start at x=1, so column 0 is outside the span.
    mask = label_mask_from_traces(flat(1, first=1), flat(3), flat(7), flat(10, first=1), 12, 6)
    column = np.array([0, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 0], dtype=np.uint8)
    expected = np.zeros((12, 6), dtype=np.uint8)
    expected[:, 1:] = column[:, None]
    np.testing.assert_array_equal(mask, expected)
    assert set(WALL_LABELS.values()) == {0, 1, 2, 3}


def test_label_mask_follows_sloped_traces_between_points():
    # upper from row 2 to row 4 over columns 0-4 (2, 2.5, 3, 3.5, 4): row 3 is cavity
    # while upper <= 3 (columns 0-2), septum after.
    ivs_top, lower, lvpw_bottom = flat(0, last=4), flat(6, last=4), flat(8, last=4)
    upper = np.array([[0, 2], [4, 4]], dtype=float)
    mask = label_mask_from_traces(ivs_top, upper, lower, lvpw_bottom, 10, 5)
    assert mask[:, 0].tolist() == [1, 1, 2, 2, 2, 2, 2, 3, 3, 0]
    assert mask[3].tolist() == [2, 2, 2, 1, 1]
    assert mask[4].tolist() == [2, 2, 2, 2, 2]


def test_crossed_walls_are_refused_naming_the_traces():
    with pytest.raises(TraceError, match=r"the ivs_top trace is below the upper trace in 6"):
        label_mask_from_traces(flat(4), flat(3), flat(7), flat(10), 12, 6)
    with pytest.raises(TraceError, match=r"the lower trace is below the lvpw_bottom trace"):
        label_mask_from_traces(flat(1), flat(3), flat(9), flat(8), 12, 6)
    with pytest.raises(TraceError, match="lvpw_bottom trace lie outside the 12x6 image"):
        label_mask_from_traces(flat(1), flat(3), flat(7), flat(12), 12, 6)


def test_four_border_csv_and_labelme_read_the_same(tmp_path):
    write_csv(tmp_path / "rec.csv", FOUR)
    shapes = [
        {"label": name, "points": [list(p) for p in points], "shape_type": "linestrip"}
        for name, points in FOUR.items()
    ]
    (tmp_path / "rec.json").write_text(json.dumps({"shapes": shapes}))
    for path in (tmp_path / "rec.csv", tmp_path / "rec.json"):
        traces = read_annotation(path)
        assert traces.has_walls
        for name, points in FOUR.items():
            np.testing.assert_array_equal(getattr(traces, name), np.array(points, float))


def test_two_border_annotations_have_no_walls(tmp_path):
    write_csv(tmp_path / "rec.csv", {k: FOUR[k] for k in ("upper", "lower")})
    traces = read_annotation(tmp_path / "rec.csv")
    assert traces.ivs_top is None and traces.lvpw_bottom is None and not traces.has_walls


def test_one_wall_trace_alone_is_an_error_naming_the_missing_one(tmp_path):
    write_csv(tmp_path / "rec.csv", {k: FOUR[k] for k in ("ivs_top", "upper", "lower")})
    with pytest.raises(AnnotationError, match="traces ivs_top but not lvpw_bottom") as caught:
        read_annotation(tmp_path / "rec.csv")
    assert str(tmp_path / "rec.csv") in str(caught.value)


def test_unknown_labels_list_the_four_names(tmp_path):
    write_csv(tmp_path / "rec.csv", {**FOUR, "septum": [(1, 1)]})
    with pytest.raises(AnnotationError, match="use ivs_top, upper, lower or lvpw_bottom"):
        read_annotation(tmp_path / "rec.csv")


@pytest.fixture
def four_border(tmp_path):
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    for name, seed in (("rec_a", 1), ("rec_b", 2)):
        image = np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)
        Image.fromarray(image).save(images / f"{name}.png")
        write_csv(annotations / f"{name}.csv", FOUR)
    return tmp_path


def test_make_dataset_writes_label_windows_and_labels_json(four_border):
    out = four_border / "data"
    summary = build_dataset(
        four_border / "images", four_border / "annotations", out, progress=False
    )
    assert summary.problems == [] and summary.windows > 0
    assert read_labels(out) == list(WALL_LABELS)
    for path in (out / "mask").iterdir():
        window = np.asarray(Image.open(path))
        assert set(np.unique(window)) == {0, 1, 2, 3}


def test_make_masks_then_make_windows_keep_the_labels(four_border):
    masks, out = four_border / "masks", four_border / "data"
    assert make_masks(four_border / "images", four_border / "annotations", masks, progress=False)
    assert (masks / LABELS_FILE).exists()
    full = np.asarray(Image.open(masks / "rec_a.png"))
    assert set(np.unique(full)) == {0, 1, 2, 3}
    summary = make_windows(four_border / "images", masks, out, progress=False)
    assert summary.problems == [] and read_labels(out) == list(WALL_LABELS)
    window = np.asarray(Image.open(out / "mask" / "rec_a_win0.png"))
    np.testing.assert_array_equal(window, full[:, 2:22])


def test_a_binary_mask_in_a_labelled_folder_is_named(four_border):
    masks = four_border / "masks"
    make_masks(four_border / "images", four_border / "annotations", masks, progress=False)
    full = np.asarray(Image.open(masks / "rec_b.png"))
    Image.fromarray(np.where(full == 2, 255, 0).astype(np.uint8)).save(masks / "rec_b.png")
    summary = make_windows(four_border / "images", masks, four_border / "data", progress=False)
    assert summary.done == ["rec_a"]
    assert any("rec_b.png: holds the value(s) [255]" in p for p in summary.problems)


def test_mixing_two_and_four_borders_is_refused(four_border):
    write_csv(four_border / "annotations" / "rec_b.csv", {k: FOUR[k] for k in ("upper", "lower")})
    for run in (build_dataset, make_masks):
        with pytest.raises(SetupError, match=r"mixes four-border .*\(rec_a.csv\).*\(rec_b.csv\)"):
            run(four_border / "images", four_border / "annotations", four_border / "out")


def test_binary_run_into_a_labelled_folder_is_refused(four_border):
    out = four_border / "data"
    build_dataset(four_border / "images", four_border / "annotations", out, progress=False)
    for name in ("rec_a", "rec_b"):
        write_csv(
            four_border / "annotations" / f"{name}.csv", {k: FOUR[k] for k in ("upper", "lower")}
        )
    with pytest.raises(SetupError, match="holds label masks, but these masks are binary"):
        build_dataset(four_border / "images", four_border / "annotations", out, overwrite=True)
    labelled = four_border / "labelled"
    build_dataset(four_border / "images", four_border / "annotations", labelled, progress=False)
    assert not (labelled / LABELS_FILE).exists()
    for name in ("rec_a", "rec_b"):
        write_csv(four_border / "annotations" / f"{name}.csv", FOUR)
    with pytest.raises(SetupError, match="holds binary masks of an earlier run"):
        build_dataset(four_border / "images", four_border / "annotations", labelled)
