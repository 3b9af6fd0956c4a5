"""The Python API: ``analyze`` one study and get a typed :class:`StudyReport`.

Why one module (~880 lines): it is the staged pipeline (discover -> load -> measure ->
classify -> report) with the PET and MR glue of each stage; the stages' own work lives in
io/, measure/, classify/ and report/. Moving the PET and MR glue into stage modules is the
next split.

The CLI, the batch runner and the PACS hook all call :func:`analyze` /
:func:`analyze_with_context`; nothing else computes a report.

Examples
--------
>>> from netlm_imaging import analyze                                  # doctest: +SKIP
>>> report = analyze(image="ct.nii.gz", segs=["seg.nii.gz"])          # doctest: +SKIP
>>> report.involvement_percent                                         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ._version import __version__
from .errors import InputError, ResourceLimitError, UsageError
from .measure.burden import DEFAULT_MARGIN_MM, measure_burden
from .measure.context import MeasurementContext
from .measure.grid import reconcile_layers
from .report.lesion_columns import round_lesion
from .report.model import StudyReport
from .segmentation import MaskLayer
from .volume import Volume

__all__ = ["AnalyzeOptions", "StudyInputs", "analyze", "analyze_with_context", "resolve_inputs"]

logger = logging.getLogger(__name__)
_F = TypeVar("_F", bound=Callable[..., Any])

_MODALITIES = {"CT", "MR", "PT", "NM", "OT"}
#: Clinical sidecars picked up from a study folder when --clinical is not given.
CLINICAL_SIDECARS = ("clinical.json", "clinical.toml")


@dataclass(frozen=True)
class AnalyzeOptions:
    """Options of one analysis (the CLI flags of ``netlm analyze``).

    Parameters
    ----------
    max_voxels : int, optional
        Refuse declared image sizes above this before allocating.
    allow_resample : bool
        DICOM series with a missing slice or irregular steps are resampled
        onto a regular grid (a warning; ``study.grid.resampled``) instead of refused.
    include_identifiers : bool
        Put PatientName / PatientID / PatientBirthDate in the report.
    modality : str, optional
        Override the modality (NIfTI/NRRD carry none): CT, MR, PT, NM, OT.
    weight_kg : float, optional
        PET: overrides DICOM PatientWeight.
    delineation : str, optional
        PET lesion delineation, e.g. ``rel:0.45``, ``liver:1.5``, ``abs:3``.
    seg_choice, image_series : str, optional
        Which segmentation / image series when a study folder holds several.
    manifest : str or Path, optional
        A manifest file overriding study-folder discovery.
    fractional_threshold : float
        Binary view of FRACTIONAL SEG masks (``>=``).
    connectivity : {26, 6}
        Lesion instances from a single lesion mask.
    margin_mm : float
        Intrahepatic margin (the 2 mm rule).
    resections : sequence of sequence of int
        Extra user-defined resections (removed Couinaud segments) to evaluate.
    name_patterns : sequence of (str, str)
        Extra (regular expression, role) pairs for segment / ROI names, tried
        before the built-in patterns.
    mr_phase : str, optional
        MR: the contrast phase stated by the user (``hepatobiliary``, ``pre-contrast``, ...),
        overriding the phase classified from the headers.
    pre_contrast : str or Path, optional
        MR: a pre-contrast image of the same patient (relative enhancement); without it a
        pre-contrast series of the study folder is used when there is exactly one kind.
    n4 : bool
        MR: N4 bias-field correction before the signal ratios.
    """

    max_voxels: int | None = None
    allow_resample: bool = False
    include_identifiers: bool = False
    modality: str | None = None
    weight_kg: float | None = None
    delineation: str | None = None
    seg_choice: str | None = None
    image_series: str | None = None
    manifest: str | Path | None = None
    fractional_threshold: float = 0.5
    connectivity: int = 26
    margin_mm: float = DEFAULT_MARGIN_MM
    resections: tuple[tuple[int, ...], ...] = ()
    name_patterns: tuple[tuple[str, str], ...] = ()
    mr_phase: str | None = None
    pre_contrast: str | Path | None = None
    n4: bool = False

    def __post_init__(self) -> None:
        """Refuse impossible values with the message the CLI gives (naming the flag)."""
        for message in _option_errors(self):
            raise UsageError(message)


def _option_errors(o: AnalyzeOptions) -> list[str]:
    """What is wrong with ``o``, one message per problem (empty when the options are valid)."""
    import math

    errors: list[str] = []
    if o.max_voxels is not None and not (isinstance(o.max_voxels, int) and o.max_voxels > 0):
        errors.append(f"--max-voxels {o.max_voxels}: must be positive")
    if o.weight_kg is not None and not (math.isfinite(o.weight_kg) and 0 < o.weight_kg < 700):
        errors.append(f"--weight {o.weight_kg}: give the patient weight in kg (0-700)")
    if not (math.isfinite(o.fractional_threshold) and 0.0 < o.fractional_threshold <= 1.0):
        errors.append(f"--fractional-threshold {o.fractional_threshold}: must be in (0, 1]")
    if o.connectivity not in (6, 26):
        errors.append(
            f"--connectivity {o.connectivity}: lesion instances are 6- or 26-connected components; use 6 or 26"
        )
    if not (math.isfinite(o.margin_mm) and o.margin_mm >= 0):
        errors.append(f"margin_mm {o.margin_mm}: the intrahepatic margin is a distance, 0 mm or more")
    for segs in o.resections:
        if not segs or any(not isinstance(s, int) or not 1 <= s <= 8 for s in segs):
            errors.append(f"--resection {','.join(map(str, segs))}: segments must be 1..8")
    if o.modality is not None and o.modality.upper() not in _MODALITIES:
        errors.append(f"--modality {o.modality}: use one of {', '.join(sorted(_MODALITIES))}")
    if o.delineation is not None:
        from .measure.pet import parse_delineation

        parse_delineation(o.delineation)  # raises its own UsageError naming --delineation
    return errors


@dataclass
class StudyInputs:
    """What one analysis reads: the image, the segmentation arguments and an optional PET series."""

    image: str | Path
    segs: list[str] = field(default_factory=list)
    labels: str | None = None
    pet: str | Path | list[Path] | None = None
    image_series: str | None = None
    notes: list[str] = field(default_factory=list)
    dicom_index: list[Any] = field(default_factory=list, repr=False)
    clinical: str | Path | None = None
    modality: str | None = None


def resolve_inputs(
    study_dir: str | Path | None,
    *,
    image: str | Path | None,
    segs: Sequence[str | Path],
    labels: str | None,
    pet: str | Path | None,
    options: AnalyzeOptions,
) -> StudyInputs:
    """Turn a study folder or explicit paths into :class:`StudyInputs`.

    Raises
    ------
    UsageError
        When neither a study folder nor ``image`` + ``segs`` are given.
    """
    if study_dir is not None:
        if image is not None:
            raise UsageError("give either a study folder or --image/--seg, not both")
        folder = Path(study_dir)
        if not folder.exists():
            raise InputError(f"{folder}: study folder not found; check the path.")
        if not folder.is_dir():
            raise InputError(f"{folder}: is a file; pass the study folder, or use --image/--seg for single files.")
        from .io.discover import discover_study

        found = discover_study(
            folder, seg_choice=options.seg_choice, image_series=options.image_series, manifest=options.manifest
        )
        return StudyInputs(
            image=found.image_path,
            segs=[*(str(s) for s in found.segmentation_args), *(str(s) for s in segs)],
            labels=labels if labels is not None else found.labels,
            pet=pet if pet is not None else found.pet_path,
            image_series=found.image_series_uid or options.image_series,
            notes=list(found.notes),
            dicom_index=list(found.dicom_index) if found.image_series_uid else [],
            clinical=found.clinical_path
            or next((folder / n for n in CLINICAL_SIDECARS if (folder / n).is_file()), None),
            modality=found.image_modality if found.source == "manifest" else None,
        )
    if image is None:
        raise UsageError("give a study folder, or --image PATH with at least one --seg PATH")
    if not segs:
        raise UsageError("--image needs at least one --seg (label map, DICOM SEG, RTSTRUCT or ROLE=PATH)")
    return StudyInputs(
        image=image, segs=[str(s) for s in segs], labels=labels, pet=pet, image_series=options.image_series
    )


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


def _modality(img: Volume, options: AnalyzeOptions, declared: str | None = None) -> str:
    mod = (options.modality or declared or img.meta.get("modality") or "OT").upper()
    return mod if mod in _MODALITIES else "OT"  # options.modality was checked by AnalyzeOptions


def _classify(ctx: MeasurementContext, clinical: Any, rules: Any, opts: AnalyzeOptions) -> Any:
    """The classify stage: segments, remnant, debulking plan and classifications (classify.surgical.assess).

    The per-lesion decisions (Couinaud segment, RECIST measurability) go onto the lesions, so the
    report built next carries them.
    """
    from .classify.surgical import assess

    sa = assess(ctx, clinical, _rules(rules), resections=opts.resections)
    for lesion in ctx.lesions:
        seg = sa.lesion_segments.get(lesion.id)
        if seg is not None:
            lesion.couinaud_segment = int(seg)
        rec = sa.lesion_recist.get(lesion.id)
        if rec is not None:
            lesion.recist_measurable = rec["recist_measurable"]
            lesion.extra.update({k: v for k, v in rec.items() if k != "recist_measurable"})
    return sa


def _rounded(obj: Any, nd: int = 6) -> Any:
    """Floats rounded to ``nd`` decimals inside nested dicts/lists (no 100.00000000000001 in reports)."""
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: _rounded(v, nd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, nd) for v in obj]
    return obj


def _round(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def _check_roles_found(layers: Sequence[MaskLayer], seg_sources: Sequence[str]) -> None:
    """Blame the segmentation file(s), not the image, when no liver and no lesion mask came out of them."""
    if not seg_sources or any(la.role in ("liver", "lesion") for la in layers):
        return
    roles = sorted({la.role for la in layers})
    found = f"only {', '.join(roles)} masks" if roles else "no voxel with a liver or lesion label (an empty mask?)"
    raise InputError(
        f"{', '.join(seg_sources)}: the segmentation holds {found}; pass the right --seg file, "
        "or map its labels with --labels liver=N,lesion=M."
    )


def _report_root(study_dir: str | Path | None, image: str | Path | None, segs: Sequence[str | Path]) -> Path | None:
    """The folder report paths are relative to: the study folder, else the folder holding image and masks."""
    if study_dir is not None:
        return Path(study_dir)
    files = [Path(str(x).split("=", 1)[1]) if "=" in str(x) and not Path(str(x)).exists() else Path(x) for x in segs]
    if image is not None:
        files.append(Path(image))
    if not files:
        return None
    import os

    try:
        return Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    except ValueError:
        return None


def _relative_paths(report: StudyReport, root: Path | None) -> None:
    """Paths in the report relative to ``root`` (no folder above the study: names, MRNs, user folders).

    Rewrites ``study.image_source``, ``study.segmentation_sources``, the warnings and the notes.
    """
    if root is None:
        return
    import os
    import re

    spellings = {str(root), os.path.abspath(root), str(root.resolve())}
    with contextlib.suppress(ValueError):
        spellings.add(os.path.relpath(root))  # how a path given relative to the current folder was written
    forms = sorted((f for f in spellings if f not in (".", "") and not f.startswith("..")), key=len, reverse=True)

    def rel(text: str, bare: str) -> str:
        for f in forms:
            if text == f:
                return "."
            text = text.replace(f + os.sep, "")
            text = re.sub(re.escape(f) + r"(?=$|[\s:;,()\]])", bare, text)
        return text

    def walk(v: Any, bare: str) -> Any:
        if isinstance(v, str):
            return rel(v, bare)
        if isinstance(v, list):
            return [walk(x, bare) for x in v]
        if isinstance(v, dict):
            return {k: walk(x, bare) for k, x in v.items()}
        return v

    import dataclasses

    for key in ("image_source", "segmentation_sources"):
        if key in report.study:
            report.study[key] = walk(report.study[key], ".")
    for f in dataclasses.fields(report):  # every other path the report holds (segmentations[].source, notes, ...)
        value = getattr(report, f.name)
        if isinstance(value, (dict, list)):
            new = walk(value, "study folder")
            if isinstance(value, list):
                value[:] = new
            else:
                value.clear()
                value.update(new)


def _within_voxel_budget(fn: _F) -> _F:
    """Run ``fn`` with its ``options.max_voxels`` as the budget of every reader it calls (bounded inflation)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .volume import voxel_budget

        opts = kwargs.get("options")
        limit = getattr(opts, "max_voxels", None)
        try:
            with voxel_budget(limit):
                return fn(*args, **kwargs)
        except MemoryError:
            from .volume import effective_max_voxels

            what = kwargs.get("image") or (args[0] if args else None) or kwargs.get("study_dir") or "the study"
            raise ResourceLimitError(
                f"{what}: out of memory while reading or measuring it (the voxel budget, --max-voxels "
                f"{effective_max_voxels(limit):,}, lets its declared size through but it does not fit in memory); "
                "lower --max-voxels to refuse such files up front, or use a machine with more memory."
            ) from None

    return wrapper  # type: ignore[return-value]


@_within_voxel_budget
def analyze_with_context(
    study_dir: str | Path | None = None,
    *,
    image: str | Path | None = None,
    segs: Sequence[str | Path] = (),
    labels: str | None = None,
    clinical: str | Path | Any | None = None,
    rules: str | Path | Any | None = None,
    pet: str | Path | None = None,
    options: AnalyzeOptions | None = None,
) -> tuple[StudyReport, MeasurementContext]:
    """Analyse one study and return the report and the measurement context.

    Parameters
    ----------
    study_dir : str or Path, optional
        A study folder (DICOM export, or NIfTI/NRRD folder convention).
    image : str or Path, optional
        Image file or DICOM series folder (instead of ``study_dir``).
    segs : sequence of str or Path
        Segmentations: label maps, DICOM SEG, RTSTRUCT, or ``ROLE=PATH`` binary masks.
    labels : str, optional
        Role mapping, e.g. ``"liver=5,lesion=2"`` (default LiTS: 1 liver, 2 lesion).
    clinical : path or ClinicalInputs, optional
        Clinical sidecar (JSON/TOML) or an already loaded ``ClinicalInputs``.
    rules : path or Rules, optional
        A rules file overriding the default rules.
    pet : str or Path, optional
        A PET series (DICOM folder) in the same frame of reference as the image.
    options : AnalyzeOptions, optional
        Everything else.

    Returns
    -------
    (StudyReport, MeasurementContext)

    Raises
    ------
    NetlmError
        Any input problem, with a one-line message naming the file and the fix.
    """
    from .io.labels import RoleDecision, check_decisions, parse_label_spec, summarize_decisions
    from .io.loader import load_segmentation

    opts = options or AnalyzeOptions()  # AnalyzeOptions validated itself: bad values fail before any reading
    inputs = resolve_inputs(study_dir, image=image, segs=segs, labels=labels, pet=pet, options=opts)
    rules_obj = _rules(rules)
    spec = parse_label_spec(inputs.labels, name_patterns=opts.name_patterns)
    img = _load_main_image(inputs, opts, rules_obj)
    _check_image_values(img)
    warnings: list[str] = list(img.meta.get("warnings", []))
    layers: list[MaskLayer] = []
    seg_sources: list[str] = []
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
        seg_sources.append(str(s).split("=", 1)[1] if "=" in str(s) and not Path(str(s)).exists() else str(s))
    check_decisions(role_log, spec, found_roles={la.role for la in layers})
    warnings.extend(summarize_decisions(role_log, spec))
    for la in layers:
        warnings.extend(la.mask.meta.get("notes", []))
        warnings.extend(str(w) for w in la.mask.meta.get("warnings", []))
    _check_roles_found(layers, seg_sources)
    rec = reconcile_layers(img, layers)
    warnings.extend(rec.warnings)
    rec_layers = list(rec.layers)
    suv = _load_suv(img, inputs, opts, warnings, rules_obj)
    pet_derived = None
    if suv is not None and not any(la.role == "lesion" for la in rec_layers):
        pet_derived = _derive_pet_lesions(img, suv, rec_layers, rules_obj, inputs, warnings)
    burden = measure_burden(
        img,
        rec_layers,
        margin_mm=opts.margin_mm,
        connectivity=opts.connectivity,
        fractional_threshold=opts.fractional_threshold,
    )
    warnings.extend(burden.warnings)
    ctx = burden.ctx
    ctx.header.setdefault("modality", _modality(img, opts, inputs.modality))
    ctx.header["segmentation_refs"] = [
        {
            k: v
            for k, v in la.mask.meta.items()
            if k
            in ("sop_instance_uid", "series_instance_uid", "segment_number", "segment_label", "roi_number", "roi_name")
        }
        | {"role": la.role, "label": la.label, "source": la.source, "voxel_count": _seg_layer_voxels(la, img, opts)}
        for la in layers
    ]
    clin = _clinical_inputs(clinical if clinical is not None else inputs.clinical)
    pet_block: dict[str, Any] | None = None
    pet_missing: list[str] = []
    pet_lines: list[str] = []
    if suv is not None:
        ctx.pet_suv = suv
        organs = {"kidney": _role_union(img, rec_layers, "kidney")}
        pet_block, pet_missing, pet_lines = _measure_pet(ctx, suv, opts, rules_obj, pet_derived, warnings, clin, organs)
    # classify: every decision, from the measurements (ctx) and the clinical inputs
    sa = _classify(ctx, clin, rules_obj, opts)
    # report: built once from the measurements and the decisions
    report = _build_report(
        img,
        ctx,
        burden,
        inputs,
        seg_sources,
        rec.resampled or bool(img.meta.get("resampled")),
        warnings,
        opts,
        sa,
        pet=(pet_block, pet_missing, pet_lines),
        segment_roles=[d.to_report() for d in role_log],
    )
    if ctx.header.get("modality") == "MR":
        _apply_mr(report, img, ctx, inputs, rules_obj, opts)
    _relative_paths(report, _report_root(study_dir, image, segs))
    return report, ctx


def _apply_mr(
    report: StudyReport, img: Volume, ctx: MeasurementContext, inputs: StudyInputs, rules: Any, opts: AnalyzeOptions
) -> None:
    """Provenance, phase, a.u. intensities and hepatocyte function of an MR study (mr_study) into the report."""
    from .mr_study import assess_mr

    mr = assess_mr(
        img,
        ctx,
        report.remnant,
        rules,
        dicom_index=inputs.dicom_index,
        pre_contrast=opts.pre_contrast,
        user_phase=opts.mr_phase,
        n4=opts.n4,
        max_voxels=opts.max_voxels,
    )
    report.extra["mri"] = mr.block
    report.liver.update(mr.liver_fields)
    for item in report.lesions:
        item.update(mr.lesion_fields.get(int(item["id"]), {}))
    for les in ctx.lesions:
        les.extra.update(mr.lesion_fields.get(les.id, {}))
    functional = {row["name"]: row["functional_flr_percent"] for row in mr.block.get("functional_flr") or []}
    for res in report.remnant.get("standard_resections") or []:
        if res.get("name") in functional:
            res["functional_flr_percent"] = functional[res["name"]]
    plan = report.remnant.get("resection_plan")
    if isinstance(plan, dict) and mr.block.get("functional_flr_plan"):
        plan["functional_flr_percent"] = mr.block["functional_flr_plan"]["functional_flr_percent"]
    report.console_lines.extend(mr.console_lines)
    report.warnings.extend(w for w in mr.warnings if w not in report.warnings)


def _seg_layer_voxels(layer: MaskLayer, img: Volume, opts: AnalyzeOptions) -> int | None:
    """Voxel count of a SEG layer on the image grid (the SR references a segment only if it is the measured region)."""
    if not layer.mask.meta.get("sop_instance_uid") or layer.mask.shape != img.shape:
        return None
    return int(np.count_nonzero(layer.binary(opts.fractional_threshold)))


def _resolved(seg_arg: str) -> str:
    """The resolved file path of a ``--seg`` argument (``ROLE=PATH`` or ``PATH``), for lookups."""
    text = str(seg_arg)
    path = text.split("=", 1)[1] if "=" in text and not Path(text).exists() else text
    try:
        return str(Path(path).resolve())
    except OSError:
        return path


def _clinical_inputs(clinical: Any) -> Any:
    """ClinicalInputs from a path / object, or None (loaded once for PET and the classification)."""
    from .classify.clinical import ClinicalInputs, load_clinical

    if clinical is None or isinstance(clinical, ClinicalInputs):
        return clinical
    return load_clinical(clinical)


def _rules(rules: Any) -> Any:
    from .classify.rules import Rules, load_rules

    return rules if isinstance(rules, Rules) else load_rules(rules)


def _is_pet_series(index: Sequence[Any], series_uid: str | None) -> bool:
    """Whether the image series of a scanned DICOM folder is PET (chosen UID, else every image is PT)."""
    images = [f for f in index if getattr(f, "kind", "IMAGE") == "IMAGE"]
    if series_uid:
        base = series_uid.split("#", 1)[0]  # "UID#n": a reconstruction split off one series
        images = [f for f in images if getattr(f, "series_uid", None) == base]
    return bool(images) and all(getattr(f, "modality", "") == "PT" for f in images)


def _load_main_image(inputs: StudyInputs, opts: AnalyzeOptions, rules: Any = None) -> Volume:
    from .io.loader import load_image

    index = list(inputs.dicom_index)
    if not index and Path(inputs.image).is_dir():
        from .io._dicom_common import scan_dicom_folder

        index = scan_dicom_folder(Path(inputs.image))  # one scan: modality check and pixel read share it
    # PET series are handled by slice positions (non-uniform steps resampled, with a warning), never rejected.
    is_pet = bool(index) and _is_pet_series(index, inputs.image_series)
    nonuniform = "resample" if (opts.allow_resample or is_pet) else "error"
    if index:
        from .io.dicom_series import read_series_from_index, series_referenced_by

        series_uid = inputs.image_series or series_referenced_by(index, inputs.segs)
        img = read_series_from_index(
            index,
            series_uid=series_uid,
            nonuniform=nonuniform,
            max_voxels=opts.max_voxels,
            where=str(inputs.image),
        )
    else:
        img = load_image(
            inputs.image, max_voxels=opts.max_voxels, nonuniform=nonuniform, series_uid=inputs.image_series
        )
    if img.meta.get("modality") == "PT":
        from .io.pet import suv_from_modality_volume

        img = suv_from_modality_volume(img, weight_kg=opts.weight_kg, plausibility=_plausibility(rules))
        _check_suv_scale(img, rules)
    return img


def _plausibility(rules: Any) -> Any:
    return rules["pet_plausibility"] if rules is not None and "pet_plausibility" in rules else None


def _check_suv_scale(suv: Volume, rules: Any) -> None:
    """Exit 3 when the SUV image's maximum is above ``pet_plausibility.suv_max_limit`` (wrong weight/dose/units)."""
    from .io.pet_plausibility import check_suv_max, plausibility_limits

    arr = np.asarray(suv.array)
    finite = arr[np.isfinite(arr)]
    if finite.size:
        meta = suv.meta.get("suv")
        summary = meta if isinstance(meta, dict) else {}
        check_suv_max(float(finite.max()), summary, plausibility_limits(_plausibility(rules)), suv.source)


def _load_suv(
    img: Volume, inputs: StudyInputs, opts: AnalyzeOptions, warnings: list[str], rules: Any = None
) -> Volume | None:
    if inputs.pet is not None:
        from .io.pet import load_suv_volume, suv_from_modality_volume

        scanned = _scanned_pet(inputs)
        if scanned:  # the study folder's scan already indexed the PET files: no second scan
            from .io.dicom_series import read_series_from_index

            vol = read_series_from_index(
                scanned, nonuniform="resample", max_voxels=opts.max_voxels, where=str(scanned[0].path.parent)
            )
            suv = suv_from_modality_volume(vol, weight_kg=opts.weight_kg, plausibility=_plausibility(rules))
        else:
            suv = load_suv_volume(
                inputs.pet, weight_kg=opts.weight_kg, max_voxels=opts.max_voxels, plausibility=_plausibility(rules)
            )
        _check_suv_scale(suv, rules)
        warnings.extend(suv.meta.get("warnings", []))
        return suv
    if img.meta.get("units") == "SUVbw":
        return img
    return None


def _scanned_pet(inputs: StudyInputs) -> list[Any]:
    """The folder scan's entries of the PET files (empty unless every PET file was scanned)."""
    if not inputs.dicom_index or not isinstance(inputs.pet, list) or not inputs.pet:
        return []
    wanted = {Path(p) for p in inputs.pet}
    infos = [f for f in inputs.dicom_index if Path(f.path) in wanted]
    return infos if len({Path(f.path) for f in infos}) == len(wanted) else []


def _derive_pet_lesions(
    img: Volume, suv: Volume, layers: list[MaskLayer], rules: Any, inputs: StudyInputs, warnings: list[str]
) -> str | None:
    from .measure.pet import derive_pet_lesions

    liver_layers = [la for la in layers if la.role == "liver"]
    if not liver_layers:
        return None
    liver = np.zeros(img.shape, dtype=bool)
    for la in liver_layers:
        liver |= la.binary()
    mask = derive_pet_lesions(suv, liver, img, rules=rules)
    pet_rules = rules["pet"] if "pet" in rules else {}
    method = f"pet-derived:{pet_rules.get('derived_delineation', 'liver:1.5')}"
    layers.append(
        MaskLayer("lesion", img.with_array(mask), label="pet-derived", source=str(inputs.pet or inputs.image))
    )
    warnings.append(f"no lesion mask: lesions were delineated on PET inside the liver ({method})")
    return method


def _measure_pet(
    ctx: MeasurementContext,
    suv: Volume,
    opts: AnalyzeOptions,
    rules: Any,
    pet_derived: str | None,
    warnings: list[str],
    clinical: Any = None,
    organs: dict[str, np.ndarray | None] | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    from .measure.pet import measure_pet

    height_m, sex, body_sources = _pet_body(suv, clinical)
    res = measure_pet(
        ctx,
        suv,
        delineation=opts.delineation,
        rules=rules,
        height_m=height_m,
        sex=sex,
        body_sources=body_sources,
        extra_organs={k: v for k, v in (organs or {}).items() if v is not None},
    )
    for les in ctx.lesions:
        upd = dict(res.lesion_updates.get(les.id, {}))
        for key in ("suv_max", "suv_mean", "suv_peak", "krenning_score"):
            val = upd.pop(key, None)
            setattr(les, key, None if val is None else (round(float(val), 3) if key != "krenning_score" else int(val)))
        les.extra.update(_rounded(upd, 4))
    block = dict(res.block)
    for key, val in list(block.items()):
        if isinstance(val, float):
            block[key] = round(val, 4 if key.endswith("_ml") else 3)
        elif isinstance(val, dict):
            block[key] = _rounded(val, 4)
    if pet_derived:
        block["sretv_delineation"] = block.get("delineation")
        block["delineation"] = pet_derived
    warnings.extend(res.warnings)
    liver_ref = block.get("liver_reference") or {}
    upper_ref = block.get("upper_reference") or {}
    lines = [
        f"PET: SUVbw from {block.get('units')} ({block.get('decay_correction')}); liver SUVmean "
        f"{_fmt(block.get('liver_suv_mean'))} (SD {_fmt(block.get('liver_suv_sd'))}, "
        f"{liver_ref.get('method', 'n/a')}), "
        f"{upper_ref.get('organ', 'spleen')} SUVmean {_fmt(upper_ref.get('suv_mean'))} "
        f"({upper_ref.get('method', 'n/a')}), lesion SUVmax {_fmt(block.get('suv_max'))}",
        f"SRETV ({block.get('delineation')}, avid > {_fmt(block.get('sretv_avid_floor_suv'))}): hepatic "
        f"{_fmt(block.get('sretv_ml'), 1)} mL, TLSRE {_fmt(block.get('tlsre'), 1)} mL*SUV",
    ]
    low = set(block.get("krenning_low_confidence_lesion_ids") or [])
    scores = [
        f"{les.id}: {les.krenning_score if les.krenning_score is not None else 'n/a'}{'?' if les.id in low else ''}"
        for les in ctx.lesions
        if les.location == "intrahepatic"
    ]
    if scores:
        lines.append(
            f"Krenning (estimated from {block.get('krenning_lesion_statistic')}; ? = low confidence): "
            + ", ".join(scores[:12])
            + (" ..." if len(scores) > 12 else "")
        )
    return block, list(res.missing_inputs), lines


def _role_union(img: Volume, layers: list[MaskLayer], role: str) -> np.ndarray | None:
    """Union of the layers of one role on the image grid (None when there is none)."""
    chosen = [la for la in layers if la.role == role]
    if not chosen:
        return None
    out = np.zeros(img.shape, dtype=bool)
    for la in chosen:
        out |= la.binary()
    return out


def _pet_body(suv: Volume, clinical: Any) -> tuple[float | None, str | None, dict[str, str]]:
    """Height (m) and sex (M/F) for SUL: the clinical file first, then the PET header."""
    from .measure.sul import normalise_sex

    raw_header = suv.meta.get("header")
    header: dict[str, Any] = raw_header if isinstance(raw_header, dict) else {}
    sources: dict[str, str] = {}
    height_m: float | None = None
    sex: str | None = None
    clin_height = getattr(clinical, "height_cm", None)
    if clin_height:
        height_m, sources["height"] = float(clin_height) / 100.0, "clinical file"
    elif header.get("patient_size_m"):
        size = float(header["patient_size_m"])
        if 0.3 <= size <= 2.6:
            height_m, sources["height"] = size, "DICOM PatientSize (0010,1020)"
    clin_sex = normalise_sex(getattr(clinical, "sex", None))
    if clin_sex:
        sex, sources["sex"] = clin_sex, "clinical file"
    elif normalise_sex(header.get("patient_sex")):
        sex, sources["sex"] = normalise_sex(header.get("patient_sex")), "DICOM PatientSex (0010,0040)"
    return height_m, sex, sources


def _fmt(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None else f"{float(v):.{nd}f}"


def analyze(
    study_dir: str | Path | None = None,
    *,
    image: str | Path | None = None,
    segs: Sequence[str | Path] = (),
    labels: str | None = None,
    clinical: str | Path | Any | None = None,
    rules: str | Path | Any | None = None,
    pet: str | Path | None = None,
    options: AnalyzeOptions | None = None,
) -> StudyReport:
    """Analyse one study and return its :class:`StudyReport` (see :func:`analyze_with_context`)."""
    return analyze_with_context(
        study_dir, image=image, segs=segs, labels=labels, clinical=clinical, rules=rules, pet=pet, options=options
    )[0]


def _build_report(
    img: Volume,
    ctx: MeasurementContext,
    burden: Any,
    inputs: StudyInputs,
    seg_sources: list[str],
    resampled: bool,
    warnings: list[str],
    opts: AnalyzeOptions,
    sa: Any,
    *,
    pet: tuple[dict[str, Any] | None, list[str], list[str]] = (None, [], []),
    segment_roles: list[dict[str, Any]] | None = None,
) -> StudyReport:
    """The report stage: one StudyReport from the measurements (ctx, burden), the decisions (sa)
    and the PET block with the PET inputs the classification lacked and the PET console lines."""
    meta = img.meta
    study: dict[str, Any] = {
        "study_instance_uid": meta.get("study_instance_uid"),
        "series_instance_uid": meta.get("series_instance_uid"),
        "modality": ctx.header["modality"],
        "image_source": str(inputs.image),
        "segmentation_sources": seg_sources,
        "grid": {**img.geometry_summary(), "resampled": bool(resampled)},
        "frame_of_reference_uid": img.frame_of_reference_uid,
    }
    if opts.include_identifiers:
        study["identifiers"] = _identifiers(img)
    liver_ml = ctx.liver_volume_ml
    liver: dict[str, Any] = {"volume_ml": _round(liver_ml, 6)}
    if ctx.liver is not None:
        # whole-liver reductions on the liver's bounding box: nothing of the liver lies outside it
        box = ctx.liver_bbox if ctx.liver_bbox is not None else (slice(None),) * 3
        in_box = ctx.liver[box]
        liver["voxel_count"] = int(np.count_nonzero(in_box))
        if ctx.liver_bbox is not None:
            liver["touches_image_border"] = any(
                box[a].start == 0 or box[a].stop == ctx.liver.shape[a] for a in range(3)
            )
        else:
            bb_any = [np.any(ctx.liver, axis=tuple(a for a in range(3) if a != ax)) for ax in range(3)]
            liver["touches_image_border"] = bool(any(b[0] or b[-1] for b in bb_any))
        n_liver = liver["voxel_count"]
        if n_liver:
            # a masked reduction (any memory order); boolean indexing of F-ordered arrays is ~10x slower
            total = np.add.reduce(img.array[box], axis=None, where=in_box, dtype=np.float64)
            liver["mean_intensity"] = _round(float(total) / n_liver, 3)
        else:
            liver["mean_intensity"] = None
        for key in ("liver_volume_ml_binary", "liver_mask_included_lesions"):
            if key in burden.extra:
                liver[key.replace("liver_", "", 1) if key.startswith("liver_volume") else key] = (
                    _round(burden.extra[key], 6) if isinstance(burden.extra[key], float) else burden.extra[key]
                )
    intra = [les for les in ctx.lesions if les.location == "intrahepatic"]
    extra_les = [les for les in ctx.lesions if les.location == "extrahepatic"]
    tumor: dict[str, Any] = {
        "intrahepatic_volume_ml": _round(ctx.intrahepatic_tumor_ml, 6),
        "extrahepatic_volume_ml": _round(ctx.extrahepatic_tumor_ml, 6),
        "lesion_count": len(intra),
        "extrahepatic_lesion_count": len(extra_les),
    }
    if "intrahepatic_volume_ml_binary" in burden.extra:
        tumor["intrahepatic_volume_ml_binary"] = _round(burden.extra["intrahepatic_volume_ml_binary"], 6)
    involvement = ctx.involvement_percent
    non_tumorous = None
    if liver_ml is not None and liver_ml > 0:
        non_tumorous = max(0.0, liver_ml - ctx.intrahepatic_tumor_ml)
    remnant: dict[str, Any] = dict(sa.remnant or {})
    remnant.setdefault("non_tumorous_liver_volume_ml", _round(non_tumorous, 6))
    pet_block, pet_missing, pet_lines = pet
    if segment_roles:  # how every named segment / ROI got its role (additive field, docs/roles.md)
        study["segment_roles"] = segment_roles
    classification = _rounded(sa.classification)
    if pet_missing:
        missing = classification.setdefault("missing_inputs", [])
        missing.extend(m for m in pet_missing if m not in missing)
    # how the study folder was read (additive field)
    extra: dict[str, Any] = {"notes": list(inputs.notes)} if inputs.notes else {}
    return StudyReport(
        tool={"name": "netlm-imaging", "version": __version__},
        study=study,
        liver=liver,
        tumor=tumor,
        involvement_percent=_round(involvement, 4),
        remnant=_rounded(remnant),
        lesions=[round_lesion(les.to_dict()) for les in ctx.lesions],
        segments=_rounded(sa.segments) if sa.segments is not None else None,
        pet=pet_block,
        classification=classification,
        warnings=list(dict.fromkeys([*warnings, *sa.warnings])),
        method=burden.method,
        extra=extra,
        console_lines=[*sa.summary_lines, *pet_lines],
    )
