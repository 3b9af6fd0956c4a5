"""MR in the load stage: the series' provenance and phase, the study's other MR series, and a
pre-contrast image placed on the main grid.

The phase is read here because it says what the image is (hepatobiliary or not): the measure
stage needs it to know whether hepatocyte function can be measured. Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..volume import Volume

if TYPE_CHECKING:
    from ..io.mr_headers import MrProvenance

__all__ = ["MrInputs", "load_mr"]


@dataclass(frozen=True)
class MrInputs:
    """What the load stage read of an MR study.

    Attributes
    ----------
    provenance : MrProvenance
        Sequence, contrast agent and timing from the headers (or a sidecar).
    phase : dict
        The classified contrast phase (``phase``, ``basis``, ``delay_s``, ``notes``).
    other_series : list of dict
        The study folder's other MR image series with their phase.
    pre_contrast : numpy.ndarray, optional
        The pre-contrast image on the main image's grid.
    pre_contrast_info : dict, optional
        Where it came from and how it was aligned (the report's ``mri.pre_contrast``).
    notes : list of str
        How the series were chosen and aligned.
    re_scale : tuple of float, optional
        ``(a_image, b_image, a_pre, b_pre)``: relative enhancement compares ``a x mean + b`` of the
        two images (:func:`netlm_imaging.io.mr_headers.signal_scale`).
    """

    provenance: MrProvenance
    phase: dict[str, Any]
    other_series: list[dict[str, Any]]
    pre_contrast: np.ndarray | None = None
    pre_contrast_info: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    re_scale: tuple[float, float, float, float] | None = None


def load_mr(
    img: Volume,
    rules: Mapping[str, Any],
    *,
    dicom_index: Sequence[Any] = (),
    pre_contrast: str | Path | None = None,
    user_phase: str | None = None,
    max_voxels: int | None = None,
) -> MrInputs:
    """Provenance, phase, the other MR series and the aligned pre-contrast image of an MR study.

    The pre-contrast image is the user's (``--pre-contrast``), else the study folder's
    pre-contrast series (the one in the image's frame of reference when there are several).
    It is placed on the image grid by physical position when both share a frame of reference
    (or one has none), else by rigid registration.

    Parameters
    ----------
    img : Volume
        The MR image measured.
    rules : mapping
        The rules (the phase thresholds).
    dicom_index : sequence of DicomFileInfo
        The study folder's scan (other MR series, pre-contrast twin).
    pre_contrast : path, optional
        A pre-contrast image given by the user.
    user_phase : str, optional
        ``--mr-phase``.
    max_voxels : int, optional
        Voxel budget for a pre-contrast series.

    Returns
    -------
    MrInputs
    """
    from ..classify.mr_phase import classify_mr_phase
    from ..io.mr_headers import MrSeries, mr_provenance, other_mr_series, with_study_contrast

    prov = mr_provenance(img)
    series = other_mr_series(img, dicom_index) if dicom_index else []
    # one injection per study: a series that does not state it takes the agent and time the others agree on
    own = MrSeries(str(img.meta.get("series_instance_uid") or ""), prov.series_number, 0, prov)
    series = [
        replace(s, provenance=with_study_contrast(s.provenance, [own, *(x for x in series if x is not s)]))
        for s in series
    ]
    prov = with_study_contrast(prov, series)
    phase = classify_mr_phase(prov.to_dict(), rules, user_phase=user_phase)
    others = [
        {
            "series_instance_uid": s.series_instance_uid,
            "series_number": s.series_number,
            "files": s.files,
            "stack": s.stack or None,
            "phase": classify_mr_phase(s.provenance.to_dict(), rules)["phase"],
            "delay_s": s.provenance.delay_s,
            "image_component": s.provenance.image_component,
            "same_frame_of_reference": bool(s.provenance.frame_of_reference_uid)
            and s.provenance.frame_of_reference_uid == img.frame_of_reference_uid,
        }
        for s in series
    ]
    notes: list[str] = []
    pre_vol: Volume | None = None
    pre_info: dict[str, Any] | None = None
    pre_prov: MrProvenance | None = None
    pre = [(o, s) for o, s in zip(others, series, strict=True) if o["phase"] == "pre-contrast"]
    if pre_contrast is not None:
        from ..io.loader import load_image

        pre_vol = load_image(pre_contrast, max_voxels=max_voxels, nonuniform="resample")
        pre_info = {"source": "user (--pre-contrast)", "path": Path(pre_contrast).name}
        pre_prov = mr_provenance(pre_vol)
    elif pre:
        from ..io.dicom_series import read_series_from_index

        chosen, chosen_series = min(pre, key=lambda p: _twin_rank(p[0], p[1].provenance, prov, rules))
        if len(pre) > 1:
            notes.append(
                f"{len(pre)} pre-contrast MR series in the study folder; series {chosen['series_number']} "
                f"({chosen['series_instance_uid']}) is used for relative enhancement (same frame of reference, "
                "image component and sequence first)"
            )
        uid = chosen["series_instance_uid"]
        pre_vol = read_series_from_index(dicom_index, series_uid=uid, nonuniform="resample", max_voxels=max_voxels)
        pre_info = {"source": "study folder", "series_instance_uid": uid}
        pre_prov = chosen_series.provenance
    pre_arr = None
    re_scale = None
    if pre_vol is not None and pre_info is not None and pre_prov is not None:
        withheld, re_scale = _comparable(prov, pre_prov, rules, pre_info)
        if withheld is not None:
            pre_info["relative_enhancement_withheld"] = withheld
            notes.append(withheld)
            return MrInputs(prov, phase, others, None, pre_info, notes)
        pre_arr = _aligned(pre_vol, img, pre_info, notes)
    return MrInputs(prov, phase, others, pre_arr, pre_info, notes, re_scale)


def _twin_rank(other: Mapping[str, Any], pre: MrProvenance, image: MrProvenance, rules: Mapping[str, Any]) -> tuple:
    """Sort key of a pre-contrast candidate: same frame of reference, then comparable for RE, then series number."""
    from ..classify.mr_phase import relative_enhancement_withheld
    from ..io.mr_headers import signal_scale

    comparable = (
        relative_enhancement_withheld(image.to_dict(), pre.to_dict(), (signal_scale(image), signal_scale(pre)), rules)
        is None
    )
    return (not other["same_frame_of_reference"], not comparable, other["series_number"] or 0)


def _comparable(
    image: MrProvenance, pre: MrProvenance, rules: Mapping[str, Any], info: dict[str, Any]
) -> tuple[str | None, tuple[float, float, float, float] | None]:
    """Why RE is withheld (or ``None``) and the affine maps onto comparable values; ``info`` gets the scale used."""
    from ..classify.mr_phase import relative_enhancement_withheld
    from ..io.mr_headers import signal_scale

    scales = (signal_scale(image), signal_scale(pre))
    withheld = relative_enhancement_withheld(image.to_dict(), pre.to_dict(), scales, rules)
    post_scale, pre_scale = scales
    if withheld is not None or post_scale is None or pre_scale is None:
        return withheld, None
    info["compared_on"] = {
        "philips_fp": "Philips floating-point values: value / (RescaleSlope x ScaleSlope (2005,100E))",
        "real_world_value": "real-world values (RealWorldValueMappingSequence)",
        "stored": "the images' values (no scale stated in the headers)",
    }[post_scale[0]]
    if image.source == "none" or pre.source == "none":
        info["compared_on"] += "; sequence and scale of an image without headers could not be checked"
    return None, (post_scale[1], post_scale[2], pre_scale[1], pre_scale[2])


def _aligned(pre_vol: Volume, img: Volume, pre_info: dict[str, Any], notes: list[str]) -> np.ndarray:
    """The pre-contrast image on the image grid: by position in one frame of reference, else registered."""
    pre_for, img_for = pre_vol.frame_of_reference_uid, img.frame_of_reference_uid
    if pre_for is None or img_for is None or pre_for == img_for:
        from ..measure.grid import resample_to_grid

        if pre_for is None or pre_for != img_for:
            notes.append("no frame of reference to compare: the pre-contrast image is placed by its own geometry")
        moving = pre_vol if pre_vol.array.dtype.kind == "f" else pre_vol.with_array(pre_vol.array.astype(np.float32))
        pre_info["aligned_by"] = "physical position (same frame of reference)"
        out = resample_to_grid(moving, img, linear=True)
        # voxels the pre-contrast image does not cover (fully) are NaN: a region reaching them gets no RE
        inside = resample_to_grid(pre_vol.with_array(np.ones(pre_vol.shape, dtype=np.float32)), img, linear=True)
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
