"""Measuring walls with a model that segments them: IVS, LVPW, LV mass and RWT per beat,
their quality reasons, report and files; a cavity model's outputs carry no wall numbers."""

import csv
import json

import numpy as np
import pytest
import torch
from helpers import exact_model
from PIL import Image

from measurement.beats import WALL_FIELDS, find_beats, make_beat
from measurement.edges import lv_edges
from measurement.inference import segment_recording
from measurement.outputs import PER_RECORDING
from measurement.pipeline import MeasureSettings
from measurement.quality import judge_beats
from measurement.recordings import Measuring
from measurement.report import IVS_TOP_RGB, LVPW_BOTTOM_RGB, recording_overlay
from measurement.study import measure_recordings
from measurement.walls import add_walls, relative_wall_thickness, wall_borders
from mmode.scanner import lv_mass_corrected_mg, lv_mass_mg

TIME_RES_S, DEPTH_RES_MM = 0.00083, 0.025
HEIGHT, WIDTH, BEAT_COLUMNS, FIRST_ED = 200, 1200, 100, 25  # 723 bpm, EDs at 25 + 100 k
GREY_PER_LABEL = 60  # the label image shows label k as grey 60 k


def borders(ivs_swing=6.0, lvpw_swing=8.0):
    """ivs_top, upper, lower, lvpw_bottom rows (W,) and the true IVS and LVPW in rows.

    LVID 130 rows (3.25 mm) at ED, 70 at ES; the walls are thinnest at ED, 30 -+ swing rows.
    At ED and ES every border lies on a half row, where a label mask has no rounding error.
    """
    cos = np.cos(2 * np.pi * (np.arange(WIDTH) - FIRST_ED) / BEAT_COLUMNS)
    upper, lower = 50.5 - 15 * cos, 150.5 + 15 * cos
    ivs, lvpw = 30 - ivs_swing * cos, 30 - lvpw_swing * cos
    return upper - ivs, upper, lower, lower + lvpw, ivs, lvpw


def label_image(ivs_top, upper, lower, lvpw_bottom):
    """uint8 (H, W): 0 background, 1 septum, 2 cavity, 3 posterior wall (row centres between)."""
    rows = np.arange(HEIGHT)[:, None]
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[(rows > ivs_top) & (rows < upper)] = 1
    labels[(rows > upper) & (rows < lower)] = 2
    labels[(rows > lower) & (rows < lvpw_bottom)] = 3
    return labels


def exact_wall_model(batch: torch.Tensor) -> torch.Tensor:
    """A perfect four-class network: the window is its own label image (logits +-10)."""
    labels = (batch[:, 0] * 255 / GREY_PER_LABEL).round().clamp(0, 3).long()
    one_hot = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    return one_hot * 20 - 10


def measuring():
    return Measuring(MeasureSettings(size=HEIGHT, batch_size=4), TIME_RES_S, DEPTH_RES_MM)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_lv_mass_and_rwt_by_hand():
    # LVIDd 4.0, IVSd 1.0, LVPWd 1.0 mm: 1.053 x (6^3 - 4^3) = 1.053 x 152 = 160.056 mg.
    assert lv_mass_mg(4.0, 1.0, 1.0) == pytest.approx(160.056)
    assert lv_mass_corrected_mg(4.0, 1.0, 1.0) == pytest.approx(128.0448)
    # LVIDd 3.5, IVSd 0.7, LVPWd 0.8: 1.053 x (5^3 - 3.5^3) = 1.053 x 82.125 = 86.477625 mg.
    assert lv_mass_mg(3.5, 0.7, 0.8) == pytest.approx(86.477625)
    assert relative_wall_thickness(1.0, 4.0) == pytest.approx(0.5)  # 2 x 1.0 / 4.0
    assert relative_wall_thickness(0.7, 3.5) == pytest.approx(0.4)


def test_a_wall_model_gives_each_class_stitched():
    labels = label_image(*borders()[:4])
    probs = segment_recording(exact_wall_model, labels * GREY_PER_LABEL, size=HEIGHT)
    assert probs.shape == (4, HEIGHT, WIDTH)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert (probs.argmax(axis=0) == labels).all()


@pytest.mark.parametrize("ivs_swing, lvpw_swing", [(6.0, 8.0), (0.0, 0.0)])
def test_walls_per_beat_from_an_exact_wall_model(tmp_path, ivs_swing, lvpw_swing):
    ivs_top, upper, lower, lvpw_bottom, ivs_rows, lvpw_rows = borders(ivs_swing, lvpw_swing)
    image = label_image(ivs_top, upper, lower, lvpw_bottom) * GREY_PER_LABEL
    Image.fromarray(image).save(tmp_path / "rec.png")
    out = tmp_path / "out"
    out.mkdir()
    assert (
        measure_recordings(exact_wall_model, [tmp_path / "rec.png"], measuring(), out, False) == 0
    )
    beats = read_rows(out / "rec_beats.csv")
    assert len(beats) >= 9 and all(b["accepted"] == "true" for b in beats)
    half_row_mm = 0.5 * DEPTH_RES_MM
    for beat in beats:
        ed = int(round(float(beat["t_ed_s"]) / TIME_RES_S))
        es = int(round(float(beat["t_es_s"]) / TIME_RES_S))
        readings = {"ivs_d_mm": (ivs_rows, ed), "ivs_s_mm": (ivs_rows, es),
                    "lvpw_d_mm": (lvpw_rows, ed), "lvpw_s_mm": (lvpw_rows, es)}  # fmt: skip
        for key, (truth, column) in readings.items():
            assert float(beat[key]) == pytest.approx(truth[column] * DEPTH_RES_MM, abs=half_row_mm)
        d, ivs_d, lvpw_d = (float(beat[k]) for k in ("lvid_d_mm", "ivs_d_mm", "lvpw_d_mm"))
        assert float(beat["lv_mass_mg"]) == pytest.approx(lv_mass_mg(d, ivs_d, lvpw_d), rel=1e-5)
        assert float(beat["lv_mass_corrected_mg"]) == pytest.approx(
            0.8 * float(beat["lv_mass_mg"]), rel=1e-5
        )
        assert float(beat["rwt"]) == pytest.approx(2 * lvpw_d / d, rel=1e-5)
        if ivs_swing:  # the walls thicken in systole
            assert float(beat["ivs_s_mm"]) > float(beat["ivs_d_mm"]) + 0.15
            assert float(beat["lvpw_s_mm"]) > float(beat["lvpw_d_mm"]) + 0.25
    summary = json.loads((out / "rec_summary.json").read_text())
    for key in WALL_FIELDS:
        # beats.csv rounds its numbers
        assert summary[key] == pytest.approx(np.median([float(b[key]) for b in beats]), rel=1e-5)
    assert summary["ivs_d_mm"] == pytest.approx((30 - ivs_swing) * DEPTH_RES_MM, abs=half_row_mm)
    assert "LV mass" in (out / "index.html").read_text(encoding="utf-8")


def test_the_report_draws_all_four_borders():
    ivs_top, upper, lower, lvpw_bottom, _, _ = borders()
    probs = np.eye(4)[label_image(ivs_top, upper, lower, lvpw_bottom)].transpose(2, 0, 1)
    edges = lv_edges(probs[2], 0.5, TIME_RES_S, DEPTH_RES_MM)
    walls = wall_borders(probs, edges, 0.5, TIME_RES_S, DEPTH_RES_MM)
    overlay = recording_overlay(np.zeros((HEIGHT, WIDTH), np.uint8), edges, walls)
    column = FIRST_ED  # ivs_top 11.5, lvpw_bottom 187.5: the rims are rows 12 and 187
    assert tuple(overlay[12, column]) == IVS_TOP_RGB
    assert tuple(overlay[187, column]) == LVPW_BOTTOM_RGB
    plain = recording_overlay(np.zeros((HEIGHT, WIDTH), np.uint8), edges)
    assert not (plain == IVS_TOP_RGB).all(axis=2).any()


def judged_walls(labels):
    probs = np.eye(4)[labels].transpose(2, 0, 1)
    edges = lv_edges(probs[2], 0.5, TIME_RES_S, DEPTH_RES_MM)
    walls = wall_borders(probs, edges, 0.5, TIME_RES_S, DEPTH_RES_MM)
    beats = find_beats(edges.lvid_mm(DEPTH_RES_MM), TIME_RES_S)
    beats = add_walls(beats, edges, walls, TIME_RES_S, DEPTH_RES_MM)
    echo = np.clip(
        150 - 130 * probs[2] + np.random.default_rng(0).normal(0, 5, labels.shape), 0, 255
    )
    judged = judge_beats(beats, edges, probs[2], echo, TIME_RES_S, DEPTH_RES_MM, walls)

    # Keyed by the drawn ED nearest each beat's (beats.ONSET_SHARE finds it a column late).
    def drawn_ed(beat):
        return FIRST_ED + round((beat.t_ed_s / TIME_RES_S - FIRST_ED) / BEAT_COLUMNS) * BEAT_COLUMNS

    return {drawn_ed(b): (b, j) for b, j in zip(beats, judged, strict=True)}


@pytest.mark.parametrize("lost_columns", [9, 3])  # not bridged, bridged
def test_a_wall_lost_at_an_end_diastole_rejects_that_beat(lost_columns):
    labels = label_image(*borders()[:4])
    assert all(j.accepted for _, j in judged_walls(labels).values())
    ed = FIRST_ED + 5 * BEAT_COLUMNS
    lost = slice(ed - lost_columns // 2, ed + lost_columns // 2 + 1)
    labels[:, lost][labels[:, lost] == 3] = 0  # the model sees no posterior wall there
    verdicts = judged_walls(labels)
    beat, judgement = verdicts[ed]
    assert judgement.reasons == "wall_missing" and not judgement.accepted
    # The beat before ends at this ED, but reads its walls at its own ED and ES: kept.
    assert verdicts[ed - BEAT_COLUMNS][1].accepted
    assert all(j.accepted for k, (_, j) in verdicts.items() if k != ed)
    if lost_columns > 5:  # too long to bridge (4 ms): no number, rather than a 0 mm wall
        assert beat.lvpw_d_mm is None and beat.lv_mass_mg is None and beat.rwt is None
    assert beat.ivs_d_mm is not None


def test_a_wall_jump_at_an_end_systole_is_wall_jump():
    ivs_top, upper, lower, lvpw_bottom, _, _ = borders()
    es = FIRST_ED + 5 * BEAT_COLUMNS + BEAT_COLUMNS // 2
    ivs_top[es : es + 2] -= 20  # a 2-column spike of septum 20 rows too thick
    verdicts = judged_walls(label_image(ivs_top, upper, lower, lvpw_bottom))
    assert verdicts[FIRST_ED + 5 * BEAT_COLUMNS][1].reasons == "wall_jump"


def test_a_cavity_model_gives_no_wall_numbers_and_the_same_files(tmp_path):
    ivs_top, upper, lower, lvpw_bottom, _, _ = borders()
    labels = label_image(ivs_top, upper, lower, lvpw_bottom)
    Image.fromarray((labels == 2).astype(np.uint8) * 255).save(tmp_path / "cavity.png")
    Image.fromarray(labels * GREY_PER_LABEL).save(tmp_path / "walls.png")
    out_binary, out_walls = tmp_path / "binary", tmp_path / "walls"
    for out, model, name in ((out_binary, exact_model, "cavity"),
                             (out_walls, exact_wall_model, "walls")):  # fmt: skip
        out.mkdir()
        assert measure_recordings(model, [tmp_path / f"{name}.png"], measuring(), out, True) == 0
    assert sorted(p.name for p in out_binary.iterdir()) == sorted(
        ["index.html", "summary.csv", *(f"cavity_{kind}" for kind in PER_RECORDING)]
    )
    binary, walls = (
        read_rows(out_binary / "cavity_beats.csv"),
        read_rows(out_walls / "walls_beats.csv"),
    )
    assert all(row[key] == "" for row in binary for key in WALL_FIELDS)
    assert all(row[key] != "" for row in walls for key in WALL_FIELDS)
    summary = json.loads((out_binary / "cavity_summary.json").read_text())
    assert all(summary[key] is None for key in WALL_FIELDS)
    assert all(read_rows(out_binary / "summary.csv")[0][key] == "" for key in WALL_FIELDS)
    # The cavity is the same, so its numbers are: the walls add to them, change nothing.
    # (Not the quality: +-10 logits give a margin of 0.99991 by sigmoid, 1.0 by softmax.)
    assert len(binary) == len(walls)
    for plain, walled in zip(binary, walls, strict=True):
        for key in plain:
            if key in ("accepted", "reasons"):
                assert plain[key] == walled[key]
            elif key not in (*WALL_FIELDS, "quality"):
                assert float(plain[key]) == pytest.approx(float(walled[key]), rel=1e-5)
    beat = make_beat(0.0, 4.0, 0.04, 3.0, 0.1, "scanner")
    assert all(getattr(beat, key) is None for key in WALL_FIELDS)


def test_a_wall_model_exports_four_borders_that_make_its_label_mask_again(tmp_path):
    from dataclasses import replace

    from preprocessing.annotations import read_annotation
    from preprocessing.masks import label_mask_from_traces

    image = label_image(*borders()[:4])
    Image.fromarray(image * GREY_PER_LABEL).save(tmp_path / "rec.png")
    out = tmp_path / "out"
    out.mkdir()
    exporting = replace(measuring(), export_annotations=True)
    assert measure_recordings(exact_wall_model, [tmp_path / "rec.png"], exporting, out, False) == 0
    for form in ("csv/rec.csv", "labelme/rec.json"):
        traces = read_annotation(out / "annotations" / form)
        assert traces.has_walls, form
        mask = label_mask_from_traces(
            traces.ivs_top, traces.upper, traces.lower, traces.lvpw_bottom, HEIGHT, WIDTH
        )
        span = mask.any(axis=0)
        assert span.sum() > WIDTH / 2, form  # most beats were accepted and exported
        for label in (1, 2, 3):  # each band comes back (IoU per class over the span)
            a, b = (mask == label)[:, span], (image == label)[:, span]
            assert (a & b).sum() / (a | b).sum() >= 0.95, (form, label)
