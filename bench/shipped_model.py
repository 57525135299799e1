"""Train the shipped model, weights/synthetic.pt, on synthetic recordings only.

    python -m bench.shipped_model [--work runs/shipped]

One seeded recipe: 40 scanner-look recordings (seed 100) and 8 classic ones (seed 101),
all with artefacts, cut into windows that span at most WINDOW_S (make_dataset --window-s)
and trained by run.py at the size measured best for CPUs (32 filters, 5x5 kernels,
128 px), with augmentation; the best checkpoint is copied to weights/synthetic.pt. The
real recording in tests/data/real is never trained on: it is the test. The same command
gives the same file on the same machine and torch.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import run
from mmode.timescale import WindowRuleError, claim_window_s
from preprocessing.make_dataset import build_dataset
from preprocessing.synthetic import main as synthetic

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "synthetic.pt"
PARTS = (("scanner", 40, 100), ("classic", 8, 101))  # look, recordings, seed
# Three or four beats of a conscious mouse: the network sees each beat 30-70 px wide at
# 128 px, and still has the beats on both sides for context.
WINDOW_S = 0.25
TRAINING_FLAGS = (
    "-e 12 -b 8 -p 128 --num-filters 32 --kernel 5 --augment -l 0.002 --lr-schedule cosine"
)


def make_data(work: Path) -> Path:
    """Both looks' windows in one data folder, each name prefixed by its look."""
    data = work / "data"
    for sub in ("img", "mask"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    try:
        claim_window_s(data, WINDOW_S, any((data / "mask").glob("*.png")), "--work")
    except WindowRuleError as err:
        raise SystemExit(str(err)) from None
    for look, recordings, seed in PARTS:
        part = work / look
        args = ["--out", str(part), "--recordings", str(recordings), "--seed", str(seed)]
        if synthetic([*args, "--look", look, "--overwrite"]) != 0:
            raise SystemExit(f"making the {look} recordings failed")
        # Each recording's own seconds per column are in its sidecar, REC.json.
        windows = part / "windows"
        build_dataset(
            part / "recordings", part / "annotations", windows, window_s=WINDOW_S,
            overwrite=True, progress=False,
        )  # fmt: skip
        for sub in ("img", "mask"):
            for path in sorted((windows / sub).iterdir()):
                shutil.copyfile(path, data / sub / f"{look}_{path.name}")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "shipped")
    args = parser.parse_args(argv)
    data = make_data(args.work)
    checkpoints = args.work / "checkpoints"
    flags = ["-d", str(data), *TRAINING_FLAGS.split(), "-o", str(checkpoints), "--overwrite"]
    code = run.main(flags)
    if code != 0:
        return code
    SHIPPED.parent.mkdir(exist_ok=True)
    shutil.copyfile(checkpoints / "best.pt", SHIPPED)
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
