"""OUT/index.html, the review page of a measured folder, in a real browser."""

import csv
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import HEART_HEIGHT as HEIGHT
from helpers import exact_model, heart_mask
from PIL import Image

from measurement.pipeline import MeasureSettings
from measurement.recordings import Measuring
from measurement.study import measure_recordings

TIME_RES_S, DEPTH_RES_MM = 0.00083, 0.025
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A measured folder: good (every beat accepted), spoilt (the cavity is missing at one
    end-diastole, so two beats are rejected), weak (no beat contracts: failed) and broken
    (not an image: failed, no report)."""
    root = tmp_path_factory.mktemp("review")
    folder, out = root / "in", root / "out"
    folder.mkdir()
    spoilt = heart_mask(15.0)
    spoilt[:, 473:478] = 0
    for name, image in (("good", heart_mask(15.0)), ("spoilt", spoilt), ("weak", heart_mask(2))):
        Image.fromarray(image).save(folder / f"{name}.png")
        sidecar = {"time_res_s": TIME_RES_S, "depth_res_mm": DEPTH_RES_MM}
        (folder / f"{name}.json").write_text(json.dumps(sidecar))
    (folder / "broken.png").write_bytes(b"not a png")
    measuring = Measuring(
        MeasureSettings(size=HEIGHT, batch_size=4), time_res_s=None, depth_res_mm=None
    )
    out.mkdir()
    recordings = sorted(folder.glob("*.png"))
    assert measure_recordings(exact_model, recordings, measuring, out, folder=True) == 1
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Rows(HTMLParser):
    """The class attribute of each row of the table with id `summary`."""

    def __init__(self):
        super().__init__()
        self.inside, self.marks, self.images = False, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("id") == "summary"
        elif tag == "tr" and self.inside and "class" in attrs:
            self.marks.append(attrs["class"])
        elif tag == "img":
            self.images.append(attrs["src"])


def test_the_page_has_a_marked_row_per_recording_and_links_each_report(measured):
    page = Rows()
    page.feed((measured / "index.html").read_text(encoding="utf-8"))
    # Sorted by name: broken, good, spoilt, weak.
    assert page.marks == ["failed", "", "", "failed"]
    assert page.images == ["good_report.png", "spoilt_report.png", "weak_report.png"]
    assert all((measured / image).is_file() for image in page.images)


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), *CHROMIUM_NAMES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def test_the_page_works_in_headless_chromium(measured, tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (in requirements-dev.txt)"
    )
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: apt-get install chromium (or set CHROMIUM=/path)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((measured / "index.html").as_uri())
        rows = page.locator("#summary tbody tr")
        assert rows.count() == 4
        column = page.locator("#summary th").all_inner_texts().index("LVIDd mm")

        def lvid_d_values():
            cells = page.locator(f"#summary tbody tr td:nth-child({column + 1})")
            return [value for value in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]

        page.locator("#summary th", has_text="LVIDd mm").click()
        ascending = lvid_d_values()
        numbers = [float(v) for v in ascending if v]
        assert len(numbers) == 2 and numbers == sorted(numbers)
        assert ascending[2:] == ["", ""]  # the failed recordings have no LVIDd: last
        page.locator("#summary th", has_text="LVIDd mm").click()
        descending = [float(v) for v in lvid_d_values() if v]
        assert descending == sorted(numbers, reverse=True)
        # Every report image loads (they load lazily: bring each into view first).
        images = page.locator("section img")
        assert images.count() == 3
        for k in range(images.count()):
            images.nth(k).scroll_into_view_if_needed()
            images.nth(k).evaluate("img => img.decode()")
            assert images.nth(k).evaluate("img => img.complete && img.naturalWidth") > 100
        # Rejected beats are marked: as many shaded rows as rejected beats in the CSVs.
        rejected = sum(
            row["accepted"] == "false"
            for name in ("good", "spoilt", "weak")
            for row in read_rows(measured / f"{name}_beats.csv")
        )
        spoilt = [r["accepted"] for r in read_rows(measured / "spoilt_beats.csv")]
        assert spoilt.count("false") == 2
        assert page.locator("table.beats tr.rejected").count() == rejected
        page.evaluate("window.scrollTo(0, 0)")
        screenshot = tmp_path / "review_page.png"
        page.screenshot(path=str(screenshot))
        browser.close()
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
    assert pixels.std() > 20  # text, table shading and an image, not a blank page
    print(f"screenshot: {screenshot}")


def test_a_page_opens_for_a_folder_of_200_recordings(measured, tmp_path):
    """Size, not speed: 200 recordings' beats fit in a page a browser opens at once."""
    from measurement.review import write_review_page

    rows = read_rows(measured / "summary.csv")
    beats = read_rows(measured / "good_beats.csv")
    many = [{**rows[1], "name": f"rec_{k:03d}", "n_beats": 12, "n_beats_accepted": 12}
            for k in range(200)]  # fmt: skip
    write_review_page(tmp_path / "index.html", many, {r["name"]: beats for r in many}, "many")
    assert (tmp_path / "index.html").stat().st_size < 5_000_000
    assert Path(tmp_path / "index.html").read_text(encoding="utf-8").count("<section") == 200


@pytest.mark.parametrize(
    "accepted, total, mark",
    [(2, 2, "few"), (4, 10, "few"), (5, 9, ""), (3, 3, ""), (0, 0, "few")],
)
def test_rows_with_few_accepted_beats_are_marked(accepted, total, mark):
    from measurement.review import row_mark

    row = {"status": "ok", "n_beats_accepted": accepted, "n_beats": total}
    assert row_mark(row) == mark
    assert row_mark({**row, "status": "failed"}) == "failed"


def test_a_full_disk_stops_measuring_with_one_sentence_naming_the_file(
    tmp_path, capsys, monkeypatch
):
    import errno

    import measurement.recordings as recordings
    from runtime.errors import WriteError

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(heart_mask(15.0)).save(folder / f"{name}.png")
    written = []

    def save_png(path, array):  # the disk fills up after the first recording's mask
        if written:
            raise WriteError(path, OSError(errno.ENOSPC, "No space left on device"))
        written.append(path)

    measuring = Measuring(MeasureSettings(size=HEIGHT, batch_size=4), TIME_RES_S, DEPTH_RES_MM)
    monkeypatch.setattr(recordings.files, "save_png", save_png)
    code = measure_recordings(exact_model, sorted(folder.glob("*.png")), measuring, out, True)
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: cannot write {out / 'a_overlay.png'} (No space left on device); free space "
        "or choose another folder with -o."
    ]
    assert "Traceback" not in err
    assert not (out / "summary.csv").exists() and not list(out.glob("b_*"))


def test_wall_columns_show_only_when_a_recording_has_walls(measured, tmp_path):
    from measurement.review import write_review_page

    binary = (measured / "index.html").read_text(encoding="utf-8")
    assert "LVIDd mm" in binary and "IVSd mm" not in binary and "LV mass" not in binary
    rows = read_rows(measured / "summary.csv")
    walls = [{**rows[1], "n_beats": 11, "n_beats_accepted": 11, "ivs_d_mm": 0.81,
              "lv_mass_mg": 92.5}]  # fmt: skip
    write_review_page(tmp_path / "index.html", walls, {}, "walls")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "IVSd mm" in page and "LV mass mg" in page and 'data-value="0.81">0.81<' in page


def test_the_page_names_the_model_that_measured_escaped(tmp_path):
    from measurement.review import write_review_page

    rows = [{"name": "rec", "status": "failed", "error": "not an image"}]
    write_review_page(tmp_path / "index.html", rows, {}, "named", "runs/<a&b>/best.pt")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    top = page[: page.index('<table class="sortable"')]  # above the summary table
    assert "Measured with runs/&lt;a&amp;b&gt;/best.pt." in top and "<a&b>" not in page
    write_review_page(tmp_path / "unnamed.html", rows, {}, "unnamed")
    assert "Measured with" not in (tmp_path / "unnamed.html").read_text(encoding="utf-8")


class Links(HTMLParser):
    """The summary table's links, the sections' ids and the report images' sources."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        elif tag == "section":
            self.ids.append(attrs["id"])
        elif tag == "img":
            self.images.append(attrs["src"])


ODD_NAMES = ["a b", "a_b", "rec#1", "50%", "what?", "x&y", "maus_ü"]


def test_odd_recording_names_get_working_links_and_anchors_of_their_own(tmp_path):
    from urllib.parse import unquote, urlsplit

    from measurement.review import write_review_page

    for name in ODD_NAMES:
        Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / f"{name}_report.png")
    rows = [
        {"name": name, "status": "ok", "n_beats": 5, "n_beats_accepted": 5} for name in ODD_NAMES
    ]
    write_review_page(tmp_path / "index.html", rows, {}, "odd")
    page = Links()
    page.feed((tmp_path / "index.html").read_text(encoding="utf-8"))
    # Each image is the file of its recording: the path part of the URL, decoded.
    assert len(page.images) == len(ODD_NAMES)
    for name, src in zip(ODD_NAMES, page.images, strict=True):
        url = urlsplit(src)
        assert not url.query and not url.fragment, src
        assert unquote(url.path) == f"{name}_report.png"
    assert len(set(page.ids)) == len(ODD_NAMES)  # "a b" and "a_b" apart
    assert page.links == page.ids  # each row links to its own section


def test_odd_recording_names_load_in_headless_chromium(tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (in requirements-dev.txt)"
    )
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: apt-get install chromium (or set CHROMIUM=/path)")
    from measurement.review import write_review_page

    for name in ODD_NAMES:
        Image.fromarray(np.full((120, 160), 200, np.uint8)).save(tmp_path / f"{name}_report.png")
    rows = [
        {"name": name, "status": "ok", "n_beats": 5, "n_beats_accepted": 5} for name in ODD_NAMES
    ]
    write_review_page(tmp_path / "index.html", rows, {}, "odd")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto((tmp_path / "index.html").as_uri())
        images = page.locator("section img")
        assert images.count() == len(ODD_NAMES)
        for k in range(images.count()):
            images.nth(k).scroll_into_view_if_needed()
            images.nth(k).evaluate("img => img.decode()")
            assert images.nth(k).evaluate("img => img.naturalWidth") == 160, ODD_NAMES[k]
        # A click on a row's name shows that recording's section.
        page.locator("#summary a", has_text="a_b").click()
        target = page.evaluate("decodeURIComponent(location.hash)")
        heading = page.locator(f"section[id='{target[1:]}'] h2").inner_text()
        assert heading == "a_b"
        browser.close()


def test_every_beat_column_has_a_heading_for_people():
    from measurement.review import BEAT_COLUMNS, HEADINGS

    assert [c for c in BEAT_COLUMNS if c not in HEADINGS] == []
