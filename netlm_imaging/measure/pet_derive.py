"""PET-derived lesions: the PET-avid voxels of the liver, for a study without a lesion mask."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import GeometryError, UsageError
from ..geometry import bbox, crop_affine, resample_array
from ..volume import Volume
from .pet_grid import check_frame_of_reference
from .pet_kernels import peak_map, suv_peak_kernel
from .pet_settings import parse_delineation, rules_section

__all__ = ["derive_pet_lesions"]

logger = logging.getLogger(__name__)


def derive_pet_lesions(
    suv: Volume,
    liver: np.ndarray,
    liver_grid: Volume,
    *,
    delineation: str | None = None,
    rules: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """PET-avid lesion voxels inside the liver, for studies without a lesion mask.

    The SUV is resampled (linear) onto the liver grid, cropped to the liver's
    bounding box. Voxels of the liver mask at or above the threshold are
    kept; 26-connected components smaller than
    ``rules["pet"]["derived_min_volume_ml"]`` (0.5 mL) are dropped as noise, and
    so are those whose SUVpeak (the highest mean of native PET values over a
    ``suv_peak_sphere_ml`` sphere centred on one of their PET voxels) is below
    the threshold: noise in a liver of 25 % voxel SD smoothed by a 6 mm
    filter forms 10-17 components of 0.5 mL above 1.5 x the liver, whose
    voxels exceed the threshold but not their 1 mL means; a lesion's 1 mL
    mean does (``tests/test_pet_noise.py``).

    The default ``liver:1.5`` (``rules["pet"]["derived_delineation"]``)
    marks voxels at least 1.5 x the liver background: clearly above the
    Krenning "equal to liver" band (+-10 %) so only uptake greater than liver
    (Krenning 3-4, the lesions SSTR PET is read for) is segmented, while the
    voxel noise of normal liver (about 15-20 % SD) rarely forms 0.5 mL
    components at +50 %. Because the lesions are not known yet, the liver
    background is the **median** SUV of the liver mask (robust to the
    lesions it contains), not the healthy-liver mean. ``abs:T`` is accepted;
    ``rel:P`` is refused (it needs lesion regions).

    Parameters
    ----------
    suv : Volume
        SUVbw volume.
    liver : numpy.ndarray
        Boolean liver mask on ``liver_grid``.
    liver_grid : Volume
        Grid of ``liver`` (the study image).
    delineation : str, optional
        ``liver:K`` or ``abs:T``; default from the rules (``liver:1.5``).
    rules : mapping, optional
        Rules with an optional ``"pet"`` table.

    Returns
    -------
    numpy.ndarray
        Boolean mask on ``liver_grid``, inside ``liver``.

    Raises
    ------
    UsageError
        ``rel:P`` or malformed delineation.
    GeometryError
        Different FrameOfReferenceUIDs or a liver mask of the wrong shape.
    """
    from scipy import ndimage

    pr = rules_section(rules, "pet")
    delin = parse_delineation(delineation if delineation is not None else str(pr["derived_delineation"]))
    if delin.kind == "rel":
        raise UsageError(
            f"--delineation {delin}: PET-derived lesions need liver:K or abs:T (rel:P needs lesion regions, "
            "and no lesion mask was given)."
        )
    liver = np.asarray(liver, dtype=bool)
    if liver.shape != liver_grid.shape:
        raise GeometryError(
            f"{liver_grid.source}: liver mask shape {liver.shape} differs from grid {liver_grid.shape}."
        )
    check_frame_of_reference(liver_grid, suv, "the liver mask", [])
    out = np.zeros(liver.shape, dtype=bool)
    box = bbox(liver)
    if box is None:
        return out
    lo, hi = box
    crop_liver = liver[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    crop_aff = crop_affine(liver_grid.affine, lo)
    crop_suv = resample_array(
        np.asarray(suv.array, dtype=np.float32), suv.affine, crop_liver.shape, crop_aff, interpolation="linear"
    )
    inside = crop_suv[crop_liver]
    if delin.kind == "liver":
        background = float(np.median(inside))
        threshold = delin.value * background
        logger.info("PET-derived lesions: liver median SUV %.3f, threshold %.3f", background, threshold)
    else:
        threshold = delin.value
    cand = crop_liver & (crop_suv >= threshold)
    comps, n = ndimage.label(cand, structure=np.ones((3, 3, 3), dtype=bool))
    if n:
        sizes = np.bincount(comps.ravel())
        voxel_ml = liver_grid.voxel_volume_ml
        keep = sizes * voxel_ml >= float(pr["derived_min_volume_ml"])
        keep[0] = False
        peaks = _component_peaks(np.where(keep[comps], comps, 0), crop_aff, suv, n, float(pr["suv_peak_sphere_ml"]))
        noise = keep[1:] & (peaks < threshold)
        if noise.any():
            logger.info(
                "PET-derived lesions: %d noise cluster(s) with SUVpeak below %.3f dropped", int(noise.sum()), threshold
            )
        keep[1:] &= ~noise
        cand = keep[comps]
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = cand
    return out


def _component_peaks(comps: np.ndarray, affine: np.ndarray, suv: Volume, n: int, sphere_ml: float) -> np.ndarray:
    """SUVpeak of components ``1..n`` (on ``affine``): the highest mean of native PET values over a sphere of
    ``sphere_ml`` centred on one of its PET voxels (``inf`` for a component without a PET voxel centre)."""
    from scipy import ndimage

    on_pet = resample_array(comps.astype(np.int32), affine, suv.shape, suv.affine)
    peaks = np.full(n, np.inf)
    kernel = suv_peak_kernel(suv.spacing, sphere_ml)
    box = bbox(on_pet > 0, max(kernel.shape) // 2 + 1)
    if box is None:
        return peaks
    sl = tuple(slice(int(a), int(b)) for a, b in zip(*box))
    peak = peak_map(np.asarray(suv.array[sl], dtype=np.float64), kernel)
    ids = np.unique(on_pet[sl])
    ids = ids[ids > 0]
    if ids.size:
        peaks[ids - 1] = ndimage.maximum(peak, labels=on_pet[sl], index=ids)
    return peaks
