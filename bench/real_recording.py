"""A model measured on the one real recording, against our reference annotation of it.

    python -m bench.real_recording [-m weights/synthetic.pt] [--columns 2200:]

The recording and its reference are in tests/data/real/ (README there: how the reference
was traced, and the hand count of beats). Prints, for the annotated columns (or those of
--columns): the share of columns whose measured cavity edges lie within 4 rows of the
reference, the median error, LVIDd and LVIDs (medians over the accepted beats) against the
reference's, the heart rate against the hand count, the beats accepted on the annotated
stretches and where the probe is off the heart, each rejection reason, and whether
re-exposed copies (darker, gamma-brightened, lower contrast) give the same edges.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import test as test_cli
from measurement.edges import lv_edges
from measurement.inference import LoadedModel, load_model, segment_recording
from mmode.images import read_gray
from preprocessing.annotations import read_annotation
from preprocessing.masks import interpolate_trace

ROOT = Path(__file__).resolve().parents[1]
REAL_DIR = ROOT / "tests" / "data" / "real"
RECORDING = REAL_DIR / "e2p_real.png"
HAND_COUNT = REAL_DIR / "hand_count.json"
TIME_RES_S, DEPTH_RES_MM = 0.0014, 0.0415  # estimated: tests/data/real/README.md
OFF_HEART_COLUMNS = (0, 428)  # the probe is off the heart here (the published tool: 0.0)
WITHIN_ROWS = 4
SAME_ROWS = 2


def reference_rows(width: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's upper and lower edge rows per column, NaN where not annotated.

    Each CSV in tests/data/real/ holds one stretch; between its first and last point the
    traces are interpolated linearly, as make_masks draws them."""
    upper, lower = np.full(width, np.nan), np.full(width, np.nan)
    for path in sorted(REAL_DIR.glob("*.csv")):
        traces = read_annotation(path)
        first = int(np.ceil(max(traces.upper[:, 0].min(), traces.lower[:, 0].min())))
        last = int(np.floor(min(traces.upper[:, 0].max(), traces.lower[:, 0].max())))
        columns = np.arange(first, last + 1)
        upper[columns] = interpolate_trace(traces.upper, columns)
        lower[columns] = interpolate_trace(traces.lower, columns)
    return upper, lower


def re_exposed(image: np.ndarray) -> dict[str, np.ndarray]:
    """The same recording as another scanner setting would show it, as uint8."""
    grey = image.astype(float)
    copies = {
        "darker (x0.5)": grey * 0.5,
        "gamma-brightened (0.6)": 255 * (grey / 255) ** 0.6,
        "lower contrast (x0.5 + 40)": grey * 0.5 + 40,
    }
    return {name: np.clip(np.round(c), 0, 255).astype(np.uint8) for name, c in copies.items()}


def measured_edges(loaded: LoadedModel, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = loaded.im_size or test_cli.DEFAULT_SIZE
    prob = segment_recording(
        loaded.model, image, size, time_res_s=TIME_RES_S, window_s=loaded.window_s
    )
    prob = prob if prob.ndim == 2 else prob[2]  # a wall model's cavity channel
    edges = lv_edges(prob, 0.5, TIME_RES_S, DEPTH_RES_MM)
    return edges.upper_row, edges.lower_row


def edge_agreement(found: tuple, reference: tuple, columns: np.ndarray) -> dict[str, float]:
    """Share of the columns with both edges within WITHIN_ROWS, and the median errors."""
    errors = np.stack(
        [np.abs(f[columns] - r[columns]) for f, r in zip(found, reference, strict=True)]
    )
    errors = np.where(np.isfinite(errors), errors, np.inf)  # no edge found: a miss
    return {
        "columns": int(columns.size),
        "both_within_4": float(np.mean(np.all(errors <= WITHIN_ROWS, axis=0))),
        "upper_median_rows": float(np.median(errors[0])),
        "lower_median_rows": float(np.median(errors[1])),
    }


def hand_beats(columns: np.ndarray) -> list[tuple[int, int]]:
    """The hand-counted beats (ED to next ED, within one stretch) inside these columns."""
    stretches = json.loads(HAND_COUNT.read_text())["ed_columns_by_stretch"].values()
    inside = set(columns.tolist())
    pairs = [pair for eds in stretches for pair in zip(eds, eds[1:], strict=False)]
    return [(ed, end) for ed, end in pairs if ed in inside and end in inside]


def reference_lvid_mm(upper: np.ndarray, lower: np.ndarray, beats: list[tuple[int, int]]):
    """Median LVIDd and LVIDs of the reference: each beat's largest and least LVID."""
    lvid = (lower - upper) * DEPTH_RES_MM
    d = [np.nanmax(lvid[ed : end + 1]) for ed, end in beats]
    s = [np.nanmin(lvid[ed : end + 1]) for ed, end in beats]
    return float(np.median(d)), float(np.median(s))


def measure_with_cli(model_path: str, out: Path) -> list[dict]:
    """test.py's beats of the recording, with the estimated resolution."""
    recordings = out / "in"
    recordings.mkdir()
    shutil.copyfile(RECORDING, recordings / RECORDING.name)
    test_cli.main(
        ["-d", str(recordings), "-m", model_path, "-o", str(out / "out"), "--time-res",
         str(TIME_RES_S), "--depth-res", str(DEPTH_RES_MM)]
    )  # fmt: skip
    with open(out / "out" / f"{RECORDING.stem}_beats.csv", newline="") as f:
        return list(csv.DictReader(f))


def report(model_path: str, columns: slice | None) -> dict:
    torch.manual_seed(0)
    image = read_gray(RECORDING)
    loaded = load_model(model_path, {}, torch.device("cpu"))
    reference = reference_rows(image.shape[1])
    annotated = np.flatnonzero(np.isfinite(reference[0]) & np.isfinite(reference[1]))
    if columns is not None:
        annotated = annotated[
            (annotated >= (columns.start or 0)) & (annotated < (columns.stop or image.shape[1]))
        ]
    found = measured_edges(loaded, image)
    result = {"model": model_path, "edges": edge_agreement(found, reference, annotated)}
    beats_by_hand = hand_beats(annotated)
    ref_d, ref_s = reference_lvid_mm(*reference, beats_by_hand)
    with tempfile.TemporaryDirectory() as tmp:
        beats = measure_with_cli(model_path, Path(tmp))
    in_span = set(annotated.tolist())
    ed_col = [int(round(float(b["t_ed_s"]) / TIME_RES_S)) for b in beats]
    clean = [b for b, c in zip(beats, ed_col, strict=True) if c in in_span]
    off = [
        b
        for b, c in zip(beats, ed_col, strict=True)
        if OFF_HEART_COLUMNS[0] <= c <= OFF_HEART_COLUMNS[1]
    ]
    accepted = [b for b in clean if b["accepted"] == "true"]
    # Heart rate as beats per time over the accepted beats, as test.py reports it.
    rr_s = [60 / float(b["heart_rate_bpm"]) for b in accepted]
    hand_rr_s = np.array([end - ed for ed, end in beats_by_hand]) * TIME_RES_S
    result["beats"] = {
        "clean_found": len(clean),
        "clean_accepted": len(accepted),
        "off_heart_found": len(off),
        "off_heart_accepted": sum(b["accepted"] == "true" for b in off),
        "reasons": dict(Counter(w for b in beats for w in b["reasons"].split(";") if w)),
    }
    result["numbers"] = {
        "lvid_d_mm": float(np.median([float(b["lvid_d_mm"]) for b in accepted]))
        if accepted
        else None,
        "lvid_s_mm": float(np.median([float(b["lvid_s_mm"]) for b in accepted]))
        if accepted
        else None,
        "reference_lvid_d_mm": ref_d,
        "reference_lvid_s_mm": ref_s,
        "reference_beats": len(beats_by_hand),
        "heart_rate_bpm": 60 * len(rr_s) / sum(rr_s) if rr_s else None,
        "hand_count_bpm": 60 * hand_rr_s.size / hand_rr_s.sum(),
    }
    result["re_exposed_within_2"] = {}
    for name, copy in re_exposed(image).items():
        other = measured_edges(loaded, copy)
        diff = np.stack([np.abs(o - f) for o, f in zip(other, found, strict=True)])[:, annotated]
        result["re_exposed_within_2"][name] = float(np.mean(np.all(diff <= SAME_ROWS, axis=0)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=str(ROOT / "weights" / "synthetic.pt"))
    parser.add_argument("--columns", default=None, help="FIRST:LAST of the annotated columns")
    args = parser.parse_args(argv)
    columns = None
    if args.columns:
        first, _, last = args.columns.partition(":")
        columns = slice(int(first) if first else None, int(last) if last else None)
    print(json.dumps(report(args.model, columns), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
