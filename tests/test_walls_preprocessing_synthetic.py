"""Synthetic recordings with walls: four-border annotations, label windows, wall truth."""

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import points_of_before
from PIL import Image

from mmode.images import read_gray
from mmode.labels import WALL_LABELS, read_labels
from preprocessing import synthetic
from preprocessing.annotations import read_annotation

# As test_synthetic.py: 128 rows x 0.07 mm = 8.96 mm deep, 400 columns = 0.33 s.
SMALL = ["--recordings", "2", "--height", "128", "--width", "400", "--depth-res", "0.07"]
WALL_BEAT_KEYS = ("ivs_d_mm", "ivs_s_mm", "lvpw_d_mm", "lvpw_s_mm", "lv_mass_mg")


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Seed 3 with and without --walls (artefacts on), and clean with --walls and wider."""
    root = tmp_path_factory.mktemp("walls")
    runs = {
        "plain": [],
        "walls": ["--walls"],
        "clean": ["--walls", "--no-artefacts", "--width", "1200"],
    }
    for name, extra in runs.items():
        assert synthetic.main(["--out", str(root / name), "--seed", "3", *SMALL, *extra]) == 0
    return {name: root / name for name in runs}


def files(folder: Path, sub: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / sub).iterdir())}


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_walls_write_four_traces_label_windows_and_labels_json(sets):
    folder = sets["walls"]
    assert read_labels(folder) == list(WALL_LABELS)
    for path in (folder / "annotations").iterdir():
        with open(path, newline="") as f:
            names = {row["trace"] for row in csv.DictReader(f)}
        assert names == {"ivs_top", "upper", "lower", "lvpw_bottom"}
        assert read_annotation(path).has_walls
    values = set()
    for path in (folder / "mask").iterdir():
        values |= set(np.unique(png(path)).tolist())
    assert values == {0, 1, 2, 3}


def test_walls_change_only_annotations_and_masks(sets):
    plain, walls = sets["plain"], sets["walls"]
    assert not (plain / "labels.json").exists()
    for sub in ("recordings", "img", "truth"):
        assert files(plain, sub) == files(walls, sub)
    # The cavity of the label windows is the binary window, pixel for pixel.
    assert files(plain, "mask").keys() == files(walls, "mask").keys()
    for name in files(plain, "mask"):
        binary, labels = png(plain / "mask" / name), png(walls / "mask" / name)
        np.testing.assert_array_equal(binary == 255, labels == WALL_LABELS["cavity"])
        assert set(np.unique(binary).tolist()) <= {0, 255}


def test_a_run_without_walls_over_a_walls_run_is_binary_again(sets, tmp_path):
    out = tmp_path / "again"
    assert synthetic.main(["--out", str(out), "--seed", "3", *SMALL, "--walls"]) == 0
    assert synthetic.main(["--out", str(out), "--seed", "3", *SMALL, "--overwrite"]) == 0
    assert not (out / "labels.json").exists()
    for sub in ("annotations", "mask"):
        assert files(out, sub) == files(sets["plain"], sub)


def truths(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "truth").glob("*.json"))]


def test_wall_truth_is_in_the_drawn_ranges_and_thickens_in_systole(sets):
    for truth in truths(sets["walls"]) + truths(sets["clean"]):
        for key in WALL_BEAT_KEYS:
            assert len(truth[f"beat_{key}"]) == truth["n_beats"] > 0
        ivs_d, ivs_s = np.array(truth["beat_ivs_d_mm"]), np.array(truth["beat_ivs_s_mm"])
        lvpw_d, lvpw_s = np.array(truth["beat_lvpw_d_mm"]), np.array(truth["beat_lvpw_s_mm"])
        # Diastolic thickness is drawn in 0.8-1.1 mm; beats vary it by a few %, and systole
        # adds 30-50 % (septum) or 40-70 % (posterior wall).
        for diastolic in (ivs_d, lvpw_d):
            assert np.all((diastolic > 0.7) & (diastolic < 1.4))
        assert np.all(ivs_s > ivs_d) and np.all(lvpw_s > lvpw_d)
        assert np.all(ivs_s < 1.1 * 1.5 * 1.2) and np.all(lvpw_s < 1.1 * 1.7 * 1.2)
        for key in WALL_BEAT_KEYS:
            assert truth[key] == pytest.approx(np.median(truth[f"beat_{key}"]), abs=1e-6)
        clean = ~np.array(truth["beat_corrupted"])
        assert truth["clean_ivs_s_mm"] == pytest.approx(np.median(ivs_s[clean]), abs=1e-6)


def test_mass_per_beat_is_the_formula_on_the_beats_numbers(sets):
    for truth in truths(sets["walls"]):
        d = np.array(truth["beat_lvid_d_mm"])
        ivs, lvpw = np.array(truth["beat_ivs_d_mm"]), np.array(truth["beat_lvpw_d_mm"])
        expected = 1.053 * ((d + lvpw + ivs) ** 3 - d**3)
        np.testing.assert_allclose(truth["beat_lv_mass_mg"], expected, atol=1e-6)
        assert np.all((expected > 40) & (expected < 250))  # mice: roughly 60-150 mg


def trace_at(csv_path: Path, name: str, width: int) -> np.ndarray:
    with open(csv_path, newline="") as f:
        points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f) if r["trace"] == name]
    points = np.array(points)
    return np.interp(np.arange(width), points[:, 0], points[:, 1])


def test_wall_truth_is_what_the_annotated_borders_show_at_ed_and_es(sets):
    folder = sets["clean"]
    for path in sorted((folder / "annotations").glob("*.csv")):
        truth = json.loads((folder / "truth" / f"{path.stem}.json").read_text())
        ivs_top, upper, lower, lvpw_bottom = (
            trace_at(path, name, 1200) for name in ("ivs_top", "upper", "lower", "lvpw_bottom")
        )
        ivs_mm = (upper - ivs_top) * truth["depth_res_mm"]
        lvpw_mm = (lvpw_bottom - lower) * truth["depth_res_mm"]
        for phase in ("d", "s"):
            key = "ed" if phase == "d" else "es"
            columns = np.rint(np.array(truth[f"beat_{key}_time_s"]) / truth["time_res_s"])
            columns = columns.astype(int)
            # Half a column off ED or ES, and the CSV's 3 decimals: well under 0.01 mm.
            assert ivs_mm[columns] == pytest.approx(truth[f"beat_ivs_{phase}_mm"], abs=0.01)
            assert lvpw_mm[columns] == pytest.approx(truth[f"beat_lvpw_{phase}_mm"], abs=0.01)


# fingerprint() of seed 3's SMALL set with artefacts, written by the code before --walls
# existed (commit eaedb2b): the default output must stay the same.
PLAIN_FINGERPRINT = "cca724ad4e876840a23812108426a5a53170b7a0073dc3c40fa8347a1566598d"


def fingerprint(folder: Path) -> str:
    """A hash of everything but the truth (which gained the wall keys) and the masks (drawn
    from denser annotation points since); the annotations at the points of then; pixels
    for PNGs."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if relative.parts[0] in ("truth", "mask"):
            continue
        digest.update(str(relative).encode())
        if relative.parts[0] == "annotations":
            digest.update(points_of_before(path.read_text()))
        else:
            digest.update(read_gray(path).tobytes() if path.suffix == ".png" else path.read_bytes())
    return digest.hexdigest()


def test_without_walls_the_files_are_those_of_before(sets):
    assert fingerprint(sets["plain"]) == PLAIN_FINGERPRINT
