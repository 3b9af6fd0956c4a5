"""MR in the load stage: the series' provenance and phase, the study's other MR series, and a
pre-contrast image placed on the main grid.

The phase is read here because it says what the image is (hepatobiliary or not): the measure
stage needs it to know whether hepatocyte function can be measured. Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    """

    provenance: MrProvenance
    phase: dict[str, Any]
    other_series: list[dict[str, Any]]
    pre_contrast: np.ndarray | None = None
    pre_contrast_info: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


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
    from ..io.mr_headers import mr_provenance, other_mr_series

    prov = mr_provenance(img)
    series = other_mr_series(img, dicom_index) if dicom_index else []
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
    pre = [o for o in others if o["phase"] == "pre-contrast"]
    if pre_contrast is not None:
        from ..io.loader import load_image

        pre_vol = load_image(pre_contrast, max_voxels=max_voxels, nonuniform="resample")
        pre_info = {"source": "user (--pre-contrast)", "path": Path(pre_contrast).name}
    elif pre:
        from ..io.dicom_series import read_series_from_index

        chosen = ([o for o in pre if o["same_frame_of_reference"]] or pre)[0]
        if len(pre) > 1:
            notes.append(
                f"{len(pre)} pre-contrast MR series in the study folder; series {chosen['series_number']} "
                f"({chosen['series_instance_uid']}) is used for relative enhancement"
            )
        uid = chosen["series_instance_uid"]
        pre_vol = read_series_from_index(dicom_index, series_uid=uid, nonuniform="resample", max_voxels=max_voxels)
        pre_info = {"source": "study folder", "series_instance_uid": uid}
    pre_arr = None
    if pre_vol is not None and pre_info is not None:
        pre_for, img_for = pre_vol.frame_of_reference_uid, img.frame_of_reference_uid
        if pre_for is None or img_for is None or pre_for == img_for:
            from ..measure.grid import resample_to_grid

            if pre_for is None or pre_for != img_for:
                notes.append("no frame of reference to compare: the pre-contrast image is placed by its own geometry")
            moving = (
                pre_vol if pre_vol.array.dtype.kind == "f" else pre_vol.with_array(pre_vol.array.astype(np.float32))
            )
            pre_arr = resample_to_grid(moving, img, linear=True)
            pre_info["aligned_by"] = "physical position (same frame of reference)"
        else:  # two frames of reference: the images are registered
            from ..geometry import register_rigid

            pre_arr = register_rigid(pre_vol.array, pre_vol.affine, img.array, img.affine)
            pre_info["aligned_by"] = "rigid registration (Mattes mutual information, SimpleITK)"
    return MrInputs(prov, phase, others, pre_arr, pre_info, notes)
