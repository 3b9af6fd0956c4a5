"""FLR adequacy: each resection's future liver remnant against the threshold of the liver's condition.

The threshold and its denominator come from :func:`netlm_imaging.classify.body_size.flr_basis`
(clinical_rules.md section 6). Without a liver condition, :func:`injured_liver_basis` gives the
most demanding condition's basis: a verdict stands only where both decide alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..measure.segments import SegmentTable
from .anatomy import remnant_check
from .body_size import FlrBasis, standardized
from .rules import Rules, meets

__all__ = ["absent_segment_warnings", "flr_adequacy", "injured_liver_basis", "standard_resection_rows"]


def flr_adequacy(
    measured: Mapping[str, Any],
    *,
    threshold_percent: float | None,
    denominator: str = "telv",
    comparator: str = ">=",
    needs_telv: bool | None = None,
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
    needs_telv : bool, optional
        Whether a missing TELV (height/weight) is a missing input; default: ``denominator == "telv"``.
        A fallback onto the non-tumorous liver still names it when the rules' own denominator is the TELV.

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
    needed = denominator == "telv" if needs_telv is None else needs_telv
    return {
        "threshold_percent": threshold_percent,
        "adequacy_basis": denominator,
        "adequate": adequate,
        "missing_inputs": ["height/weight"] if needed and not telv else [],
    }


def standard_resection_rows(
    table: SegmentTable,
    remnants: Sequence[Mapping[str, Any]],
    fb: FlrBasis,
    rules: Rules,
    injured: FlrBasis | None = None,
) -> list[dict[str, Any]]:
    """Each measured resection's standardized FLR, its adequacy and its anatomy check.

    Judged as the plan is: on ``fb.basis`` with its threshold (the fallback denominator's, when
    the rules' one is missing and a sourced threshold exists for it; its missing input is still named).
    With ``injured`` (no liver condition given: :func:`injured_liver_basis`) a verdict that the most
    demanding condition's threshold would reverse is None, with ``liver_condition`` missing.
    """
    flr_rules = rules["flr"]
    kw = {"comparator": flr_rules["comparator"], "needs_telv": flr_rules["denominator"] == "telv"}
    std = [
        {**r, **flr_adequacy(r, threshold_percent=fb.threshold_percent, denominator=fb.basis, **kw)}
        for r in (standardized(r, fb.telv_ml) for r in remnants)
    ]
    present = [k for k in range(1, 9) if table.liver_voxels[k] > 0]
    no_threshold = [m for m in fb.missing_inputs if m.startswith("flr.")] if fb.threshold_percent is None else []
    for r in std:
        r["missing_inputs"] = [*r["missing_inputs"], *no_threshold]
        if injured is not None and r["adequate"] is not None:
            strict = flr_adequacy(r, threshold_percent=injured.threshold_percent, denominator=injured.basis, **kw)
            if strict["adequate"] != r["adequate"]:  # adequate with a normal liver, not with an injured one
                r["adequate"] = None
                r["missing_inputs"] = [*r["missing_inputs"], "liver_condition"]
        feasible, why = remnant_check(set(present) - set(r["removed_segments"]), rules["anatomy"], present)
        ok: bool | None = feasible
        absent = [k for k in range(1, 9) if k not in present and k not in r["removed_segments"]]
        if absent and remnant_check(set(range(1, 9)) - set(r["removed_segments"]), rules["anatomy"])[0] != ok:
            # the verdict turns on segments the map does not label (e.g. no segment 1: 4 and 7 seem apart)
            why += (
                f"; undetermined: with segment(s) {','.join(map(str, absent))}, absent from the map, the remnant "
                f"would {'not ' if ok else ''}be possible"
            )
            ok = None
        r["anatomically_feasible"] = ok
        r["anatomy_check"] = why
    return std


def absent_segment_warnings(rows: Sequence[Mapping[str, Any]], table: SegmentTable) -> list[str]:
    """One warning per user resection (``--resection``) that removes segments the segment map lacks.

    Nothing of an absent segment can be removed or measured: the row's FLR is that of the labelled
    segments it keeps, the same as without the absent ones, so the plan the user named is not the one
    evaluated (e.g. a caudate resection on a map that labels no segment 1).
    """
    out = []
    for r in rows:
        if not str(r.get("name", "")).startswith("custom:"):
            continue
        absent = [s for s in r["removed_segments"] if table.liver_voxels[s] == 0]
        if absent:
            kept = [s for s in r["removed_segments"] if s not in absent]
            what = f"only segment(s) {','.join(map(str, kept))} are removed" if kept else "it removes no liver"
            out.append(
                f"--resection {','.join(map(str, r['removed_segments']))}: segment(s) {','.join(map(str, absent))} "
                f"absent from the Couinaud segment map (no liver voxel labelled): {what}; its FLR counts only "
                "the labelled segments it keeps"
            )
    return out


def injured_liver_basis(fb: FlrBasis, rules: Rules) -> FlrBasis | None:
    """Without a liver condition, the FLR basis of the most demanding one on the same denominator.

    None when the condition is given, nothing was judged, or no condition of the rules' table asks
    more than a normal liver. A decision of the study holds only if it is the same on both bases
    (clinical_rules.md section 6: the threshold depends on the liver's condition).
    """
    if fb.liver_condition is not None or fb.denominator_ml is None or fb.threshold_percent is None:
        return None
    key = "threshold_percent" if fb.basis == "telv" else "non_tumorous_threshold_percent"
    strictest = max(float(v) for v in rules["flr"][key].values())
    if strictest <= fb.threshold_percent:
        return None
    return replace(fb, threshold_percent=strictest)
