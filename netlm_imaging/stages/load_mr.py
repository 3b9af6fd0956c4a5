"""MR in the load stage: the series' provenance and phase, the study's other MR series, and a
pre-contrast image placed on the main grid.

The phase is read here because it says what the image is (hepatobiliary or not): the measure
stage needs it to know whether hepatocyte function can be measured. Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume

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

    provenance: Any
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

    Parameters
    ----------
    img : Volume
        The MR image measured.
    rules : mapping
        The rules (``rules["mri"]``, the phase thresholds).
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

    notes: list[str] = []
    prov = _provenance(img)
    phase = classify_mr_phase(prov.to_dict(), rules, user_phase=user_phase)
    others = _other_series(img, dicom_index, rules) if dicom_index else []
    pre_vol, pre_info = _load_pre_contrast(pre_contrast, others, dicom_index, max_voxels, notes)
    pre_arr = None
    if pre_vol is not None and pre_info is not None:
        pre_arr, how = _align(pre_vol, img, notes)
        pre_info["aligned_by"] = how
    return MrInputs(prov, phase, others, pre_arr, pre_info, notes)


def _provenance(img: Volume) -> Any:
    from ..io.mr_headers import mr_provenance_from_dicom, mr_provenance_from_sidecar

    files = img.meta.get("files") or []
    if img.meta.get("format") == "dicom" and files:
        return mr_provenance_from_dicom(files)
    return mr_provenance_from_sidecar(img.source)


def _other_series(img: Volume, index: Sequence[Any], rules: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The other MR image series of the study folder, with their phase (one header pair each)."""
    from ..classify.mr_phase import classify_mr_phase
    from ..io.mr_headers import mr_provenance_from_dicom

    main_uid = img.meta.get("series_instance_uid")
    by_series: dict[str, list[Any]] = {}
    for info in index:
        if getattr(info, "kind", "") == "IMAGE" and getattr(info, "modality", "") == "MR" and info.series_uid:
            by_series.setdefault(info.series_uid, []).append(info)
    out = []
    for uid, infos in sorted(by_series.items(), key=lambda kv: (kv[1][0].series_number or 0, kv[0])):
        if uid == main_uid:
            continue
        infos = sorted(infos, key=lambda i: str(i.path))
        prov = mr_provenance_from_dicom([infos[0].path, infos[-1].path])
        phase = classify_mr_phase(prov.to_dict(), rules)
        out.append(
            {
                "series_instance_uid": uid,
                "series_number": infos[0].series_number,
                "files": len(infos),
                "phase": phase["phase"],
                "delay_s": prov.delay_s,
                "same_frame_of_reference": bool(prov.frame_of_reference_uid)
                and prov.frame_of_reference_uid == img.frame_of_reference_uid,
            }
        )
    return out


def _load_pre_contrast(
    explicit: str | Path | None,
    others: list[dict[str, Any]],
    index: Sequence[Any],
    max_voxels: int | None,
    notes: list[str],
) -> tuple[Volume | None, dict[str, Any] | None]:
    """The pre-contrast series: the user's, else the one pre-contrast series of the folder."""
    from ..io.dicom_series import read_series_from_index
    from ..io.loader import load_image

    if explicit is not None:
        vol = load_image(explicit, max_voxels=max_voxels, nonuniform="resample")
        return vol, {"source": "user (--pre-contrast)", "path": Path(explicit).name}
    pre = [o for o in others if o["phase"] == "pre-contrast"]
    if not pre:
        return None, None
    same = [o for o in pre if o["same_frame_of_reference"]] or pre
    chosen = same[0]
    if len(pre) > 1:
        notes.append(
            f"{len(pre)} pre-contrast MR series in the study folder; series {chosen['series_number']} "
            f"({chosen['series_instance_uid']}) is used for relative enhancement"
        )
    vol = read_series_from_index(
        index, series_uid=chosen["series_instance_uid"], nonuniform="resample", max_voxels=max_voxels
    )
    return vol, {"source": "study folder", "series_instance_uid": chosen["series_instance_uid"]}


def _align(pre: Volume, img: Volume, notes: list[str]) -> tuple[np.ndarray, str]:
    """Pre-contrast image on the main grid: by position (same frame of reference) or after rigid registration."""
    from ..measure.grid import resample_to_grid

    same_for = pre.frame_of_reference_uid is not None and pre.frame_of_reference_uid == img.frame_of_reference_uid
    if same_for or pre.frame_of_reference_uid is None or img.frame_of_reference_uid is None:
        if not same_for:
            notes.append("no frame of reference to compare: the pre-contrast image is placed by its own geometry")
        moving = pre if pre.array.dtype.kind == "f" else pre.with_array(pre.array.astype(np.float32))
        return resample_to_grid(moving, img, linear=True), "physical position (same frame of reference)"
    return _register_rigid(pre, img), "rigid registration (Mattes mutual information, SimpleITK)"


def _register_rigid(moving: Volume, fixed: Volume) -> np.ndarray:
    import SimpleITK as sitk

    from ..geometry import array_from_sitk, to_sitk

    f = to_sitk(fixed, fixed.array.astype(np.float32))
    m = to_sitk(moving, moving.array.astype(np.float32))
    init = sitk.CenteredTransformInitializer(
        f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1234)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SetInitialTransform(init, inPlace=False)
    tx = reg.Execute(f, m)
    out = sitk.Resample(m, f, tx, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return np.ascontiguousarray(array_from_sitk(out))
