"""The real recording beside synthetic ones: images, grey-level histograms, row profiles.

    python -m bench.real_look [--out docs/real_vs_synthetic.png]

Draws tests/data/real/e2p_real.png (a real Vevo recording) above a classic and two
scanner-look synthetic recordings, each 0.8 s of it at its own resolution, with the
histogram of each one's grey levels and its median grey level per depth (the layers'
brightness from the chest wall down), and prints each image's median grey level and, on the
real one's reference annotation, how smooth its cavity is and how each wall's contrast over
blood changes in systole (what the scanner look's looks and systolic shares cover).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.real_recording import reference_rows  # noqa: E402
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
CLEAR_MM = 0.12  # of an edge: the rows where blood and wall mix are left out
WALL_MM = 0.58  # depth of the wall band read beyond each edge (walls are 0.6-1.1 mm)


def cavity_cv(image, upper, lower, columns, depth_res_mm: float) -> float:
    """How much the cavity's grey varies: std / mean, CLEAR_MM inside both edges."""
    rows = np.arange(image.shape[0])[:, None]
    margin = CLEAR_MM / depth_res_mm
    inside = (rows > upper[columns] + margin) & (rows < lower[columns] - margin)
    blood = image[:, columns].astype(float)[inside]
    return float(blood.std() / blood.mean())


def systolic_contrast_change(image, upper, lower, columns, depth_res_mm: float) -> dict:
    """Each wall's grey over blood in the systolic third of the columns (smallest LVID),
    as a change from the diastolic third's (largest LVID)."""
    rows = np.arange(image.shape[0])[:, None]
    clear, deep = CLEAR_MM / depth_res_mm, WALL_MM / depth_res_mm
    lvid = lower[columns] - upper[columns]
    phases = {
        "systole": columns[lvid <= np.percentile(lvid, 33)],
        "diastole": columns[lvid >= np.percentile(lvid, 67)],
    }
    contrast = {}
    for phase, cols in phases.items():
        part, up, lo = image[:, cols].astype(float), upper[cols], lower[cols]
        blood = np.median(part[(rows > up + clear) & (rows < lo - clear)])
        septum = np.median(part[(rows < up - clear) & (rows > up - deep)])
        posterior = np.median(part[(rows > lo + clear) & (rows < lo + deep)])
        contrast[phase] = np.array([septum - blood, posterior - blood])
    change = contrast["systole"] / contrast["diastole"] - 1
    return {"septum": float(change[0]), "posterior wall": float(change[1])}


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
    whole = read_gray(REAL)
    upper, lower = reference_rows(whole.shape[1])
    annotated = np.flatnonzero(np.isfinite(upper) & np.isfinite(lower))
    smoothness = cavity_cv(whole, upper, lower, annotated, REAL_DEPTH_RES_MM)
    print(f"real cavity: grey varies by {smoothness:.2f} of its mean")
    changes = systolic_contrast_change(whole, upper, lower, annotated, REAL_DEPTH_RES_MM)
    for wall, change in changes.items():
        print(f"real {wall}: contrast over blood {change:+.0%} in systole")
    real = whole[:, REAL_COLUMNS[0] : REAL_COLUMNS[1]]
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
