"""The console summary of a surgical assessment: the lines ``netlm analyze`` prints.

:func:`describe_plan` words one debulking plan (also used in the rationale);
:func:`summary_lines` gives the Mahuron type, the burden, the plan (with why each untreated lesion,
up to three, stays untreated) and Cloyd's verdict, then the range, grade-conflict and
staged-strategy lines when they apply.
"""

from __future__ import annotations

from typing import Any

from .planner import DebulkingPlan
from .rules import meets

__all__ = ["describe_plan", "summary_lines"]

#: Untreated lesions whose reason the console prints (the rest are counted; all are in the report).
_MAX_UNTREATED_LINES = 3


def describe_plan(plan: DebulkingPlan) -> str:
    """The treatments of ``plan`` in a few words.

    For example ``"right hemihepatectomy (segment(s) 5,6,7,8); ablate 1 lesion(s)"``.
    """
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


def summary_lines(
    *,
    mahuron: dict[str, Any],
    mahuron_range: list[str] | None,
    burden: dict[str, Any],
    involvement: float | None,
    plan: DebulkingPlan | None,
    achievable: float | None,
    lower_bound: float | None,
    threshold: float | None,
    basis: str,
    telv: float | None,
    non_tumorous: float | None = None,
    cloyd: dict[str, Any],
    grade: dict[str, Any],
    staged: dict[str, Any] | None,
    debulking: Any,
) -> list[str]:
    """Short lines for the console summary of one assessment.

    Parameters
    ----------
    mahuron, burden, cloyd, grade : dict
        The decisions of :mod:`netlm_imaging.classify.classifications`.
    mahuron_range : list of str or None
        The Mahuron types a missing segment map or liver condition leaves open.
    involvement : float or None
        Hepatic involvement in percent.
    plan : DebulkingPlan or None
    achievable, lower_bound : float or None
        The achievable debulking percentage, or its lower bound without a segment map.
    threshold : float or None
        The FLR threshold percentage, on ``basis`` (None: no threshold for the liver condition; then no plan).
    basis : str
    telv : float or None
        Total estimated liver volume in mL.
    non_tumorous : float or None
        Non-tumorous liver volume in mL (the FLR percentage's denominator when ``basis`` is
        ``"non_tumorous"``).
    staged : dict or None
        The staged-strategies block.
    debulking : mapping
        The rules' ``debulking`` table.

    Returns
    -------
    list of str
    """
    lines = []
    if mahuron["type"] is not None:
        lines.append(
            f"Mahuron type {mahuron['type']}"
            + (" (types 3-4: inferred reading, Figure 2 not verified)" if mahuron["inferred"] else "")
        )
    else:
        miss = ", ".join(mahuron["missing_inputs"]) or "not applicable"
        lines.append(
            f"Mahuron type: undetermined (missing {miss})" if mahuron["missing_inputs"] else "Mahuron type: n/a"
        )
    if involvement is not None:
        lines.append(
            f"Hepatic tumour burden {involvement:.1f}% ({burden['category']}; CLARINET {burden['clarinet_split']})"
        )
    if plan is not None:
        if basis == "non_tumorous":  # the percentage the threshold is on, not the sFLR of the TELV
            sflr = f" = {100.0 * plan.remnant_ml / non_tumorous:.1f}% of the non-tumorous liver" if non_tumorous else ""
        else:
            sflr = f", sFLR {100.0 * plan.remnant_ml / telv:.1f}%" if telv else ""
        if achievable is None:
            ok = "undetermined: lower bound without a segment map,"
        elif meets(achievable, debulking["threshold_percent"], debulking["comparator"]):
            ok = "meets"
        else:
            ok = "below: untreated lesions " + ",".join(str(k) for k in sorted(plan.untreated_reasons)) + ";"
        lines.append(
            f"Debulking plan: {describe_plan(plan)} -> {plan.debulking_percent_volume or 0.0:.1f}% by volume, "
            f"{plan.debulking_percent_count or 0.0:.1f}% by count ({ok} {debulking['threshold_percent']:g}%); "
            f"FLR {plan.remnant_ml:.0f} mL{sflr} (threshold {threshold:g}% of {basis})"
        )
        for lid in sorted(plan.untreated_reasons)[:_MAX_UNTREATED_LINES]:
            lines.append(f"Untreated lesion {lid}: {plan.untreated_reasons[lid]}")
        if len(plan.untreated_reasons) > _MAX_UNTREATED_LINES:
            rest = len(plan.untreated_reasons) - _MAX_UNTREATED_LINES
            lines.append(f"... and {rest} more untreated lesion(s) (report: remnant.resection_plan.lesion_treatments)")
    verdict = {True: "yes", False: "no", None: "undetermined"}[cloyd["resectable"]]
    if cloyd["resectable"] is False:
        verdict += " (" + "; ".join(cloyd["failed"]) + ")"
    elif cloyd["resectable"] is None and cloyd["missing_inputs"]:
        verdict += " (missing " + ", ".join(cloyd["missing_inputs"]) + ")"
    elif cloyd["resectable"] is None:  # nothing missing: no liver metastases to resect
        verdict = "n/a (no intrahepatic lesions)"
    lines.append(f"Cloyd resectable: {verdict}")
    if mahuron_range:
        why = []
        if lower_bound is not None:
            why.append(f"the segment map (at least {lower_bound:.1f}% debulking without resection)")
        if "liver_condition" in mahuron.get("missing_inputs", []):
            why.append("the liver condition (not given: give liver_condition)")
        lines.append(f"Mahuron type {' or '.join(mahuron_range)} depending on {' and '.join(why)}")
    if grade["conflict"]:
        lines.append(f"Grade conflict: {grade['rationale'][0]}")
    if staged is not None and (staged["needed"] or (staged["needed"] is None and staged.get("missing_inputs"))):
        lines.append("Staged strategies: " + staged["reason"])
    return lines
