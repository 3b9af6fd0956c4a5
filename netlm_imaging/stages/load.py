"""The load stage: everything one analysis reads, as Volumes on the image's grid.

The image (a PET image in SUVbw), every segmentation as role layers placed on the image grid,
the PET SUV image of a ``--pet`` series, the MR series' provenance and pre-contrast image, the
clinical inputs and the rules. Every refusal of a bad input happens here or in io/, before any
number is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..segmentation import MaskLayer
from ..volume import Volume
from .discover import StudyInputs
from .load_mr import MrInputs
from .options import MODALITIES, AnalyzeOptions

if TYPE_CHECKING:
    from ..classify.rules import Rules
    from ..clinical.inputs import ClinicalInputs

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
    lesions_segmented : bool
        Whether the segmentations declare a lesion role at all (False: a liver-only
        segmentation, whose lesions were not segmented; see
        :class:`~netlm_imaging.io.study.StudySegmentations`).
    notes : tuple of str
        Where the label maps' names came from (their exporters' label tables), for the report's notes.
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
    clinical: ClinicalInputs | None
    rules: Rules
    identifiers: dict[str, Any] | None
    warnings: tuple[str, ...]
    lesions_segmented: bool = True
    notes: tuple[str, ...] = ()


def _mr_only_options(opts: AnalyzeOptions) -> list[str]:
    """The MR-only options given (``--mr-phase``, ``--pre-contrast``, ``--n4``)."""
    given = (("--mr-phase", opts.mr_phase is not None), ("--pre-contrast", opts.pre_contrast is not None))
    return [flag for flag, on in (*given, ("--n4", opts.n4)) if on]


def _pet_half_life(opts: AnalyzeOptions, clinical: ClinicalInputs | None) -> tuple[float | None, str]:
    """The stated PET half-life and where it came from: ``--pet-half-life`` or the clinical ``pet_half_life_s``.

    Both given and more than 1e-6 apart is refused: each is the user's word for the study's nuclide, so the
    one that is wrong cannot be told (a batch-wide option against one study's own value).
    """
    from ..clinical.inputs import source_label
    from ..errors import InputError
    from ..io.pet_half_life import CLINICAL_HALF_LIFE_FIELD, HALF_LIFE_OPTION

    given = clinical.pet_half_life_s if clinical is not None else None
    if given is None:
        return opts.pet_half_life_s, HALF_LIFE_OPTION
    assert clinical is not None
    field = CLINICAL_HALF_LIFE_FIELD
    if opts.pet_half_life_s is not None and abs(opts.pet_half_life_s - given) > 1e-6 * given:
        raise InputError(
            f"{clinical.source or 'clinical input'}: clinical field {field!r} {given:g} s contradicts "
            f"{HALF_LIFE_OPTION} {opts.pet_half_life_s:g} s; a half-life names one radionuclide: drop one of "
            "the two or make them agree"
        )
    return given, f"{field} of the {source_label(clinical)}"


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
    from ..clinical.inputs import as_clinical_inputs
    from ..io.label_spec import parse_label_spec
    from ..io.pet import read_study_pet, suv_from_image_values, suv_from_modality_volume
    from ..io.study import check_image_values, read_identifiers, read_study_image, read_study_segmentations
    from ..io.suv_inputs import SuvInputs
    from ..placement import reconcile_layers

    # the small text inputs first: a typo in the rules or clinical file fails before any pixel is read
    rules_obj = rules if isinstance(rules, Rules) else load_rules(rules)
    clinical_inputs = as_clinical_inputs(clinical if clinical is not None else inputs.clinical, body=rules_obj["body"])
    plausibility = rules_obj["pet_plausibility"] if "pet_plausibility" in rules_obj else None
    spec = parse_label_spec(inputs.labels, name_patterns=opts.name_patterns)
    img = read_study_image(
        inputs.image,
        dicom_index=inputs.dicom_index,
        series_uid=inputs.image_series,
        segs=inputs.segs,
        allow_resample=opts.allow_resample,
        max_voxels=opts.max_voxels,
    )
    identifiers = read_identifiers(img) if opts.include_identifiers else None
    # SUV weight: --weight, else the clinical file's weight_kg, else PatientWeight; none: SUV null with the reason
    weight_kg, weight_source = opts.weight_kg, "--weight"
    if weight_kg is None and clinical_inputs is not None and clinical_inputs.weight_kg is not None:
        weight_kg, weight_source = clinical_inputs.weight_kg, "the clinical file's weight_kg"
    half_life_s, half_life_source = _pet_half_life(opts, clinical_inputs)
    suv_inputs = None  # a study without PET neither reads nor checks them
    if img.meta.get("modality") == "PT" or inputs.pet is not None:
        suv_inputs = SuvInputs(
            weight_kg=weight_kg,
            weight_source=weight_source,
            require_weight=False,
            half_life_s=half_life_s,
            half_life_source=half_life_source,
            plausibility=plausibility,
        )
    if img.meta.get("modality") == "PT":
        img = suv_from_modality_volume(img, suv_inputs=suv_inputs)
    elif (opts.modality or inputs.modality or "").upper() == "PT" and img.meta.get("format") != "dicom":
        img = suv_from_image_values(img, plausibility=plausibility, required=False)  # AutoPET's SUV.nii.gz
    check_image_values(img)
    segs = read_study_segmentations(
        inputs.segs,
        img,
        spec,
        dicom_index=inputs.dicom_index,
        max_voxels=opts.max_voxels,
        fractional_threshold=opts.fractional_threshold,
    )
    rec = reconcile_layers(img, segs.layers)
    warnings = [*img.meta.get("warnings", []), *segs.warnings, *rec.warnings]
    if img.sheared and img.meta.get("gantry_tilt_deg") is None:  # a sheared NIfTI/NRRD (the DICOM reader says it)
        warnings.insert(
            0,
            f"{img.source}: the image grid is sheared ({img.shear_deg:.1f} degrees, as a gantry tilt): measured on "
            f"that grid (slices {img.slice_separation_mm:.4g} mm apart along their normal; voxel volume and "
            "distances in patient space, nothing resampled).",
        )
    suv = img if img.meta.get("units") == "SUVbw" or img.meta.get("suv") else None
    if inputs.pet is not None:
        suv = read_study_pet(
            inputs.pet, dicom_index=inputs.dicom_index, max_voxels=opts.max_voxels, suv_inputs=suv_inputs
        )
        warnings.extend(suv.meta.get("warnings", []))
    declared = (opts.modality or inputs.modality or img.meta.get("modality") or "OT").upper()
    modality = declared if declared in MODALITIES else "OT"  # opts.modality was checked by AnalyzeOptions
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
    elif ignored := _mr_only_options(opts):
        warnings.append(
            f"{img.source}: {', '.join(ignored)} apply to MR images only and this image is {modality}: ignored"
        )
    return LoadedStudy(
        inputs=inputs,
        image=img,
        modality=modality,
        layers=tuple(segs.layers),
        grid_layers=tuple(rec.layers),
        resampled=rec.resampled or bool(img.meta.get("resampled")),
        seg_sources=segs.sources,
        segment_roles=[d.to_report() for d in segs.role_decisions],
        suv=suv,
        mr=mr,
        clinical=clinical_inputs,
        rules=rules_obj,
        identifiers=identifiers,
        warnings=tuple(warnings),
        lesions_segmented=segs.lesions_declared,
        notes=(*segs.notes, *rec.notes),
    )
