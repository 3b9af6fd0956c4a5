"""The report's ``remnant.resection_plan`` block: one debulking plan as the report states it.

:func:`plan_block` turns a :class:`~netlm_imaging.classify.planner.DebulkingPlan` into the
block, with the rules it was planned under (margins, ablation limits) and the FLR it leaves on
each denominator (clinical_rules.md sections 6-7).
"""

from __future__ import annotations

from typing import Any

from ..measure.segments import SegmentTable
from .involvement import spill_entries
from .planner import DebulkingPlan
from .rules import Rules, meets

__all__ = ["PARENCHYMA_COST_MODEL", "plan_block"]

PARENCHYMA_COST_MODEL = (
    "measured on the masks: enucleation/wedge zone = lesion dilated by margin_mm within the liver mask, ablation "
    "zone = lesion dilated by ablation_margin_mm within the liver mask; cost = non-tumorous liver of the zone in the "
    "kept segments; a resected lesion's part over a boundary into a kept segment (ignored_segment_overlaps) takes "
    "its zone, that part dilated by margin_mm within the liver mask, from the kept segments; remnant_ml counts "
    "overlapping zones once"
)


def plan_block(
    plan: DebulkingPlan,
    table: SegmentTable | None,
    *,
    non_tumorous_ml: float,
    telv: float | None,
    threshold: float,
    basis: str,
    rules: Rules,
) -> dict[str, Any]:
    """The ``resection_plan`` block of ``plan``.

    Parameters
    ----------
    plan : DebulkingPlan
    table : SegmentTable or None
        The Couinaud segment table (each treated lesion's segment; None without a segment map).
    non_tumorous_ml : float
        The non-tumorous liver volume (the FLR percentage's denominator on that basis).
    telv : float or None
        The total estimated liver volume (None without height and weight).
    threshold : float
        The FLR threshold percentage the plan was made to keep.
    basis : str
        The denominator that threshold is on.
    rules : Rules

    Returns
    -------
    dict
    """
    deb = rules["debulking"]
    primary = plan.debulking_percent_volume if deb["primary_measure"] == "volume" else plan.debulking_percent_count
    seg_of = table.lesion_segment if table is not None else {}
    treatments = [
        {
            "lesion_id": lid,
            "treatment": kind,
            "parenchyma_cost_ml": cost,
            "couinaud_segment": seg_of.get(lid),
            "untreated_reason": plan.untreated_reasons.get(lid) if kind is None else None,
        }
        for lid, (kind, cost) in sorted(plan.treatments.items())
    ]
    return {
        "segment_map_used": table is not None,
        "feasible": plan.feasible,
        "resected_segments": plan.resected_segments,
        "resection_name": plan.resection_name,
        "remnant_anatomy_check": plan.remnant_check,
        "lesion_treatments": treatments,
        # lesion parts over a segment boundary below planner.segment_involvement_min_ml / _min_fraction
        "ignored_segment_overlaps": spill_entries(plan.segment_spills, plan.resected_segments, plan.spill_taken_ml),
        "segment_involvement_min_ml": float(rules["planner"]["segment_involvement_min_ml"]),
        "segment_involvement_min_fraction": float(rules["planner"]["segment_involvement_min_fraction"]),
        "treated_tumor_ml": plan.treated_ml,
        "total_tumor_ml": plan.total_tumor_ml,
        "treated_lesion_count": plan.treated_count,
        "lesion_count": plan.total_count,
        "debulking_percent_volume": plan.debulking_percent_volume,
        "debulking_percent_count": plan.debulking_percent_count,
        "debulking_threshold_percent": float(deb["threshold_percent"]),
        "meets_debulking_threshold": None
        if primary is None
        else meets(primary, deb["threshold_percent"], deb["comparator"]),
        "remnant_ml": plan.remnant_ml,
        # segment -> non-tumorous mL of the union of the chosen sparing zones and of the zones of the resected
        # lesions' spills into kept segments (what remnant_ml subtracts)
        "zone_union_ml_by_segment": {str(k): v for k, v in sorted(plan.zone_union_ml_by_label.items())},
        "flr_percent_of_non_tumorous": 100.0 * plan.remnant_ml / non_tumorous_ml if non_tumorous_ml > 0 else None,
        "standardized_flr_percent": 100.0 * plan.remnant_ml / telv if telv else None,
        "flr_threshold_percent": threshold,
        "adequacy_basis": basis,
        "parenchyma_cost_model": PARENCHYMA_COST_MODEL,
        "margin_mm": float(rules["planner"]["margin_mm"]),
        "ablation_max_diameter_mm": float(rules["planner"]["ablation_max_diameter_mm"]),
        "ablation_margin_mm": float(rules["planner"]["ablation_margin_mm"]),
        "enucleation_max_diameter_mm": float(rules["planner"]["enucleation_max_diameter_mm"]),
        "max_ablations_per_operation": int(rules["planner"]["max_ablations_per_operation"]),
        "diameter_method": "maximum 3D diameter, edge to edge",
        "optimiser": plan.optimiser,
        "notes": list(plan.notes),
    }
