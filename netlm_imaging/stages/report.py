"""The report stage: one immutable :class:`~netlm_imaging.report.model.StudyReport` from what the
load, measure and classify stages found, built in a single constructor call.

The MR block and the paths relative to the study folder are part of that call; nothing writes
into the report afterwards (callers that add to it make a new one with ``dataclasses.replace``).
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..report.lesion_columns import round_lesion
from ..report.model import StudyReport
from ..rounding import round_or_none, rounded
from .classify import Decisions
from .load import LoadedStudy
from .measure import Measurements

__all__ = ["build_report"]


def build_report(loaded: LoadedStudy, measured: Measurements, decided: Decisions) -> StudyReport:
    """The report of one study.

    Parameters
    ----------
    loaded : LoadedStudy
        Sources, grid, roles, warnings of the reading, the clinical inputs and the rules.
    measured : Measurements
        Every quantity.
    decided : Decisions
        Every decision.

    Returns
    -------
    StudyReport
    """
    from ..report.console import pet_lines
    from ..report.paths import relative_paths
    from .report_mr import mr_report

    img, ctx, sa, pet = loaded.image, measured.ctx, decided.surgical, measured.pet
    study: dict[str, Any] = {
        "study_instance_uid": img.meta.get("study_instance_uid"),
        "series_instance_uid": img.meta.get("series_instance_uid"),
        "modality": ctx.header["modality"],
        "image_source": str(loaded.inputs.image),
        "segmentation_sources": list(loaded.seg_sources),
        "grid": {**img.geometry_summary(), "resampled": bool(loaded.resampled)},
        "frame_of_reference_uid": img.frame_of_reference_uid,
    }
    if study["study_instance_uid"] is None:  # what tells this study's outputs from another's (report/ownership.py)
        from ..report.ownership import input_key

        study["input_key"] = input_key(loaded.inputs.image)
    if loaded.identifiers is not None:
        study["identifiers"] = loaded.identifiers
    if loaded.segment_roles:  # how every named segment / ROI got its role (additive field, docs/roles.md)
        study["segment_roles"] = loaded.segment_roles
    remnant = dict(decided.remnant)
    remnant.setdefault("non_tumorous_liver_volume_ml", round_or_none(measured.non_tumorous_liver_ml, 6))
    classification = rounded(decided.classification if decided.classification is not None else sa.classification)
    if pet is not None and pet.missing_inputs:
        missing = classification.setdefault("missing_inputs", [])
        missing.extend(m for m in pet.missing_inputs if m not in missing)
    notes = [*loaded.inputs.notes, *loaded.notes]  # the discovery's, then where label maps' names came from
    extra: dict[str, Any] = {"notes": notes} if notes else {}
    # additive top-level block: which vessels the lesions were measured against, or that none was given
    extra["vascular_contact"] = {**measured.vascular.block(), "plan_notes": list(decided.vascular_notes)}
    liver = dict(measured.liver)
    lesion_mr: dict[int, dict[str, Any]] = {}
    warnings = list(dict.fromkeys([*loaded.warnings, *measured.warnings, *sa.warnings, *decided.vascular_warnings]))
    console = [*sa.summary_lines, *(pet_lines(pet.block, ctx.lesions) if pet is not None else [])]
    if loaded.mr is not None and measured.mr is not None and decided.functional_remnant is not None:
        mr = mr_report(loaded.mr, measured.mr, decided.functional_remnant, loaded.rules, remnant)
        extra["mri"] = mr.block
        liver.update(mr.liver_fields)
        lesion_mr, remnant = mr.lesion_fields, mr.remnant
        console.extend(mr.console_lines)
        warnings.extend(w for w in mr.warnings if w not in warnings)
    fields = {
        "tool": {"name": "netlm-imaging", "version": __version__},
        "study": study,
        "liver": liver,
        "tumor": measured.tumor,
        "involvement_percent": round_or_none(ctx.involvement_percent, 4),
        "remnant": remnant,
        "lesions": [
            round_lesion({**les.to_dict(), **decided.lesion_fields.get(les.id, {})}) | lesion_mr.get(les.id, {})
            for les in ctx.lesions
        ],
        "segments": rounded(sa.segments) if sa.segments is not None else None,
        "pet": pet.block if pet is not None else None,
        "classification": classification,
        "warnings": warnings,
        "method": measured.method,
        "extra": extra,
        "console_lines": console,
    }
    return StudyReport(**relative_paths(fields, loaded.inputs.root))
