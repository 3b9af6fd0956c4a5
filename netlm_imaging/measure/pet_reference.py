"""PET reference regions: healthy liver (3 cm sphere or eroded liver) and the eroded spleen / kidney.

Definitions (``docs/pet.md``; thresholds in the rules file, ``[pet_reference]``)
--------------------------------------------------------------------------
Liver reference
    PERCIST places a 3 cm diameter spherical VOI in normal right-lobe liver
    (Wahl et al., J Nucl Med 2009;50:122S [S]); SSTR-PET readers do the
    same, avoiding lesions and organ edges. Here the sphere (diameter
    ``liver_sphere_diameter_mm``) is placed automatically at the healthy-liver
    voxel farthest from any non-healthy voxel (liver edge or lesion), which
    must lie at least ``radius + liver_sphere_margin_mm`` inside; among such
    voxels the patient's right half of the liver (LPS x below the liver
    centroid) is preferred, as PERCIST asks. When no voxel is that deep
    (small or tumour-filled liver), the healthy liver eroded by
    ``erosion_mm`` is used; when that is empty too, the whole healthy liver,
    with a warning (partial volume from edges and lesions).
Spleen / fallback organ reference
    The organ mask eroded by ``erosion_mm``, so its edge voxels (blurred
    with the neighbourhood by the PET resolution) are left out. When the
    eroded organ holds less than ``min_reference_ml``, its deepest half
    (voxels at least half the maximal depth inside) is used, with a warning.
Noise of a 1 mL mean
    ``cv_1ml`` is the relative SD of the mean over a 1 mL sphere (the SUVpeak
    kernel), from the noise autocovariance (:mod:`netlm_imaging.measure.pet_noise`:
    its spatial correlation included) inside the healthy liver eroded by
    ``erosion_mm`` (the reference region itself when that is larger: the
    3 cm sphere alone holds too few independent noise samples). It sets the
    noise band of the Krenning confidence flag; the region's
    :class:`~netlm_imaging.measure.pet_noise.NoiseModel` gives the SD of any
    other mean (a lesion core, the reference mean itself).

Depths are Euclidean distances (mm, voxel spacing of the PET grid) from a
voxel centre to the nearest voxel centre outside the region.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..volume import Volume
from .pet_noise import NoiseModel, noise_model

__all__ = ["ReferenceRegion", "liver_reference", "organ_reference", "region_depth_mm"]

logger = logging.getLogger(__name__)


@dataclass
class ReferenceRegion:
    """One reference region and its uptake.

    Attributes
    ----------
    organ : str
        ``"liver"``, ``"spleen"``, ``"kidney"``, ...
    method : str
        ``"sphere"``, ``"eroded"``, ``"deepest_half"`` or ``"whole"``.
    mask : numpy.ndarray
        Boolean region on the PET grid.
    suv_mean, suv_sd, suv_max : float or None
        Uptake over the region (SD with ``ddof=1``).
    voxel_count : int
    volume_ml : float
    centre_lps_mm : list of float or None
        Sphere centre (``method == "sphere"``).
    diameter_mm, erosion_mm : float or None
        Sphere diameter, or erosion depth used.
    cv_1ml : float or None
        Relative SD of a 1 mL sphere mean (liver reference).
    warnings : list of str
    noise : NoiseModel or None
        The noise autocovariance inside the region (not reported).
    mean_cv : float or None
        Relative SD of ``suv_mean`` from that noise (not reported).
    """

    organ: str
    method: str
    mask: np.ndarray
    suv_mean: float | None
    suv_sd: float | None
    suv_max: float | None
    voxel_count: int
    volume_ml: float
    centre_lps_mm: list[float] | None = None
    diameter_mm: float | None = None
    erosion_mm: float | None = None
    cv_1ml: float | None = None
    warnings: list[str] = field(default_factory=list)
    noise: NoiseModel | None = None
    mean_cv: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report's ``pet.*_reference`` object (mask left out)."""
        return {
            "organ": self.organ,
            "method": self.method,
            "suv_mean": self.suv_mean,
            "suv_sd": self.suv_sd,
            "suv_max": self.suv_max,
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "centre_lps_mm": self.centre_lps_mm,
            "diameter_mm": self.diameter_mm,
            "erosion_mm": self.erosion_mm,
            "cv_1ml": self.cv_1ml,
        }


def region_depth_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel centre outside it (0 outside).

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean region.
    spacing : array of 3 floats
        Voxel spacing (mm).

    Returns
    -------
    numpy.ndarray
        float64 depths; voxels on the array border count the outside of the
        array as outside the region.

    Examples
    --------
    >>> m = np.zeros((5, 1, 1), dtype=bool); m[1:4] = True
    >>> region_depth_mm(m, np.array([2.0, 1.0, 1.0]))[:, 0, 0].tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    from scipy import ndimage

    if not mask.any():
        return np.zeros(mask.shape, dtype=np.float64)
    padded = np.pad(mask, 1)
    depth = ndimage.distance_transform_edt(padded, sampling=np.asarray(spacing, dtype=np.float64))
    return np.asarray(depth[1:-1, 1:-1, 1:-1], dtype=np.float64)


def _stats(values: np.ndarray, mask: np.ndarray) -> tuple[float | None, float | None, float | None]:
    v = values[mask]
    if v.size == 0:
        return None, None, None
    sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return float(np.mean(v, dtype=np.float64)), sd, float(np.max(v))


def _crop(mask: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return None
    return tuple(
        slice(max(0, int(ix.min()) - margin), min(n, int(ix.max()) + 1 + margin)) for ix, n in zip(idx, mask.shape)
    )


def liver_reference(
    values: np.ndarray,
    healthy: np.ndarray,
    pet: Volume,
    *,
    sphere_diameter_mm: float,
    sphere_margin_mm: float,
    erosion_mm: float,
    kernel: np.ndarray,
    prefer_right_lobe: bool = True,
    noise_lag_mm: float = 0.0,
) -> ReferenceRegion:
    """Healthy-liver reference region on the PET grid (rule in the module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        SUV on the PET grid.
    healthy : numpy.ndarray
        Boolean healthy liver (liver minus lesions) on the PET grid.
    pet : Volume
        The PET grid (spacing, LPS positions).
    sphere_diameter_mm, sphere_margin_mm, erosion_mm : float
        Rules ``[pet_reference]`` values.
    kernel : numpy.ndarray
        1 mL SUVpeak kernel on this grid (for ``cv_1ml``).
    prefer_right_lobe : bool
        Prefer centres in the patient's right half of the liver.
    noise_lag_mm : float
        Largest lag of the noise autocovariance (mm; 0: voxels uncorrelated).

    Returns
    -------
    ReferenceRegion
    """
    spacing = np.asarray(pet.spacing, dtype=np.float64)
    voxel_ml = pet.voxel_volume_ml
    radius = sphere_diameter_mm / 2.0
    box = _crop(healthy, 1)
    if box is None:
        return ReferenceRegion("liver", "whole", healthy, None, None, None, 0, 0.0, warnings=[
            "no healthy-liver voxel on the PET grid (liver outside the PET field of view?): no liver reference"
        ])  # fmt: skip
    sub = healthy[box]
    vals = values[box]
    depth = region_depth_mm(sub, spacing)
    offset = np.array([s.start for s in box])
    need = radius + sphere_margin_mm
    cand = depth >= need
    if cand.any():
        pick = cand
        if prefer_right_lobe:
            ijk = np.argwhere(sub) + offset
            centroid_x = float(pet.index_to_lps(ijk.mean(axis=0)[None, :])[0][0])
            cidx = np.argwhere(cand)
            xs = pet.index_to_lps(cidx + offset)[:, 0]
            right = np.zeros_like(cand)
            sel = cidx[xs < centroid_x]
            right[tuple(sel.T)] = True
            if right.any():
                pick = right
        flat = np.where(pick, depth, -1.0)
        centre = np.array(np.unravel_index(int(np.argmax(flat)), flat.shape))
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in sub.shape], indexing="ij"), axis=-1)
        # orthogonal-axis grid: physical distance from per-axis index offsets times spacing
        dist = np.sqrt((((grid - centre) * spacing) ** 2).sum(axis=-1))
        region = (dist <= radius + 1e-9) & sub
        centre_lps = [float(c) for c in pet.index_to_lps((centre + offset)[None, :])[0]]
        method, diameter, erosion = "sphere", sphere_diameter_mm, None
        warnings: list[str] = []
    else:
        region = sub & (depth >= erosion_mm)
        centre_lps, diameter = None, None
        warnings = []
        if region.any():
            method, erosion = "eroded", erosion_mm
            warnings.append(
                f"no healthy liver {need:g} mm from edges and lesions for a {sphere_diameter_mm:g} mm reference "
                f"sphere: the liver reference is the healthy liver eroded by {erosion_mm:g} mm"
            )
        else:
            region, method, erosion = sub.copy(), "whole", 0.0
            warnings.append(
                f"healthy liver thinner than {2 * erosion_mm:g} mm everywhere: the liver reference is the whole "
                "healthy liver (edges and lesion borders included: partial-volume bias)"
            )
    mean, sd, mx = _stats(vals, region)
    full = np.zeros(healthy.shape, dtype=bool)
    full[box] = region
    # the noise from as much uniform liver as there is: the healthy liver eroded by erosion_mm (a 3 cm sphere
    # holds too few independent noise samples at 4 mm voxels: its estimate alone varied by 20 % between images)
    wide = sub & (depth >= erosion_mm)
    noise = noise_model(vals, wide if wide.sum() > region.sum() else region, spacing, noise_lag_mm) if mean else None
    cv = noise.mean_cv(kernel) if noise is not None else None
    n = int(region.sum())
    return ReferenceRegion(
        "liver", method, full, mean, sd, mx, n, n * voxel_ml, centre_lps, diameter, erosion, cv, warnings,
        noise, noise.mean_cv(region) if noise is not None else None,
    )  # fmt: skip


def organ_reference(
    values: np.ndarray,
    mask: np.ndarray,
    pet: Volume,
    organ: str,
    *,
    erosion_mm: float,
    min_reference_ml: float,
    noise_lag_mm: float = 0.0,
) -> ReferenceRegion:
    """Eroded-organ reference (spleen, kidney ...) on the PET grid (rule in the module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        SUV on the PET grid.
    mask : numpy.ndarray
        Boolean organ mask on the PET grid.
    pet : Volume
        The PET grid.
    organ : str
        Organ name for the report.
    erosion_mm, min_reference_ml : float
        Rules ``[pet_reference]`` values.
    noise_lag_mm : float
        Largest lag of the noise autocovariance (mm), for the SD of the region's mean.

    Returns
    -------
    ReferenceRegion
    """
    spacing = np.asarray(pet.spacing, dtype=np.float64)
    voxel_ml = pet.voxel_volume_ml
    box = _crop(mask, 1)
    if box is None:
        return ReferenceRegion(organ, "eroded", mask, None, None, None, 0, 0.0, erosion_mm=erosion_mm, warnings=[
            f"{organ} mask has no voxel on the PET grid (outside the PET field of view?)"
        ])  # fmt: skip
    sub = mask[box]
    depth = region_depth_mm(sub, spacing)
    region = sub & (depth >= erosion_mm)
    method, erosion = "eroded", erosion_mm
    warnings: list[str] = []
    if region.sum() * voxel_ml < min_reference_ml:
        half = float(depth.max()) / 2.0
        region = sub & (depth >= half)
        method, erosion = "deepest_half", half
        warnings.append(
            f"{organ} eroded by {erosion_mm:g} mm holds less than {min_reference_ml:g} mL: its reference is the "
            f"voxels at least {half:.1f} mm inside (partial-volume bias possible)"
        )
    mean, sd, mx = _stats(values[box], region)
    full = np.zeros(mask.shape, dtype=bool)
    full[box] = region
    n = int(region.sum())
    noise = noise_model(values[box], region, spacing, noise_lag_mm) if mean else None
    return ReferenceRegion(
        organ, method, full, mean, sd, mx, n, n * voxel_ml, None, None, erosion, None, warnings,
        noise, noise.mean_cv(region) if noise is not None else None,
    )  # fmt: skip
