"""Annotations from predictions: they read back through preprocessing as the measured mask."""

import json

import numpy as np
import pytest
from PIL import Image

from measurement.annotation_export import export_annotations
from measurement.beats import find_beats
from measurement.edges import lv_edges
from measurement.quality import beat_columns, judge_beats
from preprocessing import make_masks
from preprocessing.annotations import read_annotation, read_labelme
from preprocessing.masks import mask_from_traces

TIME_RES_S, DEPTH_RES_MM = 0.001, 0.04
HEIGHT, WIDTH, BEAT_COLUMNS = 120, 600, 80  # 750 bpm; LVID 2.1-3.5 mm


@pytest.fixture(scope="module")
def measured():
    """A synthetic recording through the real measurement path: edges, beats, decisions."""
    phase = 2 * np.pi * np.arange(WIDTH) / BEAT_COLUMNS
    # Sub-pixel edges that drift, so that points do not fall on a regular grid.
    upper = 25.3 + 8 * np.sin(phase) + 2 * np.sin(phase / 7)
    lower = 95.6 - 10 * np.sin(phase + 0.3) + 2 * np.sin(phase / 7)
    rows = np.arange(HEIGHT)[:, None]
    prob = 1 / (1 + np.exp(-(rows - upper))) / (1 + np.exp(-(lower - rows)))
    noise = np.random.default_rng(0).normal(0, 5, prob.shape)
    image = np.clip(150 - 130 * prob + noise, 0, 255).astype(np.uint8)
    edges = lv_edges(prob, 0.5, TIME_RES_S, DEPTH_RES_MM)
    beats = find_beats(edges.lvid_mm(DEPTH_RES_MM), TIME_RES_S)
    judged = judge_beats(beats, edges, prob, image, TIME_RES_S, DEPTH_RES_MM)
    assert len(beats) >= 5 and all(j.accepted for j in judged)
    return image, edges, beats, [j.accepted for j in judged]


def export(tmp_path, measured, accepted=None):
    image, edges, beats, all_accepted = measured
    image_path = tmp_path / "images" / "rec.png"
    image_path.parent.mkdir(exist_ok=True)
    Image.fromarray(image).save(image_path)
    accepted = all_accepted if accepted is None else accepted
    return export_annotations(
        tmp_path / "annotations", "rec", image_path, image.shape, edges, beats, accepted, TIME_RES_S
    )


def span_of(mask):
    columns = np.flatnonzero(mask.any(axis=0))
    return int(columns[0]), int(columns[-1])


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_both_files_give_back_the_measured_mask(tmp_path, measured):
    _, edges, beats, _ = measured
    paths = export(tmp_path, measured)
    assert [p.name for p in paths] == ["rec.csv", "rec.json"]
    first_ed = beat_columns(beats[0], TIME_RES_S)[0]
    last_next_ed = beat_columns(beats[-1], TIME_RES_S)[2]
    expected = edges.mask(HEIGHT)
    for path in paths:
        traces = read_annotation(path)
        mask = mask_from_traces(traces.upper, traces.lower, HEIGHT, WIDTH) > 0
        start, stop = span_of(mask)
        assert (start, stop) == (first_ed, last_next_ed)
        # Each interpolated edge is within 0.5 row (+0.005 rounding) of the measured one,
        # so a column gains or loses at most one row per edge, and only where the edge
        # crosses a row centre between the two; the convention difference (edges.mask
        # strictly between the edges, mask_from_traces up to EPS_PX onto them) adds a row
        # only where an edge falls on a row centre. Against a ~70-row cavity that is ~1 %.
        score = iou(mask[:, start : stop + 1], expected[:, start : stop + 1])
        assert score >= 0.98, f"{path.name}: IoU {score:.4f}"


def test_traces_are_sparse_and_keep_ed_and_es(tmp_path, measured):
    _, _, beats, _ = measured
    csv_path, _ = export(tmp_path, measured)
    traces = read_annotation(csv_path)
    start, stop = beat_columns(beats[0], TIME_RES_S)[0], beat_columns(beats[-1], TIME_RES_S)[2]
    for trace in (traces.upper, traces.lower):
        assert len(trace) < (stop - start + 1) / 5
        for beat in beats:
            ed, es, _ = beat_columns(beat, TIME_RES_S)
            assert ed in trace[:, 0] and es in trace[:, 0]
    header, *rows = csv_path.read_text().splitlines()
    assert header == "trace,x,y"
    labels = [row.split(",")[0] for row in rows]
    assert labels == sorted(labels, key=["upper", "lower"].index)  # upper, then lower
    assert all(len(row.split(",")[2].split(".")[1]) == 2 for row in rows)


def test_only_the_longest_run_of_accepted_beats_is_exported(tmp_path, measured):
    _, _, beats, _ = measured
    accepted = [True] * len(beats)
    accepted[1] = False  # runs: beat 0, and beats 2..end
    paths = export(tmp_path, measured, accepted)
    traces = read_annotation(paths[0])
    first = beat_columns(beats[2], TIME_RES_S)[0]
    last = beat_columns(beats[-1], TIME_RES_S)[2]
    for trace in (traces.upper, traces.lower):
        assert trace[:, 0].min() == first and trace[:, 0].max() == last


def test_nothing_is_written_without_an_accepted_beat(tmp_path, measured):
    _, _, beats, _ = measured
    assert export(tmp_path, measured, [False] * len(beats)) == []
    assert not (tmp_path / "annotations").exists()


def test_labelme_file_has_labelme_5_fields(tmp_path, measured):
    _, json_path = export(tmp_path, measured)
    content = json.loads(json_path.read_text())
    assert content["version"] == "5.4.1" and content["flags"] == {}
    assert content["imageData"] is None
    assert (content["imageHeight"], content["imageWidth"]) == (HEIGHT, WIDTH)
    # LabelMe finds the image relative to the JSON's folder.
    assert content["imagePath"] == "../../images/rec.png"
    assert (json_path.parent / content["imagePath"]).resolve() == tmp_path / "images" / "rec.png"
    assert [shape["label"] for shape in content["shapes"]] == ["upper", "lower"]
    for shape in content["shapes"]:
        assert shape["shape_type"] == "linestrip" and shape["group_id"] is None
        assert shape["description"] == "" and shape["flags"] == {} and shape["mask"] is None
        assert all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, float) for v in p)
            for p in shape["points"]
        )
    assert read_labelme(json_path).image_size == (HEIGHT, WIDTH)


@pytest.mark.parametrize("folder", ["csv", "labelme"])
def test_make_masks_pairs_the_exported_file_with_its_recording(tmp_path, measured, folder):
    _, edges, _, _ = measured
    export(tmp_path, measured)
    code = make_masks.main(
        [
            "--no-progress",
            "--images",
            str(tmp_path / "images"),
            "--annotations",
            str(tmp_path / "annotations" / folder),
            "--out",
            str(tmp_path / "masks"),
        ]
    )
    assert code == 0
    mask = np.array(Image.open(tmp_path / "masks" / "rec.png")) > 0
    start, stop = span_of(mask)
    expected = edges.mask(HEIGHT)[:, start : stop + 1]
    assert iou(mask[:, start : stop + 1], expected) >= 0.98


def test_an_annotations_folder_that_cannot_be_made_is_a_write_error(tmp_path, measured):
    from runtime.errors import WriteError

    (tmp_path / "annotations").write_text("a file where the folder would go")
    with pytest.raises(WriteError, match="cannot write .*annotations/csv"):
        export(tmp_path, measured)
