"""The real recording beside synthetic ones: images, grey-level histograms, row profiles.

    python -m bench.real_look [--out docs/real_vs_synthetic.png]

Draws tests/data/real/e2p_real.png (a real Vevo recording) above a classic and two
scanner-look synthetic recordings, each 0.8 s of it at its own resolution, with the
histogram of each one's grey levels and its median grey level per depth (the layers'
brightness from the chest wall down), and prints each image's median grey level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmode.images import read_gray  # noqa: E402
from preprocessing.simulator import (  # noqa: E402
    artefact_rng,
    draw_sweep,
    recording_rng,
    simulate_recording,
    sweep_rng,
)

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real" / "e2p_real.png"
REAL_TIME_RES_S, REAL_DEPTH_RES_MM = 0.0014, 0.0415
REAL_COLUMNS = (723, 1733)  # a clean stretch (the published tool rated it 1.0)
SHOWN_S = 0.8
SEED = 3  # the figure's synthetic recordings: a seed no model is trained or tested on


def synthetic(look: str, index: int) -> tuple[np.ndarray, float, float]:
    """One recording of the look, with its time and depth resolution."""
    sweep = draw_sweep(sweep_rng(SEED, index))
    if look == "classic":
        recording = simulate_recording(
            recording_rng(SEED, index), artefact_rng=artefact_rng(SEED, index)
        )
    else:
        recording = simulate_recording(
            recording_rng(SEED, index),
            height=None,
            width=sweep.width,
            time_res_s=sweep.time_res_s,
            depth_res_mm=sweep.depth_res_mm,
            artefact_rng=artefact_rng(SEED, index),
            look="scanner",
        )
    truth = recording.truth
    return recording.image, truth["time_res_s"], truth["depth_res_mm"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "real_vs_synthetic.png")
    args = parser.parse_args(argv)
    real = read_gray(REAL)[:, REAL_COLUMNS[0] : REAL_COLUMNS[1]]
    panels = [("real (Vevo, Echo2Pheno)", real, REAL_TIME_RES_S, REAL_DEPTH_RES_MM)]
    panels.append(("synthetic, classic look", *synthetic("classic", 0)))
    panels += [(f"synthetic, scanner look #{i}", *synthetic("scanner", i)) for i in (1, 2)]
    fig, axes = plt.subplots(
        len(panels), 3, figsize=(15, 3.0 * len(panels)), width_ratios=[4, 1.2, 1.2]
    )
    for row, (title, image, time_res_s, depth_res_mm) in zip(axes, panels, strict=True):
        shown = image[:, : int(SHOWN_S / time_res_s)]
        depth_mm = image.shape[0] * depth_res_mm
        row[0].imshow(
            shown, cmap="gray", vmin=0, vmax=255, aspect="auto",
            extent=(0, shown.shape[1] * time_res_s, depth_mm, 0),
        )  # fmt: skip
        row[0].set(title=f"{title}: median grey {np.median(image):.0f}", ylabel="depth (mm)")
        row[1].hist(image.ravel(), bins=64, range=(0, 255), color="0.3")
        row[1].set(yticks=[], title="grey levels")
        depth = (np.arange(image.shape[0]) + 0.5) * depth_res_mm
        row[2].plot(np.median(image, axis=1), depth, color="0.2")
        row[2].set(xlim=(0, 255), ylim=(depth_mm, 0), title="median grey by depth")
        print(f"{title}: median grey {np.median(image):.0f}, {image.shape[0]} rows")
    axes[-1][0].set_xlabel("time (s)")
    axes[-1][2].set_xlabel("grey level")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
