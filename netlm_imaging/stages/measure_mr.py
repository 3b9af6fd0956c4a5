"""MR in the measure stage: a.u. signal statistics, ratios and hepatocyte function
(:func:`netlm_imaging.measure.mri.measure_mr_signal`), after an optional N4 bias-field correction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..measure.context import MeasurementContext
from .load_mr import MrInputs

if TYPE_CHECKING:
    from ..measure.mri import MrSignal

__all__ = ["MrMeasurement", "measure_study_mr"]


@dataclass(frozen=True)
class MrMeasurement:
    """The MR signal of one study and how its bias field was treated."""

    signal: MrSignal
    bias_field_correction: dict[str, Any]
    functional: bool
    with_pre_contrast: bool


def measure_study_mr(ctx: MeasurementContext, mr: MrInputs, rules: Mapping[str, Any], *, n4: bool) -> MrMeasurement:
    """Signal, ratios and (hepatobiliary phase) the hepatic uptake index of an MR study."""
    from ..measure.mri import measure_mr_signal
    from ..measure.mri_bias import n4_bias_correct

    mri_rules = rules["mri"]
    img = ctx.image
    if img.sheared:  # the erosions and the bias field take the axes as orthogonal; MR has no gantry tilt
        raise InputError(
            f"{img.source}: the MR grid is sheared ({img.shear_deg:.1f} degrees); resample the series onto an "
            "orthogonal grid first (e.g. dcm2niix), then analyse that image."
        )
    array, pre_arr = img.array, mr.pre_contrast
    bias: dict[str, Any] = {"applied": False}
    spacing = [float(s) for s in img.spacing]
    if n4:
        kw: dict[str, Any] = {
            "shrink_factor": int(mri_rules["n4_shrink_factor"]),
            "iterations": int(mri_rules["n4_iterations"]),
            "fitting_levels": int(mri_rules["n4_fitting_levels"]),
        }
        corrected, bias = n4_bias_correct(array, spacing, **kw)
        if pre_arr is not None:
            # the coil's field is the same in both acquisitions: the pre-contrast image is divided by the
            # image's field (not by an N4 field of its own, fitted to other contents: RE would take the
            # difference of two estimates); corrected / array is 1 / field where the image has signal
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(array != 0, corrected / array, np.float32(1.0)).astype(np.float32)
            pre_arr = (pre_arr * gain).astype(np.float32)
            bias["pre_contrast"] = "divided by the image's bias field (one coil field for both acquisitions)"
        array = corrected
    withheld, not_t1, functional = mr.ratios_withheld, mr.hepatocyte_withheld, mr.functional
    sig = measure_mr_signal(
        array,
        spacing_mm=spacing,
        voxel_volume_ml=img.voxel_volume_ml,
        liver=ctx.liver,
        lesion_labels=ctx.lesion_labels,
        lesion_ids=[les.id for les in ctx.lesions],
        spleen=ctx.spleen,
        segment_labels=ctx.segment_labels,
        pre_contrast=pre_arr,
        reference_erosion_mm=float(mri_rules["reference_erosion_mm"]),
        functional=functional,
        ratios=withheld is None,
        re_scale=mr.re_scale,
    )
    if withheld is not None:
        sig.notes.insert(0, withheld)
        sig.ratios_withheld = withheld
    elif not_t1 is not None:
        sig.notes.insert(0, not_t1)
        sig.ratios_withheld = not_t1
    elif (note := mr.component_note) is not None:
        sig.notes.insert(0, note)
    return MrMeasurement(sig, bias, functional, pre_arr is not None)
