"""PET image noise of a reference region: its spatial autocovariance and the SD of any weighted mean.

Why not the spread of the 1 mL sphere means inside the liver reference: the spheres
whose centres fit inside a 3 cm reference overlap (their centres lie within 9 mm of
each other), so their sample SD misses the noise they share. On seeded noise smoothed
by a 6 mm post-filter, as reconstructed PET is, it read 0.87 x the SD of a 1 mL mean,
and scaled to a lesion core (``sqrt(1 mL / core volume)``) it gave 0.7 x the SD the
core mean has; the Krenning confidence then called lesions "high" whose grade noise
had flipped (``tests/test_pet_noise.py``).

Here the noise is described by its autocovariance ``C(d)``, estimated inside the
region from the residual ``x - mean`` for every lag ``d`` within a sphere of
``lag_radius_mm`` (noise of a PET reconstructed with a FWHM-``f`` filter is
correlated over about ``f``; twice the FWHM leaves out less than 1 %). The variance
of the weighted mean ``sum(w x) / sum(w)`` of any weights ``w`` (the 1 mL sphere
kernel, a lesion core) is then ``sum_d C(d) W(d) / sum(w)**2`` with ``W`` the
autocorrelation of ``w``: exact for stationary noise, whatever its correlation. An
anatomical gradient inside the region counts as noise (the estimate is then
conservative). numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseModel", "noise_model"]

#: Lags estimated from fewer voxel pairs than this are left out (taken as uncorrelated).
_MIN_PAIRS = 8


@dataclass(frozen=True)
class NoiseModel:
    """Relative autocovariance of the noise, ``C(d) / mean**2``, for lags ``-half..half`` voxels per axis.

    Attributes
    ----------
    cov_rel : numpy.ndarray
        Odd-shaped 3-D array; the centre is the relative voxel variance (``CV**2``).
    """

    cov_rel: np.ndarray

    @property
    def voxel_cv(self) -> float:
        """Relative SD of one voxel."""
        c = self.cov_rel
        return math.sqrt(max(float(c[tuple(n // 2 for n in c.shape)]), 0.0))

    def mean_cv(self, weights: np.ndarray) -> float:
        """Relative SD of the weighted mean ``sum(w x) / sum(w)`` (weights on the same voxel grid).

        Never below the independent-voxel value ``voxel_cv * sqrt(sum w^2) / sum w``: an estimated
        negative correlation is taken as none.

        Examples
        --------
        >>> c = np.zeros((3, 3, 3)); c[1, 1, 1] = 0.04  # white noise, 20 % per voxel
        >>> round(NoiseModel(c).mean_cv(np.ones((1, 1, 4))), 6)  # mean of 4 voxels: 20 % / 2
        0.1
        """
        w = np.asarray(weights, dtype=np.float64)
        total = float(w.sum())
        if total <= 0:
            return 0.0
        half = [n // 2 for n in self.cov_rel.shape]
        auto = _autocorrelation(w, half)
        var = float((auto * self.cov_rel).sum()) / total**2
        white = self.voxel_cv**2 * float((w**2).sum()) / total**2
        return math.sqrt(max(var, white))


def noise_model(values: np.ndarray, region: np.ndarray, spacing: np.ndarray, lag_radius_mm: float) -> NoiseModel | None:
    """The noise autocovariance inside ``region`` (None when the region is empty or its mean not positive).

    Parameters
    ----------
    values : numpy.ndarray
        SUV (or activity) on the PET grid.
    region : numpy.ndarray
        Boolean region of uniform uptake (the liver reference).
    spacing : array of 3 floats
        Voxel spacing (mm); lags within ``lag_radius_mm`` of zero are estimated.
    lag_radius_mm : float
        Largest lag (mm).

    Returns
    -------
    NoiseModel or None
    """
    idx = np.nonzero(region)
    if idx[0].size < 2:
        return None
    box = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in idx)
    m = region[box].astype(np.float64)
    x = np.asarray(values, dtype=np.float64)[box]
    mu = float(x[m > 0].mean())
    if not mu > 0:
        return None
    sp = np.asarray(spacing, dtype=np.float64)
    half = [min(int(lag_radius_mm // s), n - 1) for s, n in zip(sp, m.shape)]
    r = np.where(m > 0, x - mu, 0.0)
    num = _autocorrelation(r, half)
    pairs = np.rint(_autocorrelation(m, half))
    lags = np.stack(np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, sp)], indexing="ij"), axis=-1)
    keep = (pairs >= _MIN_PAIRS) & ((lags**2).sum(axis=-1) <= lag_radius_mm**2 + 1e-9)
    cov = np.where(keep, num / np.maximum(pairs, 1.0), 0.0)
    centre = tuple(half)
    cov[centre] = num[centre] / max(float(pairs[centre]) - 1.0, 1.0)  # ddof=1, as the region's SD
    return NoiseModel(cov / mu**2)


def _autocorrelation(a: np.ndarray, half: list[int]) -> np.ndarray:
    """``A(d) = sum_i a[i] a[i + d]`` for lags ``-half..half`` voxels per axis (zero outside ``a``).

    Examples
    --------
    >>> np.round(_autocorrelation(np.ones((1, 1, 3)), [0, 0, 2])[0, 0], 9).tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    size = [int(n + h) for n, h in zip(a.shape, half)]  # no wrap-around for lags up to half
    axes = tuple(range(a.ndim))
    spec = np.fft.rfftn(a, size, axes=axes)
    circ = np.fft.irfftn(spec * np.conj(spec), size, axes=axes)
    take = np.ix_(*[np.arange(-h, h + 1) % n for h, n in zip(half, size)])
    return np.asarray(circ[take], dtype=np.float64)
