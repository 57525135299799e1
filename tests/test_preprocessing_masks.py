"""The mask rule on small hand-computed cases, and the trace checks."""

import numpy as np
import pytest

from preprocessing.masks import TraceError, annotated_span, check_traces, mask_from_traces


def rows_of(mask: np.ndarray, col: int) -> list[int]:
    return np.flatnonzero(mask[:, col]).tolist()


def test_straight_traces_fill_rows_between_them_inclusive():
    mask = mask_from_traces(np.array([[0, 2], [4, 2]]), np.array([[0, 5], [4, 5]]), 8, 5)
    expected = np.zeros((8, 5), np.uint8)
    expected[2:6, :] = 255
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8


def test_fractional_points_round_inwards():
    # upper from y=1.25 at x=0.5 to y=3.25 at x=4.5: column c has upper = 1 + 0.5 c
    # lower constant 6.7; span = columns 1..4 (x from 0.5 to 4.5; lower covers 0..5)
    upper = np.array([[0.5, 1.25], [4.5, 3.25]])
    lower = np.array([[0, 6.7], [5, 6.7]])
    mask = mask_from_traces(upper, lower, 8, 6)
    assert annotated_span(upper, lower) == (1, 4)
    assert rows_of(mask, 0) == [] and rows_of(mask, 5) == []
    assert rows_of(mask, 1) == [2, 3, 4, 5, 6]  # upper 1.5
    assert rows_of(mask, 2) == [2, 3, 4, 5, 6]  # upper 2.0: row 2 included
    assert rows_of(mask, 3) == [3, 4, 5, 6]  # upper 2.5
    assert rows_of(mask, 4) == [3, 4, 5, 6]  # upper 3.0


def test_unsorted_points_give_the_same_mask_as_sorted_ones():
    upper = np.array([[0, 1], [2, 3], [4, 1]])
    lower = np.array([[0, 6], [4, 6]])
    shuffled = upper[[2, 0, 1]]
    np.testing.assert_array_equal(
        mask_from_traces(shuffled, lower, 8, 5), mask_from_traces(upper, lower, 8, 5)
    )
    mask = mask_from_traces(shuffled, lower, 8, 5)
    assert [rows_of(mask, c)[0] for c in range(5)] == [1, 2, 3, 2, 1]  # a peak at x=2


def test_traces_starting_and_ending_at_different_columns_keep_only_their_overlap():
    upper = np.array([[1, 1], [8, 1]])
    lower = np.array([[3.2, 4], [9, 4]])  # starts at 3.2: first column 4
    assert annotated_span(upper, lower) == (4, 8)
    mask = mask_from_traces(upper, lower, 6, 10)
    assert np.flatnonzero(mask.any(axis=0)).tolist() == [4, 5, 6, 7, 8]
    assert rows_of(mask, 6) == [1, 2, 3, 4]


def test_round_off_does_not_drop_an_edge_row():
    # np.interp gives 0.9999999999999999 at column 3; exactly it is 1.0, so row 1 is inside.
    lower = np.array([[0, 0.1], [10, 3.1]])
    upper = np.array([[0, 0], [10, 0]])
    assert np.interp(3, [0, 10], [0.1, 3.1]) < 1
    assert rows_of(mask_from_traces(upper, lower, 5, 11), 3) == [0, 1]


def test_points_sharing_an_x_are_merged_at_their_mean():
    upper = np.array([[0, 1], [2, 1], [2, 3], [4, 2]])  # two points at x=2: y=2 there
    lower = np.array([[0, 6], [4, 6]])
    mask = mask_from_traces(upper, lower, 8, 5)
    assert [rows_of(mask, c)[0] for c in range(5)] == [1, 2, 2, 2, 2]


def test_traces_may_touch_but_not_cross():
    upper = np.array([[0, 3], [4, 3]])
    touching = mask_from_traces(upper, np.array([[0, 3], [4, 6]]), 8, 5)
    assert rows_of(touching, 0) == [3]
    crossing = np.array([[0, 5], [2, 2], [4, 5]])  # above upper=3 only at x=2
    with pytest.raises(TraceError, match=r"below the lower trace in 1 column\(s\): 2\."):
        check_traces(upper, crossing, 8, 5)


def test_crossing_message_lists_the_first_columns():
    upper = np.array([[0, 6], [30, 6]])
    lower = np.array([[0, 5], [30, 5]])
    with pytest.raises(TraceError, match=r"in 31 column\(s\): 0, 1, 2, 3, 4 and 26 more\.$"):
        check_traces(upper, lower, 8, 31)


@pytest.mark.parametrize(
    ("upper", "lower", "message"),
    [
        ([[1, 1]], [[0, 5], [4, 5]], "upper trace has 1 point"),
        ([[0, 1], [4, 1]], [[2, 5], [2, 6]], "lower trace has 2 point.* at 1 different x"),
        ([[0, 1], [5, 1]], [[0, 5], [4, 5]], r"outside the 8x5 image, first \(x=5, y=1\)"),
        ([[0, 1], [4, 1]], [[0, 5], [4, 8]], r"lower trace lie outside .* \(x=4, y=8\)"),
        ([[0, -0.5], [4, 1]], [[0, 5], [4, 5]], "outside"),
        ([[0, 1], [1.5, 1]], [[1.7, 5], [4, 5]], "share no column"),
    ],
)
def test_bad_traces_are_refused_with_a_reason(upper, lower, message):
    with pytest.raises(TraceError, match=message):
        mask_from_traces(np.array(upper, float), np.array(lower, float), 8, 5)


def test_points_on_the_last_row_and_column_are_inside():
    mask = mask_from_traces(np.array([[0, 0], [4, 0]]), np.array([[0, 7], [4, 7]]), 8, 5)
    assert mask.all()
