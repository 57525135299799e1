"""Bland-Altman statistics and figure of one measurement's paired readings.

Differences are auto - manual. Per measurement: n, bias (their mean), their SD, the 95 %
limits of agreement bias -+ 1.96 SD (Bland & Altman 1986), Pearson r, and ICC(A,1)
(two-way random effects, absolute agreement, one rater; McGraw & Wong 1996, Shrout &
Fleiss's ICC(2,1)).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from runtime import files

# A name's ending and the unit it stands for, longest endings first.
UNITS = (
    ("_ml_min", "mL/min"), ("_percent", "%"), ("_bpm", "bpm"),
    ("_ul", "µL"), ("_mm", "mm"), ("_mg", "mg"), ("_g", "g"),
)  # fmt: skip
LOA_Z = 1.96  # the 95 % limits of agreement, bias -+ 1.96 SD

Key = tuple[str, ...]  # a row's values of the key columns


@dataclass(frozen=True)
class Pairs:
    """One measurement's paired values: auto and manual of the same keys."""

    measure: str
    keys: tuple[Key, ...]
    auto: np.ndarray
    manual: np.ndarray


@dataclass(frozen=True)
class Agreement:
    """One measurement's agreement of auto with manual (differences are auto - manual)."""

    measure: str
    n: int
    bias: float
    sd: float
    loa_lower: float
    loa_upper: float
    pearson_r: float
    icc_a1: float
    manual_mean: float


AGREEMENT_FIELDS = [field.name for field in fields(Agreement)]


def unit(measure: str) -> str:
    """The unit a measurement's name ends in ("" when it names none)."""
    for ending, name in UNITS:
        if measure.endswith(ending):
            return name
    return ""


def icc_a1(auto: np.ndarray, manual: np.ndarray) -> float:
    """ICC(A,1) from the mean squares of a two-way ANOVA of the n x 2 table (McGraw & Wong
    1996): (MSR - MSE) / (MSR + (k - 1) MSE + k / n (MSC - MSE))."""
    table = np.column_stack([auto, manual])
    n, k = table.shape
    grand = table.mean()
    ss_rows = k * np.sum((table.mean(axis=1) - grand) ** 2)
    ss_columns = n * np.sum((table.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((table - grand) ** 2) - ss_rows - ss_columns
    ms_rows = ss_rows / (n - 1)
    ms_columns = ss_columns / (k - 1)
    ms_error = ss_error / ((n - 1) * (k - 1))
    return float(
        (ms_rows - ms_error) / (ms_rows + (k - 1) * ms_error + k / n * (ms_columns - ms_error))
    )


def agreement(pairs: Pairs) -> Agreement:
    """Bias, limits of agreement, Pearson r and ICC(A,1) of one measurement's pairs."""
    diff = pairs.auto - pairs.manual
    bias = float(np.mean(diff))
    sd = float(np.std(diff, ddof=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(np.corrcoef(pairs.auto, pairs.manual)[0, 1])
        icc = icc_a1(pairs.auto, pairs.manual)
    return Agreement(
        measure=pairs.measure,
        n=len(diff),
        bias=bias,
        sd=sd,
        loa_lower=bias - LOA_Z * sd,
        loa_upper=bias + LOA_Z * sd,
        pearson_r=r,
        icc_a1=icc,
        manual_mean=float(np.mean(pairs.manual)),
    )


def bland_altman_figure(pairs: Sequence[Pairs], results: Sequence[Agreement], title: str = ""):
    """One Bland-Altman panel per measurement (a square-ish grid), as a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(results)
    ncols = math.ceil(math.sqrt(count))
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4.2 * nrows), squeeze=False)
    for ax, one, result in zip(axes.flat, pairs, results, strict=False):
        bland_altman_panel(ax, one, result)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    with missing_glyphs_unreported():
        fig.tight_layout()
    return fig


@contextlib.contextmanager
def missing_glyphs_unreported() -> Iterator[None]:
    """Drawing without matplotlib's warning per character its font lacks: the titles hold
    the tables' column names, which may be Chinese or Cyrillic, and such a character shows
    as a box in the figure; the warnings would bury the command's own lines."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        yield


def bland_altman_panel(ax, pairs: Pairs, result: Agreement) -> None:
    """The mean of the two against auto - manual, with the bias (labelled on the left) and
    the limits of agreement (labelled on the right)."""
    diff = pairs.auto - pairs.manual
    ax.scatter((pairs.auto + pairs.manual) / 2, diff, s=10, alpha=0.5, color="0.25", linewidth=0)
    name = unit(result.measure)
    suffix = f" {name}" if name else ""
    for value, label, style, side in (
        (result.loa_upper, "+1.96 SD", "--", 1),
        (result.bias, "bias", "-", 0),
        (result.loa_lower, "-1.96 SD", "--", 1),
    ):
        ax.axhline(value, color="firebrick", linestyle=style, linewidth=1)
        ax.annotate(
            f"{label} {value:+.3g}{suffix}",
            xy=(side, value),
            xycoords=("axes fraction", "data"),
            xytext=(-4 if side else 4, 3),
            textcoords="offset points",
            ha="right" if side else "left",
            va="bottom",
            fontsize=8,
            color="firebrick",
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.8, "lw": 0},
        )
    spread = max(abs(result.loa_lower), abs(result.loa_upper), float(np.max(np.abs(diff))))
    ax.set_ylim(-1.25 * spread - 1e-9, 1.25 * spread + 1e-9)
    in_units = f" ({name})" if name else ""
    ax.set_title(f"{result.measure}{in_units}, n = {result.n}", fontsize=10)
    ax.set_xlabel(f"mean of auto and manual{in_units}")
    ax.set_ylabel(f"auto - manual{in_units}")
    ax.axhline(0, color="0.6", linewidth=0.6)
    ax.grid(alpha=0.3)


def save_bland_altman(
    path: str | Path, pairs: Sequence[Pairs], results: Sequence[Agreement], title: str = ""
) -> None:
    """The Bland-Altman panels as a PNG, atomically."""
    import matplotlib.pyplot as plt

    fig = bland_altman_figure(pairs, results, title)
    try:
        with missing_glyphs_unreported():
            files.save_figure(path, fig, dpi=100)
    finally:
        plt.close(fig)
