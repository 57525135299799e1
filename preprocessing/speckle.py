"""Speckle: the grainy texture of ultrasound, shared by the simulator and its artefacts."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def rayleigh_field(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    sigma_rows: float,
    sigma_cols: float,
    looks: int = 1,
) -> np.ndarray:
    """Speckle amplitude with unit RMS: |blurred complex Gaussian| is Rayleigh distributed.

    A one-dimensional shape is blurred by sigma_cols only (a texture along time). looks > 1
    averages the power of that many independent fields, as a scanner's compounding and
    persistence do: the texture keeps its grain but varies 1/sqrt(looks) as much.
    """
    sigma = (sigma_rows, sigma_cols)[-len(shape) :]
    amplitude = np.zeros(shape)
    for _ in range(looks):
        real = gaussian_filter(rng.standard_normal(shape), sigma)
        imag = gaussian_filter(rng.standard_normal(shape), sigma)
        amplitude = np.hypot(amplitude, np.hypot(real, imag))  # the looks' powers add
    return amplitude / np.sqrt(np.mean(amplitude**2))
