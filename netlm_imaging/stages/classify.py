"""The classify stage: every decision of one study, from its measurements.

Couinaud segments, remnant and FLR adequacy, the debulking plan, the classifications and
RECIST (:func:`netlm_imaging.classify.surgical.assess`), and for an MR study the functional
FLR of each resection (from the hepatic uptake index) with the inputs it lacked. The decisions
stay here: the measurements (``Measurements.ctx``) are not changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .measure import Measurements
from .options import AnalyzeOptions
from .rounding import round_or_none, rounded

__all__ = ["Decisions", "MrDecisions", "classify_study"]


@dataclass(frozen=True)
class MrDecisions:
    """The functional FLR of an MR study and the inputs the hepatocyte measures lacked."""

    functional_flr: list[dict[str, Any]]
    functional_flr_plan: dict[str, Any] | None
    missing_inputs: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Decisions:
    """What the classify stage decided.

    Attributes
    ----------
    surgical : SurgicalAssessment
        Remnant, segments, classification, per-lesion segment and RECIST fields, summary lines.
    mr : MrDecisions or None
    """

    surgical: Any  # classify.surgical.SurgicalAssessment
    mr: MrDecisions | None


def classify_study(measured: Measurements, loaded_clinical: Any, rules: Any, opts: AnalyzeOptions) -> Decisions:
    """Decide everything that follows from the measurements and the clinical inputs."""
    from ..classify.surgical import assess

    sa = assess(measured.ctx, loaded_clinical, rules, resections=opts.resections)
    # the functional FLR reads the remnant as the report states it (rounded)
    mr = _mr_decisions(measured, rounded(sa.remnant or {})) if measured.mr is not None else None
    return Decisions(surgical=sa, mr=mr)


def _mr_decisions(measured: Measurements, remnant: Mapping[str, Any]) -> MrDecisions:
    """Functional FLR of every standard resection and of the debulking plan, and what was missing."""
    assert measured.mr is not None
    ctx, sig = measured.ctx, measured.mr.signal
    missing: list[str] = []
    if not measured.mr.functional:
        missing.append("hepatobiliary-phase MR series (gadoxetic acid, phase from the headers or --mr-phase)")
    if ctx.spleen is None or not ctx.spleen.any():
        missing.append("spleen mask (role 'spleen')")
    if ctx.liver is None:
        missing.append("liver mask")
    if ctx.segment_labels is None:
        missing.append("Couinaud segment map (per-segment HUI and functional FLR)")
    rows, plan_row = _functional_flr(sig, remnant)
    notes: list[str] = []
    if sig.hui_ml is not None and sig.hui_unassigned_ml is not None and sig.hui_ml > 0:
        share = 100.0 * sig.hui_unassigned_ml / sig.hui_ml
        if abs(share) > 1.0:
            notes.append(
                f"{share:.1f}% of the HUI lies in liver outside every Couinaud segment (kept in every remnant)"
            )
    return MrDecisions(rows, plan_row, missing, notes)


def _functional_flr(sig: Any, remnant: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Functional FLR of every standard resection and of the debulking plan."""
    from ..measure.mri import functional_remnant_percent

    if sig.hui_ml is None or not sig.hui_by_segment_ml:
        return [], None
    rows = []
    for res in remnant.get("standard_resections") or []:
        removed = res.get("removed_segments") or []
        pct, why = functional_remnant_percent(sig.hui_by_segment_ml, sig.hui_ml, removed)
        rows.append(
            {
                "name": res.get("name"),
                "label": res.get("label"),
                "removed_segments": list(removed),
                "functional_flr_percent": round_or_none(pct),
                "volumetric_flr_percent_of_non_tumorous": res.get("flr_percent_of_non_tumorous"),
                "standardized_flr_percent": res.get("standardized_flr_percent"),
                "reason": why,
            }
        )
    plan = remnant.get("resection_plan")
    plan_row = None
    if isinstance(plan, Mapping) and plan.get("feasible") is not None:
        union = plan.get("zone_union_ml_by_segment")
        if isinstance(union, Mapping):  # the union of the chosen zones, each voxel charged once where it lies
            costs: list[tuple[int | None, float]] = [(int(k), float(v or 0.0)) for k, v in union.items()]
        else:
            costs = [
                (t.get("couinaud_segment"), float(t.get("parenchyma_cost_ml") or 0.0))
                for t in plan.get("lesion_treatments") or []
            ]
        pct, why = functional_remnant_percent(
            sig.hui_by_segment_ml,
            sig.hui_ml,
            plan.get("resected_segments") or [],
            nontumorous_ml_by_segment=sig.nontumorous_ml_by_segment,
            parenchyma_costs=costs,
        )
        plan_row = {
            "removed_segments": list(plan.get("resected_segments") or []),
            "functional_flr_percent": round_or_none(pct),
            "volumetric_flr_percent_of_non_tumorous": plan.get("flr_percent_of_non_tumorous"),
            "parenchyma_sparing_charge": "the union of the enucleation/wedge/ablation zones (overlaps once), "
            "charged in each segment at that segment's HUI per mL",
            "reason": why,
        }
    return rows, plan_row
