"""Pictures to check the measurements by eye: overlays and the per-recording report."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from scipy import ndimage

from measurement.beats import Beat
from measurement.edges import Edges
from measurement.quality import BeatQuality
from measurement.walls import Walls
from mmode.scanner import Resolution
from runtime import files

HEADING_CHARS = 170  # a report title line, at 10 pt across the 14-inch figure
REPORT_SIZE_IN = (14, 9)
# The report's margins in inches: room for the tick labels and axis titles at their font
# sizes, and at the top for the heading's first line; each further line adds one.
REPORT_SIDE_IN, REPORT_RIGHT_IN, REPORT_BOTTOM_IN = 0.75, 0.2, 0.55
REPORT_TOP_IN, REPORT_LINE_IN = 0.35, 0.17

UPPER_RGB = (255, 200, 0)  # septum side of the cavity: amber
LOWER_RGB = (0, 200, 255)  # posterior wall side: cyan
IVS_TOP_RGB = (255, 60, 160)  # the septum's outer side: pink
LVPW_BOTTOM_RGB = (60, 90, 255)  # the posterior wall's outer side: blue
TRUE_RGB = (0, 255, 0)
PRED_RGB = (255, 40, 40)
BOTH_RGB = (255, 255, 0)


def gray_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(image, dtype=np.uint8)[..., None], 3, axis=2)


def draw_trace(rgb: np.ndarray, rows: np.ndarray, color: tuple, outward: int) -> None:
    """Draw a 2-px trace in place, joined across jumps between neighbouring columns.

    outward: -1 thickens the line upwards, +1 downwards, so it stays off the cavity.
    """
    previous = np.concatenate([[np.nan], rows[:-1]])
    low = np.where(np.isfinite(previous), np.fmin(rows, previous), rows)
    high = np.where(np.isfinite(previous), np.fmax(rows, previous), rows)
    height = rgb.shape[0]
    for column in np.flatnonzero(np.isfinite(rows)):
        first = int(low[column]) + min(outward, 0)
        last = int(high[column]) + max(outward, 0)
        rgb[max(first, 0) : min(last, height - 1) + 1, column] = color


def recording_overlay(image: np.ndarray, edges: Edges, walls: Walls | None = None) -> np.ndarray:
    """The recording as RGB with the cavity's upper and lower edges drawn, and with walls
    the septum's and the posterior wall's outer borders."""
    rgb = gray_to_rgb(image)
    # The cavity's first and last row: the lines sit on the cavity's rim, thickened outward.
    draw_trace(rgb, np.ceil(edges.upper_row), UPPER_RGB, outward=-1)
    draw_trace(rgb, np.floor(edges.lower_row), LOWER_RGB, outward=+1)
    if walls is not None:
        # Likewise on the walls' outer rims, thickened away from the walls.
        draw_trace(rgb, np.ceil(walls.ivs_top_row), IVS_TOP_RGB, outward=-1)
        draw_trace(rgb, np.floor(walls.lvpw_bottom_row), LVPW_BOTTOM_RGB, outward=+1)
    return rgb


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask that touch the background; the image border is not an edge."""
    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def evaluation_overlay(
    image: np.ndarray, true_mask: np.ndarray, pred_mask: np.ndarray, scale: int = 2
) -> np.ndarray:
    """Image with the true (green) and predicted (red) outlines, yellow where they agree.

    Enlarged `scale` times (nearest neighbour), so that thin outlines stay visible.
    """
    image, true_mask, pred_mask = (
        np.asarray(a).repeat(scale, axis=0).repeat(scale, axis=1)
        for a in (image, true_mask, pred_mask)
    )
    rgb = gray_to_rgb(image)
    true_edge, pred_edge = outline(true_mask), outline(pred_mask)
    rgb[true_edge] = TRUE_RGB
    rgb[pred_edge] = PRED_RGB
    rgb[true_edge & pred_edge] = BOTH_RGB
    return rgb


def summary_line(summary: dict) -> str:
    if summary.get("error"):
        return summary["error"]
    if not summary["n_beats"]:
        return "no complete beat found"
    if not summary["n_beats_accepted"]:
        return f"none of {summary['n_beats']} beats passed the quality checks"
    line = (
        f"median of {summary['n_beats_accepted']} accepted of {summary['n_beats']} beats: "
        f"LVIDd {summary['lvid_d_mm']:.2f} mm, "
        f"LVIDs {summary['lvid_s_mm']:.2f} mm, HR {summary['heart_rate_bpm']:.0f} bpm, "
        f"EF {summary['ef_percent']:.1f} %, FS {summary['fs_percent']:.1f} %, "
        f"SV {summary['sv_ul']:.1f} uL, CO {summary['co_ml_min']:.1f} mL/min"
    )
    if summary.get("lv_mass_mg") is not None:  # a wall model's
        line += (
            f", IVSd {summary['ivs_d_mm']:.2f} mm, LVPWd {summary['lvpw_d_mm']:.2f} mm, "
            f"LV mass {summary['lv_mass_mg']:.1f} mg"
        )
    return line


def save_report(
    path: Path,
    overlay: np.ndarray,
    lvid_mm: np.ndarray,
    volume_ul: np.ndarray,
    beats: list[Beat],
    judged: list[BeatQuality],
    resolution: Resolution,
    title: str,
    summary: dict,
) -> None:
    """Recording with traces, LVID and volume over time with ED and ES marked; rejected
    beats shaded, with their reasons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = overlay.shape[:2]
    time_s = np.arange(width) * resolution.time_res_s
    fig, axes = plt.subplots(3, 1, figsize=REPORT_SIZE_IN, sharex=True, height_ratios=(1.4, 1, 1))
    extent = (0, width * resolution.time_res_s, height * resolution.depth_res_mm, 0)
    axes[0].imshow(overlay, extent=extent, aspect="auto", interpolation="antialiased")
    axes[0].set_ylabel("depth (mm)")
    assumed = [
        name
        for name, flag in (
            ("time", resolution.time_res_assumed),
            ("depth", resolution.depth_res_assumed),
        )
        if flag
    ]
    # Wrapped: with the walls the line is wider than the figure.
    heading = textwrap.fill(f"{title}: {summary_line(summary)}", HEADING_CHARS)
    if assumed:
        heading += f"\nASSUMED {' and '.join(assumed)} resolution: numbers may be off"
    axes[0].set_title(heading, fontsize=10, color="firebrick" if assumed else "black")
    volume_label = f"volume (µL, Teichholz, {summary['volume_formula']})"
    for ax, curve, ed_key, es_key, label in (
        (axes[1], lvid_mm, "lvid_d_mm", "lvid_s_mm", "LVID (mm)"),
        (axes[2], volume_ul, "volume_d_ul", "volume_s_ul", volume_label),
    ):
        ax.plot(time_s, curve, color="0.25", linewidth=0.8)
        ax.plot(
            [b.t_ed_s for b in beats],
            [getattr(b, ed_key) for b in beats],
            "v",
            color="firebrick",
            label="end-diastole (a beat starts)",
        )
        ax.plot(
            [b.t_es_s for b in beats],
            [getattr(b, es_key) for b in beats],
            "^",
            color="royalblue",
            label="end-systole",
        )
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for beat, judgement in zip(beats, judged, strict=True):
        if judgement.accepted:
            continue
        end_s = beat.t_end_s
        for ax in axes:
            ax.axvspan(beat.t_ed_s, end_s, color="firebrick", alpha=0.15, linewidth=0)
        axes[1].text(
            (beat.t_ed_s + end_s) / 2,
            0.02,
            judgement.reasons.replace(";", "\n"),
            transform=axes[1].get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=6,
            color="firebrick",
        )
    axes[1].legend(loc="upper right", fontsize=8, title="shaded: rejected beat")
    axes[2].set_xlabel("time (s)")
    # Fixed margins, the top one as tall as the heading: tight_layout would draw the
    # figure once more only to find them (a fifth of the report's time).
    top_in = REPORT_TOP_IN + REPORT_LINE_IN * heading.count("\n")
    fig.subplots_adjust(
        left=REPORT_SIDE_IN / REPORT_SIZE_IN[0], right=1 - REPORT_RIGHT_IN / REPORT_SIZE_IN[0],
        bottom=REPORT_BOTTOM_IN / REPORT_SIZE_IN[1], top=1 - top_in / REPORT_SIZE_IN[1],
        hspace=0.08,
    )  # fmt: skip
    files.save_figure(path, fig, dpi=100)
    plt.close(fig)
