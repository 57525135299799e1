"""Compare test.py's measurements of synthetic recordings with their truth.

    python -m bench.accuracy --truth HELDOUT/truth --results RESULTS [--metrics EVAL/metrics.json]

Per recording: true and measured median LVIDd, LVIDs and heart rate, and their errors.
Then the targets: Dice >= 0.95 on the windows (with --metrics), and on every recording
LVIDd and LVIDs within 0.1 mm and heart rate within 2 % of the truth. Exit status 0 when
all targets are met, 1 when one is not, 2 for missing files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DICE_TARGET = 0.95
LVID_TARGET_MM = 0.1
HR_TARGET_PERCENT = 2.0


def load_pairs(truth_dir: Path, results_dir: Path) -> list[tuple[str, dict, dict | None]]:
    """(name, truth, measured or None) for every truth/NAME.json."""
    pairs = []
    for truth_path in sorted(truth_dir.glob("*.json")):
        name = truth_path.stem
        measured_path = results_dir / f"{name}_summary.json"
        measured = json.loads(measured_path.read_text()) if measured_path.is_file() else None
        pairs.append((name, json.loads(truth_path.read_text()), measured))
    return pairs


def errors(truth: dict, measured: dict | None) -> dict[str, float | None]:
    """Absolute LVID errors in mm and the relative heart-rate error in percent."""
    if measured is None or not measured.get("n_beats"):
        return {"lvid_d_mm": None, "lvid_s_mm": None, "heart_rate_percent": None}
    return {
        "lvid_d_mm": abs(measured["lvid_d_mm"] - truth["lvid_d_mm"]),
        "lvid_s_mm": abs(measured["lvid_s_mm"] - truth["lvid_s_mm"]),
        "heart_rate_percent": 100
        * abs(measured["heart_rate_bpm"] - truth["heart_rate_bpm"])
        / truth["heart_rate_bpm"],
    }


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(pairs: list[tuple[str, dict, dict | None]]) -> tuple[str, bool]:
    """The per-recording table and whether every recording meets the targets."""
    header = (
        f"{'recording':<12}{'LVIDd true':>11}{'meas':>7}{'err':>7}"
        f"{'LVIDs true':>12}{'meas':>7}{'err':>7}{'HR true':>9}{'meas':>7}{'err%':>7}"
        f"{'EF true':>9}{'meas':>7}{'beats':>7}  ok"
    )
    lines, all_ok = [header], True
    for name, truth, measured in pairs:
        err = errors(truth, measured)
        ok = err["lvid_d_mm"] is not None and (
            err["lvid_d_mm"] <= LVID_TARGET_MM
            and err["lvid_s_mm"] <= LVID_TARGET_MM
            and err["heart_rate_percent"] <= HR_TARGET_PERCENT
        )
        all_ok &= ok
        m = measured or {}
        lines.append(
            f"{name:<12}{truth['lvid_d_mm']:>11.3f}{_num(m.get('lvid_d_mm'), 3):>7}"
            f"{_num(err['lvid_d_mm'], 3):>7}{truth['lvid_s_mm']:>12.3f}"
            f"{_num(m.get('lvid_s_mm'), 3):>7}{_num(err['lvid_s_mm'], 3):>7}"
            f"{truth['heart_rate_bpm']:>9.1f}{_num(m.get('heart_rate_bpm'), 1):>7}"
            f"{_num(err['heart_rate_percent'], 2):>7}{truth['ef_percent']:>9.1f}"
            f"{_num(m.get('ef_percent'), 1):>7}{m.get('n_beats', 0):>7}  {'yes' if ok else 'NO'}"
        )
    return "\n".join(lines), all_ok


def worst(pairs: list[tuple[str, dict, dict | None]], key: str) -> float | None:
    values = [errors(t, m)[key] for _, t, m in pairs]
    return None if None in values or not values else max(values)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Measured vs true LVIDd, LVIDs and heart rate.")
    p.add_argument("--truth", type=Path, required=True, help="the synthetic data's truth/ folder")
    p.add_argument("--results", type=Path, required=True, help="test.py's -o of the recordings")
    p.add_argument("--metrics", type=Path, default=None, help="test.py's metrics.json (Dice)")
    args = p.parse_args(argv)
    pairs = load_pairs(args.truth, args.results) if args.truth.is_dir() else []
    if not pairs:
        print(f"error: no truth/*.json files in {args.truth}.", file=sys.stderr)
        return 2
    text, recordings_ok = table(pairs)
    print(text)
    checks = []
    if args.metrics is not None:
        if not args.metrics.is_file():
            print(f"error: {args.metrics} does not exist.", file=sys.stderr)
            return 2
        dice = json.loads(args.metrics.read_text())["dice"]
        checks.append((f"Dice {dice:.4f} >= {DICE_TARGET}", dice >= DICE_TARGET))
    for key, label, target in (
        ("lvid_d_mm", "LVIDd error (mm)", LVID_TARGET_MM),
        ("lvid_s_mm", "LVIDs error (mm)", LVID_TARGET_MM),
        ("heart_rate_percent", "heart-rate error (%)", HR_TARGET_PERCENT),
    ):
        value = worst(pairs, key)
        ok = value is not None and value <= target
        checks.append((f"worst {label} {_num(value, 3)} <= {target}", ok))
    print()
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if recordings_ok and all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
