"""Speckle: the grainy texture of ultrasound, shared by the simulator and its artefacts."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def rayleigh_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma_rows: float, sigma_cols: float
) -> np.ndarray:
    """Speckle amplitude with unit RMS: |blurred complex Gaussian| is Rayleigh distributed.

    A one-dimensional shape is blurred by sigma_cols only (a texture along time).
    """
    sigma = (sigma_rows, sigma_cols)[-len(shape) :]
    real = gaussian_filter(rng.standard_normal(shape), sigma)
    imag = gaussian_filter(rng.standard_normal(shape), sigma)
    amplitude = np.hypot(real, imag)
    return amplitude / np.sqrt(np.mean(amplitude**2))
