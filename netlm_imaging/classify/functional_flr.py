"""The functional future liver remnant of an MR study: the share of the hepatic uptake index (HUI)
that each standard resection and the debulking plan leave, and what the hepatocyte measures lacked.

The HUI per Couinaud segment comes from :func:`netlm_imaging.measure.mri.measure_mr_signal`; the
resections and the plan from :func:`netlm_imaging.classify.surgical.assess`. These are research
measures (docs/mri.md): no threshold is applied to them and no classification uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..measure.context import MeasurementContext
from ..rounding import round_or_none

__all__ = ["FunctionalRemnant", "functional_remnant"]


@dataclass(frozen=True)
class FunctionalRemnant:
    """The functional FLR rows of the report's ``mri`` block and the inputs that were missing.

    Attributes
    ----------
    resections : list of dict
        One row per standard resection (``mri.functional_flr``).
    plan : dict or None
        The debulking plan's row (``mri.functional_flr_plan``).
    missing_inputs : list of str
        Inputs the hepatocyte measures need and the study lacks.
    notes : list of str
    """

    resections: list[dict[str, Any]]
    plan: dict[str, Any] | None
    missing_inputs: list[str]
    notes: list[str]


def functional_remnant(
    ctx: MeasurementContext,
    signal: Any,
    remnant: Mapping[str, Any],
    *,
    hepatobiliary: bool,
    unassigned_note_percent: float,
) -> FunctionalRemnant:
    """Functional FLR of every standard resection and of the debulking plan, and what was missing.

    Parameters
    ----------
    ctx : MeasurementContext
        The masks measured (spleen, liver, Couinaud map).
    signal : MrSignal
        From :func:`~netlm_imaging.measure.mri.measure_mr_signal`.
    remnant : mapping
        The report's ``remnant`` block (standard resections and the plan, as rounded in the report).
    hepatobiliary : bool
        The image is a hepatobiliary phase (HUI measured).
    unassigned_note_percent : float
        ``rules["mri"]["hui_unassigned_note_percent"]``: a larger share of the HUI outside every
        Couinaud segment gets a note.
    """
    from ..measure.mri import functional_remnant_percent

    missing: list[str] = []
    withheld = getattr(signal, "ratios_withheld", None)
    if withheld:
        missing.append(
            "a T1-weighted gradient-echo signal image (not a subtraction, Dixon fat, phase, diffusion, T2 or map)"
        )
    elif not hepatobiliary:
        missing.append("hepatobiliary-phase MR series (gadoxetic acid, phase from the headers or --mr-phase)")
    if ctx.spleen is None or not ctx.spleen.any():
        missing.append("spleen mask (role 'spleen')")
    if ctx.liver is None:
        missing.append("liver mask")
    if ctx.segment_labels is None:
        missing.append("Couinaud segment map (per-segment HUI and functional FLR)")
    hui, by_segment = signal.hui_ml, signal.hui_by_segment_ml
    rows: list[dict[str, Any]] = []
    plan_row = None
    if hui is not None and by_segment:
        for res in remnant.get("standard_resections") or []:
            removed = res.get("removed_segments") or []
            pct, why = functional_remnant_percent(by_segment, hui, removed)
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
                by_segment,
                hui,
                plan.get("resected_segments") or [],
                nontumorous_ml_by_segment=signal.nontumorous_ml_by_segment,
                parenchyma_costs=costs,
            )
            plan_row = {
                "removed_segments": list(plan.get("resected_segments") or []),
                "functional_flr_percent": round_or_none(pct),
                "volumetric_flr_percent_of_non_tumorous": plan.get("flr_percent_of_non_tumorous"),
                "parenchyma_sparing_charge": "the union of the enucleation/wedge/ablation zones and of the zones "
                "of the resected lesions' boundary spills into kept segments (overlaps once), charged in each "
                "segment at that segment's HUI per mL",
                "reason": why,
            }
    notes: list[str] = []
    if hui is not None and signal.hui_unassigned_ml is not None and hui > 0:
        share = 100.0 * signal.hui_unassigned_ml / hui
        if abs(share) > unassigned_note_percent:
            notes.append(
                f"{share:.1f}% of the HUI lies in liver outside every Couinaud segment (kept in every remnant)"
            )
    return FunctionalRemnant(rows, plan_row, missing, notes)
