"""Accuracy per cost of QuickNAT's sizes on this machine's CPU, for labs without a GPU.

    python -m bench.model_sizes --out runs/model_sizes      # writes OUT/model_sizes.md, .json
    python -m bench.model_sizes --out /tmp/m --quick         # a tiny end-to-end run

Each configuration (filters, kernel, image size) is trained by run.py for the same number
of steps on the same synthetic recordings, then measured by test.py on held-out
recordings of another seed (artefacts on): held-out Dice and the LVID errors. Then the
costs, in alternating rounds over all configurations so that a busy machine slows them
alike: training images/s (the Trainer's steps on the training windows, augmentation on,
as in the training run) and the seconds test.py takes to measure one held-out recording.
The trainings and held-out measurements are commands, each in a process of its own; with
--quick, all in this one (bench.commands).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.__main__ import first_windows, machine, trainer_config
from bench.accuracy import time_measuring
from bench.heldout import (
    ERROR_HEADINGS,
    QUICK_DATA,
    error_cells,
    make_data,
    train_and_measure,
    write_report,
)
from quicknat import QuickNat
from quicknat.flags import model_config, model_settings
from trainer import prepare_training


@dataclass(frozen=True)
class Size:
    filters: int
    kernel: int
    im_size: int

    @property
    def name(self) -> str:
        return f"f{self.filters}_k{self.kernel}_p{self.im_size}"

    def flags(self) -> list[str]:
        return ["-p", str(self.im_size), "--num-filters", str(self.filters),
                "--kernel", str(self.kernel)]  # fmt: skip


# A subset of {16, 32, 64} filters x {3, 5} kernels x {128, 256} px: every 128 px one but
# 64 filters with 3x3 kernels, and at 256 px the smallest, since on two cores the 64-filter
# default takes about 1 s per 128 px image and 256 px costs four times as much.
FULL_SIZES = [Size(16, 3, 128), Size(16, 5, 128), Size(32, 3, 128), Size(32, 5, 128),
              Size(64, 5, 128), Size(16, 3, 256)]  # fmt: skip
QUICK_SIZES = [Size(8, 3, 32)]  # one, to keep the test suite short
# The same steps for every size: 8 epochs of the 128 training windows of 24 recordings,
# batches of 8 (128 steps), the settings of docs/accuracy.md otherwise. The held-out
# recordings are of a seed no other benchmark or rule was tuned on.
FULL_DATA = {
    "train": ["--seed", "1", "--recordings", "24"],
    "test": ["--seed", "31", "--recordings", "8"],
}
FULL_RUN = ["-b", "8", "-e", "8", "--augment"]
QUICK_RUN = ["-b", "4", "-e", "2", "--augment"]
TIMED_WINDOWS = 20  # 16 of them train, in two batches of 8


def time_sizes(
    sizes: list[Size], data: Path, runs: Path, batch: int, rounds: int
) -> dict[str, dict]:
    """Training images/s and seconds per measured recording of each size, the medians of
    rounds that alternate between the sizes."""
    with tempfile.TemporaryDirectory() as tmp:
        subset = first_windows(data / "train", Path(tmp) / "subset", TIMED_WINDOWS)
        trainers = {}
        for size in sizes:
            config = trainer_config(
                subset, Path(tmp) / size.name, size.im_size, batch, "cpu",
                [*size.flags(), "--augment"],
            )  # fmt: skip
            trainers[size] = prepare_training(config)
            trainers[size].train_epoch(1)  # warms up: allocations, oneDNN's kernel choice
        speeds = {size: {"train_img_s": [], "measure_s": []} for size in sizes}
        for epoch in range(2, 2 + rounds):
            for size, trainer in trainers.items():
                started = time.perf_counter()
                seen = trainer.train_epoch(epoch)["n"]
                speeds[size]["train_img_s"].append(seen / (time.perf_counter() - started))
                model = runs / size.name / "best.pt"
                _, columns, seconds = time_measuring(model, data / "test" / "recordings")
                speeds[size]["measure_s"].append(seconds)
    return {
        size.name: {key: statistics.median(v) for key, v in timings.items()} | {"columns": columns}
        for size, timings in speeds.items()
    }


def render(rows: list[dict], info: dict, run_flags: list[str]) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}; {info['date']}.",
        f"`run.py -p P --num-filters F --kernel K {' '.join(run_flags)}`, the same steps for "
        "each; measured on held-out recordings; train img/s and test.py's seconds are medians "
        "of rounds that alternate between the sizes.",
        "",
        f"| filters | kernel | px | params | held-out Dice | {ERROR_HEADINGS} | train img/s | "
        "test.py s per recording |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['filters']} | {r['kernel']} | {r['im_size']} | {r['parameters']:,} | "
            f"{r['heldout_dice']:.4f} | {error_cells(r)} | {r['train_img_s']:.2f} | "
            f"{r['measure_s']:.2f} ({r['columns']} columns) |"
        )
    return "\n".join(lines) + "\n"


def parse_size(text: str) -> Size:
    try:
        filters, kernel, im_size = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FILTERS,KERNEL,PX") from None
    return Size(filters, kernel, im_size)


def parameters(size: Size) -> int:
    settings = model_settings(size.filters, size.kernel, "NONE", 0.2)
    model = QuickNat(model_config(None, settings, print))
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Held-out accuracy and CPU cost of QuickNAT sizes.")
    p.add_argument("--out", type=Path, required=True, help="work and output folder")
    p.add_argument(
        "--quick", action="store_true", help="tiny data and models, two epochs, all in this process"
    )
    p.add_argument(
        "--sizes", nargs="+", type=parse_size, metavar="F,K,P",
        help="filters,kernel,px of each size (default: the six of the table)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, help="epochs for every size (default: 8)")
    args = p.parse_args(argv)
    sizes, run_flags = (QUICK_SIZES, QUICK_RUN) if args.quick else (FULL_SIZES, FULL_RUN)
    sizes = args.sizes or sizes
    if args.epochs is not None:
        run_flags = [*run_flags]
        run_flags[run_flags.index("-e") + 1] = str(args.epochs)
    data = args.out / "data"
    make_data(data, QUICK_DATA if args.quick else FULL_DATA, in_process=args.quick)
    rows = []
    for size in sizes:
        runs, results = args.out / "runs" / size.name, args.out / "results" / size.name
        row = train_and_measure(data, runs, results, [*size.flags(), *run_flags], args.quick)
        rows.append({"filters": size.filters, "kernel": size.kernel, "im_size": size.im_size,
                     "parameters": parameters(size), **row})  # fmt: skip
        print(f"{size.name}: held-out Dice {row['heldout_dice']:.4f}", flush=True)
    batch = int(run_flags[run_flags.index("-b") + 1])
    costs = time_sizes(sizes, data, args.out / "runs", batch, rounds=1 if args.quick else 3)
    for size, row in zip(sizes, rows, strict=True):
        row.update(costs[size.name])
    text = render(rows, machine(torch.device("cpu")), run_flags)
    write_report(args.out, "model_sizes", text, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
