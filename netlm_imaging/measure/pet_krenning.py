"""Krenning estimate of one lesion: the noise- and blur-robust statistic, its grade and confidence flags.

See ``docs/pet.md`` and the module docstring of :mod:`netlm_imaging.measure.pet`
for the rules; the thresholds are ``rules["krenning"]`` and ``rules["pet"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .pet_kernels import convolve_same
from .pet_noise import NoiseModel
from .pet_reference import region_depth_mm

__all__ = ["SUV_EDGE_REL_TOL", "KrenningSetting", "assess_lesion", "grade"]


def grade(
    lesion_suv: float | None, liver_mean: float | None, upper_mean: float | None, k: Mapping[str, Any]
) -> tuple[int | None, int | None]:
    """(score, lower bound) by the project's rule (clinical_rules.md 7.3) with validated ``rules["krenning"]``.

    Grade 2 is uptake that differs from the liver SUVmean by LESS than ``liver_band_fraction``
    (clinical_rules.md 7.3), so a lesion exactly at a band edge is outside the band: 1 at
    ``(1 - b) x liver``, 3 at ``(1 + b) x liver``. Score 0 is uptake below
    ``no_uptake_suv_fraction`` x liver; 4 is uptake greater than ``spleen_ratio`` x the spleen
    (or kidney) SUVmean. An edge is met within a relative :data:`SUV_EDGE_REL_TOL` (float32 rounding).

    Examples
    --------
    >>> k = {"liver_band_fraction": 0.1, "no_uptake_suv_fraction": 0.25, "spleen_ratio": 1.0}
    >>> grade(1.0, 5.0, 15.0, k), grade(5.4, 5.0, 15.0, k), grade(14.0, 5.0, 15.0, k), grade(9.0, 5.0, None, k)
    ((0, 0), (2, 2), (3, 3), (None, 3))
    >>> [grade(x, 5.0, 15.0, k)[0] for x in (1.25, 4.5, 5.5, 15.0)]
    [1, 1, 3, 3]
    """
    if lesion_suv is None or liver_mean is None or liver_mean <= 0:
        return None, None
    band = float(k["liver_band_fraction"])
    if lesion_suv < _edge(float(k["no_uptake_suv_fraction"]) * liver_mean, -1):
        return 0, 0
    if lesion_suv <= _edge((1.0 - band) * liver_mean, +1):
        return 1, 1
    if lesion_suv < _edge((1.0 + band) * liver_mean, -1):
        return 2, 2
    if upper_mean is None:
        return None, 3
    if lesion_suv > _edge(float(k["spleen_ratio"]) * upper_mean, +1):
        return 4, 4
    return 3, 3


#: Relative tolerance of a Krenning edge. A float32 PET (most NIfTI PETs; DICOM rescaled pixels) stores the
#: liver and the lesion each rounded to 6e-8: a lesion of 4.23 at 0.9 x a liver of 4.7 reads 4.5e-8 above the
#: edge computed from the liver it reads. 1e-6 is 5e-6 SUV at SUV 5, far below any uptake difference.
SUV_EDGE_REL_TOL = 1e-6


def _edge(value: float, side: int) -> float:
    """``value`` moved by a relative :data:`SUV_EDGE_REL_TOL` towards ``side``, so that a statistic equal to an
    edge up to float32 rounding counts as at the edge."""
    return value + side * SUV_EDGE_REL_TOL * max(abs(value), 1e-9)


@dataclass(frozen=True)
class KrenningSetting:
    """What every lesion's assessment shares: rules, references, noise, resolution, grid.

    Attributes
    ----------
    rules : mapping
        Validated ``rules["krenning"]``.
    liver_mean, upper_mean : float or None
        Liver-reference and spleen/kidney-reference SUVmean.
    cv_1ml, cv_voxel : float or None
        Relative noise of a 1 mL mean and of one voxel (liver reference).
    core_margin_mm, pv_diameter_mm : float
        Core depth (``core_margin_fwhm`` x FWHM) and the partial-volume diameter (3 x FWHM).
    kernel : numpy.ndarray
        1 mL sphere weights on the PET grid.
    spacing : numpy.ndarray
        PET voxel spacing (mm).
    voxel_ml : float
        PET voxel volume.
    noise : NoiseModel or None
        Noise autocovariance of the liver reference: the SD of the lesion core's mean.
    liver_mean_cv, upper_mean_cv : float or None
        Relative SD of the liver- and spleen/kidney-reference SUVmean (the grade boundaries' own noise).
    """

    rules: Mapping[str, Any]
    liver_mean: float | None
    upper_mean: float | None
    cv_1ml: float | None
    cv_voxel: float | None
    core_margin_mm: float
    pv_diameter_mm: float
    kernel: np.ndarray
    spacing: np.ndarray
    voxel_ml: float
    noise: NoiseModel | None = None
    liver_mean_cv: float | None = None
    upper_mean_cv: float | None = None


def assess_lesion(
    values: np.ndarray, lesion: np.ndarray, suv_max: float, suv_peak: float, ks: KrenningSetting
) -> dict[str, Any]:
    """The Krenning fields of one lesion (``lesions[]`` keys of ``docs/pet.md``).

    Parameters
    ----------
    values : numpy.ndarray
        SUV around the lesion (a crop of the PET grid).
    lesion : numpy.ndarray
        Boolean lesion voxels in that crop.
    suv_max, suv_peak : float
        The lesion's SUVmax and 1 mL SUVpeak.
    ks : KrenningSetting

    Returns
    -------
    dict
        ``krenning_score``, ``krenning_score_lower_bound`` (None unless only the grade-4
        reference is missing), ``suv_mean_core``, ``core_voxel_count``, ``suv_peak_inside``,
        ``krenning_statistic_suv``, ``krenning_confidence``, ``krenning_confidence_reasons``,
        ``krenning_boundary_margin_sd``, ``equivalent_diameter_mm``, ``partial_volume_warning``,
        ``fdg_pet_advised``.
    """
    k = ks.rules
    statistic = str(k["lesion_statistic"])
    depth = region_depth_mm(lesion, ks.spacing)
    deepest = float(depth.max())
    core = lesion & (depth >= min(ks.core_margin_mm, deepest) - 1e-9)
    n_core = int(core.sum())
    core_mean = float(values[core].mean())
    stat = {"suv_mean_core": core_mean, "suv_peak": suv_peak, "suv_max": suv_max}[statistic]
    score, bound = grade(stat, ks.liver_mean, ks.upper_mean, k)
    d_eq = (6.0 * int(lesion.sum()) * ks.voxel_ml * 1000.0 / math.pi) ** (1.0 / 3.0)
    reasons: list[str] = []
    pv = d_eq < ks.pv_diameter_mm
    if pv:
        reasons.append(f"partial volume: equivalent diameter {d_eq:.1f} mm < {ks.pv_diameter_mm:g} mm (3 x FWHM)")
    margin_sd = _boundary_margin(stat, statistic, core, ks, reasons)
    if deepest < ks.core_margin_mm:
        reasons.append(
            f"no voxel {ks.core_margin_mm:.1f} mm (1 x FWHM) inside the lesion edge: core = its deepest "
            f"{n_core} voxel(s)"
        )
    inner = _inner_peak(values, lesion, core, ks.kernel)
    if statistic == "suv_mean_core" and ks.liver_mean is not None and score is not None:
        # above the band without a spleen the peak is 3 or 4: its lower bound 3 still outranks the core's grade
        peak_score, peak_bound = grade(inner, ks.liver_mean, ks.upper_mean, k)
        peak = peak_score if peak_score is not None else peak_bound
        noise = ks.cv_1ml if ks.cv_1ml is not None else (ks.cv_voxel or 0.0)
        # the highest of the core's N independent 1 mL means (N = core volume / 1 mL) exceeds their mean by
        # about sqrt(2 ln N) SDs on noise alone: a uniform 39 mL core read "heterogeneous" in 7 of 20 noise
        # realizations when compared with heterogeneity_z SDs only
        spheres = n_core * ks.voxel_ml / max(float(ks.kernel.sum()) * ks.voxel_ml, 1e-12)
        noise_max = math.sqrt(2.0 * math.log(spheres)) if spheres > 1.0 else 0.0
        if (
            peak is not None
            and peak >= 3  # the 1 mL part lies above the liver band
            and peak > score
            and inner > core_mean * (1.0 + (float(k["heterogeneity_z"]) + noise_max) * noise)
        ):
            shown = peak_score if peak_score is not None else f">= {peak_bound}, the spleen mask missing"
            reasons.append(
                f"heterogeneous uptake: a 1 mL part of the lesion reaches SUV {inner:.2f} "
                f"(grade {shown}) above the core mean {core_mean:.2f}"
            )
    return {
        "krenning_score": score,
        "krenning_score_lower_bound": bound if score is None and bound is not None else None,
        "suv_mean_core": core_mean,
        "core_voxel_count": n_core,
        "suv_peak_inside": inner,
        "krenning_statistic_suv": stat,
        "krenning_confidence": None if score is None and bound is None else ("low" if reasons else "high"),
        "krenning_confidence_reasons": reasons,
        "krenning_boundary_margin_sd": margin_sd,
        "equivalent_diameter_mm": d_eq,
        "partial_volume_warning": pv,
        "fdg_pet_advised": score is not None and score <= int(k["fdg_advice_max_score"]),
    }


#: Relative noise below this is floating-point rounding of a noise-free image, not noise.
_NO_NOISE_CV = 1e-9


def _boundary_margin(
    stat: float, statistic: str, core: np.ndarray, ks: KrenningSetting, reasons: list[str]
) -> float | None:
    """Distance (noise SDs) to the nearest grade boundary; adds a reason when it is below ``confidence_z``.

    The SD is that of the difference: the statistic's noise and the noise of the reference mean that
    sets the boundary (``liver_mean_cv`` for 0/1, 1/2 and 2/3; ``upper_mean_cv`` for 3/4).
    """
    boundaries = _grade_boundaries(ks.rules, ks.liver_mean, ks.upper_mean)
    sd_rel = _statistic_noise(statistic, core, ks)
    if sd_rel is None or not boundaries or stat <= 0:
        return None
    name, value = min(boundaries, key=lambda nb: abs(stat - nb[1]))
    ref_cv = (ks.upper_mean_cv if name == "3/4" else ks.liver_mean_cv) or 0.0
    # a noise-free image measures a rounding-level SD (~1e-16): no noise, no finite margin
    if sd_rel <= _NO_NOISE_CV and ref_cv <= _NO_NOISE_CV:
        return None
    sd_abs = math.hypot(sd_rel * stat, ref_cv * value)
    margin = abs(stat - value) / sd_abs
    z = float(ks.rules["confidence_z"])
    if margin < z:
        reasons.append(f"within {z:g} noise SD of the grade {name} boundary ({value:.2f})")
    return margin


def _grade_boundaries(
    k: Mapping[str, Any], liver_mean: float | None, upper_mean: float | None
) -> list[tuple[str, float]]:
    """(name, SUV) of every Krenning grade boundary the references define."""
    if liver_mean is None:
        return []
    b = float(k["liver_band_fraction"])
    out = [
        ("0/1", float(k["no_uptake_suv_fraction"]) * liver_mean),
        ("1/2", (1.0 - b) * liver_mean),
        ("2/3", (1.0 + b) * liver_mean),
    ]
    if upper_mean is not None:
        out.append(("3/4", float(k["spleen_ratio"]) * upper_mean))
    return out


def _statistic_noise(statistic: str, core: np.ndarray, ks: KrenningSetting) -> float | None:
    """Relative noise SD of the lesion statistic: of the core's mean from the reference noise
    autocovariance; the 1 mL noise for SUVpeak; the voxel CV for SUVmax."""
    if statistic == "suv_max":
        return ks.cv_voxel
    if statistic == "suv_peak":
        return ks.cv_1ml if ks.cv_1ml is not None else ks.cv_voxel
    if ks.noise is not None:
        return ks.noise.mean_cv(core)
    n_voxels = int(core.sum())
    return ks.cv_voxel / math.sqrt(n_voxels) if ks.cv_voxel is not None and n_voxels > 0 else None


def _inner_peak(values: np.ndarray, lesion: np.ndarray, core: np.ndarray, kernel: np.ndarray) -> float:
    """Highest mean SUV over (1 mL sphere AND lesion) for sphere centres in the lesion core."""

    num = convolve_same(np.where(lesion, values, 0.0), kernel)
    den = convolve_same(lesion.astype(np.float64), kernel)
    means = num[core] / np.maximum(den[core], 1e-12)
    return float(means.max())
