"""labels.json: the classes of a label mask, named as nnU-Net's dataset.json names them."""

import json

import pytest

from mmode.labels import WALL_LABELS, LabelsError, read_labels, write_labels


def test_written_labels_read_back_in_value_order(tmp_path):
    write_labels(tmp_path)
    assert read_labels(tmp_path) == ["background", "septum", "cavity", "posterior_wall"]
    assert json.loads((tmp_path / "labels.json").read_text()) == {"labels": WALL_LABELS}


def test_no_labels_file_means_binary_cavity_data(tmp_path):
    assert read_labels(tmp_path) is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("{broken", "cannot read"),
        ('{"classes": {}}', 'has no "labels" object'),
        ('{"labels": {"background": 0, "cavity": 2}}', "must give the mask values 0, 1"),
        ('{"labels": {"background": 0, "cavity": true}}', "must give the mask values 0, 1"),
        ('{"labels": {"cavity": 0, "background": 1}}', "must name the value 0 background"),
        ('{"labels": {"background": null, "cavity": "x"}}', "must give the mask values 0, 1"),
    ],
)
def test_a_bad_labels_file_is_named_with_the_fix(tmp_path, content, message):
    (tmp_path / "labels.json").write_text(content)
    with pytest.raises(LabelsError, match=message):
        read_labels(tmp_path)
