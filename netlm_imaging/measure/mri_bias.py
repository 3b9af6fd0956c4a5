"""N4 bias-field correction of an MR image (SimpleITK's N4BiasFieldCorrectionImageFilter).

Receive-coil sensitivity multiplies MR signal by a smooth field, so a liver on
one side of the body and a spleen on the other can differ by tens of percent
for no biological reason. N4 (Tustison et al., IEEE TMI 2010) estimates the
field as a B-spline in log space; the image is divided by it. The correction
is optional (``--n4``) and the report says when it was applied.

The filter works in array space with the voxel spacing (its B-spline mesh is
laid out in mm): the image's orientation and origin do not change the estimate,
so no patient-space conversion is involved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..rules_data import default_section

__all__ = ["n4_bias_correct"]

logger = logging.getLogger(__name__)


def n4_bias_correct(
    array: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    mask: np.ndarray | None = None,
    shrink_factor: int | None = None,
    iterations: int | None = None,
    fitting_levels: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Divide ``array`` by the N4 estimate of its bias field.

    Parameters
    ----------
    array : numpy.ndarray
        3-D MR image (non-negative signal).
    spacing_mm : sequence of float
        Spacing along the array axes.
    mask : numpy.ndarray, optional
        Voxels the field is fitted on; default an Otsu foreground of the image.
    shrink_factor, iterations, fitting_levels : int, optional
        N4 settings (rules ``mri.n4_*``; default the shipped rules file): the fit
        runs on the image shrunk by ``shrink_factor``; the field is evaluated at
        full resolution.

    Returns
    -------
    (numpy.ndarray, dict)
        The corrected float32 image (field normalised to mean 1 over the mask, so the
        signal scale is kept) and what was done (for the report).
    """
    import SimpleITK as sitk

    shipped = default_section("mri")
    shrink_factor = int(shipped["n4_shrink_factor"]) if shrink_factor is None else shrink_factor
    iterations = int(shipped["n4_iterations"]) if iterations is None else iterations
    fitting_levels = int(shipped["n4_fitting_levels"]) if fitting_levels is None else fitting_levels
    arr = np.ascontiguousarray(array, dtype=np.float32)
    lo = float(arr.min())
    shifted = arr - lo if lo < 0 else arr  # N4 needs non-negative intensities
    img = sitk.GetImageFromArray(shifted)
    img.SetSpacing([float(s) for s in spacing_mm][::-1])  # numpy axis order is reversed in SimpleITK
    if mask is None:
        fg = sitk.OtsuThreshold(img, 0, 1, 200)
        how = "Otsu foreground"
    else:
        fg = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
        fg.CopyInformation(img)
        how = "given mask"
    f = max(1, int(shrink_factor))
    small = sitk.Shrink(img, [f] * 3) if f > 1 else img
    small_mask = sitk.Shrink(fg, [f] * 3) if f > 1 else fg
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(iterations)] * int(fitting_levels))
    n4.Execute(small, small_mask)
    log_field = sitk.GetArrayFromImage(n4.GetLogBiasFieldAsImage(img)).astype(np.float64)
    field = np.exp(log_field)
    m = sitk.GetArrayFromImage(fg).astype(bool)
    norm = float(field[m].mean()) if m.any() else float(field.mean())
    field /= norm
    corrected = (shifted / field).astype(np.float32)
    if lo < 0:
        corrected += lo
    info = {
        "applied": True,
        "method": "N4 (SimpleITK N4BiasFieldCorrectionImageFilter), field normalised to mean 1",
        "fit_mask": how,
        "shrink_factor": f,
        "iterations_per_level": int(iterations),
        "fitting_levels": int(fitting_levels),
        "field_range": [round(float(field[m].min()), 4), round(float(field[m].max()), 4)] if m.any() else None,
    }
    logger.info("N4 bias field %s", info["field_range"])
    return corrected, info
