"""Published NETLM classifications applied to measured numbers, with rationale.

Each function returns a dict with the decision, ``rationale`` (strings that
quote the numbers and the rule) and ``missing_inputs`` (names of the inputs
that would decide it; never a guess). Thresholds come from the rules file;
sources and confidence tags are in ``default_rules.toml`` and
clinical_rules.md:

- :func:`mahuron_type` -- Mahuron 2023 types 1-4 (section 1; types 3-4 by the
  project's inferred reading, marked as such);
- :func:`burden_category` -- hepatic tumour burden bins and the CLARINET
  <=25 / >25 split (section 5);
- :func:`cloyd_resectability` -- Cloyd 2020's five resection criteria (section 3);
- :func:`frilling_type` -- Frilling 2009 growth pattern I/II/III (section 2, wording [U]);
- :func:`recist_targets` -- RECIST 1.1 target lesions and sum of diameters (section 8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..measure.context import Lesion
from .clinical import ClinicalInputs
from .rules import meets

__all__ = ["burden_category", "cloyd_resectability", "frilling_type", "mahuron_type", "recist_targets"]


def burden_category(involvement_percent: float | None, burden: Mapping[str, Any]) -> dict[str, Any]:
    """Hepatic tumour burden bin and CLARINET split.

    Parameters
    ----------
    involvement_percent : float or None
        100 x intrahepatic tumour / total liver; None without a liver mask.
    burden : Mapping
        ``rules["burden"]``.

    Returns
    -------
    dict
        ``category``, ``clarinet_split`` ("<=25" / ">25" style), ``rationale``, ``missing_inputs``.
    """
    if involvement_percent is None:
        return {
            "category": None,
            "clarinet_split": None,
            "missing_inputs": ["liver mask"],
            "rationale": ["no liver mask: hepatic tumour burden cannot be computed"],
        }
    edges = burden["bin_upper_edges_percent"]
    labels = burden["bin_labels"]
    idx = next((i for i, e in enumerate(edges) if involvement_percent <= e), len(edges))
    split = float(burden["clarinet_split_percent"])
    clarinet = f"<={split:g}" if involvement_percent <= split else f">{split:g}"
    return {
        "category": labels[idx],
        "clarinet_split": clarinet,
        "missing_inputs": [],
        "rationale": [
            f"hepatic tumour burden {involvement_percent:.2f}% of total liver volume -> category {labels[idx]} "
            f"(bins {labels}); CLARINET split {clarinet}% [C]; the 10% and 50% cut-offs are unconfirmed [U]"
        ],
    }


def mahuron_type(
    *,
    n_lesions: int,
    achievable_percent: float | None,
    achievable_missing: Sequence[str],
    symptoms: str | None,
    distribution: str | None,
    debulking: Mapping[str, Any],
    mahuron: Mapping[str, Any],
) -> dict[str, Any]:
    """Mahuron 2023 type from achievable debulking, lesion count and symptoms.

    Type 1: complete clearance achievable (achievable >= ``complete_clearance_percent``)
    and at most ``limited_max_lesions`` lesions. Type 2: the debulking threshold
    (70%) achievable but not type 1. Types 3/4 (inferred reading [U]/[D]):
    threshold not achievable and symptomatic (hormonal or bulk) / asymptomatic.

    Parameters
    ----------
    n_lesions : int
        Intrahepatic lesion count.
    achievable_percent : float or None
        Planner's achievable debulking (primary measure); None if not computable.
    achievable_missing : sequence of str
        Why ``achievable_percent`` is None.
    symptoms : str or None
    distribution : str or None
    debulking, mahuron : Mapping
        ``rules["debulking"]``, ``rules["mahuron"]``.

    Returns
    -------
    dict
        ``type`` ("1".."4" or None), ``inferred`` (True for 3/4), ``rationale``, ``missing_inputs``.
    """
    thr = float(debulking["threshold_percent"])
    comp = debulking["comparator"]
    measure = debulking["primary_measure"]
    if n_lesions == 0:
        return {
            "type": None,
            "inferred": False,
            "missing_inputs": [],
            "rationale": ["Mahuron type not applicable: no intrahepatic lesions"],
        }
    if achievable_percent is None:
        return {
            "type": None,
            "inferred": False,
            "missing_inputs": list(achievable_missing),
            "rationale": [
                f"Mahuron type undetermined: achievable debulking unknown (missing {', '.join(achievable_missing)})"
            ],
        }
    complete = float(mahuron["complete_clearance_percent"])
    limited = int(mahuron["limited_max_lesions"])
    head = f"achievable debulking {achievable_percent:.1f}% by {measure}"
    if meets(achievable_percent, complete, ">=") and n_lesions <= limited:
        return {
            "type": "1",
            "inferred": False,
            "missing_inputs": [],
            "rationale": [
                f"Mahuron type 1: {head} (complete clearance, >= {complete:g}%) with {n_lesions} lesion(s) "
                f"<= {limited} ('limited number' cut-off [D]) [C]"
            ],
        }
    if meets(achievable_percent, thr, comp):
        why = (
            f"complete clearance but {n_lesions} lesions > {limited}"
            if meets(achievable_percent, complete, ">=")
            else "not complete clearance"
        )
        return {
            "type": "2",
            "inferred": False,
            "missing_inputs": [],
            "rationale": [f"Mahuron type 2: {head} {comp} {thr:g}% threshold, {why} [C]"],
        }
    note = mahuron["types_3_4_inferred_note"]
    base = f"{head} does not reach {comp} {thr:g}%"
    extra = []
    if distribution == "unilobar":
        extra.append("note: disease is unilobar although type 3 describes extensive bilobar involvement")
    if symptoms is None:
        return {
            "type": None,
            "inferred": True,
            "missing_inputs": ["symptoms"],
            "rationale": [
                f"Mahuron type 3 or 4: {base}; symptoms not given, so type 3 (symptomatic) vs 4 "
                f"(asymptomatic) is undetermined ({note})",
                *extra,
            ],
        }
    if symptoms in ("hormonal", "bulk"):
        return {
            "type": "3",
            "inferred": True,
            "missing_inputs": [],
            "rationale": [f"Mahuron type 3: {base}; {symptoms} symptoms present ({note})", *extra],
        }
    return {
        "type": "4",
        "inferred": True,
        "missing_inputs": [],
        "rationale": [f"Mahuron type 4: {base}; no symptoms ({note})", *extra],
    }


def cloyd_resectability(
    *,
    clinical: ClinicalInputs | None,
    extrahepatic_lesions_seen: int,
    flr_adequate: bool | None,
    flr_missing: Sequence[str],
    achievable_percent: float | None,
    achievable_missing: Sequence[str],
    cloyd: Mapping[str, Any],
) -> dict[str, Any]:
    """Cloyd 2020 general indications for hepatic resection (all five must hold).

    Parameters
    ----------
    clinical : ClinicalInputs or None
    extrahepatic_lesions_seen : int
        Extrahepatic lesions in the segmentation (any -> criterion 3 fails).
    flr_adequate : bool or None
        Whether the planned remnant meets the FLR threshold.
    flr_missing : sequence of str
        Why ``flr_adequate`` is None.
    achievable_percent : float or None
        Achievable debulking (primary measure).
    achievable_missing : sequence of str
    cloyd : Mapping
        ``rules["cloyd"]``.

    Returns
    -------
    dict
        ``resectable`` (True only if all five hold, False if any fails, else
        None), ``criteria`` (name -> {value, met, missing_inputs}),
        ``rationale``, ``missing_inputs``.
    """
    c = clinical or ClinicalInputs()
    criteria: dict[str, dict[str, Any]] = {}
    max_ecog = int(cloyd["max_ecog"])
    ps = c.performance_status
    criteria["performance_status"] = {
        "value": ps,
        "met": None if ps is None else ps <= max_ecog,
        "missing_inputs": ["performance_status"] if ps is None else [],
        "rule": f"ECOG <= {max_ecog} [D] (acceptable for major liver surgery [C])",
    }
    grades = list(cloyd["allowed_grades"])
    criteria["grade"] = {
        "value": c.grade,
        "met": None if c.grade is None else c.grade in grades,
        "missing_inputs": ["grade"] if c.grade is None else [],
        "rule": f"grade in {grades} [C]",
    }
    if extrahepatic_lesions_seen:
        ehd: dict[str, Any] = {
            "value": True,
            "met": False,
            "missing_inputs": [],
            "rule": f"no extrahepatic disease [C]; {extrahepatic_lesions_seen} extrahepatic "
            "lesion(s) in the segmentation",
        }
    else:
        ehd_value = c.extrahepatic_disease
        ehd = {
            "value": ehd_value,
            "met": None if ehd_value is None else not ehd_value,
            "missing_inputs": ["extrahepatic_disease"] if ehd_value is None else [],
            "rule": "no extrahepatic disease [C] (from the clinical input; none segmented)",
        }
    criteria["no_extrahepatic_disease"] = ehd
    criteria["adequate_flr"] = {
        "value": flr_adequate,
        "met": flr_adequate,
        "missing_inputs": [] if flr_adequate is not None else list(flr_missing),
        "rule": "adequate FLR size [C] (function is not measured)",
    }
    thr = float(cloyd["resection_percent"])
    comp = cloyd["comparator"]
    criteria["resection_feasible"] = {
        "value": achievable_percent,
        "met": None if achievable_percent is None else meets(achievable_percent, thr, comp),
        "missing_inputs": list(achievable_missing) if achievable_percent is None else [],
        "rule": f"achievable resection {comp} {thr:g}% of metastases [C]",
    }
    mets = [v["met"] for v in criteria.values()]
    resectable = False if False in mets else (True if all(m is True for m in mets) else None)
    missing: list[str] = []
    for v in criteria.values():
        missing += [m for m in v["missing_inputs"] if m not in missing]
    parts = []
    for name, v in criteria.items():
        state = "unknown" if v["met"] is None else ("met" if v["met"] else "NOT met")
        val = f"{v['value']:.1f}" if isinstance(v["value"], float) else v["value"]
        parts.append(f"{name}={val} ({state})")
    verdict = {True: "resectable", False: "not resectable", None: "undetermined"}[resectable]
    return {
        "resectable": resectable,
        "criteria": criteria,
        "missing_inputs": missing if resectable is None else [],
        "rationale": [f"Cloyd 2020 criteria: {'; '.join(parts)} -> {verdict}"],
    }


def frilling_type(
    intrahepatic: Sequence[Lesion], distribution: str | None, frilling: Mapping[str, Any]
) -> dict[str, Any]:
    """Frilling 2009 growth pattern by the tool's operational reading ([U] wording).

    I = single lesion; II = several lesions with a dominant one (largest holds
    more than ``dominant_lesion_fraction`` of the tumour volume) or unilobar;
    III = several lesions in both hemilivers without a dominant one.
    """
    flag = "Frilling 2009 wording unverified [U]; operational reading [D]"
    n = len(intrahepatic)
    if n == 0:
        return {"type": None, "missing_inputs": [], "rationale": [f"Frilling type not applicable: no lesions ({flag})"]}
    if n == 1:
        return {"type": "I", "missing_inputs": [], "rationale": [f"Frilling type I: single lesion ({flag})"]}
    vols = sorted((les.volume_ml for les in intrahepatic), reverse=True)
    total = sum(vols)
    frac = vols[0] / total if total > 0 else 0.0
    need = float(frilling["dominant_lesion_fraction"])
    if frac > need:
        return {
            "type": "II",
            "missing_inputs": [],
            "rationale": [
                f"Frilling type II: {n} lesions, the largest holds {100 * frac:.1f}% > {100 * need:g}% of tumour "
                f"volume ({flag})"
            ],
        }
    if distribution == "unilobar":
        return {
            "type": "II",
            "missing_inputs": [],
            "rationale": [f"Frilling type II: {n} lesions confined to one hemiliver ({flag})"],
        }
    if distribution == "bilobar":
        return {
            "type": "III",
            "missing_inputs": [],
            "rationale": [
                f"Frilling type III: {n} bilobar lesions, largest only {100 * frac:.1f}% of tumour volume ({flag})"
            ],
        }
    return {
        "type": None,
        "missing_inputs": ["segment map"],
        "rationale": [
            f"Frilling type II or III undetermined: {n} lesions without a dominant one"
            f" and distribution unknown ({flag})"
        ],
    }


def _measurable(les: Lesion, min_mm: float) -> bool:
    if les.recist_measurable is not None:
        return bool(les.recist_measurable)
    return les.longest_axial_diameter_mm >= min_mm


def recist_targets(lesions: Sequence[Lesion], recist: Mapping[str, Any]) -> dict[str, Any]:
    """RECIST 1.1 target lesions: up to ``max_targets``, ``max_targets_per_organ`` per organ.

    Measurable lesions (``Lesion.recist_measurable``, or longest axial
    diameter >= 10 mm when unknown) are ranked by longest axial diameter.
    Organ: "liver" for intrahepatic lesions; extrahepatic lesions use
    ``lesion.extra["organ"]`` when given, else the one organ "extrahepatic".
    Lymph-node short-axis rules are not applied (nodes are not identified).
    """
    min_mm = float(recist["measurable_min_diameter_mm"])
    per_organ = int(recist["max_targets_per_organ"])
    max_total = int(recist["max_targets"])
    by_organ: dict[str, list[Lesion]] = {}
    for les in lesions:
        if not _measurable(les, min_mm):
            continue
        organ = "liver" if les.location == "intrahepatic" else str(les.extra.get("organ") or "extrahepatic")
        by_organ.setdefault(organ, []).append(les)
    candidates: list[tuple[str, Lesion]] = []
    for organ, items in by_organ.items():
        items.sort(key=lambda x: (-x.longest_axial_diameter_mm, x.id))
        candidates += [(organ, les) for les in items[:per_organ]]
    candidates.sort(key=lambda t: (-t[1].longest_axial_diameter_mm, t[1].id))
    chosen = candidates[:max_total]
    targets = [
        {"lesion_id": les.id, "organ": organ, "longest_axial_diameter_mm": les.longest_axial_diameter_mm}
        for organ, les in chosen
    ]
    total = float(sum(les.longest_axial_diameter_mm for _, les in chosen))
    n_meas = sum(len(v) for v in by_organ.values())
    return {
        "targets": targets,
        "sum_of_diameters_mm": total if targets else None,
        "missing_inputs": [],
        "rationale": [
            f"RECIST 1.1: {n_meas} measurable lesion(s) (>= {min_mm:g} mm), {len(targets)} target(s) "
            f"(max {max_total}, {per_organ} per organ), sum of diameters {total:.1f} mm"
        ],
    }
