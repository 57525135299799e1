"""The walls, for a model that segments them: the septum's outer border and the posterior
wall's outer border over time, and each beat's wall thickness, LV mass and RWT.

Such a model's probabilities are (K, H, W) in the order of mmode.labels.WALL_LABELS
(background, septum, cavity, posterior wall). The cavity's edges (upper, lower) come from
its cavity channel exactly as for a cavity-only model (measurement/edges.py). From the top:
- ivs_top, the septum's right-ventricular side: the top of the septum + cavity region
  (p_septum + p_cavity > threshold);
- lvpw_bottom, the posterior wall's epicardial side: the bottom of the cavity + posterior
  wall region (p_cavity + p_wall > threshold).
Per column the region's run that holds the cavity's centre (holes filled), its end at
the sub-pixel threshold crossing (measurement/edges.edge_rows), then each border is
filtered over time with the cavity edges' Hampel filter and gap bridging.

Decisions where the issue is silent:
- The sum of two classes, not the septum alone: at the cavity's edge a model splits the
  probability between septum and cavity, so the septum's own map would put its lower
  border elsewhere than the cavity's edge. The summed region's top depends only on the
  septum's outer border; the inner border is the cavity's edge, measured once.
- A wall's thickness at ED or ES is the median over that column and its two neighbours
  (READ_HALF_WIDTH): one column's border is one threshold crossing, and a one-column
  wobble (speckle, a stitching seam) would be read as thickness. At ED and ES the walls
  are at a turning point, so the neighbours' true thickness differs by far less than a
  row. A missing border among them gives no number (and the beat is rejected as
  wall_missing by measurement/quality.py).
- A border less than MIN_WALL_ROWS outside the cavity's edge is no border: the model
  found no wall there, and the region's end is the cavity's own edge. It counts as
  missing (bridged if short), so a wall the model loses for longer than the Hampel
  filter's half window is reported as wall_missing, never read as a 0 mm wall.
- LV mass uses the beat's LVIDd (as the cavity's numbers do) and its IVSd and LVPWd.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from measurement.beats import Beat, beat_columns
from measurement.edges import Edges, bridged, edge_rows, jumps
from mmode.labels import CAVITY, WALL_LABELS
from mmode.scanner import lv_mass_corrected_mg, lv_mass_mg
from runtime.errors import RecordingError, SetupError

READ_HALF_WIDTH = 1  # columns on either side of ED and ES whose median is read
MIN_WALL_ROWS = 1.0  # thinner is no wall (a mouse wall is ~0.7 mm, 20-40 rows)


@dataclass(frozen=True)
class Walls:
    ivs_top_row: np.ndarray  # (W,) the septum's outer (right-ventricular) side; NaN: none
    lvpw_bottom_row: np.ndarray  # (W,) the posterior wall's outer (epicardial) side
    replaced: np.ndarray  # (W,) bool: a wall border was an outlier here (then bridged, or NaN)
    bridged: np.ndarray  # (W,) bool: a wall border was not found here; bridged across a gap

    def ivs_mm(self, edges: Edges, depth_res_mm: float) -> np.ndarray:
        """(W,) septum thickness: from its outer side to the cavity's upper edge."""
        return (edges.upper_row - self.ivs_top_row) * depth_res_mm

    def lvpw_mm(self, edges: Edges, depth_res_mm: float) -> np.ndarray:
        """(W,) posterior wall thickness: from the cavity's lower edge to its outer side."""
        return (self.lvpw_bottom_row - edges.lower_row) * depth_res_mm


def check_measurable(classes: int, labels: list[str] | None, model: str) -> None:
    """SetupError unless test.py can measure recordings with this model: a cavity model
    (one output) or a wall model of WALL_LABELS (a checkpoint without names is taken to be
    in that order)."""
    walls = list(WALL_LABELS)
    if classes == 1 or (classes == len(walls) and labels in (None, walls)):
        return
    named = f" ({', '.join(labels)})" if labels else ""
    raise SetupError(
        f"{model} segments {classes} classes{named}; test.py measures recordings with a "
        f"cavity model (one class) or a wall model of {', '.join(walls)}."
    )


def split_probabilities(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The cavity probability (H, W) and, for a wall model, all classes' (K, H, W).

    A cavity model's (H, W) map is its own cavity probability. RecordingError for a
    model whose classes are neither.
    """
    if probs.ndim == 2:
        return probs, None
    if probs.shape[0] != len(WALL_LABELS):
        names = ", ".join(WALL_LABELS)
        raise RecordingError(
            f"the model gives {probs.shape[0]} classes; test.py measures a cavity model (one "
            f"output channel) or a wall model with {len(WALL_LABELS)} ({names})."
        )
    return probs[WALL_LABELS[CAVITY]], probs


def run_through(foreground: np.ndarray, anchor_row: np.ndarray) -> np.ndarray:
    """Bool (H, W): per column, the run of foreground that holds the row anchor_row (W,);
    empty where the anchor is NaN or lies outside the foreground."""
    height, width = foreground.shape
    starts = foreground & ~np.vstack([np.zeros((1, width), dtype=bool), foreground[:-1]])
    run_id = np.cumsum(starts, axis=0) * foreground  # 1, 2, ... down each column; 0 outside
    finite = np.isfinite(anchor_row)
    rows = np.clip(np.where(finite, np.round(anchor_row), 0), 0, height - 1).astype(int)
    chosen = np.where(finite, run_id[rows, np.arange(width)], 0)
    return (run_id == chosen) & (chosen > 0)


def filter_border(
    border: np.ndarray, time_res_s: float, depth_res_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A border filtered as the cavity's edges are: (rows, replaced, bridged), each (W,)."""
    jumped = jumps(border, time_res_s, depth_res_mm)
    rows = bridged(border, jumped, time_res_s)
    return rows, jumped, np.isnan(border) & np.isfinite(rows)


def wall_borders(
    probs: np.ndarray, edges: Edges, threshold: float, time_res_s: float, depth_res_mm: float
) -> Walls:
    """The filtered outer wall borders from a wall model's class probabilities (K, H, W)."""
    septum, cavity, wall = (probs[WALL_LABELS[k]] for k in ("septum", CAVITY, "posterior_wall"))
    centre_row = (edges.upper_row + edges.lower_row) / 2
    top_prob, bottom_prob = septum + cavity, cavity + wall
    top_run = run_through(ndimage.binary_fill_holes(top_prob > threshold), centre_row)
    bottom_run = run_through(ndimage.binary_fill_holes(bottom_prob > threshold), centre_row)
    top = edge_rows(top_run, top_prob, threshold)[0]
    bottom = edge_rows(bottom_run, bottom_prob, threshold)[1]
    with np.errstate(invalid="ignore"):  # NaN compares False: no border
        top = np.where(edges.upper_row - top >= MIN_WALL_ROWS, top, np.nan)
        bottom = np.where(bottom - edges.lower_row >= MIN_WALL_ROWS, bottom, np.nan)
    top, top_jumped, top_bridged = filter_border(top, time_res_s, depth_res_mm)
    bottom, bottom_jumped, bottom_bridged = filter_border(bottom, time_res_s, depth_res_mm)
    return Walls(top, bottom, top_jumped | bottom_jumped, top_bridged | bottom_bridged)


def read_at(values: np.ndarray, column: int) -> float | None:
    """The median of values over column +- READ_HALF_WIDTH; None if any is missing."""
    window = values[max(column - READ_HALF_WIDTH, 0) : column + READ_HALF_WIDTH + 1]
    value = float(np.median(window)) if window.size else float("nan")
    return value if np.isfinite(value) else None


def add_walls(
    beats: list[Beat], edges: Edges, walls: Walls, time_res_s: float, depth_res_mm: float
) -> list[Beat]:
    """The beats with their wall numbers: IVS and LVPW at ED and ES, LV mass and RWT."""
    ivs_mm, lvpw_mm = walls.ivs_mm(edges, depth_res_mm), walls.lvpw_mm(edges, depth_res_mm)
    measured = []
    for beat in beats:
        ed, es, _ = beat_columns(beat, time_res_s)
        ivs_d, lvpw_d = read_at(ivs_mm, ed), read_at(lvpw_mm, ed)
        both = ivs_d is not None and lvpw_d is not None
        measured.append(
            replace(
                beat,
                ivs_d_mm=ivs_d,
                ivs_s_mm=read_at(ivs_mm, es),
                lvpw_d_mm=lvpw_d,
                lvpw_s_mm=read_at(lvpw_mm, es),
                lv_mass_mg=lv_mass_mg(beat.lvid_d_mm, ivs_d, lvpw_d) if both else None,
                lv_mass_corrected_mg=(
                    lv_mass_corrected_mg(beat.lvid_d_mm, ivs_d, lvpw_d) if both else None
                ),
                rwt=(
                    relative_wall_thickness(lvpw_d, beat.lvid_d_mm) if lvpw_d is not None else None
                ),
            )
        )
    return measured


def relative_wall_thickness(lvpw_d_mm: float, lvid_d_mm: float) -> float:
    """RWT = 2 x LVPWd / LVIDd (the scanner's convention: the posterior wall twice)."""
    return 2.0 * lvpw_d_mm / lvid_d_mm
