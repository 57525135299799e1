"""Real-data example: Echo2Pheno's automatic measurements against a lab's manual readings.

    python -m bench.reference              # writes docs/echo2pheno_*.csv and the PNG
    python -m bench.reference --out /tmp/r

The tables are the public Echo2Pheno figures (tests/data/echo2pheno, MIT licence): manual
scanner readings of 772 mice and Echo2Pheno's per-recording medians. Per mouse (key
study + mouse_id): the median over its recordings of each recording's median LVID in
diastole and systole over the beats Echo2Pheno's quality network kept (`_high`; over all
beats, `_all`, where a recording has no kept beat), and FS and EF (scanner Teichholz
volume, mmode.scanner) from those two medians. Then agreement compares them
with the manual table.

The scanner computes EF and FS per beat and averages them, so EF and FS recomputed from
median diameters differ from it by about a point even where the diameters agree.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from agreement import command as agreement
from mmode.scanner import teichholz_volume_ul
from runtime import files

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "echo2pheno"
AUTO_PER_RECORDING = DATA / "echo2pheno_auto_per_recording.csv"
MANUAL_PER_MOUSE = DATA / "echo2pheno_manual_per_mouse.csv"
KEY = ("study", "mouse_id")
PER_MOUSE_FIELDS = [
    *KEY, "n_recordings", "lvid_d_mm", "lvid_s_mm", "fs_percent", "ef_percent", "heart_rate_bpm",
]  # fmt: skip


def kept_beats_value(row: dict[str, str], name: str) -> float | None:
    """A recording's median of `name` over its kept beats, else over all its beats."""
    for text in (row[f"{name}_high"], row[f"{name}_all"]):
        if text.strip():
            return float(text)
    return None


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def per_mouse(path: str | Path = AUTO_PER_RECORDING) -> list[dict]:
    """One row per mouse: medians over its recordings, and FS and EF from them."""
    recordings: dict[tuple[str, str], list[dict[str, str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            recordings.setdefault((row["study"].strip(), row["mouse_id"].strip()), []).append(row)
    mice = []
    for (study, mouse_id), rows in recordings.items():
        d_mm = median_or_none([kept_beats_value(row, "lvid_d_mm") for row in rows])
        s_mm = median_or_none([kept_beats_value(row, "lvid_s_mm") for row in rows])
        rate = [float(row["heart_rate_bpm_all"]) for row in rows if row["heart_rate_bpm_all"]]
        mouse = {"study": study, "mouse_id": mouse_id, "n_recordings": len(rows)}
        mouse.update(lvid_d_mm=d_mm, lvid_s_mm=s_mm, heart_rate_bpm=median_or_none(rate))
        if d_mm is not None and s_mm is not None:
            volume_d_ul = float(teichholz_volume_ul(d_mm, "scanner"))
            volume_s_ul = float(teichholz_volume_ul(s_mm, "scanner"))
            mouse["fs_percent"] = 100.0 * (d_mm - s_mm) / d_mm
            mouse["ef_percent"] = 100.0 * (volume_d_ul - volume_s_ul) / volume_d_ul
        mice.append(mouse)
    return mice


def run(out: Path) -> agreement.Comparison:
    """Write the per-mouse table, the agreement table and the Bland-Altman figure to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    auto_path = out / "echo2pheno_auto_per_mouse.csv"
    files.write_csv(auto_path, PER_MOUSE_FIELDS, per_mouse(), exact=True)
    auto = agreement.read_table(auto_path, KEY)
    manual = agreement.read_table(MANUAL_PER_MOUSE, KEY)
    comparison = agreement.compare(auto, manual)
    agreement.write_agreement_csv(out / "echo2pheno_agreement.csv", comparison.results)
    agreement.save_bland_altman(
        out / "echo2pheno_bland_altman.png",
        comparison.pairs,
        comparison.results,
        title="Echo2Pheno (automatic) against manual scanner readings, per mouse",
    )
    return comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default=str(ROOT / "docs"), help="output folder (docs/)")
    args = parser.parse_args(argv)
    comparison = run(Path(args.out))
    print(
        f"Echo2Pheno against manual readings: {len(comparison.matched)} mice matched, "
        f"{len(comparison.manual_only)} manual mice without recordings, "
        f"{len(comparison.auto_only)} recorded mice without manual readings."
    )
    print(agreement.table_text(comparison.results))
    print(f"Written to {args.out}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
