"""Staged strategies when the clearing resection leaves too little liver: PVE, two-stage, ALPPS.

The clearing plan is the anatomically possible plan that treats the most
tumour whatever the FLR (:func:`~netlm_imaging.classify.planner.plan_debulking`
with no FLR requirement). When it clears every lesion but its FLR misses the
threshold, each strategy is reported with the numbers a surgeon needs: FLR now
(mL and % of the deciding denominator), FLR needed, the growth needed
(``100 x (needed / now - 1)``), the growth expected (rules ``[staging]``, with
sources) and whether the expected FLR passes the threshold:

- portal vein embolisation (PVE) of the side to be resected, then the
  clearing resection;
- two-stage hepatectomy: first stage clears the future remnant (the sparing
  treatments of the lesions left in the kept segments), PVE, then the
  resection; expected growth as after PVE [D]; not applicable when no lesion lies in
  the future remnant (it is then PVE and the resection);
- ALPPS (liver partition and portal vein ligation), with its own expected growth.

The clearing plan must resect a segment: when wedges and ablations alone would clear the liver but
spend too much FLR, the clearing plan is the best one with a segment resection (the caller's
:func:`~netlm_imaging.classify.planner.plan_debulking` with ``require_resection``); without one there
is no liver to embolise or ligate and no strategy applies (``possible`` False, ``strategies`` empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .planner import DebulkingPlan
from .rules import meets

__all__ = ["staged_strategies", "staged_without_map", "undecided_without_condition"]


def staged_strategies(
    *,
    one_stage: DebulkingPlan,
    clearing: DebulkingPlan | None,
    denominator_ml: float,
    basis: str,
    threshold_percent: float,
    comparator: str,
    staging: Mapping[str, Any],
) -> dict[str, Any]:
    """What staged approaches would reach when the one-stage plan cannot clear the liver.

    Returns
    -------
    dict
        ``needed`` (bool), ``possible`` (bool or None), ``reason``, and when
        relevant ``flr_now_ml``, ``flr_now_percent``, ``flr_needed_ml``,
        ``flr_needed_percent``, ``growth_needed_percent``, ``clearing_resection``,
        ``clearing_lesion_treatments`` (``lesion_id``, ``treatment`` of the clearing plan)
        and ``strategies`` (name -> expected growth, expected FLR, reaches; the two-stage entry
        also ``applicable``: False when no lesion lies in the future remnant, and it is then not
        listed among the strategies expected to reach the threshold).
    """
    if one_stage.clears_all:
        return {"needed": False, "possible": None, "reason": "the one-stage plan clears every lesion"}
    if clearing is None or not clearing.clears_all:
        untreated = [] if clearing is None else sorted(k for k, (t, _) in clearing.treatments.items() if t is None)
        return {
            "needed": True,
            "possible": False,
            "reason": "no anatomically possible plan clears every lesion, whatever the FLR"
            + (f" (lesions {untreated} stay untreated)" if untreated else "")
            + ": staging cannot make the disease clearable",
        }
    now = clearing.remnant_ml
    need = threshold_percent / 100.0 * denominator_ml
    pct = 100.0 / denominator_ml if denominator_ml > 0 else 0.0
    growth_needed = 100.0 * (need / now - 1.0) if now > 0 else None
    flr_side = sorted(k for k, (t, _) in clearing.treatments.items() if t in ("enucleation", "ablation"))
    out: dict[str, Any] = {
        "needed": True,
        "clearing_resection": clearing.resection_name,
        "clearing_resected_segments": clearing.resected_segments,
        "flr_now_ml": now,
        "flr_now_percent": now * pct,
        "flr_needed_ml": need,
        "flr_needed_percent": threshold_percent,
        "adequacy_basis": basis,
        "comparator": comparator,
        "growth_needed_percent": growth_needed,
        "source": staging["source"],
        "strategies": {},
    }
    if not clearing.resected_segments:
        # PVE and ALPPS grow the remnant of a resection by occluding the portal flow of the liver to be
        # resected; a clearing plan of wedges and ablations alone resects no segment, so there is no portal
        # branch to occlude and no remnant to grow: its FLR is spent by the sparing treatments themselves
        out["possible"] = False
        out["reason"] = (
            f"only wedges / ablations (no segment resected) clear every lesion, leaving FLR {now * pct:.1f}% of "
            f"{basis} (threshold {comparator} {threshold_percent:g}%), and no plan with a segment resection clears "
            "them: PVE, two-stage hepatectomy and ALPPS grow the remnant of a segment resection, so none applies"
        )
        return out
    # what the clearing plan does to each lesion (every strategy ends in it): the vessel notes of
    # classify/vascular.py are given for it as for the one-stage plan
    out["clearing_lesion_treatments"] = [
        {"lesion_id": k, "treatment": t} for k, (t, _) in sorted(clearing.treatments.items())
    ]
    for name, key, first in (
        ("portal_vein_embolisation", "pve_expected_hypertrophy_percent", None),
        ("two_stage_hepatectomy", "pve_expected_hypertrophy_percent", flr_side),
        ("alpps", "alpps_expected_hypertrophy_percent", None),
    ):
        h = float(staging[key])
        after = now * (1.0 + h / 100.0)
        entry: dict[str, Any] = {
            "expected_growth_percent": h,
            "expected_flr_ml": after,
            "expected_flr_percent": after * pct,
            "reaches_threshold": meets(after * pct, threshold_percent, comparator),
        }
        if first is not None:
            entry["first_stage_clears_lesions"] = first
            entry["second_stage"] = clearing.resection_name
            # a first stage has something to do only when lesions lie in the future remnant
            entry["applicable"] = bool(first)
            if not first:
                entry["note"] = (
                    "no lesion in the future remnant for a first stage to clear: a two-stage hepatectomy "
                    "reduces to portal vein embolisation then the resection"
                )
        out["strategies"][name] = entry
    reach = [n for n, e in out["strategies"].items() if e["reaches_threshold"] and e.get("applicable", True)]
    out["possible"] = bool(reach)
    out["reason"] = (
        f"clearing needs {clearing.resection_name} leaving FLR {now * pct:.1f}% of {basis} "
        f"(threshold {comparator} {threshold_percent:g}%): growth needed "
        + ("n/a" if growth_needed is None else f"{growth_needed:.1f}%")
        + "; "
        + (f"expected to reach it: {', '.join(reach)}" if reach else "no staged strategy is expected to reach it")
    )
    return out


def staged_without_map(one_stage: DebulkingPlan) -> dict[str, Any]:
    """The staged strategies when there is no Couinaud segment map and the lesion-level plan leaves lesions.

    Without the map no segment resection is planned, so whether one (after PVE / ALPPS, or in one
    stage) would clear the lesions is not known: ``needed`` and ``possible`` are None with
    ``segment map`` missing. The block said "no anatomically possible plan clears every lesion,
    whatever the FLR: staging cannot make the disease clearable" for a lesion a right hemihepatectomy
    takes.
    """
    left = sorted(k for k, (t, _) in one_stage.treatments.items() if t is None)
    return {
        "needed": None,
        "possible": None,
        "missing_inputs": ["segment map"],
        "reason": f"undetermined without a Couinaud segment map: no segment resection was planned, so whether "
        f"one (in one stage, or after PVE / ALPPS) clears lesions {left} is not known",
    }


def undecided_without_condition(staged: dict[str, Any], strict_percent: float) -> dict[str, Any]:
    """Staged strategies judged without a liver condition: only what the most demanding condition decides alike.

    The strategies of :func:`staged_strategies` were judged on the normal liver's threshold (the plan's).
    Without a liver condition (clinical_rules.md section 6: the threshold depends on it) a strategy
    expected to reach that threshold but not ``strict_percent`` is undetermined: ``reaches_threshold``
    None with ``missing_inputs`` ``["liver_condition"]``; ``possible`` follows (True when a strategy
    reaches both, None when one is undetermined, else False). Changes ``staged`` in place and returns it.
    """
    strategies = staged.get("strategies")
    if not staged.get("needed") or not strategies:
        return staged
    comp = staged["comparator"]
    opened = []
    for name, entry in strategies.items():
        if entry["reaches_threshold"] and not meets(entry["expected_flr_percent"], strict_percent, comp):
            entry["reaches_threshold"] = None
            entry["missing_inputs"] = ["liver_condition"]
            opened.append(name)
    if not opened:
        return staged
    applicable = [e["reaches_threshold"] for e in strategies.values() if e.get("applicable", True)]
    staged["possible"] = True if True in applicable else (None if None in applicable else False)
    staged["missing_inputs"] = ["liver_condition"] if staged["possible"] is None else []
    staged["reason"] += (
        f"; with an injured liver (threshold {comp} {strict_percent:g}%) {', '.join(opened)} would not reach it: "
        "undetermined without liver_condition"
    )
    return staged
