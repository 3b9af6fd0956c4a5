"""MR in the load stage: the series' provenance and phase, the study's other MR series, and a
comparable pre-contrast image.

The phase is read here because it says what the image is (hepatobiliary or not): the measure
stage needs it to know whether hepatocyte function can be measured. Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    pre_contrast : Volume, optional
        The pre-contrast image as read (the measure stage places it on the image grid), when it is
        comparable with the image.
    pre_contrast_info : dict, optional
        Where it came from and what relative enhancement compares (the report's ``mri.pre_contrast``).
    notes : list of str
        How the series were chosen.
    re_scale : tuple of float, optional
        ``(a_image, b_image, a_pre, b_pre)``: relative enhancement compares ``a x mean + b`` of the
        two images (:func:`netlm_imaging.io.mr_headers.signal_scale`).
    ratios_withheld : str, optional
        Why no signal ratio (LSC, lesion-to-liver, RE) or HUI is computed on this image (what its
        pixels are: subtraction, Dixon fat, phase, map), else ``None``.
    hepatocyte_withheld : str, optional
        Why a hepatobiliary-timed signal image gets no LSC or HUI (no T1 gradient echo), else ``None``.
    functional : bool
        A hepatobiliary-phase T1 signal image: the hepatocyte indices (HUI) are measured.
    component_note : str, optional
        A note on what the pixels are that does not withhold the ratios (Dixon in-/opposed-phase).
    """

    provenance: MrProvenance
    phase: dict[str, Any]
    other_series: list[dict[str, Any]]
    pre_contrast: Volume | None = None
    pre_contrast_info: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    re_scale: tuple[float, float, float, float] | None = None
    ratios_withheld: str | None = None
    hepatocyte_withheld: str | None = None
    functional: bool = False
    component_note: str | None = None


#: What relative enhancement compares, by the kind of :func:`netlm_imaging.io.mr_headers.signal_scale`
#: (the report's ``mri.pre_contrast.compared_on``).
_COMPARED_ON = {
    "philips_fp": "Philips floating-point values: value / (RescaleSlope x ScaleSlope (2005,100E))",
    "real_world_value": "real-world values (RealWorldValueMappingSequence)",
    "stored": "the images' values (no scale stated in the headers)",
}
_HEADLESS = "; sequence and scale of an image without headers could not be checked"


def load_mr(
    img: Volume,
    rules: Mapping[str, Any],
    *,
    dicom_index: Sequence[Any] = (),
    pre_contrast: str | Path | None = None,
    user_phase: str | None = None,
    max_voxels: int | None = None,
) -> MrInputs:
    """Provenance, phase, the other MR series and the pre-contrast image of an MR study.

    The pre-contrast image is the user's (``--pre-contrast``), else the study folder's
    pre-contrast series (the one in the image's frame of reference when there are several).
    The measure stage places it on the image grid (:func:`netlm_imaging.stages.measure_mr.measure_study_mr`).

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
    from ..io.mr_headers import mr_provenance, signal_scale
    from ..io.mr_phase import (
        classify_mr_phase,
        component_note,
        hepatocyte_indices_withheld,
        ratios_withheld,
        relative_enhancement_withheld,
    )
    from ..io.mr_study import MrSeries, other_mr_series, with_study_contrast

    # the headers (io): this series, the study's other MR series, the user's pre-contrast image
    prov = mr_provenance(img)
    series = other_mr_series(img, dicom_index) if dicom_index else []
    # one injection per study: a series that does not state it takes the agent and time the others agree on
    own = MrSeries(str(img.meta.get("series_instance_uid") or ""), prov.series_number, 0, prov)
    series = [
        replace(s, provenance=with_study_contrast(s.provenance, [own, *(x for x in series if x is not s)]))
        for s in series
    ]
    prov = with_study_contrast(prov, series)
    user_pre: tuple[Volume, MrProvenance] | None = None
    if pre_contrast is not None:
        from ..io.loader import load_image

        user_vol = load_image(pre_contrast, max_voxels=max_voxels, nonuniform="resample")
        user_pre = (user_vol, mr_provenance(user_vol))
    scale = signal_scale(prov)
    scales = [signal_scale(s.provenance) for s in series]
    user_scale = signal_scale(user_pre[1]) if user_pre is not None else None

    # the decisions (classify): the phases, what the image can be used for, which pre-contrast images compare
    phase = classify_mr_phase(prov.to_dict(), rules, user_phase=user_phase)
    component_withheld = ratios_withheld(prov.image_component)
    hbp = phase["phase"] == "hepatobiliary"
    not_t1 = hepatocyte_indices_withheld(prov.to_dict()) if hbp and component_withheld is None else None
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
    found = MrInputs(
        prov,
        phase,
        others,
        ratios_withheld=component_withheld,
        hepatocyte_withheld=not_t1,
        functional=hbp and component_withheld is None and not_t1 is None,
        component_note=component_note(prov.image_component),
    )
    candidates: list[tuple[MrProvenance, tuple[str, float, float] | None, dict[str, Any] | None]]
    if user_pre is not None:
        candidates = [(user_pre[1], user_scale, None)]
    else:
        candidates = [(s.provenance, sc, o) for o, s, sc in zip(others, series, scales, strict=True)]
        candidates = [c for c in candidates if c[2] is not None and c[2]["phase"] == "pre-contrast"]
    re_withheld = [
        relative_enhancement_withheld(prov.to_dict(), p.to_dict(), (scale, sc), rules) for p, sc, _ in candidates
    ]

    # the chosen pre-contrast image (io), as read: the measure stage places it on the image grid
    notes: list[str] = []
    if not candidates:
        untimed = [s for s in series if s.provenance.trigger_time_ms is not None]
        if untimed:  # the pre-contrast phase may be among them: nothing says which
            return replace(
                found,
                notes=[
                    f"no pre-contrast series is known for relative enhancement: {len(untimed)} other phase(s) of "
                    "the study are told apart only by TriggerTime and have no known delay; name the pre-contrast "
                    "image with --pre-contrast PATH"
                ],
            )
        return found
    if user_pre is not None:
        pre_vol = user_pre[0]
        pre_info: dict[str, Any] = {"source": "user (--pre-contrast)", "path": Path(str(pre_contrast)).name}
        n = 0
    else:
        from ..io.dicom_series import read_series_from_index

        # same frame of reference, then comparable for RE, then the lowest series number
        n = min(
            range(len(candidates)),
            key=lambda i: (
                not (candidates[i][2] or {}).get("same_frame_of_reference"),
                re_withheld[i] is not None,
                (candidates[i][2] or {}).get("series_number") or 0,
            ),
        )
        chosen = candidates[n][2]
        assert chosen is not None
        if len(candidates) > 1:
            notes.append(
                f"{len(candidates)} pre-contrast MR series in the study folder; series {chosen['series_number']} "
                f"({chosen['series_instance_uid']}) is used for relative enhancement (same frame of reference, "
                "image component and sequence first)"
            )
        uid = chosen["series_instance_uid"]
        pre_vol = read_series_from_index(dicom_index, series_uid=uid, nonuniform="resample", max_voxels=max_voxels)
        pre_info = {"source": "study folder", "series_instance_uid": uid}
    pre_prov, pre_scale, _ = candidates[n]
    why = re_withheld[n]
    if why is not None:
        pre_info["relative_enhancement_withheld"] = why
        return replace(found, pre_contrast_info=pre_info, notes=[*notes, why])
    re_scale = None
    if scale is not None and pre_scale is not None:
        headless = "none" in (prov.source, pre_prov.source)
        pre_info["compared_on"] = _COMPARED_ON[scale[0]] + (_HEADLESS if headless else "")
        re_scale = (scale[1], scale[2], pre_scale[1], pre_scale[2])
    return replace(found, pre_contrast=pre_vol, pre_contrast_info=pre_info, notes=notes, re_scale=re_scale)
