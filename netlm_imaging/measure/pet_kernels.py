"""The sphere kernels of PET measurement: SUVpeak's 1 mL sphere and the FFT convolutions that use it.

Shared by :mod:`.pet` (SUVpeak), :mod:`.pet_krenning` (the core statistic's blur) and
:mod:`.pet_reference` (the healthy-liver sphere search); numpy only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["convolve_same", "peak_map", "suv_peak_kernel"]

#: Sub-samples per voxel and axis when the kernel's voxel fractions are estimated.
_SUBSAMPLES = 7


def suv_peak_kernel(spacing_mm: np.ndarray, volume_ml: float = 1.0) -> np.ndarray:
    """Weights of a sphere of ``volume_ml`` on a voxel grid (fraction of each voxel inside it).

    Parameters
    ----------
    spacing_mm : array of 3 floats
        Voxel spacing along i, j, k (orthogonal grid).
    volume_ml : float
        Sphere volume (1 mL for SUVpeak).

    Returns
    -------
    numpy.ndarray
        Odd-sized 3-D kernel; ``kernel.sum() * voxel_volume`` is close to
        ``volume_ml`` (to the sub-sampling accuracy).

    Examples
    --------
    >>> k = suv_peak_kernel(np.array([1.0, 1.0, 1.0]))
    >>> round(float(k.sum()) / 1000.0, 2)
    1.0
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    half = [math.ceil(radius / s + 0.5) for s in spacing]
    sub = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    axes = []
    for h, s in zip(half, spacing):
        centres = np.arange(-h, h + 1, dtype=np.float64)
        axes.append((centres[:, None] + sub[None, :]) * s)  # (n, sub) positions in mm
    x, y, z = (ax.ravel() for ax in axes)
    inside = (x[:, None, None] ** 2 + y[None, :, None] ** 2 + z[None, None, :] ** 2) <= radius**2
    n = [len(ax) for ax in axes]
    kernel = inside.reshape(n[0], _SUBSAMPLES, n[1], _SUBSAMPLES, n[2], _SUBSAMPLES).mean(axis=(1, 3, 5))
    return kernel


def convolve_same(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``scipy.signal.fftconvolve(a, kernel, mode="same")`` with numpy's FFT (odd kernel sizes)."""
    full = [int(n + m - 1) for n, m in zip(a.shape, kernel.shape)]
    axes = tuple(range(a.ndim))
    spec = np.fft.rfftn(a, full, axes=axes) * np.fft.rfftn(kernel, full, axes=axes)
    out = np.fft.irfftn(spec, full, axes=axes)
    start = [m // 2 for m in kernel.shape]
    return out[tuple(slice(st, st + n) for st, n in zip(start, a.shape))]


def peak_map(suv: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Mean SUV in the kernel around each voxel (in-image part of the kernel only)."""
    num = convolve_same(suv, kernel)
    den = convolve_same(np.ones_like(suv), kernel)
    return num / np.maximum(den, 1e-12)
