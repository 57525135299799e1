"""Window placement inside the annotated span, and quality restriction."""

import numpy as np
import pytest

from mmode.images import recording_name
from mmode.windows import window_starts
from preprocessing.quality_regions import QualityRegions, allowed_segments, read_quality_csv
from preprocessing.window_plan import Window, cut, lv_centre_row, mask_span, plan_windows
from runtime.errors import RecordingError


def band_mask(height, width, first_col, last_col, top=5, bottom=12):
    mask = np.zeros((height, width), bool)
    mask[top : bottom + 1, first_col : last_col + 1] = True
    return mask


@pytest.mark.parametrize(
    ("first", "last", "side", "step"), [(3, 42, 10, 5), (0, 9, 10, 5), (7, 50, 20, 7)]
)
def test_windows_cover_the_span_and_never_leave_it(first, last, side, step):
    starts = window_starts(first, last, side, step)
    covered = set()
    for start in starts:
        assert first <= start and start + side - 1 <= last
        covered |= set(range(start, start + side))
    assert covered == set(range(first, last + 1))
    assert starts[-1] == last - side + 1  # the last window is aligned to the span's end
    assert all(b - a == step for a, b in zip(starts[:-2], starts[1:-1], strict=True))


def test_plan_windows_uses_half_the_height_by_default():
    mask = band_mask(20, 100, 10, 69)
    windows = plan_windows(mask, [mask_span(mask)])
    assert [w.col for w in windows] == [10, 20, 30, 40, 50]
    assert {(w.row, w.size) for w in windows} == {(0, 20)}


def test_short_span_gives_one_square_window_centred_on_the_lv():
    mask = band_mask(20, 40, 10, 17, top=12, bottom=17)  # 8 columns, LV centre 14.5
    [window] = plan_windows(mask, [mask_span(mask)])
    assert window == Window(row=11, col=10, size=8)  # rows 11..18, centred on 14.5
    assert cut(mask, window).shape == (8, 8)
    low = band_mask(20, 40, 10, 17, top=18, bottom=19)
    assert plan_windows(low, [mask_span(low)]) == [Window(row=12, col=10, size=8)]  # clipped


def test_lv_centre_follows_the_mask_edges():
    mask = np.zeros((10, 4), bool)
    mask[2:5, 0] = True  # middle 3
    mask[4:9, 1] = True  # middle 6
    assert lv_centre_row(mask, 0, 1) == 4.5


def test_mask_span_of_an_empty_mask_is_none():
    assert mask_span(np.zeros((4, 4), bool)) is None
    assert mask_span(band_mask(20, 40, 3, 30)) == (3, 30)


def test_quality_regions_keep_good_columns_minus_bad_ones():
    regions = QualityRegions(good_s=[(0.09, 0.3), (0.5, 2.0)], bad_s=[(0.2, 0.25)])
    # time_res 0.01 s: good columns 9..30 and 50..200, bad 20..25, span 12..80
    assert allowed_segments(12, 80, regions, 0.01) == [(12, 19), (26, 30), (50, 80)]
    assert allowed_segments(12, 80, QualityRegions(bad_s=[(0, 1)]), 0.01) == []


def test_quality_csv_in_the_tool_format(tmp_path):
    path = tmp_path / "quality.csv"
    path.write_text(
        "Recording, Good-Start, Good-End, Bad-Start, Bad-End\n"
        "rec1.png, 0.9 3.0, 1.5 4.3, 1.0, 1.1\n"
        "dir/rec2.dcm,0.5,,,\n"
    )
    table = read_quality_csv(path)
    regions = table.for_recording("rec1")
    assert regions.good_s == [(0.9, 1.5), (3.0, 4.3)] and regions.bad_s == [(1.0, 1.1)]
    with pytest.raises(RecordingError, match=r"line 3 \(rec2\): 1 start time\(s\) but 0 end"):
        table.for_recording("rec2")
    with pytest.raises(RecordingError, match="no row for recording rec3"):
        table.for_recording("rec3")


def test_recording_names_drop_folders_and_image_suffixes():
    assert recording_name(" data/m1.PNG ") == "m1"
    assert recording_name("1.2.840.5") == "1.2.840.5"
    assert recording_name("scan.dcm") == "scan"


def test_windows_inside_quality_segments_only():
    mask = band_mask(10, 100, 5, 94)
    segments = allowed_segments(5, 94, QualityRegions(good_s=[(0.20, 0.50), (0.60, 0.66)]), 0.01)
    assert segments == [(20, 50), (60, 66)]
    windows = plan_windows(mask, segments, step=10)
    assert [(w.col, w.size) for w in windows] == [(20, 10), (30, 10), (40, 10), (41, 10), (60, 7)]
    for w in windows:
        assert any(a <= w.col and w.col + w.size - 1 <= b for a, b in segments)
