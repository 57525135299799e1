"""How near the hardware's limit training runs, and what limits it.

- the device's matrix-multiply peak, measured in the same run (a large matmul);
- variants of the training step (precision, memory format, torch.compile, batch size),
  each in a process of its own (bench.steps) with a time limit;
- the first epoch of a whole run.py process against its steady epochs;
- the operations that take the most time in our training steps (torch.profiler).
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from runtime.hardware import DTYPES

ROOT = Path(__file__).resolve().parents[1]


def synchronize(device: torch.device) -> None:
    """Wait for a GPU's queued work, so that a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, precision: str, side: int) -> float:
    """GFLOP/s of a side x side matrix product in the precision's dtype, best of 5 timings."""
    dtype = DTYPES[precision]
    a = torch.randn(side, side, device=device, dtype=dtype)
    b = torch.randn(side, side, device=device, dtype=dtype)
    repeats = 10 if device.type == "cuda" else 2
    best = float("inf")
    for _ in range(6):  # the first warms up
        synchronize(device)
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * side**3 / best / 1e9


def repeated_windows(data: Path, out: Path, n: int) -> Path:
    """A data set of n windows, `data`'s repeated under new names: as many steps as a
    lab's data set without generating as many recordings."""
    names = sorted(p.name for p in (data / "img").iterdir())
    for folder in ("img", "mask"):
        (out / folder).mkdir(parents=True)
    for i in range(n):
        name = names[i % len(names)]
        for folder in ("img", "mask"):
            shutil.copy(data / folder / name, out / folder / f"r{i:05d}_{name}")
    return out


def time_variants(
    data: Path, variants: dict[str, list[str]], common: list[str], timeout_s: float
) -> list[dict]:
    """bench.steps for each variant (run.py flags), each in its own process; a variant
    that fails or runs past `timeout_s` (a compilation that does not end) gets a note."""
    rows = []
    for name, flags in variants.items():
        argv = [sys.executable, "-m", "bench.steps", "-d", str(data), *common, *flags]
        row = {"variant": name, "flags": " ".join(flags)}
        try:
            result = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            rows.append(row | {"note": f"did not finish in {timeout_s:g} s"})
            continue
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            rows.append(row | {"note": f"failed: {last[:200]}"})
            continue
        rows.append(row | json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def run_metric(folder: Path, column: str) -> list[float]:
    """One column of a run.py output folder's metrics.csv, a value per epoch."""
    with open(folder / "metrics.csv", newline="") as f:
        return [float(row[column]) for row in csv.DictReader(f)]


def first_epoch(data: Path, out: Path, flags: list[str], epochs: int = 3) -> dict:
    """A whole run.py process: its wall time and its epochs' seconds (metrics.csv: training,
    batch-norm refresh, validation), the first against the median of the others."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "run.py", "-d", str(data), "-o", str(out), "-e", str(epochs),
         "--overwrite", *flags],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    wall_s = time.perf_counter() - started
    seconds = run_metric(out, "seconds")
    return {
        "wall_s": wall_s,
        "epoch_s": seconds,
        "first_s": seconds[0],
        "steady_s": statistics.median(seconds[1:]),
    }


def profile_steps(trainer, steps: int = 3, top: int = 12) -> list[dict]:
    """The operations that take the most time in `steps` training steps of `trainer`:
    self time on the GPU (on the CPU where there is none), in ms per step."""
    device = trainer.device
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    indices = list(range(min(len(trainer.train_set), trainer.config.batch_size)))
    images, masks = trainer.train_set.__getitems__(indices)
    trainer.model.train()
    trainer.train_step(images, masks)  # warm-up, outside the profile
    synchronize(device)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step(images, masks)
        synchronize(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    total = sum(getattr(e, key) for e in events)
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [
        {
            "op": e.key,
            "calls_per_step": e.count / steps,
            "ms_per_step": getattr(e, key) / 1000 / steps,
            "share": getattr(e, key) / total,
        }
        for e in events[:top]
    ]
