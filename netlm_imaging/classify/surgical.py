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

from ..clinical.inputs import ClinicalInputs, clinical_inputs_used
from ..measure.context import MeasurementContext
from ..measure.lesions import EDGE_DIAMETER_METHOD
from ..measure.segments import SegmentTable, segments_block
from .assessment_text import describe_plan, summary_lines
from .body_size import FlrBasis, flr_basis
from .classifications import (
    burden_category,
    cloyd_resectability,
    frilling_type,
    mahuron_type,
    primary_tumour_advice,
    recist_targets,
    who_grade,
)
from .distribution import lesion_distribution
from .flr import absent_segment_warnings, flr_adequacy, injured_liver_basis, standard_resection_rows
from .liver_open import cloyd_either_liver, either_liver
from .plan_block import plan_block
from .planner import DebulkingPlan, plan_debulking
from .rules import Rules, meets
from .sparing import planner_zones
from .staging import staged_strategies, staged_without_map, undecided_without_condition
from .user_plans import add_user_plans, user_resection_lines

__all__ = ["SurgicalAssessment", "assess", "flr_adequacy"]  # flr_adequacy: from .flr, as before

logger = logging.getLogger(__name__)


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


def _add(missing: list[str], items: Sequence[str]) -> None:
    for m in items:
        if m not in missing:
            missing.append(m)


@dataclass
class _Trail:
    """What the steps of :func:`assess` say on the way: rationale, missing inputs, warnings (in order)."""

    rationale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def take(self, decision: Mapping[str, Any]) -> None:
        """Add a decision's ``rationale`` and ``missing_inputs``."""
        self.rationale += decision["rationale"]
        _add(self.missing, decision["missing_inputs"])


@dataclass(frozen=True)
class _Plan:
    """The debulking plan step: the one-stage plan, its staged strategies and what it lacked."""

    plan: DebulkingPlan | None = None
    staged: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)
    zones: Any = None  # the lesions' zones the plan was searched with (another threshold reuses them)


@dataclass(frozen=True)
class _Achievable:
    """The achievable debulking percentage, or its lower bound when a segment map could add more."""

    percent: float | None
    lower_bound: float | None
    missing: list[str]


def _debulking_plan(
    ctx: MeasurementContext,
    table: SegmentTable | None,
    rules: Rules,
    fb: FlrBasis,
    non_tumorous: float | None,
    trail: _Trail,
    *,
    zones: Any = None,
    staged: bool = True,
    strict: FlrBasis | None = None,
) -> _Plan:
    """The one-stage debulking plan and its staged strategies (None with what is missing to plan).

    ``zones``: those of a plan of the same lesions (at another threshold); ``staged=False`` searches
    the one-stage plan only; ``strict``: without a liver condition, the most demanding condition's basis
    (:func:`~netlm_imaging.classify.flr.injured_liver_basis`): a strategy it would not let reach its
    threshold is undetermined.
    """
    intra = ctx.intrahepatic_lesions
    if not intra:
        trail.rationale.append(
            "no lesion segmentation: no debulking plan"
            if not ctx.lesions_segmented
            else "no intrahepatic lesions: no debulking plan"
        )
        return _Plan()
    denom, threshold = fb.denominator_ml, fb.threshold_percent
    if non_tumorous is None:
        return _Plan(missing=["liver mask"])
    if threshold is None:  # no threshold for the liver condition on this denominator: its rules key is missing
        return _Plan(missing=[m for m in fb.missing_inputs if m.startswith("flr.")])
    if denom is None or denom <= 0:
        return _Plan(missing=["height/weight"])
    comparator = rules["flr"]["comparator"]
    kw: dict[str, Any] = {
        "non_tumorous_total_ml": non_tumorous,
        "comparator": comparator,
        "zones": zones if zones is not None else planner_zones(ctx, intra, rules["planner"]),
    }
    plan = plan_debulking(ctx, table, rules, required_flr_ml=threshold / 100.0 * denom, **kw)
    if not staged:
        return _Plan(plan, zones=kw["zones"])
    if table is None and not plan.clears_all and rules["planner"]["allow_segment_resection"]:
        strategies = staged_without_map(plan)
        trail.rationale.append("staged strategies: " + strategies["reason"])
        return _Plan(plan, strategies, zones=kw["zones"])
    clearing = plan if plan.clears_all else plan_debulking(ctx, table, rules, required_flr_ml=-math.inf, **kw)
    if not plan.clears_all and clearing.clears_all and not clearing.resected_segments and table is not None:
        # wedges / ablations alone clear it but spend too much FLR: PVE / ALPPS need a resection to grow
        resecting = plan_debulking(ctx, table, rules, required_flr_ml=-math.inf, require_resection=True, **kw)
        clearing = resecting if resecting.clears_all else clearing
    strategies = staged_strategies(
        one_stage=plan,
        clearing=clearing,
        denominator_ml=denom,
        basis=fb.basis,
        threshold_percent=threshold,
        comparator=comparator,
        staging=rules["staging"],
    )
    if strict is not None and strict.threshold_percent is not None:
        undecided_without_condition(strategies, strict.threshold_percent)
    if strategies["needed"]:
        trail.rationale.append("staged strategies: " + strategies["reason"])
    return _Plan(plan, strategies, zones=kw["zones"])


def _achievable(planned: _Plan, table: SegmentTable | None, rules: Rules, fb: FlrBasis, trail: _Trail) -> _Achievable:
    """The plan's debulking percentage on the rules' primary measure, and the plan's rationale."""
    plan = planned.plan
    if plan is None:
        return _Achievable(None, None, list(planned.missing))
    deb = rules["debulking"]
    achievable = plan.debulking_percent_volume if deb["primary_measure"] == "volume" else plan.debulking_percent_count
    lower_bound: float | None = None
    missing: list[str] = []
    if table is None and not plan.clears_all and rules["planner"]["allow_segment_resection"]:
        # without the map no segment resection can be planned: the figure is only a lower bound
        lower_bound, achievable = achievable, None
        missing = ["segment map"]
        trail.rationale.append(
            f"achievable debulking not determined without a segment map: at least {lower_bound:.1f}% by "
            "lesion-level treatments; segment resections could add more"
        )
    threshold, basis = fb.threshold_percent, fb.basis
    if not plan.feasible:
        trail.rationale.append(
            f"no plan keeps an adequate FLR: the untreated liver's FLR is below {threshold:g}% on {basis}"
        )
    trail.rationale.append(
        f"debulking plan ({describe_plan(plan)}): {plan.treated_ml:.2f} of {plan.total_tumor_ml:.2f} mL "
        f"treated = {plan.debulking_percent_volume or 0.0:.1f}% by volume, {plan.treated_count}/"
        f"{plan.total_count} = {plan.debulking_percent_count or 0.0:.1f}% by count; "
        f"remnant {plan.remnant_ml:.1f} mL (threshold {threshold:g}% of {basis})"
    )
    trail.rationale += plan.notes
    return _Achievable(achievable, lower_bound, missing)


def _mahuron(
    reach: _Achievable, staged: dict[str, Any] | None, mkw: Mapping[str, Any], rules: Rules
) -> tuple[dict[str, Any], list[str] | None]:
    """The Mahuron type and, when a missing segment map leaves it open, the types it could be."""
    mah = mahuron_type(achievable_percent=reach.percent, achievable_missing=reach.missing, **mkw)
    mah_range: list[str] | None = None
    lower_bound = reach.lower_bound
    if lower_bound is not None:
        thr = float(rules["debulking"]["threshold_percent"])
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
    return mah, mah_range


def _plan_meets(planned: _Plan, basis: FlrBasis, rules: Rules) -> bool:
    """Whether the plan found also keeps ``basis``'s FLR, as the optimiser counts it (its zone costs summed,
    each within one cost step): the optimum of a lower threshold that a higher one allows is its optimum too,
    so the decisions of both are the same and the plan need not be searched again."""
    plan = planned.plan
    if plan is None or not plan.feasible or basis.denominator_ml is None or basis.threshold_percent is None:
        return False
    flr_kept = plan.remnant_ml + sum(plan.zone_union_ml_by_label.values())  # remnant_after_zones_ml undone
    sparing = [cost for kind, cost in plan.treatments.values() if kind in ("enucleation", "ablation")]
    step = float(rules["planner"]["cost_resolution_ml"])
    # the resection's FLR the optimiser read already had its spills' zones taken (planner.plan_debulking)
    counted = flr_kept - plan.spill_zone_ml - sum(sparing) - step * len(sparing)
    return meets(counted, basis.threshold_percent / 100.0 * basis.denominator_ml, rules["flr"]["comparator"])


def _reach_either_liver(reach: _Achievable, injured: _Achievable, thr: float, trail: _Trail) -> _Achievable:
    """The achievable debulking a normal and an injured liver share; else None with ``liver_condition`` missing.

    Without a liver condition the plan is made on the normal liver's FLR threshold; when the most demanding
    condition's threshold allows less debulking, the percentage was still reported as achievable.
    """
    if reach.percent is None or injured.percent is None or math.isclose(reach.percent, injured.percent):
        return reach
    trail.rationale.append(
        f"achievable debulking {reach.percent:.1f}% with a normal liver, {injured.percent:.1f}% with an injured one "
        f"(FLR threshold {thr:g}%): undetermined without liver_condition"
    )
    return _Achievable(None, reach.lower_bound, [*reach.missing, "liver_condition"])


def _cloyd_bound(lower_bound: float | None, cloyd: Any) -> float | None:
    """A lower bound decides Cloyd's resection criterion only when it already passes."""
    if lower_bound is not None and meets(lower_bound, float(cloyd["resection_percent"]), cloyd["comparator"]):
        return lower_bound
    return None


def _cloyd(
    ctx: MeasurementContext,
    clinical: ClinicalInputs | None,
    planned: _Plan,
    reach: _Achievable,
    grade: dict[str, Any],
    rules: Rules,
) -> dict[str, Any]:
    """Cloyd's resectability criteria on the one-stage plan."""
    n_lesions = len(ctx.intrahepatic_lesions)
    achievable = reach.percent if reach.percent is not None else _cloyd_bound(reach.lower_bound, rules["cloyd"])
    # no lesion segmentation is a missing input; a segmentation without liver lesions leaves nothing to resect
    why_none = ["lesion segmentation"] if not ctx.lesions_segmented else []
    cloyd = cloyd_resectability(
        clinical=clinical,
        extrahepatic_lesions_seen=len(ctx.lesions) - n_lesions,
        flr_adequate=None if planned.plan is None else planned.plan.feasible,
        flr_missing=planned.missing,
        achievable_percent=achievable if n_lesions else None,
        achievable_missing=reach.missing or (why_none if n_lesions == 0 else []),
        cloyd=rules["cloyd"],
        grade=grade,
    )
    if n_lesions == 0 and ctx.lesions_segmented:
        cloyd["criteria"]["resection_feasible"]["rule"] += "; not applicable: no intrahepatic lesions"
        cloyd["rationale"].append("Cloyd resection criteria not applicable: no liver metastases segmented")
    cloyd["rationale"].append("Cloyd criteria judged on a one-stage plan (no staged approach assumed)")
    return cloyd


def _recist(ctx: MeasurementContext, rules: Rules) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """RECIST 1.1 targets and each lesion's RECIST fields."""
    slice_mm = ctx.image.slice_separation_mm  # along the slice normal on a sheared (tilted) grid
    rec = recist_targets(ctx.lesions, rules["recist"], slice_mm)
    lesion_recist = {
        lid: {
            "recist_measurable": r["category"] in ("target", "measurable"),
            "recist_category": r["category"],
            "recist_organ": r["organ"],
        }
        for lid, r in rec["lesions"].items()
    }
    return rec, lesion_recist


def _remnant_block(
    plan: DebulkingPlan | None,
    table: SegmentTable | None,
    fb: FlrBasis,
    non_tumorous: float,
    std: list[dict[str, Any]],
    rules: Rules,
) -> dict[str, Any]:
    """The report's ``remnant`` block: the plan's FLR on each denominator, the body size and the resections."""
    telv, threshold, basis, body = fb.telv_ml, fb.threshold_percent, fb.basis, rules["body"]
    flr_ml = plan.remnant_ml if plan is not None else None
    return {
        "non_tumorous_liver_volume_ml": max(0.0, non_tumorous),
        "future_liver_remnant_ml": flr_ml,
        "flr_percent_of_non_tumorous": 100.0 * flr_ml / non_tumorous
        if flr_ml is not None and non_tumorous > 0
        else None,
        "standardized_flr_percent": 100.0 * flr_ml / telv if flr_ml is not None and telv else None,
        "telv_ml": telv,
        "resection_plan": None
        if plan is None or threshold is None
        else plan_block(
            plan, table, non_tumorous_ml=non_tumorous, telv=telv, threshold=threshold, basis=basis, rules=rules
        ),
        "bsa_m2": fb.bsa_m2,
        "bsa_formula": body["bsa_formula"] if fb.bsa_m2 is not None else None,
        "telv_formula": body["telv_formula"] if telv is not None else None,
        "height_cm": fb.height_cm,
        "weight_kg": fb.weight_kg,
        "flr_threshold_percent": threshold,
        "liver_condition": fb.liver_condition,
        "adequacy_basis": basis if fb.denominator_ml is not None else None,
        "standard_resections": std,
    }


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

    The steps run in the order of clinical_rules.md: burden, body size and the FLR threshold,
    the standard resections, the one-stage debulking plan (and staged strategies), the
    distribution, the WHO grade, Mahuron, primary-tumour advice, Cloyd, Frilling and RECIST.

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
    trail = _Trail()
    intra = ctx.intrahepatic_lesions
    unsegmented = not ctx.lesions_segmented
    if table is not None:
        trail.warnings += table.warnings
    elif ctx.segment_labels is None:
        trail.rationale.append(
            "no Couinaud segment map given: per-segment volumes, standard resections and distribution are not available"
        )
    else:  # the segment table counts liver voxels per segment: a map without a liver mask is not measured
        trail.rationale.append(
            "Couinaud segment map given without a liver mask: per-segment volumes, standard resections and "
            "distribution are not available (give the liver mask)"
        )

    involvement = ctx.involvement_percent
    unknown_because = "lesion segmentation" if unsegmented and ctx.liver_volume_ml else "liver mask"
    burden = burden_category(involvement, rules["burden"], unknown_because=unknown_because)
    trail.take(burden)

    fb = flr_basis(clinical, ctx.header, rules, non_tumorous_ml)  # non-tumorous: total liver minus tumour, >= 0
    trail.rationale += fb.rationale
    trail.warnings += fb.warnings
    _add(trail.missing, fb.missing_inputs)

    injured = injured_liver_basis(fb, rules)
    std: list[dict[str, Any]] = []
    if table is not None:
        std = standard_resection_rows(table, remnants, fb, rules, injured)
        trail.warnings += absent_segment_warnings(std, table)
    elif resections:
        trail.warnings.append("resections were requested but there is no Couinaud segment map; they were not evaluated")

    planned = _debulking_plan(ctx, table, rules, fb, non_tumorous_ml, trail, strict=injured)
    _add(trail.missing, planned.missing)
    if table is not None and non_tumorous_ml is not None and ctx.intrahepatic_lesions:
        trail.rationale += add_user_plans(
            std, ctx, table, rules, fb, injured, non_tumorous_ml=non_tumorous_ml, zones=planned.zones
        )
    reach = _achievable(planned, table, rules, fb, trail)

    no_table = "segment map" if ctx.segment_labels is None else "liver mask"
    dist = lesion_distribution(table, rules["anatomy"], len(intra), no_table_because=no_table)
    trail.take(dist)
    grade = who_grade(clinical, rules["grade"])
    trail.rationale += grade["rationale"]
    mkw: dict[str, Any] = {
        "n_lesions": len(intra),
        "symptoms": clinical.symptoms if clinical else None,
        "distribution": dist["distribution"],
        "debulking": rules["debulking"],
        "mahuron": rules["mahuron"],
        "lesions_segmented": not unsegmented,
    }
    mah, mah_range = _mahuron(reach, planned.staged, mkw, rules)
    cloyd = _cloyd(ctx, clinical, planned, reach, grade, rules)
    strict_thr = injured.threshold_percent if injured is not None else None
    reported = reach  # the achievable debulking the report states (the console's plan line is the plan's own)
    if injured is not None and strict_thr is not None and not _plan_meets(planned, injured, rules):
        # decided where both livers decide alike
        i_planned = _debulking_plan(
            ctx, table, rules, injured, non_tumorous_ml, _Trail(), zones=planned.zones, staged=False
        )
        i_reach = _achievable(i_planned, table, rules, injured, _Trail())
        i_mah, i_range = _mahuron(i_reach, i_planned.staged, mkw, rules)
        mah, mah_range = either_liver(mah, mah_range, i_mah, i_range, strict_thr)
        cloyd_either_liver(cloyd, _cloyd(ctx, clinical, i_planned, i_reach, grade, rules), strict_thr)
        reported = _reach_either_liver(reach, i_reach, strict_thr, trail)
    trail.take(mah)
    ptr = primary_tumour_advice(mah["type"], clinical.primary_resected if clinical else None, rules["primary"])
    trail.take(ptr)
    trail.take(cloyd)
    fr = frilling_type(intra, dist["distribution"], rules["frilling"], involvement, dist["missing_inputs"])
    trail.take(fr)
    rec, lesion_recist = _recist(ctx, rules)
    trail.rationale += rec["rationale"]

    plan = planned.plan
    verdicts = _Verdicts(burden, dist, grade, mah, mah_range, ptr, cloyd, fr, rec)
    classification = _classification_block(ctx, clinical, rules, fb, planned, reported, verdicts)
    classification["rationale"], classification["missing_inputs"] = trail.rationale, trail.missing
    remnant = None if non_tumorous_ml is None else _remnant_block(plan, table, fb, non_tumorous_ml, std, rules)
    lesion_segments = {lid: s for lid, s in (table.lesion_segment.items() if table else []) if s is not None}
    summary = summary_lines(
        mahuron=mah,
        mahuron_range=mah_range,
        burden=burden,
        involvement=involvement,
        plan=plan,
        achievable=reach.percent,
        lower_bound=reach.lower_bound,
        threshold=fb.threshold_percent,
        basis=fb.basis,
        telv=fb.telv_ml,
        non_tumorous=non_tumorous_ml,
        cloyd=cloyd,
        grade=grade,
        staged=planned.staged,
        debulking=rules["debulking"],
    ) + user_resection_lines(std)
    return SurgicalAssessment(
        remnant,
        segments_block(table) if table is not None else None,
        classification,
        lesion_segments,
        lesion_recist,
        trail.warnings,
        summary,
    )


@dataclass(frozen=True)
class _Verdicts:
    """The classifications of one study (each a decision of :mod:`netlm_imaging.classify.classifications`)."""

    burden: dict[str, Any]
    dist: dict[str, Any]
    grade: dict[str, Any]
    mah: dict[str, Any]
    mah_range: list[str] | None
    ptr: dict[str, Any]
    cloyd: dict[str, Any]
    fr: dict[str, Any]
    rec: dict[str, Any]


def _classification_block(
    ctx: MeasurementContext,
    clinical: ClinicalInputs | None,
    rules: Rules,
    fb: FlrBasis,
    planned: _Plan,
    reach: _Achievable,
    v: _Verdicts,
) -> dict[str, Any]:
    """The report's ``classification`` block (its rationale and missing inputs are the caller's)."""
    achievable, plan = reach.percent, planned.plan
    burden, dist, grade, mah, cloyd, rec = v.burden, v.dist, v.grade, v.mah, v.cloyd, v.rec
    return {
        "rules_version": rules.version,
        "mahuron_type": mah["type"],
        "mahuron_inferred": mah["inferred"],
        "burden_category": burden["category"],
        "clarinet_split": burden["clarinet_split"],
        "involvement_percent": ctx.involvement_percent,
        "distribution": dist["distribution"],
        "caudate_involved": dist.get("caudate_involved"),
        "caudate_only": dist.get("caudate_only"),
        "resectable_cloyd": cloyd["resectable"],
        "cloyd_criteria": cloyd["criteria"],
        "achievable_debulking_percent": achievable,
        "achievable_debulking_lower_bound_percent": reach.lower_bound,
        "mahuron_type_range": v.mah_range,
        "mahuron_assumes_staged_approach": False,
        "cloyd_assumes_staged_approach": False,
        "staged_strategies": planned.staged,
        "achievable_debulking_count_percent": plan.debulking_percent_count if plan and achievable is not None else None,
        "debulking_measure": rules["debulking"]["primary_measure"],
        "frilling_type": v.fr["type"],
        "who_grade": grade["grade"],
        "who_category": grade["category"],
        "grade_conflict": grade["conflict"],
        "grade_assessment": {k: v for k, v in grade.items() if k not in ("rationale", "missing_inputs")},
        "primary_tumour_advice": v.ptr["advice"],
        "recist_targets": rec["targets"],
        "recist_sum_of_diameters_mm": rec["sum_of_diameters_mm"],
        "recist_measurable_limit_mm": rec["measurable_limit_mm"],
        "recist_diameter_method": rec["method"],
        "lesion_diameter_method": EDGE_DIAMETER_METHOD,
        "clinical_inputs_used": clinical_inputs_used(clinical, ctx.header, fb.height_cm, fb.weight_kg),
    }
