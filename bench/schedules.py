"""Compare the learning-rate schedules on held-out synthetic recordings.

    python -m bench.schedules --out runs/schedules          # the README's accuracy settings
    python -m bench.schedules --out /tmp/s --quick          # a tiny end-to-end run

For each schedule: train with run.py on one seed's recordings, then measure another
seed's windows and recordings with test.py; report the final and best validation Dice,
the epochs to reach 99 % of the final Dice, the held-out Dice and the LVID and heart-rate
errors. Every step is a command a user could type; each runs in its own process.
Writes OUT/schedules.md and OUT/schedules.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.__main__ import machine
from bench.accuracy import load_recordings, recording_errors
from runtime import files
from training.schedule import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]
# The README's accuracy settings.
FULL = {
    "train": ["--seed", "1", "--recordings", "24"],
    "test": ["--seed", "2", "--recordings", "8"],
    "run": ["-p", "128", "--num-filters", "16", "-b", "8", "-e", "20", "--augment"],
}
QUICK = {
    "train": ["--seed", "1", "--recordings", "2", "--height", "128", "--depth-res", "0.07"],
    "test": ["--seed", "2", "--recordings", "1", "--height", "128", "--depth-res", "0.07"],
    "run": ["-p", "32", "--num-filters", "8", "--kernel", "3", "-b", "4", "-e", "2"],
}


def command(*args: str | Path, allowed: tuple[int, ...] = (0,)) -> None:
    """Run one of the project's commands in its own process; stop the benchmark if it
    exits with another status than `allowed`."""
    argv = [sys.executable, *map(str, args)]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in allowed:
        sys.exit(f"bench.schedules: `{' '.join(argv[1:])}` failed:\n{result.stderr[-2000:]}")


def epochs_to_reach(dice: list[float], share: float) -> int:
    """The first epoch whose validation Dice reaches `share` of the last epoch's."""
    return next(i for i, d in enumerate(dice, start=1) if d >= share * dice[-1])


def compare(schedule: str, data: Path, out: Path, run_flags: list[str]) -> dict:
    """Train with one schedule and measure the held-out data; the row of the table."""
    runs, results = out / "runs" / schedule, out / "results" / schedule
    started = time.perf_counter()
    command("run.py", "-d", data / "train", "-o", runs, "--overwrite", *run_flags,
            "--lr-schedule", schedule)  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    model = runs / "best.pt"
    command("test.py", "-d", data / "test", "-m", model, "-o", results / "windows")
    # Exit 1: some recordings could not be measured; the table counts them.
    recordings = data / "test" / "recordings"
    command("test.py", "-d", recordings, "-m", model, "-o", results / "recs", allowed=(0, 1))
    with open(runs / "metrics.csv", newline="") as f:
        val_dice = [float(row["val_dice"]) for row in csv.DictReader(f)]
    heldout = json.loads((results / "windows" / "metrics.json").read_text())["dice"]
    recordings = load_recordings(data / "test" / "truth", results / "recs")
    errs = [recording_errors(rec) for rec in recordings]
    row = {
        "schedule": schedule,
        "final_val_dice": val_dice[-1],
        "best_val_dice": max(val_dice),
        "epochs_to_99": epochs_to_reach(val_dice, 0.99),
        "heldout_dice": heldout,
        "train_minutes": round(minutes, 2),
        "unmeasured_recordings": sum(e["lvid_d_mm"] is None for e in errs),
    }
    for key, name in (
        ("lvid_d_mm",) * 2,
        ("lvid_s_mm",) * 2,
        ("heart_rate_bpm", "heart_rate_percent"),
    ):
        values = [e[key] for e in errs if e[key] is not None]
        row[f"median_{name}"] = statistics.median(values) if values else None
        row[f"worst_{name}"] = max(values) if values else None
    return row


def render(rows: list[dict], info: dict, flags: list[str]) -> str:
    def num(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}; {info['date']}.",
        f"`run.py {' '.join(flags)} --lr-schedule S`; measured on held-out recordings.",
        "",
        "| schedule | final val Dice | best val Dice | epochs to 99 % | held-out Dice | "
        "LVIDd err median / worst (mm) | LVIDs err median / worst (mm) | "
        "HR err median / worst (%) | training (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['schedule']} | {r['final_val_dice']:.4f} | {r['best_val_dice']:.4f} | "
            f"{r['epochs_to_99']} | {r['heldout_dice']:.4f} | "
            f"{num(r['median_lvid_d_mm'], 3)} / {num(r['worst_lvid_d_mm'], 3)} | "
            f"{num(r['median_lvid_s_mm'], 3)} / {num(r['worst_lvid_s_mm'], 3)} | "
            f"{num(r['median_heart_rate_percent'], 2)} / "
            f"{num(r['worst_heart_rate_percent'], 2)} | {r['train_minutes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Compare --lr-schedule choices on held-out data.")
    p.add_argument("--out", type=Path, required=True, help="work and output folder")
    p.add_argument("--quick", action="store_true", help="tiny data and model, two epochs")
    p.add_argument("--schedules", nargs="+", choices=SCHEDULES, default=list(SCHEDULES))
    args = p.parse_args(argv)
    settings = QUICK if args.quick else FULL
    data = args.out / "data"
    for part in ("train", "test"):
        command(
            "-m", "preprocessing.synthetic", "--out", data / part, "--overwrite", *settings[part]
        )
    info, rows = machine(torch.device("cpu")), []
    for schedule in args.schedules:
        rows.append(compare(schedule, data, args.out, settings["run"]))
        print(render(rows[-1:], info, settings["run"]).splitlines()[-1], flush=True)
    text = render(rows, info, settings["run"])
    files.write_text(args.out / "schedules.md", text)
    files.write_text(args.out / "schedules.json", json.dumps(rows, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
