"""The load stage: everything one analysis reads, as Volumes on the image's grid.

The image (a PET image in SUVbw), every segmentation as role layers placed on the image grid,
the PET SUV image of a ``--pet`` series, the MR series' provenance and pre-contrast image, the
clinical inputs and the rules. Every refusal of a bad input happens here or in io/, before any
number is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..segmentation import MaskLayer
from ..volume import Volume
from .discover import StudyInputs, seg_source
from .load_mr import MrInputs
from .options import MODALITIES, AnalyzeOptions

__all__ = ["LoadedStudy", "load_study"]


@dataclass(frozen=True)
class LoadedStudy:
    """What the load stage read.

    Attributes
    ----------
    inputs : StudyInputs
        What was asked for.
    image : Volume
        The image measured (SUVbw for PET).
    modality : str
        CT, MR, PT, NM or OT (``--modality``, a manifest, the headers).
    layers : tuple of MaskLayer
        The role layers as read (the report's ``segmentation_refs``).
    grid_layers : tuple of MaskLayer
        The same layers on the image grid (what is measured).
    resampled : bool
        Whether a mask or the image was resampled.
    seg_sources : tuple of str
        The segmentation files.
    segment_roles : list of dict
        How every named segment / ROI got its role.
    suv : Volume or None
        The SUVbw image of a PET study (the image itself, or ``--pet``).
    mr : MrInputs or None
        The MR series' provenance, phase and pre-contrast image.
    clinical : ClinicalInputs or None
    rules : Rules
    identifiers : dict or None
        Patient name, ID and birth date, only when the user asked for them.
    warnings : tuple of str
        What the reading warned about, in order.
    """

    inputs: StudyInputs
    image: Volume
    modality: str
    layers: tuple[MaskLayer, ...]
    grid_layers: tuple[MaskLayer, ...]
    resampled: bool
    seg_sources: tuple[str, ...]
    segment_roles: list[dict[str, Any]]
    suv: Volume | None
    mr: MrInputs | None
    clinical: Any
    rules: Any
    identifiers: dict[str, Any] | None
    warnings: tuple[str, ...]


def load_study(inputs: StudyInputs, opts: AnalyzeOptions, *, rules: Any = None, clinical: Any = None) -> LoadedStudy:
    """Read the image, the masks, PET and MR series, the clinical inputs and the rules of one study.

    Parameters
    ----------
    inputs : StudyInputs
        From the discover stage.
    opts : AnalyzeOptions
    rules : path or Rules, optional
        A rules file (default: the shipped rules).
    clinical : path or ClinicalInputs, optional
        Overrides ``inputs.clinical``.

    Returns
    -------
    LoadedStudy

    Raises
    ------
    NetlmError
        A file that cannot be read, or whose content cannot be trusted.
    """
    from ..classify.rules import Rules, load_rules
    from ..io.labels import check_decisions, parse_label_spec, summarize_decisions
    from ..measure.grid import reconcile_layers
    from .load_pet import load_suv, main_image_as_suv

    rules_obj = rules if isinstance(rules, Rules) else load_rules(rules)
    spec = parse_label_spec(inputs.labels, name_patterns=opts.name_patterns)
    img = main_image_as_suv(_read_image(inputs, opts), opts, rules_obj)
    _check_image_values(img)
    warnings: list[str] = list(img.meta.get("warnings", []))
    layers, role_log = _read_masks(inputs, img, spec, opts)
    check_decisions(role_log, spec, found_roles={la.role for la in layers})
    warnings.extend(summarize_decisions(role_log, spec))
    for la in layers:
        warnings.extend(la.mask.meta.get("notes", []))
        warnings.extend(str(w) for w in la.mask.meta.get("warnings", []))
    seg_sources = tuple(seg_source(s) for s in inputs.segs)
    _check_roles_found(layers, seg_sources)
    rec = reconcile_layers(img, layers)
    warnings.extend(rec.warnings)
    suv, suv_warnings = load_suv(img, inputs, opts, rules_obj)
    warnings.extend(suv_warnings)
    modality = _modality(img, opts, inputs.modality)
    mr = None
    if modality == "MR":
        from .load_mr import load_mr

        mr = load_mr(
            img,
            rules_obj,
            dicom_index=inputs.dicom_index,
            pre_contrast=opts.pre_contrast,
            user_phase=opts.mr_phase,
            max_voxels=opts.max_voxels,
        )
    return LoadedStudy(
        inputs=inputs,
        image=img,
        modality=modality,
        layers=tuple(layers),
        grid_layers=tuple(rec.layers),
        resampled=rec.resampled or bool(img.meta.get("resampled")),
        seg_sources=seg_sources,
        segment_roles=[d.to_report() for d in role_log],
        suv=suv,
        mr=mr,
        clinical=_clinical_inputs(clinical if clinical is not None else inputs.clinical),
        rules=rules_obj,
        identifiers=_identifiers(img) if opts.include_identifiers else None,
        warnings=tuple(warnings),
    )


def _read_image(inputs: StudyInputs, opts: AnalyzeOptions) -> Volume:
    """The main image: the series of the folder scan (one scan for the modality check and the pixels)."""
    from ..io.loader import load_image
    from .load_pet import is_pet_series

    index = list(inputs.dicom_index)
    if not index and Path(inputs.image).is_dir():
        from ..io._dicom_common import scan_dicom_folder

        index = scan_dicom_folder(Path(inputs.image))
    # PET series are handled by slice positions (non-uniform steps resampled, with a warning), never rejected.
    is_pet = bool(index) and is_pet_series(index, inputs.image_series)
    nonuniform = "resample" if (opts.allow_resample or is_pet) else "error"
    if not index:
        return load_image(
            inputs.image, max_voxels=opts.max_voxels, nonuniform=nonuniform, series_uid=inputs.image_series
        )
    from ..io.dicom_series import read_series_from_index, series_referenced_by

    return read_series_from_index(
        index,
        series_uid=inputs.image_series or series_referenced_by(index, inputs.segs),
        nonuniform=nonuniform,
        max_voxels=opts.max_voxels,
        where=str(inputs.image),
    )


def _read_masks(inputs: StudyInputs, img: Volume, spec: Any, opts: AnalyzeOptions) -> tuple[list[MaskLayer], list[Any]]:
    """The role layers of every ``--seg`` argument, and how each named segment got its role."""
    from ..io.labels import RoleDecision
    from ..io.loader import load_segmentation

    layers: list[MaskLayer] = []
    role_log: list[RoleDecision] = []
    # SEG datasets the folder scan parsed: handed to the SEG reader explicitly (no second parse)
    scanned = {
        str(Path(i.path).resolve()): i.dataset for i in inputs.dicom_index if getattr(i, "dataset", None) is not None
    }
    for s in inputs.segs:
        layers.extend(
            load_segmentation(
                s,
                img,
                spec,
                max_voxels=opts.max_voxels,
                fractional_threshold=opts.fractional_threshold,
                role_log=role_log,
                scanned=scanned.get(_resolved(s)),
            )
        )
    return layers, role_log


def _resolved(seg_arg: str) -> str:
    """The resolved file path of a ``--seg`` argument (``ROLE=PATH`` or ``PATH``), for lookups."""
    path = seg_source(seg_arg)
    try:
        return str(Path(path).resolve())
    except OSError:
        return path


def _check_image_values(img: Volume) -> None:
    arr = img.array
    # a finite float64 sum proves every voxel is finite without a full-size temporary
    if arr.dtype.kind == "f" and not np.isfinite(arr.sum(dtype=np.float64)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise InputError(
                f"{img.source}: image contains {bad} NaN/inf voxel(s); intensities cannot be trusted. "
                "Re-export the image (NaN often marks outside-of-FOV voxels: fill them with the background value)."
            )


def _check_roles_found(layers: list[MaskLayer], seg_sources: tuple[str, ...]) -> None:
    """Blame the segmentation file(s), not the image, when no liver and no lesion mask came out of them."""
    if not seg_sources or any(la.role in ("liver", "lesion") for la in layers):
        return
    roles = sorted({la.role for la in layers})
    found = f"only {', '.join(roles)} masks" if roles else "no voxel with a liver or lesion label (an empty mask?)"
    raise InputError(
        f"{', '.join(seg_sources)}: the segmentation holds {found}; pass the right --seg file, "
        "or map its labels with --labels liver=N,lesion=M."
    )


def _modality(img: Volume, options: AnalyzeOptions, declared: str | None = None) -> str:
    mod = (options.modality or declared or img.meta.get("modality") or "OT").upper()
    return mod if mod in MODALITIES else "OT"  # options.modality was checked by AnalyzeOptions


def _clinical_inputs(clinical: Any) -> Any:
    """ClinicalInputs from a path / object, or None."""
    from ..classify.clinical import ClinicalInputs, load_clinical

    if clinical is None or isinstance(clinical, ClinicalInputs):
        return clinical
    return load_clinical(clinical)


def _identifiers(img: Volume) -> dict[str, Any]:
    files = img.meta.get("files") or []
    if not files or img.meta.get("format") != "dicom":
        return {}
    import pydicom

    ds = pydicom.dcmread(
        files[0], stop_before_pixels=True, specific_tags=["PatientName", "PatientID", "PatientBirthDate"]
    )
    return {
        "patient_name": str(ds.get("PatientName", "")) or None,
        "patient_id": str(ds.get("PatientID", "")) or None,
        "patient_birth_date": str(ds.get("PatientBirthDate", "")) or None,
    }
