"""Benchmark: the project's trainer against the original tool's loop, in one process.

    python -m bench                       # CPU: 128 and 256 px, writes bench/RESULTS.md
    python -m bench --device cuda --sizes 256 --batch-size 16 --out bench/gpu
    python -m bench --quick --out /tmp/b  # a tiny end-to-end run (used by the tests)

Both contenders train the same model on the same synthetic windows with the same batch
size; their epochs alternate (baseline, ours, baseline, ours, ...) so that a busy
machine slows both alike, and the ratio of the medians is reported.
"""

from __future__ import annotations

import argparse
import csv
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

from bench.baseline import original_loader, train_epoch
from dataset import find_pairs
from quicknat import QuickNat
from runtime import files
from runtime.hardware import autocast
from trainer import prepare_training
from training.config import TrainConfig, parse_config

ROOT = Path(__file__).resolve().parents[1]
# Nominal peak GFLOP/s (fp32, bf16). The CPU figures are the for two modern
# AVX-512 cores; override with --peak-gflops for another machine.
PEAKS_GFLOPS = {"cpu": (330.0, 660.0), "H100": (67_000.0, 989_000.0), "H200": (67_000.0, 989_000.0)}
TARGETS = {"cpu": {"train": 1.8, "process": 1.8}, "cuda": {"train": 3.0}}


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
    p.add_argument("--peak-gflops", type=float, nargs=2, default=None, metavar=("FP32", "BF16"))
    p.add_argument("--out", type=Path, default=ROOT / "bench", help="where RESULTS.md goes")
    p.add_argument("--quick", action="store_true", help="tiny model and images, one round")
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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    """Final validation Dice with --precision auto and with fp32, after the same epochs."""
    dice = {}
    for precision in ("auto", "fp32"):
        out = work / f"accuracy_{precision}"
        argv = ["-d", str(data), "-o", str(out), "-e", str(cfg.accuracy_epochs), "-b", "4"]
        argv += ["-p", str(cfg.sizes[0]), "--precision", precision, "--device", cfg.device]
        subprocess.run(
            [sys.executable, "run.py", *argv, *cfg.model_flags, "--overwrite"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        rows = list(csv.DictReader(open(out / "metrics.csv")))
        dice[precision] = float(rows[-1]["val_dice"])
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


def peak_gflops(cfg, info: dict, precision: str) -> float | None:
    if cfg.peak_gflops:
        fp32, bf16 = cfg.peak_gflops
    else:
        key = (
            "cpu"
            if cfg.device == "cpu"
            else next((k for k in PEAKS_GFLOPS if k in info.get("gpu", "")), None)
        )
        if key is None:
            return None
        fp32, bf16 = PEAKS_GFLOPS[key]
    return fp32 if precision == "fp32" else bf16


def render(results: dict, cfg) -> str:
    info = results["machine"]
    device = info.get("gpu", f"{info['cpu']}, {info['cores']} cores")
    lines = [
        "# Benchmark results",
        "",
        f"`python -m bench {' '.join(cfg.argv)}`".replace("  ", " ").replace(" `", "`"),
        "",
        f"Machine: {device}; torch {info['torch']}; {info['date']}. Batch size "
        f"{cfg.batch_size}; the default QuickNAT; {cfg.recordings} synthetic recordings from "
        "`preprocessing.synthetic` cut into windows (the images/s columns time the first "
        f"{cfg.timed_windows}). Baseline: the original tool's loop (per-item PIL decode and "
        "resize every epoch, fp32 NCHW, sigmoid + BCELoss, num_workers=0); ours: "
        "`trainer.Trainer` with its defaults. Same model, data and batch size; epochs "
        "alternate in one process; medians of the timed rounds. Peak memory is the process's "
        "resident set on the CPU (it includes what the other contender left allocated).",
        "",
        "| size | precision | train img/s base | train img/s ours | ratio | infer img/s base "
        "| infer img/s ours | ratio | peak MB base | peak MB ours | ours GFLOP/s train "
        "| of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["sizes"]:
        t, i, m = r["train_img_s"], r["infer_img_s"], r["train_peak_mb"]
        gflops = r["train_gflop_per_img"] * t["ours"]
        peak = peak_gflops(cfg, info, r["precision"])
        share = f"{100 * gflops / peak:.0f}%" if peak else "n/a"
        lines.append(
            f"| {r['size']} | {r['precision']} | {t['baseline']:.2f} | {t['ours']:.2f} "
            f"| **{t['ours'] / t['baseline']:.2f}x** | {i['baseline']:.2f} | {i['ours']:.2f} "
            f"| {i['ours'] / i['baseline']:.2f}x | {m['baseline']:.0f} | {m['ours']:.0f} "
            f"| {gflops:.1f} | {share} |"
        )
    base_s = results["sizes"][0]["train_gflop_per_img"]
    lines += ["", f"FLOP counts (torch.utils.flop_counter): {base_s:.1f} GFLOP per "
              f"{results['sizes'][0]['size']} px image for forward + backward."]  # fmt: skip
    if "process" in results:
        p = results["process"]
        b, o = statistics.median(p["seconds"]["baseline"]), statistics.median(p["seconds"]["ours"])
        lines += [
            "",
            f"Whole processes, {p['epochs']} epochs at {p['size']} px (start-up, data loading, "
            f"validation; ours also writes checkpoints and plots every epoch): baseline "
            f"{b:.1f} s, `run.py` {o:.1f} s: **{b / o:.2f}x**.",
        ]
    if "accuracy" in results:
        a = results["accuracy"]
        d = a["val_dice"]
        lines += [
            "",
            f"Accuracy: final validation Dice after {a['epochs']} epochs: `--precision auto` "
            f"{d['auto']:.4f}, `--precision fp32` {d['fp32']:.4f} (difference "
            f"{abs(d['auto'] - d['fp32']):.4f}; target at most 0.01).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    cfg.argv = sys.argv[1:] if argv is None else argv
    cfg.model_flags = []
    synthetic = ["--recordings", str(cfg.recordings)]
    if cfg.quick:
        cfg.sizes, cfg.rounds, cfg.process_epochs, cfg.accuracy_epochs = [32], 1, 1, 1
        cfg.model_flags = ["--num-filters", "8", "--kernel", "3"]
        synthetic = ["--recordings", "1", "--height", "96", "--depth-res", "0.1", "--width", "400"]
        cfg.timed_windows = 8
    device = torch.device(cfg.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        subprocess.run(
            [sys.executable, "-m", "preprocessing.synthetic", "--out", str(data), *synthetic],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        subset = first_windows(data, work / "subset", cfg.timed_windows)
        results = {"machine": machine(device), "sizes": []}
        for size in cfg.sizes:
            print(f"timing training and inference at {size} px ...", flush=True)
            results["sizes"].append(time_training(subset, work, size, cfg))
        if device.type == "cpu":
            print("timing whole processes ...", flush=True)
            results["process"] = time_processes(data, work, cfg)
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
