"""A user's resection (``--resection``) with the best sparing treatment of the lesions it leaves.

A surgeon who names a resection ("right hepatectomy + 1") wants to know what it achieves, not only
its FLR: the lesions left in the remnant can be wedged / enucleated or ablated within the FLR the
resection leaves (clinical_rules.md section 4: ablated lesions count as treated; section 6: the zones
come out of the FLR). Each user row of ``remnant.standard_resections`` gets ``plan_with_sparing``: the
planner's block (as ``remnant.resection_plan``) for that resection alone, judged on the study's FLR
threshold. Without a threshold or its denominator it is None (the row names what is missing). Without
a liver condition, a verdict the most demanding condition's threshold would change is None with
``liver_condition`` in the block's ``missing_inputs``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..measure.context import MeasurementContext
from ..measure.segments import SegmentTable
from .anatomy import resection_name
from .body_size import FlrBasis
from .plan_block import plan_block
from .planner import DebulkingPlan, plan_debulking
from .rules import Rules
from .staging import staged_strategies, undecided_without_condition

__all__ = ["add_user_plans", "user_resection_lines"]

#: The block's verdicts that the liver condition's threshold can change.
_VERDICTS = ("feasible", "meets_debulking_threshold", "debulking_percent_volume", "debulking_percent_count")


def _impossible(
    ctx: MeasurementContext, table: SegmentTable, rules: Rules, s: frozenset[int], why: str
) -> DebulkingPlan:
    """The block of a resection whose remnant fails the anatomy test: nothing is planned beside it.

    A remnant that is not contiguous, too small, or loses its inflow / outflow / biliary drainage
    (clinical_rules.md section 9) is no operation, whatever FLR it would leave: the sparing plan
    beside it was reported ``feasible: true`` with its debulking, and its PVE / ALPPS figures.
    """
    lesions = ctx.intrahepatic_lesions
    note = f"the remnant is not anatomically possible ({why}): no plan beside this resection"
    return DebulkingPlan(
        False,
        sorted(s),
        {les.id: (None, 0.0) for les in lesions},
        0.0,
        float(sum(les.volume_ml for les in lesions)),
        0,
        len(lesions),
        table.non_tumorous_ml([k for k in range(1, 9) if k not in s]),
        "not planned: the remnant fails the anatomy test",
        notes=[note],
        untreated_reasons={
            les.id: "the resection leaves a remnant that is not anatomically possible" for les in lesions
        },
        resection_name=resection_name(s, rules["anatomy"], rules["resections"]),
        remnant_check=why,
    )


def _plan(
    ctx: MeasurementContext, table: SegmentTable, rules: Rules, fb: FlrBasis, s: frozenset[int], **kw: Any
) -> DebulkingPlan | None:
    if fb.threshold_percent is None or fb.denominator_ml is None:
        return None
    required = fb.threshold_percent / 100.0 * fb.denominator_ml
    plan = plan_debulking(ctx, table, rules, required_flr_ml=required, fixed_resection=s, **kw)
    if not plan.feasible:  # nothing is planned: state the resection and the FLR it leaves
        plan.resected_segments = sorted(s)
        plan.resection_name = resection_name(s, rules["anatomy"], rules["resections"])
        # plan_debulking left the resection's own FLR: the kept segments' non-tumorous liver minus the zones
        # of the boundary spills of the lesions it takes (planner.margin_mm around each)
        thr = f"{fb.threshold_percent:g}% of {fb.basis}"
        plan.notes = [f"the resection alone leaves less FLR than the threshold ({thr})"]
        if plan.spill_zone_ml > 0:
            plan.notes.append(
                f"the transection planes around the lesions' parts over the boundary into kept segments "
                f"(ignored_segment_overlaps) take {plan.spill_zone_ml:.2f} mL of non-tumorous liver from that FLR"
            )
        plan.untreated_reasons = dict.fromkeys(plan.treatments, "the resection alone leaves an inadequate FLR")
    return plan


def _staged(
    ctx: MeasurementContext,
    table: SegmentTable,
    rules: Rules,
    fb: FlrBasis,
    injured: FlrBasis | None,
    s: frozenset[int],
    plan: DebulkingPlan,
    **kw: Any,
) -> dict[str, Any] | None:
    """PVE / two-stage / ALPPS for this resection when it and the sparing of the rest would clear every lesion
    but the FLR does not allow it in one stage ("if insufficient, consider portal vein embolization",
    clinical_rules.md section 6); None when the one-stage plan clears them or nothing clears them."""
    if plan.clears_all or fb.threshold_percent is None or not fb.denominator_ml:
        return None
    clearing = plan_debulking(ctx, table, rules, required_flr_ml=-math.inf, fixed_resection=s, **kw)
    if not clearing.clears_all:
        return None
    out = staged_strategies(
        one_stage=plan,
        clearing=clearing,
        denominator_ml=fb.denominator_ml,
        basis=fb.basis,
        threshold_percent=fb.threshold_percent,
        comparator=rules["flr"]["comparator"],
        staging=rules["staging"],
    )
    if injured is not None and injured.threshold_percent is not None:
        undecided_without_condition(out, injured.threshold_percent)
    return out


def add_user_plans(
    rows: Sequence[dict[str, Any]],
    ctx: MeasurementContext,
    table: SegmentTable,
    rules: Rules,
    fb: FlrBasis,
    injured: FlrBasis | None,
    *,
    non_tumorous_ml: float,
    zones: Mapping[int, Any] | None,
) -> list[str]:
    """Add ``plan_with_sparing`` to each user row (name ``custom:...``); return one rationale line per row."""
    lines = []
    kw = {"non_tumorous_total_ml": non_tumorous_ml, "comparator": rules["flr"]["comparator"], "zones": zones}

    def block_of(plan: Any, basis: FlrBasis) -> dict[str, Any]:
        """The report block of ``plan`` judged on ``basis`` (the plan's FLR threshold and denominator)."""
        assert basis.threshold_percent is not None  # callers plan only on a basis with a threshold
        return plan_block(
            plan,
            table,
            non_tumorous_ml=non_tumorous_ml,
            telv=basis.telv_ml,
            threshold=basis.threshold_percent,
            basis=basis.basis,
            rules=rules,
        )

    for row in rows:
        if not str(row.get("name", "")).startswith("custom:"):
            continue
        s = frozenset(int(k) for k in row["removed_segments"])
        plan = _plan(ctx, table, rules, fb, s, **kw)
        if plan is None or fb.threshold_percent is None:
            row["plan_with_sparing"] = None
            continue
        if row.get("anatomically_feasible") is False:
            block = block_of(_impossible(ctx, table, rules, s, str(row.get("anatomy_check"))), fb)
            row["plan_with_sparing"] = {**block, "missing_inputs": [], "staged_strategies": None}
            lines.append(
                f"user resection {'+'.join(map(str, sorted(s)))} ({block['resection_name']}): the remnant is not "
                f"anatomically possible ({row.get('anatomy_check')}), so nothing is planned beside it"
            )
            continue
        block = block_of(plan, fb)
        block["missing_inputs"] = []
        strict = _plan(ctx, table, rules, injured, s, **kw) if injured is not None else None
        if strict is not None and injured is not None and injured.threshold_percent is not None:
            other = block_of(strict, injured)
            changed = [k for k in _VERDICTS if other[k] != block[k]]
            for k in changed:
                block[k] = None
            if changed:
                block["missing_inputs"] = ["liver_condition"]
        block["staged_strategies"] = _staged(ctx, table, rules, fb, injured, s, plan, **kw)
        row["plan_with_sparing"] = block
        pct = block["debulking_percent_volume"]
        lines.append(
            f"user resection {'+'.join(map(str, sorted(s)))} ({plan.resection_name}) with sparing treatment of the "
            f"lesions it leaves: "
            + (
                "the resection alone leaves an inadequate FLR"
                if block["feasible"] is False
                else f"{'undetermined' if pct is None else f'{pct:.1f}%'} debulked by volume, remnant "
                f"{plan.remnant_ml:.1f} mL"
            )
        )
    return lines


def user_resection_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One console line per user resection: its FLR and adequacy, its anatomy, what it debulks with sparing."""
    lines = []
    said = {True: "adequate", False: "inadequate", None: "adequacy undetermined"}
    for row in rows:
        if not str(row.get("name", "")).startswith("custom:"):
            continue
        segs = "+".join(map(str, row["removed_segments"]))
        pct = row.get("standardized_flr_percent")
        if row.get("adequacy_basis") == "non_tumorous" or pct is None:
            pct, of = row.get("flr_percent_of_non_tumorous"), "of the non-tumorous liver"
        else:
            of = "of TELV"
        flr = f"FLR {row['flr_ml']:.0f} mL" + (f" = {pct:.1f}% {of}" if pct is not None else "")
        thr = row.get("threshold_percent")
        verdict = said[row.get("adequate")] + (f" (threshold {thr:g}%)" if thr is not None else "")
        possible = row.get("anatomically_feasible")
        anatomy = "anatomically possible" if possible else f"anatomy: {row.get('anatomy_check')}"
        anatomy = anatomy if possible is not False else f"NOT possible: {row.get('anatomy_check')}"
        plan = row.get("plan_with_sparing")
        name = f" ({plan['resection_name']})" if plan else ""
        line = f"Resection {segs}{name}: {flr}, {verdict}; {anatomy}"
        if plan and plan["feasible"] and plan["debulking_percent_volume"] is not None:
            ok = {True: "meets", False: "below", None: "undetermined vs"}[plan["meets_debulking_threshold"]]
            line += (
                f"; with sparing treatment of the rest {plan['debulking_percent_volume']:.1f}% debulked by volume "
                f"({ok} {plan['debulking_threshold_percent']:g}%), FLR {plan['remnant_ml']:.0f} mL"
            )
        if plan and plan.get("staged_strategies"):
            line += "; staged: " + plan["staged_strategies"]["reason"]
        lines.append(line)
    return lines
