"""Compare the learning-rate schedules on held-out synthetic recordings.

    python -m bench.schedules --out runs/schedules          # the settings of docs/accuracy.md
    python -m bench.schedules --out /tmp/s --quick          # a tiny end-to-end run

For each schedule: train with run.py on one seed's recordings, then measure another
seed's windows and recordings with test.py; report the final and best validation Dice,
the epochs to reach 99 % of the final Dice, the held-out Dice and the LVID and heart-rate
errors. Every step is a command a user could type; each runs in its own process (with
--quick, all in this one: bench.commands).
Writes OUT/schedules.md and OUT/schedules.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from bench.__main__ import machine
from bench.heldout import (
    ERROR_HEADINGS,
    FULL_DATA,
    QUICK_DATA,
    error_cells,
    make_data,
    train_and_measure,
    write_report,
)
from training.schedule import SCHEDULES

# The settings of docs/accuracy.md.
FULL_RUN = ["-p", "128", "--num-filters", "16", "-b", "8", "-e", "20", "--augment"]
QUICK_RUN = ["-p", "32", "--num-filters", "8", "--kernel", "3", "-b", "4", "-e", "2"]


def compare(
    schedule: str, data: Path, out: Path, run_flags: list[str], in_process: bool = False
) -> dict:
    """Train with one schedule and measure the held-out data; the row of the table."""
    flags = [*run_flags, "--lr-schedule", schedule]
    runs, results = out / "runs" / schedule, out / "results" / schedule
    row = train_and_measure(data, runs, results, flags, in_process)
    return {"schedule": schedule, **row}


def render(rows: list[dict], info: dict, flags: list[str]) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}; {info['date']}.",
        f"`run.py {' '.join(flags)} --lr-schedule S`; measured on held-out recordings.",
        "",
        "| schedule | final val Dice | best val Dice | epochs to 99 % | held-out Dice | "
        f"{ERROR_HEADINGS} | training (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['schedule']} | {r['final_val_dice']:.4f} | {r['best_val_dice']:.4f} | "
            f"{r['epochs_to_99']} | {r['heldout_dice']:.4f} | {error_cells(r)} | "
            f"{r['train_minutes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Compare --lr-schedule choices on held-out data.")
    p.add_argument("--out", type=Path, required=True, help="work and output folder")
    p.add_argument(
        "--quick", action="store_true", help="tiny data and model, two epochs, all in this process"
    )
    p.add_argument("--schedules", nargs="+", choices=SCHEDULES, default=list(SCHEDULES))
    args = p.parse_args(argv)
    run_flags = QUICK_RUN if args.quick else FULL_RUN
    data = args.out / "data"
    make_data(data, QUICK_DATA if args.quick else FULL_DATA, in_process=args.quick)
    info, rows = machine(torch.device("cpu")), []
    for schedule in args.schedules:
        rows.append(compare(schedule, data, args.out, run_flags, in_process=args.quick))
        print(render(rows[-1:], info, run_flags).splitlines()[-1], flush=True)
    text = render(rows, info, run_flags)
    write_report(args.out, "schedules", text, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
