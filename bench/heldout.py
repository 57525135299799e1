"""Train on one seed's synthetic recordings, measure another seed's: the steps shared by the
benchmarks that compare training choices (bench.schedules, bench.model_sizes).

Every step is a command a user could type, each in its own process; a quick run (the
tests') runs them all in the benchmark's (bench.commands).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from bench import commands
from bench.accuracy import load_recordings, recording_errors
from bench.limits import run_metric
from runtime import files

# docs/accuracy.md's data: 24 training recordings of seed 1, 8 held-out ones of seed 2.
FULL_DATA = {
    "train": ["--seed", "1", "--recordings", "24"],
    "test": ["--seed", "2", "--recordings", "8"],
}
# The quick runs (the tests'): recordings of 0.4 s, a few beats, seven windows each.
SMALL = ["--height", "128", "--depth-res", "0.07", "--width", "480"]
QUICK_DATA = {
    "train": ["--seed", "1", "--recordings", "2", *SMALL],
    "test": ["--seed", "2", "--recordings", "1", *SMALL],
}
ERROR_KEYS = (  # (bench.accuracy's key, the row's name)
    ("lvid_d_mm", "lvid_d_mm"),
    ("lvid_s_mm", "lvid_s_mm"),
    ("heart_rate_bpm", "heart_rate_percent"),
)


def command(*args: str | Path, allowed: tuple[int, ...] = (0,), in_process: bool = False) -> None:
    """Run one of the project's commands (bench.commands); stop the benchmark if it exits
    with another status than `allowed`."""
    argv = [str(arg) for arg in args]
    status, stderr = commands.run(argv, in_process)
    if status not in allowed:
        sys.exit(f"bench: `{' '.join(argv)}` failed:\n{stderr[-2000:]}")


def make_data(data: Path, settings: dict[str, list[str]], in_process: bool = False) -> None:
    """data/train and data/test: synthetic recordings with their windows and truth."""
    for part in ("train", "test"):
        command("-m", "preprocessing.synthetic", "--out", data / part, "--overwrite",
                *settings[part], in_process=in_process)  # fmt: skip


def epochs_to_reach(dice: list[float], share: float) -> int:
    """The first epoch whose validation Dice reaches `share` of the last epoch's."""
    return next(i for i, d in enumerate(dice, start=1) if d >= share * dice[-1])


def train_and_measure(
    data: Path, runs: Path, results: Path, run_flags: list[str], in_process: bool = False
) -> dict:
    """Train with `run.py ... RUN_FLAGS` into `runs`, measure the held-out windows and
    recordings with test.py into `results`; validation and held-out Dice, the LVID and
    heart-rate errors per recording (median and worst), the training minutes."""
    started = time.perf_counter()
    train = ("run.py", "-d", data / "train", "-o", runs, "--overwrite", *run_flags)
    command(*train, in_process=in_process)
    minutes = (time.perf_counter() - started) / 60
    model = runs / "best.pt"
    measure = ("test.py", "-m", model, "--overwrite", "-d")  # --overwrite: a rerun's folders
    command(*measure, data / "test", "-o", results / "windows", in_process=in_process)
    # Exit 1: some recordings could not be measured; the row counts them.
    recordings = data / "test" / "recordings"
    command(*measure, recordings, "-o", results / "recs", allowed=(0, 1), in_process=in_process)
    val_dice = run_metric(runs, "val_dice")
    errs = [recording_errors(r) for r in load_recordings(data / "test" / "truth", results / "recs")]
    row = {
        "final_val_dice": val_dice[-1],
        "best_val_dice": max(val_dice),
        "epochs_to_99": epochs_to_reach(val_dice, 0.99),
        "heldout_dice": json.loads((results / "windows" / "metrics.json").read_text())["dice"],
        "train_minutes": round(minutes, 2),
        "unmeasured_recordings": sum(e["lvid_d_mm"] is None for e in errs),
    }
    for key, name in ERROR_KEYS:
        values = [e[key] for e in errs if e[key] is not None]
        row[f"median_{name}"] = statistics.median(values) if values else None
        row[f"worst_{name}"] = max(values) if values else None
    return row


def num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


ERROR_HEADINGS = (
    "LVIDd err median / worst (mm) | LVIDs err median / worst (mm) | HR err median / worst (%)"
)


def error_cells(row: dict) -> str:
    """The table cells 'median / worst' of LVIDd, LVIDs (mm) and heart rate (%)."""
    return " | ".join(
        f"{num(row[f'median_{name}'], d)} / {num(row[f'worst_{name}'], d)}"
        for name, d in (("lvid_d_mm", 3), ("lvid_s_mm", 3), ("heart_rate_percent", 2))
    )


def write_report(out: Path, name: str, text: str, rows: list[dict]) -> None:
    """OUT/NAME.md (the table) and OUT/NAME.json (its rows); the table on stdout."""
    files.write_text(out / f"{name}.md", text)
    files.write_text(out / f"{name}.json", json.dumps(rows, indent=2) + "\n")
    print(text)
