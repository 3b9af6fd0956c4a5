"""MR in the measure stage: the pre-contrast image placed on the image grid, a.u. signal statistics,
ratios and hepatocyte function (:func:`netlm_imaging.measure.mri.measure_mr_signal`), after an
optional N4 bias-field correction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..measure.context import MeasurementContext
from ..volume import Volume
from .load_mr import MrInputs

if TYPE_CHECKING:
    from ..measure.mri import MrSignal

__all__ = ["MrMeasurement", "measure_study_mr"]


@dataclass(frozen=True)
class MrMeasurement:
    """The MR signal of one study, how its bias field was treated and how the pre-contrast image was placed."""

    signal: MrSignal
    bias_field_correction: dict[str, Any]
    functional: bool
    with_pre_contrast: bool
    pre_contrast_alignment: dict[str, Any]
    alignment_notes: list[str]


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
    array = img.array
    pre_info: dict[str, Any] = {}
    align_notes: list[str] = []
    pre_arr = _aligned(mr.pre_contrast, ctx.image, pre_info, align_notes) if mr.pre_contrast is not None else None
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
    return MrMeasurement(sig, bias, functional, pre_arr is not None, pre_info, align_notes)


def _aligned(pre_vol: Volume, img: Volume, pre_info: dict[str, Any], notes: list[str]) -> np.ndarray:
    """The pre-contrast image on the image grid: by position in one frame of reference, else registered."""
    pre_for, img_for = pre_vol.frame_of_reference_uid, img.frame_of_reference_uid
    if pre_for is None or img_for is None or pre_for == img_for:
        if pre_for is None or pre_for != img_for:
            notes.append("no frame of reference to compare: the pre-contrast image is placed by its own geometry")
        moving = pre_vol if pre_vol.array.dtype == np.float32 else pre_vol.with_array(pre_vol.array.astype(np.float32))
        pre_info["aligned_by"] = "physical position (same frame of reference)"
        out = moving.resample_to(img, "linear").array
        # voxels the pre-contrast image does not cover (fully) are NaN: a region reaching them gets no RE
        inside = pre_vol.with_array(np.ones(pre_vol.shape, dtype=np.float32)).resample_to(img, "linear").array
        covered = inside >= 0.999
    else:
        from ..geometry import register_rigid  # two frames of reference: the images are registered

        pre_info["aligned_by"] = "rigid registration (Mattes mutual information, SimpleITK)"
        # NaN beyond the registered image, as beyond a slab placed by position: no RE over zero fill
        out = register_rigid(pre_vol.array, pre_vol.affine, img.array, img.affine, default_value=np.nan)
        covered = np.isfinite(out)
    share = float(np.count_nonzero(covered)) / covered.size
    if share < 1.0:
        out = np.where(covered, out, np.float32(np.nan)).astype(np.float32)
        pre_info["covers_percent_of_image"] = round(100.0 * share, 2)
        notes.append(
            f"the pre-contrast image covers {100.0 * share:.1f}% of the image: RE only for regions wholly inside it"
        )
    return out
