"""Compare test.py's measurements of synthetic recordings with their truth.

    python -m bench.accuracy --truth HELDOUT/truth --results RESULTS [--metrics EVAL/metrics.json]

Per recording: the measured summary (over the beats test.py accepted) against the truth
over its clean beats (`clean_*` medians, and beats per time; over all beats for truth
files without artefacts). Per beat: each true beat is matched to the measured beat whose
end-diastole is nearest, within MATCH_S; the errors of accepted beats, the share of corrupted beats
rejected (a beat not found counts as rejected) and the share of clean beats accepted.
With --model, test.py measures the widest held-out recording twice in this process and
the second run is timed (target MEASURE_TARGET_S). Then the targets, PASS or FAIL each.
The end-diastole and end-systole timing error of the clean beats found (median and 95th
percentile, ms) is reported beside them. Exit status 0 when all are met, 1 when one is not,
2 for missing files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from measurement.beats import beats_per_minute

ROOT = Path(__file__).resolve().parents[1]

DICE_TARGET = 0.95
LVID_MEDIAN_TARGET_MM = 0.05
LVID_WORST_TARGET_MM = 0.10
HR_MEDIAN_TARGET_PERCENT = 1.0
HR_WORST_TARGET_PERCENT = 2.0
BEAT_P95_TARGET_MM = 0.15
REJECTED_TARGET = 0.90  # of the corrupted beats
ACCEPTED_TARGET = 0.90  # of the clean beats
MEASURE_TARGET_S = 5.0  # one recording of ~1400 columns on the CPU
MATCH_S = 0.015  # a measured end-diastole this close to a true one is the same beat
RECORDING_KEYS = ("lvid_d_mm", "lvid_s_mm", "heart_rate_bpm", "ef_percent")
# Checked when test.py measured walls (a four-class model).
WALL_KEYS = ("ivs_d_mm", "ivs_s_mm", "lvpw_d_mm", "lvpw_s_mm", "lv_mass_mg")
WALL_MEDIAN_TARGET_MM = 0.05
WALL_WORST_TARGET_MM = 0.10
MASS_MEDIAN_TARGET_PERCENT = 8.0
MASS_WORST_TARGET_PERCENT = 15.0


@dataclass
class Recording:
    name: str
    truth: dict
    summary: dict | None  # NAME_summary.json; None when test.py wrote none
    beats: list[dict]  # NAME_beats.csv rows


def load_recordings(truth_dir: Path, results_dir: Path) -> list[Recording]:
    """Every truth/NAME.json with what test.py wrote for NAME."""
    recordings = []
    for truth_path in sorted(truth_dir.glob("*.json")):
        name = truth_path.stem
        summary_path = results_dir / f"{name}_summary.json"
        beats_path = results_dir / f"{name}_beats.csv"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        beats = []
        if beats_path.is_file():
            with open(beats_path, newline="") as f:
                beats = list(csv.DictReader(f))
        recordings.append(Recording(name, json.loads(truth_path.read_text()), summary, beats))
    return recordings


def true_value(truth: dict, key: str) -> float | None:
    """The truth over its clean beats where it marks them, else over all beats: the
    median, but the heart rate as beats per time, as test.py reports it."""
    if key == "heart_rate_bpm":
        corrupted = truth.get("beat_corrupted", [False] * truth["n_beats"])
        pairs = zip(truth["beat_heart_rate_bpm"], corrupted, strict=True)
        return beats_per_minute([hr for hr, bad in pairs if not bad])
    return truth[f"clean_{key}"] if f"clean_{key}" in truth else truth.get(key)


def measured_walls(recordings: list[Recording]) -> bool:
    """Whether test.py measured walls in any recording (a four-class model)."""
    return any((rec.summary or {}).get("ivs_d_mm") is not None for rec in recordings)


def recording_errors(rec: Recording) -> dict[str, float | None]:
    """|measured - true| for LVIDd, LVIDs, the walls (mm), EF (points); heart rate and LV
    mass in percent."""
    measured = rec.summary or {}
    out: dict[str, float | None] = {}
    for key in (*RECORDING_KEYS, *WALL_KEYS):
        true, value = true_value(rec.truth, key), measured.get(key)
        if true is None or value is None:
            out[key] = None
        elif key in ("heart_rate_bpm", "lv_mass_mg"):
            out[key] = 100 * abs(value - true) / true
        else:
            out[key] = abs(value - true)
    return out


def is_accepted(row: dict) -> bool:
    """A beats.csv row's `accepted` (every beat counts as accepted without the column)."""
    return str(row.get("accepted", "True")).strip().lower() in ("true", "1")


def match_beats(rec: Recording) -> list[tuple[int, dict | None]]:
    """(true beat index, the measured row nearest its ED within MATCH_S, or None)."""
    measured_ed = np.array([float(row["t_ed_s"]) for row in rec.beats])
    pairs = []
    for i, ed_s in enumerate(rec.truth["beat_ed_time_s"]):
        row = None
        if measured_ed.size:
            nearest = int(np.argmin(np.abs(measured_ed - ed_s)))
            if abs(measured_ed[nearest] - ed_s) <= MATCH_S:
                row = rec.beats[nearest]
        pairs.append((i, row))
    return pairs


@dataclass
class BeatStats:
    lvid_d_errors_mm: list[float]  # accepted beats matched to a true beat
    lvid_s_errors_mm: list[float]
    corrupted: int
    corrupted_rejected: int
    clean: int
    clean_accepted: int
    ed_errors_ms: list[float]  # clean beats found, accepted or not: |measured - true| time
    es_errors_ms: list[float]


def beat_stats(recordings: list[Recording]) -> BeatStats:
    stats = BeatStats([], [], 0, 0, 0, 0, [], [])
    for rec in recordings:
        corrupted = rec.truth.get("beat_corrupted", [False] * rec.truth["n_beats"])
        for i, row in match_beats(rec):
            accepted = row is not None and is_accepted(row)
            if corrupted[i]:
                stats.corrupted += 1
                stats.corrupted_rejected += not accepted
            else:
                stats.clean += 1
                stats.clean_accepted += accepted
            if row is not None and not corrupted[i] and "beat_es_time_s" in rec.truth:
                for times, key in ((stats.ed_errors_ms, "ed"), (stats.es_errors_ms, "es")):
                    true_s = rec.truth[f"beat_{key}_time_s"][i]
                    times.append(1000 * abs(float(row[f"t_{key}_s"]) - true_s))
            if accepted and not corrupted[i]:
                true_d, true_s = rec.truth["beat_lvid_d_mm"][i], rec.truth["beat_lvid_s_mm"][i]
                stats.lvid_d_errors_mm.append(abs(float(row["lvid_d_mm"]) - true_d))
                stats.lvid_s_errors_mm.append(abs(float(row["lvid_s_mm"]) - true_s))
    return stats


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(recordings: list[Recording]) -> str:
    """One markdown row per recording: true and measured values, errors, beats."""
    lines = [
        "| recording | LVIDd true | meas | LVIDs true | meas | HR true | meas | HR err % "
        "| EF true | meas | beats true (clean) | measured (accepted) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in recordings:
        m, err, t = rec.summary or {}, recording_errors(rec), rec.truth
        lines.append(
            f"| {rec.name} | {true_value(t, 'lvid_d_mm'):.3f} | {_num(m.get('lvid_d_mm'), 3)} "
            f"| {true_value(t, 'lvid_s_mm'):.3f} | {_num(m.get('lvid_s_mm'), 3)} "
            f"| {true_value(t, 'heart_rate_bpm'):.1f} | {_num(m.get('heart_rate_bpm'), 1)} "
            f"| {_num(err['heart_rate_bpm'], 2)} | {_num(true_value(t, 'ef_percent'), 1)} "
            f"| {_num(m.get('ef_percent'), 1)} | {t['n_beats']} ({t.get('n_beats_clean', '-')}) "
            f"| {m.get('n_beats', 0)} ({m.get('n_beats_accepted', '-')}) |"
        )
    return "\n".join(lines)


def timing_line(recordings: list[Recording]) -> str:
    """End-diastole and end-systole timing error against the truth (reported, no target)."""
    stats = beat_stats(recordings)
    parts = []
    for label, errors in (
        ("end-diastole", stats.ed_errors_ms),
        ("end-systole", stats.es_errors_ms),
    ):
        if errors:
            median, p95 = np.median(errors), np.percentile(errors, 95)
            parts.append(f"{label} {median:.2f} / {p95:.2f} ms")
    count = len(stats.ed_errors_ms)
    return f"timing error, median / p95 over {count} clean beats found: " + (
        ", ".join(parts) or "-"
    )


def checks(recordings: list[Recording], dice: float | None) -> list[tuple[str, bool]]:
    """(label with the measured value and its target, met) for every target."""
    out = []
    if dice is not None:
        out.append((f"Dice {dice:.4f} >= {DICE_TARGET}", dice >= DICE_TARGET))
    errs = [recording_errors(rec) for rec in recordings]
    targets = [
        ("lvid_d_mm", "LVIDd error (mm)", LVID_MEDIAN_TARGET_MM, LVID_WORST_TARGET_MM),
        ("lvid_s_mm", "LVIDs error (mm)", LVID_MEDIAN_TARGET_MM, LVID_WORST_TARGET_MM),
        ("heart_rate_bpm", "heart-rate error (%)", HR_MEDIAN_TARGET_PERCENT,
         HR_WORST_TARGET_PERCENT),
    ]  # fmt: skip
    if measured_walls(recordings):
        targets += [
            (key, f"{name} error (mm)", WALL_MEDIAN_TARGET_MM, WALL_WORST_TARGET_MM)
            for key, name in zip(WALL_KEYS, ("IVSd", "IVSs", "LVPWd", "LVPWs"), strict=False)
        ] + [("lv_mass_mg", "LV mass error (%)", MASS_MEDIAN_TARGET_PERCENT,
              MASS_WORST_TARGET_PERCENT)]  # fmt: skip
    for key, label, median_target, worst_target in targets:
        values = [e[key] for e in errs]
        if None in values or not values:
            out.append((f"{label}: {values.count(None)} recording(s) unmeasured", False))
            continue
        median, worst = statistics.median(values), max(values)
        out.append((f"median {label} {median:.3f} <= {median_target}", median <= median_target))
        out.append((f"worst {label} {worst:.3f} <= {worst_target}", worst <= worst_target))
    stats = beat_stats(recordings)
    for label, values in (("LVIDd", stats.lvid_d_errors_mm), ("LVIDs", stats.lvid_s_errors_mm)):
        p95 = float(np.percentile(values, 95)) if values else None
        ok = p95 is not None and p95 <= BEAT_P95_TARGET_MM
        out.append((f"per-beat {label} error, 95th percentile {_num(p95, 3)} mm over "
                    f"{len(values)} accepted beats <= {BEAT_P95_TARGET_MM}", ok))  # fmt: skip
    for label, done, total, target in (
        ("corrupted beats rejected", stats.corrupted_rejected, stats.corrupted, REJECTED_TARGET),
        ("clean beats accepted", stats.clean_accepted, stats.clean, ACCEPTED_TARGET),
    ):
        share = done / total if total else None
        ok = share is None or share >= target
        text = "no such beats" if share is None else f"{done} of {total}, {100 * share:.1f} %"
        out.append((f"{label}: {text} >= {100 * target:.0f} %", ok))
    return out


def time_measuring(model: Path, recordings: Path) -> tuple[str, int, float]:
    """(name, columns, seconds) of test.py measuring the widest recording on the CPU."""
    widths = {path: Image.open(path).size[0] for path in sorted(recordings.glob("*.png"))}
    widest = max(widths, key=widths.get)
    spec = importlib.util.spec_from_file_location("measure_cli", ROOT / "test.py")
    measure_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure_cli)
    argv = ["-d", str(widest), "-m", str(model), "--device", "cpu"]
    with (
        tempfile.TemporaryDirectory() as out,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        measure_cli.main([*argv, "-o", f"{out}/first"])  # loads what it imports
        started = time.perf_counter()
        measure_cli.main([*argv, "-o", f"{out}/timed"])
        seconds = time.perf_counter() - started
        if not (Path(out) / "timed" / f"{widest.stem}_summary.json").is_file():
            raise RuntimeError(f"test.py did not measure {widest}; the timing would be void.")
    return widest.stem, widths[widest], seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Measured vs true LVIDd, LVIDs and heart rate.")
    p.add_argument("--truth", type=Path, required=True, help="the synthetic data's truth/ folder")
    p.add_argument("--results", type=Path, required=True, help="test.py's -o of the recordings")
    p.add_argument("--metrics", type=Path, default=None, help="test.py's metrics.json (Dice)")
    p.add_argument("--model", type=Path, default=None, help="also time test.py with this model")
    args = p.parse_args(argv)
    recordings = load_recordings(args.truth, args.results) if args.truth.is_dir() else []
    if not recordings:
        print(f"error: no truth/*.json files in {args.truth}.", file=sys.stderr)
        return 2
    dice = None
    if args.metrics is not None:
        if not args.metrics.is_file():
            print(f"error: {args.metrics} does not exist.", file=sys.stderr)
            return 2
        dice = json.loads(args.metrics.read_text())["dice"]
    print(table(recordings))
    print()
    print(timing_line(recordings))
    results = checks(recordings, dice)
    if args.model is not None:
        name, columns, seconds = time_measuring(args.model, args.truth.parent / "recordings")
        label = f"test.py measures {name} ({columns} columns) in {seconds:.2f} s on the CPU"
        results.append((f"{label} <= {MEASURE_TARGET_S}", seconds <= MEASURE_TARGET_S))
    for label, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
