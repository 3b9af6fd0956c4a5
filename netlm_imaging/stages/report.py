"""The report stage: one immutable :class:`~netlm_imaging.report.model.StudyReport` from what the
load, measure and classify stages found, built in a single constructor call.

The MR block and the paths relative to the study folder are part of that call; nothing writes
into the report afterwards (callers that add to it make a new one with ``dataclasses.replace``).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from .._version import __version__
from ..report.lesion_columns import round_lesion
from ..report.model import StudyReport
from .classify import Decisions
from .load import LoadedStudy
from .measure import Measurements
from .report_mr import MrReport
from .rounding import round_or_none, rounded

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
    from .report_mr import mr_report

    img, ctx, sa = loaded.image, measured.ctx, decided.surgical
    mr: MrReport | None = None
    if loaded.mr is not None and measured.mr is not None and decided.mr is not None:
        mr = mr_report(loaded.mr, measured.mr, decided.mr, loaded.rules)
    study: dict[str, Any] = {
        "study_instance_uid": img.meta.get("study_instance_uid"),
        "series_instance_uid": img.meta.get("series_instance_uid"),
        "modality": ctx.header["modality"],
        "image_source": str(loaded.inputs.image),
        "segmentation_sources": list(loaded.seg_sources),
        "grid": {**img.geometry_summary(), "resampled": bool(loaded.resampled)},
        "frame_of_reference_uid": img.frame_of_reference_uid,
    }
    if loaded.identifiers is not None:
        study["identifiers"] = loaded.identifiers
    if loaded.segment_roles:  # how every named segment / ROI got its role (additive field, docs/roles.md)
        study["segment_roles"] = loaded.segment_roles
    remnant: dict[str, Any] = dict(sa.remnant or {})
    remnant.setdefault("non_tumorous_liver_volume_ml", round_or_none(measured.non_tumorous_liver_ml, 6))
    classification = rounded(sa.classification)
    pet = measured.pet
    if pet is not None and pet.missing_inputs:
        missing = classification.setdefault("missing_inputs", [])
        missing.extend(m for m in pet.missing_inputs if m not in missing)
    extra: dict[str, Any] = {"notes": list(loaded.inputs.notes)} if loaded.inputs.notes else {}
    warnings = list(dict.fromkeys([*loaded.warnings, *measured.warnings, *sa.warnings]))
    console = [*sa.summary_lines, *(_pet_lines(pet.block, ctx.lesions) if pet is not None else [])]
    liver = dict(measured.liver)
    remnant = rounded(remnant)
    if mr is not None:
        extra["mri"] = mr.block
        liver.update(mr.liver_fields)
        remnant = _with_functional_flr(remnant, mr.block)
        console.extend(mr.console_lines)
        warnings.extend(w for w in mr.warnings if w not in warnings)
    fields = _relative_paths(
        {
            "tool": {"name": "netlm-imaging", "version": __version__},
            "study": study,
            "liver": liver,
            "tumor": measured.tumor,
            "involvement_percent": round_or_none(ctx.involvement_percent, 4),
            "remnant": remnant,
            "lesions": [_lesion_item(les, sa, mr) for les in ctx.lesions],
            "segments": rounded(sa.segments) if sa.segments is not None else None,
            "pet": pet.block if pet is not None else None,
            "classification": classification,
            "warnings": warnings,
            "method": measured.method,
            "extra": extra,
            "console_lines": console,
        },
        loaded.inputs.root,
    )
    return StudyReport(**fields)


def _lesion_item(les: Any, sa: Any, mr: MrReport | None) -> dict[str, Any]:
    """One ``lesions[]`` item: the lesion's measurements with its segment, RECIST and MR fields."""
    item = les.to_dict()
    seg = sa.lesion_segments.get(les.id)
    if seg is not None:
        item["couinaud_segment"] = int(seg)
    rec = sa.lesion_recist.get(les.id)
    if rec is not None:
        item.update(rec)
    item = round_lesion(item)
    if mr is not None:
        item.update(mr.lesion_fields.get(les.id, {}))
    return item


def _with_functional_flr(remnant: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """The remnant block with the MR functional FLR of each standard resection and of the plan."""
    functional = {row["name"]: row["functional_flr_percent"] for row in block.get("functional_flr") or []}
    out = dict(remnant)
    if remnant.get("standard_resections"):
        out["standard_resections"] = [
            {**res, "functional_flr_percent": functional[res["name"]]} if res.get("name") in functional else res
            for res in remnant["standard_resections"]
        ]
    plan = remnant.get("resection_plan")
    plan_row = block.get("functional_flr_plan")
    if isinstance(plan, dict) and plan_row:
        out["resection_plan"] = {**plan, "functional_flr_percent": plan_row["functional_flr_percent"]}
    return out


def _pet_lines(block: dict[str, Any], lesions: list[Any]) -> list[str]:
    """The console lines of the PET block: references, SRETV and the Krenning estimates."""
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
        for les in lesions
        if les.location == "intrahepatic"
    ]
    if scores:
        lines.append(
            f"Krenning (estimated from {block.get('krenning_lesion_statistic')}; ? = low confidence): "
            + ", ".join(scores[:12])
            + (" ..." if len(scores) > 12 else "")
        )
    return lines


def _fmt(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None else f"{float(v):.{nd}f}"


def _relative_paths(fields: dict[str, Any], root: Path | None) -> dict[str, Any]:
    """The report's fields with every path written relative to ``root``.

    No folder above the study (names, MRNs, user folders) reaches the report: ``study.image_source``
    and ``study.segmentation_sources`` become relative paths (``.`` for the root itself), and
    the root inside any other text (warnings, notes, sources) becomes "study folder".
    """
    if root is None:
        return fields
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

    study = dict(fields["study"])
    for key in ("image_source", "segmentation_sources"):
        if key in study:
            study[key] = walk(study[key], ".")
    fields = {**fields, "study": study}
    return {k: walk(v, "study folder") if isinstance(v, (dict, list)) else v for k, v in fields.items()}
