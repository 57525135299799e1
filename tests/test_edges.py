"""LV edges: spikes, holes and short gaps in the probability map do not become edges."""

import numpy as np
import pytest

from measurement.edges import edge_rows, lv_edges
from mmode.runs import longest_run_per_column

TIME_RES_S, DEPTH_RES_MM = 0.00083, 0.03
HEIGHT, WIDTH = 200, 600
MISSING = slice(450, 520)  # 58 ms without a cavity: the LV left the view
SHORT_GAP = slice(200, 203)  # 2.5 ms: a dropout
SPIKES = (slice(100, 102), slice(250, 253), slice(380, 381))


def true_edges():
    phase = 2 * np.pi * np.arange(WIDTH) / 120  # a beat every 100 ms
    return 50 + 10 * np.sin(phase), 150 - 15 * np.sin(phase + 0.3)


def spoiled_map():
    """A smooth cavity map with spikes, holes, a short gap and a missing stretch."""
    upper, lower = true_edges()
    rows = np.arange(HEIGHT)[:, None]
    prob = 1 / (1 + np.exp(-(rows - upper))) / (1 + np.exp(-(lower - rows)))
    prob[int(upper[101]) - 30 : int(upper[101]) + 1, SPIKES[0]] = 1.0  # into the septum
    prob[int(lower[251]) : int(lower[251]) + 25, SPIKES[1]] = 1.0  # into the posterior wall
    prob[:100, SPIKES[2]] = 0.0  # a dropout from the top cuts the cavity's upper half
    prob[90:110, 300:311] = 0.0  # a hole in the middle of the cavity
    for column in range(320, 323):  # a thin band near the septum splits the cavity
        top = int(np.ceil(upper[column]))
        prob[top + 3 : top + 6, column] = 0.1
    prob[:, SHORT_GAP] = 0.0
    prob[:, MISSING] = 0.0
    return prob


def away_from_missing():
    keep = np.ones(WIDTH, dtype=bool)
    keep[MISSING] = False
    return keep


def test_edges_follow_the_walls_through_spikes_holes_and_gaps():
    edges = lv_edges(spoiled_map(), 0.5, TIME_RES_S, DEPTH_RES_MM)
    upper, lower = true_edges()
    keep = away_from_missing()
    np.testing.assert_array_less(np.abs(edges.upper_row - upper)[keep], 0.5)
    np.testing.assert_array_less(np.abs(edges.lower_row - lower)[keep], 0.5)
    assert np.isnan(edges.upper_row[MISSING]).all() and np.isnan(edges.lower_row[MISSING]).all()
    lvid = edges.lvid_mm(DEPTH_RES_MM)
    np.testing.assert_allclose(lvid[keep], ((lower - upper) * DEPTH_RES_MM)[keep], atol=0.03)
    # The repairs are marked for the quality decision; a clean column is not.
    assert edges.bridged[SHORT_GAP].all()
    assert all(edges.replaced[spike].all() for spike in SPIKES)
    assert not edges.replaced[20:90].any() and not edges.bridged[20:90].any()


def test_the_longest_run_alone_jumps_at_spikes_and_holes():
    prob = spoiled_map()
    upper, lower = edge_rows(longest_run_per_column(prob > 0.5), prob, 0.5)
    true_upper, true_lower = true_edges()
    keep = away_from_missing()
    keep[SHORT_GAP] = False  # the longest run alone leaves it NaN
    error = np.fmax(np.abs(upper - true_upper), np.abs(lower - true_lower))[keep]
    assert np.nanmax(error) > 5
    assert np.nanmean(error > 0.5) > 0.01


def test_a_clean_map_gives_its_edges_untouched():
    upper, lower = true_edges()
    rows = np.arange(HEIGHT)[:, None]
    prob = 1 / (1 + np.exp(-(rows - upper))) / (1 + np.exp(-(lower - rows)))
    edges = lv_edges(prob, 0.5, TIME_RES_S, DEPTH_RES_MM)
    assert not edges.replaced.any() and not edges.bridged.any()
    assert edges.upper_row == pytest.approx(upper, abs=0.05)
    assert edges.lower_row == pytest.approx(lower, abs=0.05)
