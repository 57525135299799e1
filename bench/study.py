"""Recordings per second of test.py on a study, for 1, 2, ... worker processes.

    python -m bench.study                                 # 64 recordings, the shipped model
    python -m bench.study --recordings 16 --workers 1 2 -m checkpoints/demo/best.pt
    python -m bench.study --quick                         # a tiny end-to-end run (the tests')

The recordings are synthetic (preprocessing.synthetic: 384 x 1440, artefacts on, seed 7).
Each worker count measures the whole folder with test.py's main in this process, in
alternating rounds (1, 2, ..., 1, 2, ...) so that a busy machine slows them alike; the
median round is reported. The baseline, always timed, is --workers 1: every step in one
process, one recording after another. The network's share is the time this process spends in the
network (windows in, probabilities out) over the whole run; the rest is reading, the steps
after the network that the main process waits for, and writing summary.csv and index.html.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from bench.__main__ import machine
from measurement import inference, recordings
from preprocessing import synthetic
from quicknat import QuickNat
from runtime import files

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
# --quick: seconds, not minutes (0.1 mm rows, so that the heart fits in 96)
QUICK = {"recordings": 4, "height": 96, "width": 480, "depth_res": 0.1, "filters": 8}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", type=int, default=64, help="how many (default: 64)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3], help="counts to time")
    p.add_argument("--rounds", type=int, default=2, help="rounds over the counts (default: 2)")
    p.add_argument("-m", "--model", type=Path, default=None, help="default: the shipped model")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--out", type=Path, default=None, help="also write the table to OUT/study.md")
    p.add_argument("--quick", action="store_true", help="tiny recordings, an untrained model")
    return p.parse_args(argv)


def make_recordings(folder: Path, count: int, quick: bool) -> Path:
    size = [
        *("--height", str(QUICK["height"]), "--width", str(QUICK["width"])),
        *("--depth-res", str(QUICK["depth_res"])),
    ]
    argv = ["--out", str(folder), "--recordings", str(count), "--seed", str(SEED)]
    argv += size if quick else []
    with contextlib.redirect_stdout(io.StringIO()):
        if synthetic.main(argv) != 0:
            raise RuntimeError(f"preprocessing.synthetic {' '.join(argv)} failed.")
    return folder / "recordings"


def untrained_model(path: Path) -> list[str]:
    """test.py's flags for a tiny model of random weights, saved as another tool's bare
    weights: its speed, not its accuracy, is what --quick needs."""
    torch.manual_seed(SEED)
    model = QuickNat({"num_filters": QUICK["filters"], "kernel_h": 3, "kernel_w": 3})
    files.torch_save(model.state_dict(), path)
    return ["-m", str(path), "--num-filters", str(QUICK["filters"]), "--kernel", "3", "-s", "32"]


@contextlib.contextmanager
def network_clock() -> Iterator[list[float]]:
    """Seconds spent in the network, summed while the context is open."""
    spent = [0.0]
    real = recordings.probabilities

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    recordings.probabilities = timed
    try:
        yield spent
    finally:
        recordings.probabilities = real


def load_test_py():
    spec = importlib.util.spec_from_file_location("measure_cli", ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_study(test_py, argv: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, network seconds) of test.py measuring the folder into `out`."""
    with (
        network_clock() as network,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        started = time.perf_counter()
        code = test_py.main([*argv, "-o", str(out), "--overwrite"])
        wall = time.perf_counter() - started
    if code not in (0, 1):  # 1: a recording failed, which a study may hold
        raise RuntimeError(f"test.py ended with {code}: {err.getvalue()[-500:]}")
    return wall, network[0]


def table(count: int, rounds: dict[int, list[tuple[float, float]]]) -> str:
    base = statistics.median(wall for wall, _ in rounds[1])
    lines = [
        "| workers | recordings/s | vs 1 worker | outside the network |",
        "|---|---|---|---|",
    ]
    for workers, timed in rounds.items():
        wall = statistics.median(w for w, _ in timed)
        network = statistics.median(n / w for w, n in timed)
        lines.append(f"| {workers} | {count / wall:.2f} | {base / wall:.2f}x | {1 - network:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = QUICK["recordings"] if args.quick else args.recordings
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = make_recordings(tmp / "data", count, args.quick)
        model = args.model or inference.shipped_model_path()
        model_flags = untrained_model(tmp / "tiny.pt") if args.quick else ["-m", str(model)]
        test_py = load_test_py()
        argv = ["-d", str(folder), *model_flags, "--device", args.device]
        first = ["-d", str(sorted(folder.glob("*.png"))[0]), *argv[2:], "--workers", "1"]
        time_study(test_py, first, tmp / "warm")  # imports and caches, before any timing
        rounds: dict[int, list[tuple[float, float]]] = {w: [] for w in sorted({1, *args.workers})}
        for _ in range(args.rounds):
            for workers in rounds:
                out = tmp / f"out_{workers}"
                timed = time_study(test_py, [*argv, "--workers", str(workers)], out)
                rounds[workers].append(timed)
    info = machine(torch.device(args.device))
    model_name = "tiny (untrained)" if args.quick else args.model or inference.SHIPPED_MODEL
    heading = (
        f"test.py on {count} synthetic recordings, model {model_name}"
        f", {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['date']}:"
    )
    report = f"{heading}\n\n{table(count, rounds)}\n"
    print(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        files.write_text(args.out / "study.md", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
