"""The shipped model on the one real recording (tests/data/real), against our reference.

A crop of clean columns keeps this fast; bench.real_recording measures the whole recording.
"""

import numpy as np
import pytest
import torch

import quicknat.model
from bench.real_recording import RECORDING, measured_edges, re_exposed, reference_rows
from measurement.inference import load_model, shipped_model_path
from mmode.images import read_gray

CROP = (723, 1100)  # clean columns (the published tool rated them 1.0), annotated
# The shipped model put both edges within 4 rows of the reference in 86 % of this crop's
# columns (79 % over the whole reference), most misses at end-systole, where the septum dims
# and the reference follows its faint endocardial echo; its median error was 0.7 and 1.6
# rows. A model that lost the cavity would score near 0.
WITHIN_4_SHARE = 0.7
MEDIAN_ROWS = 2.0


@pytest.fixture(scope="module")
def shipped():
    return load_model(shipped_model_path(), {}, torch.device("cpu"))


@pytest.fixture(scope="module")
def crop():
    image = read_gray(RECORDING)
    upper, lower = reference_rows(image.shape[1])
    first, last = CROP
    return image[:, first:last], upper[first:last], lower[first:last]


def both_within(found, upper, lower, rows: float) -> float:
    errors = np.stack([np.abs(found[0] - upper), np.abs(found[1] - lower)])
    return float(np.mean(np.all(np.nan_to_num(errors, nan=np.inf) <= rows, axis=0)))


def test_the_reference_covers_the_crop(crop):
    _, upper, lower = crop
    assert np.all(np.isfinite(upper)) and np.all(np.isfinite(lower))
    lvid_rows = lower - upper
    # A mouse LV at 0.0415 mm per row: up to ~90 rows in diastole, nearly closed in systole.
    assert 0 < lvid_rows.min() < 30 and 60 < lvid_rows.max() < 90


def test_the_shipped_model_finds_the_cavity_on_a_real_recording(shipped, crop):
    image, upper, lower = crop
    found = measured_edges(shipped, image)
    assert both_within(found, upper, lower, 4) >= WITHIN_4_SHARE
    assert np.nanmedian(np.abs(found[0] - upper)) <= MEDIAN_ROWS
    assert np.nanmedian(np.abs(found[1] - lower)) <= MEDIAN_ROWS


def test_without_its_normalisation_at_measuring_time_the_model_misses_it(
    shipped, crop, monkeypatch
):
    """The model depends on the normalisation: measuring without it loses the cavity."""
    image, upper, lower = crop
    monkeypatch.setattr(quicknat.model, "normalise_input", lambda images, mode: images)
    assert both_within(measured_edges(shipped, image), upper, lower, 4) < 0.5


def test_a_re_exposed_real_recording_gives_the_same_edges(shipped, crop):
    image = crop[0]
    found = measured_edges(shipped, image)
    for name, copy in re_exposed(image).items():
        other = measured_edges(shipped, copy)
        same = np.all(np.abs(np.stack(other) - np.stack(found)) <= 2, axis=0)
        assert same.mean() >= 0.9, name
