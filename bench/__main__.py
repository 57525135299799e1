"""Benchmark: the project's trainer against the original tool's loop, in one process.

    python -m bench                       # CPU: 128 and 256 px, writes bench/cpu/RESULTS.md
    python -m bench --device cuda --sizes 256 --batch-size 16 --out bench/gpu
    python -m bench --quick --out /tmp/b  # a tiny end-to-end run (used by the tests)

Both contenders train the same model on the same synthetic windows with the same batch
size; their epochs alternate (baseline, ours, baseline, ours, ...) so that a busy
machine slows both alike, and the ratio of the medians is reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import commands, limits
from bench.baseline import original_loader, train_epoch
from bench.limits import synchronize
from bench.report import render
from dataset import find_pairs
from quicknat import QuickNat
from runtime import files
from runtime.hardware import autocast, pick_precision
from trainer import prepare_training
from training.config import TrainConfig, parse_config

ROOT = Path(__file__).resolve().parents[1]
MATMUL_SIDE = {"cpu": 2048, "cuda": 8192}  # the peak's matrices: large enough to saturate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="image sizes")
    p.add_argument("--batch-size", type=int, default=4, help="default: 4")
    p.add_argument("--rounds", type=int, default=3, help="alternating timed epochs (default: 3)")
    p.add_argument(
        "--recordings", type=int, default=8, help="synthetic recordings (default: %(default)s)"
    )
    p.add_argument(
        "--timed-windows",
        type=int,
        default=20,
        help="windows in the images/s timings, to keep 256 px short (default: %(default)s)",
    )
    p.add_argument("--process-epochs", type=int, default=2, help="whole-process run (default: 2)")
    p.add_argument("--accuracy-epochs", type=int, default=8, help="auto vs fp32 (default: 8)")
    p.add_argument(
        "--variants",
        action="store_true",
        help="also time variants of the training step, each in its own process, and a whole "
        "run.py's first epoch (on by default with --device cuda)",
    )
    p.add_argument(
        "--startup-windows",
        type=int,
        default=320,
        help="windows (repeated) for the variants and the first epoch (default: %(default)s)",
    )
    p.add_argument(
        "--variant-timeout",
        type=float,
        default=150.0,
        help="seconds a variant may take, compilation included (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "cpu", help="where RESULTS.md goes")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny model and images, one round; commands not timed as processes run in this one",
    )
    return p.parse_args(argv)


@contextmanager
def peak_memory_mb(device: torch.device):
    """Peak memory while the block runs: CUDA allocations, or the process's RSS on CPU."""
    result = {"mb": 0.0}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        result["mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        return
    stop = threading.Event()
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20

    def sample() -> None:
        while not stop.is_set():
            with open("/proc/self/statm") as f:
                result["mb"] = max(result["mb"], int(f.read().split()[1]) * page_mb)
            stop.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


def flops_per_image(config: dict, size: int, batch: int, train: bool) -> float:
    """FLOPs of one image's forward (and backward, when training), counted by torch."""
    model = QuickNat(config)
    x = torch.rand(batch, 1, size, size)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if train:
            out.mean().backward()
    return counter.get_total_flops() / batch


def trainer_config(
    data: Path, out: Path, size: int, batch: int, device: str, extra: list[str]
) -> TrainConfig:
    return parse_config(
        ["-d", str(data), "-o", str(out), "-p", str(size), "-b", str(batch), "--device", device]
        + ["--overwrite", "-l", "0.0001", *extra]
    )


def time_training(data: Path, work: Path, size: int, cfg) -> dict:
    """Images/s of training steps and inference, ours and the baseline's, alternating."""
    ours = prepare_training(
        trainer_config(data, work / "t", size, cfg.batch_size, cfg.device, cfg.model_flags)
    )
    device, config = ours.device, ours.model.config.to_dict()
    pairs = {pair.name: pair for pair in find_pairs(data)}
    train_pairs = [pairs[n] for n in ours.split["train"]]
    torch.manual_seed(0)
    base_model = QuickNat(config).to(device)
    base_optimizer = torch.optim.Adam(base_model.parameters(), lr=0.0001)
    base_loader = original_loader(train_pairs, size, cfg.batch_size, seed=0)

    timings = {"baseline": [], "ours": []}
    memory = {"baseline": 0.0, "ours": 0.0}
    for epoch in range(1, cfg.rounds + 2):  # the first round warms up both and is not timed
        for name in ("baseline", "ours"):
            with peak_memory_mb(device) as peak:
                synchronize(device)
                started = time.perf_counter()
                if name == "baseline":
                    seen = train_epoch(base_model, base_loader, base_optimizer, device)
                else:
                    seen = ours.train_epoch(epoch)["n"]
                synchronize(device)
                elapsed = time.perf_counter() - started
            if epoch > 1:
                timings[name].append(seen / elapsed)
                memory[name] = max(memory[name], peak["mb"])
    inference = time_inference(ours, base_model, cfg.batch_size, size, device)
    return {
        # The profiler spends about half a second on each step of a tiny model; one step
        # shows a quick run's ops.
        "profile": limits.profile_steps(ours, steps=1 if cfg.quick else 3),
        "size": size,
        "precision": ours.run.precision,
        "train_img_s": {k: statistics.median(v) for k, v in timings.items()},
        "train_peak_mb": memory,
        "infer_img_s": inference,
        "train_gflop_per_img": flops_per_image(config, size, cfg.batch_size, train=True) / 1e9,
        "infer_gflop_per_img": flops_per_image(config, size, cfg.batch_size, train=False) / 1e9,
    }


@torch.inference_mode()
def time_inference(ours, base_model, batch: int, size: int, device: torch.device) -> dict:
    n_batches = 4
    x = torch.rand(batch, 1, size, size, device=device)
    x_ours = x.contiguous(memory_format=ours.memory_format)
    base_model.eval()
    ours.model.eval()

    def baseline() -> None:
        torch.sigmoid(base_model(x))

    def project() -> None:
        with autocast(device, ours.run.precision):
            torch.sigmoid(ours.model(x_ours).float())

    speeds = {"baseline": [], "ours": []}
    for round_ in range(3):
        for name, fn in (("baseline", baseline), ("ours", project)):
            synchronize(device)
            started = time.perf_counter()
            for _ in range(n_batches):
                fn()
            synchronize(device)
            if round_:
                speeds[name].append(n_batches * batch / (time.perf_counter() - started))
    return {k: statistics.median(v) for k, v in speeds.items()}


def time_processes(data: Path, work: Path, cfg) -> dict:
    """Wall time of whole `run.py` and `bench.baseline` processes, alternating."""
    size, epochs, batch = cfg.sizes[0], str(cfg.process_epochs), str(cfg.batch_size)
    common = ["-d", str(data), "-e", epochs, "-b", batch, "-p", str(size), *cfg.model_flags]
    commands = {
        "baseline": [sys.executable, "-m", "bench.baseline", *common],
        "ours": [sys.executable, "run.py", *common, "-l", "0.0001", "--device", cfg.device,
                 "-o", str(work / "process"), "--overwrite"],
    }  # fmt: skip
    seconds = {"baseline": [], "ours": []}
    for _ in range(max(1, cfg.rounds - 1)):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            seconds[name].append(time.perf_counter() - started)
    return {"epochs": cfg.process_epochs, "size": size, "seconds": seconds}


def accuracy_check(data: Path, work: Path, cfg) -> dict:
    """Final validation Dice with --precision auto and with fp32, after the same epochs:
    run.py in a process of its own, or, in a quick run, in this one (bench.commands)."""
    dice = {}
    for precision in ("auto", "fp32"):
        out = work / f"accuracy_{precision}"
        argv = ["-d", str(data), "-o", str(out), "-e", str(cfg.accuracy_epochs), "-b", "4"]
        argv += ["-p", str(cfg.sizes[0]), "--precision", precision, "--device", cfg.device]
        commands.check(["run.py", *argv, *cfg.model_flags, "--overwrite"], in_process=cfg.quick)
        dice[precision] = limits.run_metric(out, "val_dice")[-1]
    return {"epochs": cfg.accuracy_epochs, "val_dice": dice}


def first_windows(data: Path, subset: Path, n: int) -> Path:
    """A data set of the first n windows of `data`."""
    for folder in ("img", "mask"):
        (subset / folder).mkdir(parents=True)
    for image in sorted((data / "img").iterdir())[:n]:
        for folder in ("img", "mask"):
            shutil.copy(data / folder / image.name, subset / folder / image.name)
    return subset


def machine(device: torch.device) -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def variants(cfg) -> dict[str, list[str]]:
    """The training-step variants to time, as run.py flags after the common ones."""
    b = cfg.batch_size
    chosen = {
        "fp32, NCHW (the original's numerics)": ["--precision", "fp32", "--no-channels-last"],
        "auto precision, NCHW": ["--no-channels-last"],
        "auto precision, channels_last": ["--channels-last"],
        "auto precision, NCHW, torch.compile": ["--no-channels-last", "--compile"],
        f"auto precision, NCHW, batch {2 * b}": ["--no-channels-last", "-b", str(2 * b)],
        f"auto precision, NCHW, batch {4 * b}": ["--no-channels-last", "-b", str(4 * b)],
    }
    if cfg.quick:  # two show that it works; compiling alone would take minutes on a CPU
        return {k: chosen[k] for k in list(chosen)[::2][:2]}
    return chosen


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    cfg.argv = sys.argv[1:] if argv is None else argv
    cfg.model_flags = []
    synthetic = ["--recordings", str(cfg.recordings)]
    matmul_side = MATMUL_SIDE["cuda" if cfg.device.startswith("cuda") else "cpu"]
    if cfg.quick:
        cfg.sizes, cfg.rounds, cfg.process_epochs, cfg.accuracy_epochs = [32], 1, 1, 1
        cfg.model_flags = ["--num-filters", "8", "--kernel", "3"]
        synthetic = ["--recordings", "1", "--height", "96", "--depth-res", "0.1", "--width", "400"]
        cfg.timed_windows, cfg.startup_windows, cfg.variants, matmul_side = 8, 12, True, 256
    device = torch.device(cfg.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        synthesis = ["-m", "preprocessing.synthetic", "--out", str(data), *synthetic]
        commands.check(synthesis, in_process=cfg.quick)
        subset = first_windows(data, work / "subset", cfg.timed_windows)
        results = {"machine": machine(device), "sizes": []}
        print("measuring the matrix-multiply peak ...", flush=True)
        precision = pick_precision("auto", device)
        gflops = limits.matmul_peak_gflops(device, precision, matmul_side)
        results["peak"] = {"precision": precision, "side": matmul_side, "gflops": gflops}
        for size in cfg.sizes:
            print(f"timing training and inference at {size} px ...", flush=True)
            results["sizes"].append(time_training(subset, work, size, cfg))
        if device.type == "cpu":
            print("timing whole processes ...", flush=True)
            results["process"] = time_processes(data, work, cfg)
        if cfg.variants or device.type == "cuda":
            print("timing variants of the training step and run.py's first epoch ...", flush=True)
            repeated = limits.repeated_windows(data, work / "repeated", cfg.startup_windows)
            common = ["-p", str(cfg.sizes[0]), "-b", str(cfg.batch_size), "--device",
                      cfg.device, "-l", "0.0001", *cfg.model_flags]  # fmt: skip
            results["variants"] = limits.time_variants(
                repeated, variants(cfg), common, cfg.variant_timeout
            )
            results["startup"] = limits.first_epoch(repeated, work / "startup", common)
        print("checking accuracy: --precision auto against fp32 ...", flush=True)
        results["accuracy"] = accuracy_check(data, work, cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    report = render(results, cfg)
    files.write_text(cfg.out / "RESULTS.md", report)
    files.write_text(cfg.out / "results.json", json.dumps(results, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
