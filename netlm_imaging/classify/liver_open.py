"""Decisions without a liver condition: kept only where a normal and an injured liver decide alike.

Without ``liver_condition`` the FLR threshold is not known (clinical_rules.md section 6: 20 % of the
TELV for a normal liver, up to 40 % for cirrhosis). :mod:`~netlm_imaging.classify.surgical` decides on
the normal liver's threshold and on the most demanding condition's; these helpers keep a verdict where
both agree and otherwise leave it undetermined with ``liver_condition`` missing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cloyd_either_liver", "either_liver"]


def either_liver(
    mah: dict[str, Any], mah_range: list[str] | None, injured: dict[str, Any], i_range: list[str] | None, thr: float
) -> tuple[dict[str, Any], list[str] | None]:
    """The Mahuron type a normal and an injured liver share; else none, with the types it could be."""
    if mah["type"] == injured["type"] and mah_range == i_range:
        return mah, mah_range
    normal_types = mah_range or [mah["type"] or "3 or 4"]  # no type, no range: below 70 %, symptoms unknown
    injured_types = i_range or [injured["type"] or "3 or 4"]
    found = sorted({*normal_types, *injured_types})
    out = {**mah, "type": None, "inferred": False}
    out["missing_inputs"] = [*mah["missing_inputs"], "liver_condition"]
    out["rationale"] = [
        *mah["rationale"],
        f"Mahuron type {' or '.join(found)} depending on the liver condition (not given): type "
        f"{' or '.join(normal_types)} with a normal liver, {' or '.join(injured_types)} with an injured one "
        f"(FLR threshold {thr:g}%)",
    ]
    return out, found


def cloyd_either_liver(cloyd: dict[str, Any], injured: dict[str, Any], thr: float) -> None:
    """Cloyd's verdict stays only where an injured liver's agrees; else undetermined, ``liver_condition`` missing.

    So does each criterion: an FLR adequate or a resection feasible with a normal liver but not with an
    injured one is ``met`` None (its value too) with ``liver_condition`` missing; all five read "met"
    beside a verdict left undetermined for the liver condition.
    """
    for name, crit in cloyd["criteria"].items():
        other = injured["criteria"][name]
        if crit["met"] is None or other["met"] == crit["met"]:
            continue
        shown = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in (crit["value"], other["value"])]
        crit["rule"] += (
            f"; {shown[0]} with a normal liver, {shown[1]} with an injured one (FLR threshold "
            f"{thr:g}%): undetermined without liver_condition"
        )
        crit["value"], crit["met"] = None, None
        crit["missing_inputs"] = [*crit["missing_inputs"], "liver_condition"]
    if injured["resectable"] == cloyd["resectable"]:
        return
    said = {True: "resectable", False: "not resectable", None: "undetermined"}
    cloyd["rationale"].append(
        f"{said[cloyd['resectable']]} with a normal liver, {said[injured['resectable']]} with an injured one "
        f"(FLR threshold {thr:g}%): undetermined without liver_condition"
    )
    cloyd["resectable"] = None
    cloyd["missing_inputs"] = [*cloyd["missing_inputs"], "liver_condition"]
