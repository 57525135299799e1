"""Reading CSV and LabelMe annotations; both formats give the same mask."""

import json
import re

import numpy as np
import pytest

from mmode.scanner import is_sidecar as is_resolution_sidecar
from preprocessing.annotations import AnnotationError, PhysicalUnits, read_annotation
from preprocessing.masks import mask_from_traces

UPPER = [(2.5, 3.2), (10, 5.0), (25.5, 4.4), (37, 6.1)]
LOWER = [(1, 14.9), (18.25, 12.0), (30, 16.5), (38.5, 15.0)]


def write_csv(path, rows, header="trace,x,y"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


def labelme(upper, lower, version="5.4.1", shape_type="linestrip"):
    shape = {"group_id": None, "shape_type": shape_type, "flags": {}}
    if version.startswith("5"):
        shape |= {"description": "", "mask": None}
    return {
        "version": version,
        "flags": {},
        "shapes": [
            shape | {"label": "upper", "points": [list(p) for p in upper]},
            shape | {"label": "Lower", "points": [list(p) for p in lower]},
        ],
        "imagePath": "rec.png",
        "imageData": None,
        "imageHeight": 20,
        "imageWidth": 40,
    }


def test_csv_rows_in_any_order_and_case(tmp_path):
    rows = [("LOWER", *p) for p in LOWER[::-1]] + [(" Upper ", *p) for p in UPPER]
    traces = read_annotation(write_csv(tmp_path / "rec.csv", rows, "Trace, X ,Y,comment"))
    np.testing.assert_array_equal(traces.upper, UPPER)
    np.testing.assert_array_equal(traces.lower, LOWER[::-1])
    assert traces.image_size is None


@pytest.mark.parametrize(("version", "shape_type"), [("4.5.6", "linestrip"), ("5.4.1", "points")])
def test_csv_and_labelme_give_identical_masks(tmp_path, version, shape_type):
    rows = [("upper", *p) for p in UPPER] + [("lower", *p) for p in LOWER]
    from_csv = read_annotation(write_csv(tmp_path / "rec.csv", rows))
    (tmp_path / "rec.json").write_text(json.dumps(labelme(UPPER, LOWER, version, shape_type)))
    from_json = read_annotation(tmp_path / "rec.json")
    assert from_json.image_size == (20, 40)
    csv_mask = mask_from_traces(from_csv.upper, from_csv.lower, 20, 40)
    json_mask = mask_from_traces(from_json.upper, from_json.lower, 20, 40)
    np.testing.assert_array_equal(csv_mask, json_mask)
    assert csv_mask.any()


def test_labelme_shapes_with_one_label_add_up(tmp_path):
    content = labelme(UPPER[:2], LOWER)
    content["shapes"].append(content["shapes"][0] | {"points": [list(p) for p in UPPER[2:]]})
    (tmp_path / "rec.json").write_text(json.dumps(content))
    np.testing.assert_array_equal(read_annotation(tmp_path / "rec.json").upper, UPPER)


def test_physical_units_divide_by_the_resolutions(tmp_path):
    rows = [("upper", 0.3, 0.5), ("upper", 0.6, 0.5), ("lower", 0.3, 1.25), ("lower", 0.6, 1)]
    traces = read_annotation(write_csv(tmp_path / "rec.csv", rows), PhysicalUnits(0.25, 0.1))
    np.testing.assert_allclose(traces.upper, [(3, 2), (6, 2)])
    np.testing.assert_allclose(traces.lower, [(3, 5), (6, 4)])
    mask = mask_from_traces(traces.upper, traces.lower, 8, 8)
    assert np.flatnonzero(mask.any(axis=0)).tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("upper", 1, 2), ("upper", 3, 2)], "the lower trace is missing"),
        (
            [("upper", 1, 2), ("lower", 1, 5), ("middle", 2, 3)],
            "unknown trace label 'middle' on line 4",
        ),
        ([("upper", 1, 2), ("lower", 1, "deep")], "'deep' on line 3 is not a coordinate"),
        ([("upper", 1, 2), ("lower", 1, "nan")], "is not a coordinate"),
    ],
)
def test_bad_csv_rows_name_the_file_and_the_problem(tmp_path, rows, message):
    path = write_csv(tmp_path / "rec.csv", rows)
    with pytest.raises(AnnotationError, match=message) as caught:
        read_annotation(path)
    assert str(path) in str(caught.value)


def test_csv_without_the_header_is_refused(tmp_path):
    path = write_csv(tmp_path / "rec.csv", [("upper", 1, 2)], header="label,col,row")
    with pytest.raises(AnnotationError, match="header must name trace,x,y"):
        read_annotation(path)


def test_labelme_problems_are_named(tmp_path):
    path = tmp_path / "rec.json"
    content = labelme(UPPER, LOWER)
    content["shapes"][1]["label"] = "septum"
    path.write_text(json.dumps(content))
    with pytest.raises(AnnotationError, match="unknown label 'septum'"):
        read_annotation(path)
    path.write_text(json.dumps(labelme(UPPER, LOWER, shape_type="polygon")))
    with pytest.raises(AnnotationError, match="is a polygon"):
        read_annotation(path)
    path.write_text("{not json")
    with pytest.raises(AnnotationError, match="cannot read it as JSON"):
        read_annotation(path)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (None, "shape 1 (upper) has points None, not a list"),
        (3, "shape 1 (upper) has points 3, not a list"),
        ("1,2", "shape 1 (upper) has points '1,2', not a list"),
        ([[True, 2], [5, 3]], "True in shape 1 is not a coordinate"),
        ([[1, 2], [5, None]], "None in shape 1 is not a coordinate"),
        ([[1, 2], 5], "shape 1 has a point 5"),
    ],
)
def test_labelme_bad_points_are_named(tmp_path, points, message):
    path = tmp_path / "rec.json"
    content = labelme(UPPER, LOWER)
    content["shapes"][0]["points"] = points
    path.write_text(json.dumps(content))
    with pytest.raises(AnnotationError, match=re.escape(f"{path}: {message}")):
        read_annotation(path)


def test_resolution_sidecars_are_not_annotations(tmp_path):
    sidecar = tmp_path / "rec.json"
    sidecar.write_text(json.dumps({"time_res_s": 0.001, "depth_res_mm": 0.02}))
    assert is_resolution_sidecar(sidecar)
    sidecar.write_text(json.dumps(labelme(UPPER, LOWER)))
    assert not is_resolution_sidecar(sidecar)
