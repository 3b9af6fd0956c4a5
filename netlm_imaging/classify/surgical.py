"""Surgical assessment: segments, remnant, debulking plan and classifications for one study.

:func:`assess` is the entry point the analysis calls after the measurement
stage; it fills the report's ``remnant``, ``segments`` and ``classification``
blocks, each lesion's Couinaud segment, warnings and the console summary lines.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..measure.context import MeasurementContext
from ..measure.lesions import EDGE_DIAMETER_METHOD
from ..measure.segments import SegmentTable, segments_block
from .anatomy import remnant_check
from .body_size import flr_basis, standardized
from .classifications import (
    burden_category,
    cloyd_resectability,
    frilling_type,
    mahuron_type,
    primary_tumour_advice,
    recist_targets,
    who_grade,
)
from .clinical import ClinicalInputs, clinical_inputs_used
from .distribution import lesion_distribution
from .planner import DebulkingPlan, plan_debulking
from .rules import Rules, meets
from .sparing import planner_zones
from .staging import staged_strategies

__all__ = ["SurgicalAssessment", "assess", "flr_adequacy"]

logger = logging.getLogger(__name__)

PARENCHYMA_COST_MODEL = (
    "measured on the masks: enucleation/wedge zone = lesion dilated by margin_mm within the liver mask, ablation "
    "zone = lesion dilated by ablation_margin_mm within the liver mask; cost = non-tumorous liver of the zone in the "
    "kept segments; remnant_ml counts overlapping zones once"
)


@dataclass
class SurgicalAssessment:
    """Report blocks produced by :func:`assess`.

    Attributes
    ----------
    remnant : dict or None
        The report's ``remnant`` block (None without a liver mask).
    segments : list of dict or None
        The report's ``segments`` block (None without a segment map).
    classification : dict
        The report's ``classification`` block.
    lesion_segments : dict
        Lesion id -> Couinaud segment, for ``lesions[].couinaud_segment``.
    lesion_recist : dict
        Lesion id -> RECIST 1.1 fields for ``lesions[]`` (``recist_measurable``
        decided from the rules, ``recist_category``, ``recist_organ``).
    warnings : list of str
    summary_lines : list of str
        Short lines for the console summary.
    """

    remnant: dict[str, Any] | None
    segments: list[dict[str, Any]] | None
    classification: dict[str, Any]
    lesion_segments: dict[int, int] = field(default_factory=dict)
    lesion_recist: dict[int, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)


def flr_adequacy(
    measured: Mapping[str, Any], *, threshold_percent: float | None, denominator: str = "telv", comparator: str = ">="
) -> dict[str, Any]:
    """Whether a measured FLR is adequate (clinical_rules.md section 6).

    Compares the FLR percentage on the deciding denominator (the rules'
    ``flr.denominator``: ``"telv"`` uses the standardized FLR, ``"non_tumorous"``
    the measured FLR%) with the threshold for the liver condition.

    Parameters
    ----------
    measured : mapping
        A measured remnant with its standardized FLR (:func:`netlm_imaging.classify.body_size.standardized`).
    threshold_percent : float or None
        Threshold for the liver condition; None: adequacy not judged.
    denominator : {"telv", "non_tumorous"}
    comparator : {">=", ">"}

    Returns
    -------
    dict
        ``threshold_percent``, ``adequacy_basis``, ``adequate`` (None when the
        deciding percentage or the threshold is missing) and ``missing_inputs``.

    Examples
    --------
    >>> flr_adequacy({"standardized_flr_percent": 20.0, "telv_ml": 1500.0}, threshold_percent=20.0)["adequate"]
    True
    >>> flr_adequacy({"standardized_flr_percent": None, "telv_ml": None}, threshold_percent=20.0)["missing_inputs"]
    ['height/weight']
    """
    telv = measured.get("telv_ml")
    key = "standardized_flr_percent" if denominator == "telv" else "flr_percent_of_non_tumorous"
    deciding = measured.get(key)
    adequate = None
    if threshold_percent is not None and deciding is not None:
        adequate = meets(deciding, threshold_percent, comparator)
    missing: list[str] = [] if telv else ["height/weight"]
    return {
        "threshold_percent": threshold_percent,
        "adequacy_basis": denominator,
        "adequate": adequate,
        "missing_inputs": missing if denominator == "telv" else [],
    }


def _add(missing: list[str], items: Sequence[str]) -> None:
    for m in items:
        if m not in missing:
            missing.append(m)


def _plan_dict(
    plan: DebulkingPlan,
    table: SegmentTable | None,
    *,
    non_tumorous_ml: float,
    telv: float | None,
    threshold: float,
    basis: str,
    rules: Rules,
) -> dict[str, Any]:
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
        # segment -> non-tumorous mL of the union of the chosen sparing zones (what remnant_ml subtracts)
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


def _describe_plan(plan: DebulkingPlan) -> str:
    kinds = [k for k, _ in plan.treatments.values()]
    parts = []
    if plan.resected_segments:
        parts.append(f"{plan.resection_name} (segment(s) {','.join(map(str, plan.resected_segments))})")
    for kind, verb in (("enucleation", "enucleate/wedge"), ("ablation", "ablate")):
        n = kinds.count(kind)
        if n:
            parts.append(f"{verb} {n} lesion(s)")
    untreated = kinds.count(None)
    if untreated:
        parts.append(f"{untreated} lesion(s) untreated")
    return "; ".join(parts) if parts else "no treatment"


def assess(
    ctx: MeasurementContext,
    clinical: ClinicalInputs | None,
    rules: Rules,
    *,
    table: SegmentTable | None,
    non_tumorous_ml: float | None,
    remnants: Sequence[Mapping[str, Any]] = (),
    resections: Sequence[Sequence[int]] = (),
) -> SurgicalAssessment:
    """Segments, remnant, debulking plan and classifications for one study.

    Parameters
    ----------
    ctx : MeasurementContext
        Measured masks and lesions on the image grid.
    clinical : ClinicalInputs or None
        Clinical inputs; missing values become ``missing_inputs``.
    rules : Rules
        From :func:`~netlm_imaging.classify.rules.load_rules`.
    table : SegmentTable or None
        The measure stage's Couinaud segment table (None without a segment map).
    non_tumorous_ml : float or None
        The measure stage's non-tumorous liver volume
        (:func:`~netlm_imaging.measure.summary.non_tumorous_liver_ml`; None without a liver volume).
    remnants : sequence of mapping
        The measure stage's FLR of every standard and user resection
        (:func:`~netlm_imaging.measure.remnant.standard_resections`).
    resections : sequence of sequence of int
        The user-given segment sets (a warning when there is no segment map to evaluate them on).

    Returns
    -------
    SurgicalAssessment
    """
    warnings: list[str] = []
    missing: list[str] = []
    rationale: list[str] = []
    intra = ctx.intrahepatic_lesions
    n_lesions = len(intra)

    if table is not None:
        warnings += table.warnings
    elif ctx.segment_labels is None:
        rationale.append(
            "no Couinaud segment map given: per-segment volumes, standard resections and distribution are not available"
        )

    # involvement and burden
    involvement = ctx.involvement_percent
    unsegmented = not ctx.lesions_segmented
    unknown_because = "lesion segmentation" if unsegmented and ctx.liver_volume_ml else "liver mask"
    burden = burden_category(involvement, rules["burden"], unknown_because=unknown_because)
    rationale += burden["rationale"]
    _add(missing, burden["missing_inputs"])

    # body size, TELV, the FLR threshold and its denominator
    non_tumorous = non_tumorous_ml  # total liver minus intrahepatic tumour, >= 0
    fb = flr_basis(clinical, ctx.header, rules, non_tumorous)
    rationale += fb.rationale
    _add(missing, fb.missing_inputs)
    height, weight, bsa, telv = fb.height_cm, fb.weight_kg, fb.bsa_m2, fb.telv_ml
    condition, threshold, basis, denom = fb.liver_condition, fb.threshold_percent, fb.basis, fb.denominator_ml
    body, flr_rules = rules["body"], rules["flr"]

    # standard resections
    std: list[dict[str, Any]] = []
    if table is not None:
        measured = [standardized(r, telv) for r in remnants]
        std = [
            {
                **r,
                **flr_adequacy(
                    r,
                    threshold_percent=threshold,
                    denominator=flr_rules["denominator"],
                    comparator=flr_rules["comparator"],
                ),
            }
            for r in measured
        ]
        present = [k for k in range(1, 9) if table.liver_voxels[k] > 0]
        for r in std:
            ok, why = remnant_check(set(present) - set(r["removed_segments"]), rules["anatomy"], present)
            r["anatomically_feasible"] = ok
            r["anatomy_check"] = why
    elif resections:
        warnings.append("resections were requested but there is no Couinaud segment map; they were not evaluated")

    # plan
    plan: DebulkingPlan | None = None
    staged: dict[str, Any] | None = None
    plan_missing: list[str] = []
    if n_lesions == 0:
        rationale.append(
            "no lesion segmentation: no debulking plan" if unsegmented else "no intrahepatic lesions: no debulking plan"
        )
    elif non_tumorous is None:
        plan_missing = ["liver mask"]
    elif denom is None or denom <= 0:
        plan_missing = ["height/weight"]
    else:
        pl = rules["planner"]
        zones = planner_zones(ctx, intra, pl)
        kw: dict[str, Any] = {
            "non_tumorous_total_ml": non_tumorous,
            "comparator": flr_rules["comparator"],
            "zones": zones,
        }
        plan = plan_debulking(ctx, table, rules, required_flr_ml=threshold / 100.0 * denom, **kw)
        clearing = plan if plan.clears_all else plan_debulking(ctx, table, rules, required_flr_ml=-math.inf, **kw)
        staged = staged_strategies(
            one_stage=plan,
            clearing=clearing,
            denominator_ml=denom,
            basis=basis,
            threshold_percent=threshold,
            comparator=flr_rules["comparator"],
            staging=rules["staging"],
        )
        if staged["needed"]:
            rationale.append("staged strategies: " + staged["reason"])
    _add(missing, plan_missing)

    deb = rules["debulking"]
    achievable = None
    lower_bound: float | None = None
    achievable_missing = list(plan_missing)
    if plan is not None:
        achievable = (
            plan.debulking_percent_volume if deb["primary_measure"] == "volume" else plan.debulking_percent_count
        )
        if table is None and not plan.clears_all and rules["planner"]["allow_segment_resection"]:
            # without the map no segment resection can be planned: the figure is only a lower bound
            lower_bound, achievable = achievable, None
            achievable_missing = ["segment map"]
            rationale.append(
                f"achievable debulking not determined without a segment map: at least {lower_bound:.1f}% by "
                "lesion-level treatments; segment resections could add more"
            )
        if not plan.feasible:
            rationale.append(
                f"no plan keeps an adequate FLR: the untreated liver's FLR is below {threshold:g}% on {basis}"
            )
        rationale.append(
            f"debulking plan ({_describe_plan(plan)}): {plan.treated_ml:.2f} of {plan.total_tumor_ml:.2f} mL "
            f"treated = {plan.debulking_percent_volume or 0.0:.1f}% by volume, {plan.treated_count}/"
            f"{plan.total_count} = {plan.debulking_percent_count or 0.0:.1f}% by count; "
            f"remnant {plan.remnant_ml:.1f} mL (threshold {threshold:g}% of {basis})"
        )
        rationale += plan.notes

    # distribution
    dist = lesion_distribution(table, rules["anatomy"], n_lesions)
    rationale += dist["rationale"]
    _add(missing, dist["missing_inputs"])

    grade = who_grade(clinical, rules["grade"])
    rationale += grade["rationale"]
    symptoms = clinical.symptoms if clinical else None
    mkw: dict[str, Any] = {
        "n_lesions": n_lesions,
        "symptoms": symptoms,
        "distribution": dist["distribution"],
        "debulking": deb,
        "mahuron": rules["mahuron"],
        "lesions_segmented": not unsegmented,
    }
    mah = mahuron_type(achievable_percent=achievable, achievable_missing=achievable_missing, **mkw)
    mah_range: list[str] | None = None
    if lower_bound is not None:
        thr = float(deb["threshold_percent"])
        cands = [lower_bound, 100.0] + ([thr + 1e-6] if lower_bound < thr else [])
        found = {mahuron_type(achievable_percent=a, achievable_missing=[], **mkw)["type"] or "3 or 4" for a in cands}
        if len(found) == 1:
            only = found.pop()
            mah = mahuron_type(achievable_percent=lower_bound, achievable_missing=[], **mkw)
            mah["rationale"].append(f"the segment map cannot change type {only}")
        else:
            mah_range = sorted(found)
            mah["rationale"] = [
                f"Mahuron type {' or '.join(mah_range)} depending on the segment map (at least {lower_bound:.1f}% "
                "debulking without resection)"
            ]
    mah["rationale"].append(
        "Mahuron type judged on a one-stage plan (no staged approach assumed)"
        if not (staged is not None and staged["needed"] and staged.get("possible"))
        else "Mahuron type judged on a one-stage plan; a staged approach could clear the liver (staged_strategies)"
    )
    rationale += mah["rationale"]
    _add(missing, mah["missing_inputs"])
    ptr = primary_tumour_advice(mah["type"], clinical.primary_resected if clinical else None, rules["primary"])
    rationale += ptr["rationale"]
    _add(missing, ptr["missing_inputs"])

    flr_adequate = None if plan is None else plan.feasible
    n_extra = len(ctx.lesions) - n_lesions
    cloyd = cloyd_resectability(
        clinical=clinical,
        extrahepatic_lesions_seen=n_extra,
        flr_adequate=flr_adequate,
        flr_missing=plan_missing,
        achievable_percent=(
            (achievable if achievable is not None else _cloyd_bound(lower_bound, rules["cloyd"])) if n_lesions else None
        ),
        achievable_missing=achievable_missing
        or ([("lesion segmentation" if unsegmented else "intrahepatic lesions")] if n_lesions == 0 else []),
        cloyd=rules["cloyd"],
        grade=grade,
    )
    cloyd["rationale"].append("Cloyd criteria judged on a one-stage plan (no staged approach assumed)")
    rationale += cloyd["rationale"]
    _add(missing, cloyd["missing_inputs"])

    fr = frilling_type(intra, dist["distribution"], rules["frilling"], involvement)
    rationale += fr["rationale"]
    slice_mm = ctx.image.slice_separation_mm  # along the slice normal on a sheared (tilted) grid
    rec = recist_targets(ctx.lesions, rules["recist"], slice_mm)
    rationale += rec["rationale"]
    lesion_recist = {
        lid: {
            "recist_measurable": r["category"] in ("target", "measurable"),
            "recist_category": r["category"],
            "recist_organ": r["organ"],
        }
        for lid, r in rec["lesions"].items()
    }

    classification: dict[str, Any] = {
        "rules_version": rules.version,
        "mahuron_type": mah["type"],
        "mahuron_inferred": mah["inferred"],
        "burden_category": burden["category"],
        "clarinet_split": burden["clarinet_split"],
        "involvement_percent": involvement,
        "distribution": dist["distribution"],
        "caudate_involved": dist.get("caudate_involved"),
        "caudate_only": dist.get("caudate_only"),
        "resectable_cloyd": cloyd["resectable"],
        "cloyd_criteria": cloyd["criteria"],
        "achievable_debulking_percent": achievable,
        "achievable_debulking_lower_bound_percent": lower_bound,
        "mahuron_type_range": mah_range,
        "mahuron_assumes_staged_approach": False,
        "cloyd_assumes_staged_approach": False,
        "staged_strategies": staged,
        "achievable_debulking_count_percent": plan.debulking_percent_count if plan and achievable is not None else None,
        "debulking_measure": deb["primary_measure"],
        "frilling_type": fr["type"],
        "who_grade": grade["grade"],
        "who_category": grade["category"],
        "grade_conflict": grade["conflict"],
        "grade_assessment": {k: v for k, v in grade.items() if k not in ("rationale", "missing_inputs")},
        "primary_tumour_advice": ptr["advice"],
        "recist_targets": rec["targets"],
        "recist_sum_of_diameters_mm": rec["sum_of_diameters_mm"],
        "recist_measurable_limit_mm": rec["measurable_limit_mm"],
        "recist_diameter_method": rec["method"],
        "lesion_diameter_method": EDGE_DIAMETER_METHOD,
        "clinical_inputs_used": clinical_inputs_used(clinical, ctx.header, height, weight),
        "rationale": rationale,
        "missing_inputs": missing,
    }

    remnant: dict[str, Any] | None = None
    if non_tumorous is not None:
        flr_ml = plan.remnant_ml if plan is not None else None
        remnant = {
            "non_tumorous_liver_volume_ml": max(0.0, non_tumorous),
            "future_liver_remnant_ml": flr_ml,
            "flr_percent_of_non_tumorous": 100.0 * flr_ml / non_tumorous
            if flr_ml is not None and non_tumorous > 0
            else None,
            "standardized_flr_percent": 100.0 * flr_ml / telv if flr_ml is not None and telv else None,
            "telv_ml": telv,
            "resection_plan": None
            if plan is None
            else _plan_dict(
                plan, table, non_tumorous_ml=non_tumorous, telv=telv, threshold=threshold, basis=basis, rules=rules
            ),
            "bsa_m2": bsa,
            "bsa_formula": body["bsa_formula"] if bsa is not None else None,
            "telv_formula": body["telv_formula"] if telv is not None else None,
            "height_cm": height,
            "weight_kg": weight,
            "flr_threshold_percent": threshold,
            "liver_condition": condition,
            "adequacy_basis": basis if denom is not None else None,
            "standard_resections": std,
        }

    lesion_segments = {lid: s for lid, s in (table.lesion_segment.items() if table else []) if s is not None}
    summary = _summary(mah, burden, involvement, plan, achievable, threshold, basis, telv, cloyd, deb)
    summary += _extra_summary(mah_range, lower_bound, staged, grade)
    return SurgicalAssessment(
        remnant,
        segments_block(table) if table is not None else None,
        classification,
        lesion_segments,
        lesion_recist,
        warnings,
        summary,
    )


def _cloyd_bound(lower_bound: float | None, cloyd: Any) -> float | None:
    """A lower bound decides Cloyd's resection criterion only when it already passes."""
    if lower_bound is not None and meets(lower_bound, float(cloyd["resection_percent"]), cloyd["comparator"]):
        return lower_bound
    return None


def _extra_summary(
    mah_range: list[str] | None, lower_bound: float | None, staged: dict[str, Any] | None, grade: dict[str, Any]
) -> list[str]:
    lines = []
    if mah_range:
        lines.append(
            f"Mahuron type {' or '.join(mah_range)} depending on the segment map "
            f"(at least {lower_bound or 0.0:.1f}% debulking without resection)"
        )
    if grade["conflict"]:
        lines.append(f"Grade conflict: {grade['rationale'][0]}")
    if staged is not None and staged["needed"]:
        lines.append("Staged strategies: " + staged["reason"])
    return lines


def _summary(
    mah: dict[str, Any],
    burden: dict[str, Any],
    involvement: float | None,
    plan: DebulkingPlan | None,
    achievable: float | None,
    threshold: float,
    basis: str,
    telv: float | None,
    cloyd: dict[str, Any],
    deb: Any,
) -> list[str]:
    lines = []
    if mah["type"] is not None:
        lines.append(
            f"Mahuron type {mah['type']}"
            + (" (types 3-4: inferred reading, Figure 2 not verified)" if mah["inferred"] else "")
        )
    else:
        miss = ", ".join(mah["missing_inputs"]) or "not applicable"
        lines.append(f"Mahuron type: undetermined (missing {miss})" if mah["missing_inputs"] else "Mahuron type: n/a")
    if involvement is not None:
        lines.append(
            f"Hepatic tumour burden {involvement:.1f}% ({burden['category']}; CLARINET {burden['clarinet_split']})"
        )
    if plan is not None:
        sflr = f", sFLR {100.0 * plan.remnant_ml / telv:.1f}%" if telv else ""
        if achievable is None:
            ok = "undetermined: lower bound without a segment map,"
        elif meets(achievable, deb["threshold_percent"], deb["comparator"]):
            ok = "meets"
        else:
            ok = "below: untreated lesions " + ",".join(str(k) for k in sorted(plan.untreated_reasons)) + ";"
        lines.append(
            f"Debulking plan: {_describe_plan(plan)} -> {plan.debulking_percent_volume or 0.0:.1f}% by volume, "
            f"{plan.debulking_percent_count or 0.0:.1f}% by count ({ok} {deb['threshold_percent']:g}%); "
            f"FLR {plan.remnant_ml:.0f} mL{sflr} (threshold {threshold:g}% of {basis})"
        )
    verdict = {True: "yes", False: "no", None: "undetermined"}[cloyd["resectable"]]
    if cloyd["resectable"] is False:
        verdict += " (" + "; ".join(cloyd["failed"]) + ")"
    elif cloyd["resectable"] is None:
        verdict += " (missing " + ", ".join(cloyd["missing_inputs"]) + ")"
    lines.append(f"Cloyd resectable: {verdict}")
    return lines
