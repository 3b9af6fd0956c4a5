"""Published NETLM classifications applied to measured numbers, with rationale.

Why one module (~600 lines): the Mahuron type, the burden category, Cloyd resectability and the WHO
grade are one table of published decisions that share their missing-input and rationale conventions.

Each function returns a dict with the decision, ``rationale`` (strings that
quote the numbers and the rule) and ``missing_inputs`` (names of the inputs
that would decide it; never a guess). Thresholds come from the rules file;
sources and confidence tags are in ``default_rules.toml`` and
clinical_rules.md:

- :func:`who_grade` -- WHO 2019 grade from the reported grade, Ki-67 and
  differentiation (conflicts flagged, the higher grade used, NEC apart);
- :func:`mahuron_type` -- Mahuron 2023 types 1-4 (section 1; types 3-4 by the
  project's inferred reading, marked as such);
- :func:`burden_category` -- hepatic tumour burden bins and the CLARINET
  <=25 / >25 split (section 5);
- :func:`cloyd_resectability` -- Cloyd 2020's five resection criteria (section 3);
- :func:`frilling_type` -- Frilling 2009 growth pattern I/II/III (section 2, wording [U]);
- :func:`recist_targets` -- RECIST 1.1 target lesions and sum of diameters
  (section 8), through :mod:`netlm_imaging.classify.recist`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..clinical.inputs import ClinicalInputs
from ..clinical.text import Interval, parse_interval
from ..measure.context import Lesion
from .recist import recist_assessment
from .rules import meets

__all__ = [
    "burden_category",
    "cloyd_resectability",
    "frilling_type",
    "mahuron_type",
    "primary_tumour_advice",
    "recist_targets",
    "who_grade",
]


def _ki67_grade(ki67: float, grade_rules: Mapping[str, Any]) -> int:
    if ki67 > float(grade_rules["ki67_g3_above_percent"]):
        return 3
    return 2 if ki67 >= float(grade_rules["ki67_g2_min_percent"]) else 1


def _ki67_range_grades(bounds: Interval, grade_rules: Mapping[str, Any]) -> tuple[int, int]:
    """The lowest and highest WHO grade of the Ki-67 values within ``bounds`` (G3 above g3, G2 from g2).

    Examples
    --------
    >>> r = {"ki67_g2_min_percent": 3.0, "ki67_g3_above_percent": 20.0}
    >>> [_ki67_range_grades(parse_interval(t), r) for t in ("<3", "<=3", "<5", ">20", ">=20", "1-2")]
    [(1, 1), (1, 2), (1, 2), (3, 3), (2, 3), (1, 1)]
    """
    g2, g3 = float(grade_rules["ki67_g2_min_percent"]), float(grade_rules["ki67_g3_above_percent"])
    if bounds.low_open:  # values just above low
        lowest = 3 if bounds.low >= g3 else (2 if bounds.low >= g2 else 1)
    else:
        lowest = _ki67_grade(bounds.low, grade_rules)
    if bounds.high_open:  # values just below high
        highest = 3 if bounds.high > g3 else (2 if bounds.high > g2 else 1)
    else:
        highest = _ki67_grade(bounds.high, grade_rules)
    return lowest, highest


def _ki67_span(c: ClinicalInputs, grade_rules: Mapping[str, Any], why: list[str]) -> tuple[int, int] | None:
    """The lowest and highest WHO grade the Ki-67 (a value, else bounds) gives, its reading added to ``why``.

    None when no Ki-67 is given.
    """
    src = grade_rules.get("source", "WHO 2019")
    cuts = f"G1 < {float(grade_rules['ki67_g2_min_percent']):g}%, G3 > {float(grade_rules['ki67_g3_above_percent']):g}%"
    if c.ki67_percent is not None:
        lo = _ki67_grade(c.ki67_percent, grade_rules)
        why.append(f"Ki-67 {c.ki67_percent:g}% -> G{lo} ({cuts}; {src})")
        return lo, lo
    bounds = parse_interval(c.ki67_range) if c.ki67_range else None
    if bounds is None:
        return None
    lo, hi = _ki67_range_grades(bounds, grade_rules)
    span = f"G{lo}" if lo == hi else f"G{lo} or G{hi}: undetermined"
    why.append(f"Ki-67 {c.ki67_range}% -> {span} ({cuts}; {src})")
    return lo, hi


def who_grade(clinical: ClinicalInputs | None, grade_rules: Mapping[str, Any]) -> dict[str, Any]:
    """WHO 2019 grade from the reported grade, the Ki-67 index and the differentiation.

    Ki-67 < ``ki67_g2_min_percent`` (3) is G1, up to ``ki67_g3_above_percent``
    (20) G2, above it G3 [C]. When a reported grade and the Ki-67 grade
    disagree the conflict is flagged and the higher grade is used (WHO: the
    index placing the tumour in the higher grade decides [C]). A poorly
    differentiated tumour is a neuroendocrine carcinoma (NEC): high grade,
    ``category`` "NEC", never "NET G3".

    Returns
    -------
    dict
        ``grade`` (1-3 or None), ``category`` ("NET G1".."NET G3", "NEC" or
        None: no grade, or G3 without the differentiation, which alone separates a NET G3
        from a NEC), ``ki67_grade``, ``reported_grade``, ``conflict`` (bool),
        ``rationale``, ``missing_inputs``.

    Examples
    --------
    >>> rules = {"ki67_g2_min_percent": 3.0, "ki67_g3_above_percent": 20.0}
    >>> g = who_grade(ClinicalInputs(grade=1, ki67_percent=25.0, differentiation="well"), rules)
    >>> g["grade"], g["category"], g["conflict"]
    (3, 'NET G3', True)
    >>> who_grade(ClinicalInputs(ki67_percent=25.0), rules)["missing_inputs"]
    ['differentiation']
    """
    c = clinical or ClinicalInputs()
    ki = c.ki67_percent
    rep = c.grade
    why: list[str] = []
    span = _ki67_span(c, grade_rules, why)
    kg = span[0] if span is not None and span[0] == span[1] else None
    if span is None:
        conflict, grade = False, rep
    else:
        lo, hi = span
        conflict = rep is not None and not lo <= rep <= hi
        # WHO: the index placing the tumour in the higher grade decides; decided only when every
        # Ki-67 value within the bounds gives the same answer
        options = {max(g, rep or 0) for g in range(lo, hi + 1)}
        grade = options.pop() if len(options) == 1 else None
    if conflict:
        higher = f"the higher grade G{grade} is used" if grade is not None else "the higher grade is undetermined"
        ki_g = f"{kg}" if kg is not None else f"G{lo}-G{hi}"
        why.append(f"CONFLICT: reported grade {rep} vs Ki-67 grade {ki_g}; {higher}")
    elif rep is not None:
        why.append(f"reported grade {rep}")
    poor = c.differentiation == "poor"
    if poor:
        category: str | None = "NEC"
        if grade is not None and grade < 3:
            why.append(
                f"poorly differentiated: neuroendocrine carcinoma (NEC), high grade by definition although "
                f"grade/Ki-67 give G{grade}; conflict flagged"
            )
            conflict = True
        else:
            why.append("poorly differentiated: neuroendocrine carcinoma (NEC), high grade; not a NET")
        grade = 3
    elif grade is None:
        category = None
    elif grade == 3 and c.differentiation is None:
        # Ki-67 > 20 % is both NET G3 and NEC territory: only the differentiation tells them apart (WHO 2019)
        category = None
        why.append(
            "G3 without the differentiation: NET G3 (well differentiated) or NEC (poorly differentiated) "
            "undetermined; give differentiation"
        )
    else:
        category = f"NET G{grade}"
    missing = [] if grade is not None else ["grade or ki67_percent"]
    if grade == 3 and category is None:
        missing.append("differentiation")
    if grade is None:
        why.append(
            "grade undetermined: the Ki-67 bounds allow more than one grade"
            if span is not None
            else "grade unknown: neither grade, Ki-67 nor a poor differentiation given"
        )
    return {
        "grade": grade,
        "category": category,
        "reported_grade": rep,
        "ki67_percent": ki,
        **({"ki67_range": c.ki67_range} if c.ki67_range else {}),
        "ki67_grade": kg,
        "differentiation": c.differentiation,
        "conflict": bool(conflict),
        "rationale": ["WHO grade: " + "; ".join(why)],
        "missing_inputs": missing,
    }


def primary_tumour_advice(
    mahuron_type: str | None, primary_resected: bool | None, primary: Mapping[str, Any]
) -> dict[str, Any]:
    """The primary-tumour advice Mahuron types 1-2 carry when the primary is still in place.

    Returns
    -------
    dict
        ``advice`` (str or None), ``missing_inputs`` and ``rationale``.
    """
    if mahuron_type not in ("1", "2"):
        return {"advice": None, "missing_inputs": [], "rationale": []}
    text = primary["type_1_advice"] if mahuron_type == "1" else primary["type_2_advice"]
    if primary_resected is None:
        return {
            "advice": None,
            "missing_inputs": ["primary_resected"],
            "rationale": [f"primary_resected not given: if the primary is in place, {text}"],
        }
    if primary_resected:
        return {"advice": None, "missing_inputs": [], "rationale": ["primary tumour already resected"]}
    return {"advice": text, "missing_inputs": [], "rationale": [f"Mahuron type {mahuron_type}: {text}"]}


def burden_category(
    involvement_percent: float | None, burden: Mapping[str, Any], *, unknown_because: str = "liver mask"
) -> dict[str, Any]:
    """Hepatic tumour burden bin and CLARINET split.

    Parameters
    ----------
    involvement_percent : float or None
        100 x intrahepatic tumour / total liver; None without a liver mask or a lesion
        segmentation.
    burden : Mapping
        ``rules["burden"]``.
    unknown_because : str
        The missing input named when ``involvement_percent`` is None.

    Returns
    -------
    dict
        ``category``, ``clarinet_split`` ("<=25" / ">25" style), ``rationale``, ``missing_inputs``.
    """
    if involvement_percent is None:
        return {
            "category": None,
            "clarinet_split": None,
            "missing_inputs": [unknown_because],
            "rationale": [f"no {unknown_because}: hepatic tumour burden cannot be computed"],
        }
    edges = burden["bin_upper_edges_percent"]
    labels = burden["bin_labels"]
    # "<= edge" within float noise: 40 of 160 voxels of 0.064 mL is 100 x 2.56 / 10.24 = 25.000000000000004 %
    idx = next((i for i, e in enumerate(edges) if not meets(involvement_percent, e, ">")), len(edges))
    split = float(burden["clarinet_split_percent"])
    clarinet = f">{split:g}" if meets(involvement_percent, split, ">") else f"<={split:g}"
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
    lesions_segmented: bool = True,
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
    lesions_segmented : bool
        False when the inputs hold no lesion segmentation: zero lesions then leave the type
        undetermined (missing ``lesion segmentation``) instead of "not applicable".

    Returns
    -------
    dict
        ``type`` ("1".."4" or None), ``inferred`` (True for 3/4), ``rationale``, ``missing_inputs``.
    """
    thr = float(debulking["threshold_percent"])
    comp = debulking["comparator"]
    measure = debulking["primary_measure"]
    if n_lesions == 0 and not lesions_segmented:
        return {
            "type": None,
            "inferred": False,
            "missing_inputs": ["lesion segmentation"],
            "rationale": ["Mahuron type undetermined: the lesions were not segmented"],
        }
    if n_lesions == 0:
        return {
            "type": None,
            "inferred": False,
            "missing_inputs": [],
            "rationale": ["Mahuron type not applicable: no intrahepatic lesions"],
        }
    if achievable_percent is None:  # symptoms decide 3 vs 4 should it be below the threshold: name them too
        return {
            "type": None,
            "inferred": False,
            "missing_inputs": [*achievable_missing, *(["symptoms"] if symptoms is None else [])],
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
    if symptoms in ("hormonal", "bulk", "symptomatic"):
        kind = "symptoms (kind not stated)" if symptoms == "symptomatic" else f"{symptoms} symptoms"
        return {
            "type": "3",
            "inferred": True,
            "missing_inputs": [],
            "rationale": [f"Mahuron type 3: {base}; {kind} present ({note})", *extra],
        }
    return {
        "type": "4",
        "inferred": True,
        "missing_inputs": [],
        "rationale": [f"Mahuron type 4: {base}; no symptoms ({note})", *extra],
    }


def _value_text(value: Any, threshold: float) -> Any:
    """A criterion's value as the rationale and the console quote it: a percentage to 0.1, or to
    more digits when 0.1 would print the threshold itself (89.96 is not "90.0 NOT met").

    Examples
    --------
    >>> _value_text(83.93865458347855, 90.0), _value_text(89.96, 90.0), _value_text(True, 90.0)
    ('83.9', '89.96', True)
    """
    if not isinstance(value, float):
        return value
    text = f"{value:.1f}"
    return text if float(text) != threshold or value == threshold else f"{value:.6g}"


def cloyd_resectability(
    *,
    clinical: ClinicalInputs | None,
    extrahepatic_lesions_seen: int,
    flr_adequate: bool | None,
    flr_missing: Sequence[str],
    achievable_percent: float | None,
    achievable_missing: Sequence[str],
    cloyd: Mapping[str, Any],
    grade: Mapping[str, Any] | None = None,
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
    grade : Mapping, optional
        :func:`who_grade` result (else the reported grade alone is used).

    Returns
    -------
    dict
        ``resectable`` (True only if all five hold, False if any fails, else
        None), ``criteria`` (name -> {value, met, missing_inputs}),
        ``rationale``, ``missing_inputs``, ``failed`` (one reason per
        criterion NOT met).
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
    g = grade if grade is not None else {"grade": c.grade, "category": None, "conflict": False}
    gv = g["grade"]
    nec = g.get("category") == "NEC"
    criteria["grade"] = {
        "value": gv,
        "category": g.get("category"),
        "conflict": g.get("conflict", False),
        "met": None if gv is None else (gv in grades and not nec),
        "missing_inputs": ["grade or ki67_percent"] if gv is None else [],
        "rule": f"WHO grade in {grades} [C] (from the reported grade and Ki-67, the higher one; a NEC never qualifies)",
    }
    # "value" is the criterion's own statement ("no extrahepatic disease": true / false), so that
    # {value: false, met: false} reads right; the finding itself is in "extrahepatic_disease"
    if extrahepatic_lesions_seen:
        ehd: dict[str, Any] = {
            "value": False,
            "extrahepatic_disease": True,
            "met": False,
            "missing_inputs": [],
            "rule": f"no extrahepatic disease [C]; {extrahepatic_lesions_seen} extrahepatic "
            "lesion(s) in the segmentation"
            + (
                " although the clinical input says extrahepatic_disease = false (check the segmentation)"
                if c.extrahepatic_disease is False
                else ""
            ),
        }
    else:
        ehd_value = c.extrahepatic_disease
        ehd = {
            "value": None if ehd_value is None else not ehd_value,
            "extrahepatic_disease": ehd_value,
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
    shown = {name: _value_text(v["value"], thr) for name, v in criteria.items()}
    parts = []
    for name, v in criteria.items():
        state = "unknown" if v["met"] is None else ("met" if v["met"] else "NOT met")
        parts.append(f"{name}={shown[name]} ({state})")
    verdict = {True: "resectable", False: "not resectable", None: "undetermined"}[resectable]
    failed = [f"{name}={shown[name]} not met: {v['rule']}" for name, v in criteria.items() if v["met"] is False]
    return {
        "resectable": resectable,
        "criteria": criteria,
        "missing_inputs": missing if resectable is None else [],
        "failed": failed,
        "rationale": [f"Cloyd 2020 criteria: {'; '.join(parts)} -> {verdict}"],
    }


def frilling_type(
    intrahepatic: Sequence[Lesion],
    distribution: str | None,
    frilling: Mapping[str, Any],
    involvement_percent: float | None = None,
    distribution_missing: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Frilling 2009 growth pattern by the quoted wording ([U]) read operationally ([D]).

    I = single metastasis. II = "isolated metastatic bulk with smaller
    deposits, involving both lobes": bilobar and the largest lesion holds more
    than ``dominant_lesion_fraction`` of the tumour volume. III = "disseminated
    spread, both lobes ... little normal parenchyma": bilobar, no dominant
    lesion and involvement >= ``diffuse_min_involvement_percent``. Multiple
    unilobar lesions, and bilobar disease fitting neither, get no type with
    the reason (the wording does not cover them). ``distribution_missing`` is what the distribution
    lacked (:func:`~netlm_imaging.classify.distribution.lesion_distribution`'s ``missing_inputs``),
    named when it is unknown; default the segment map.
    """
    flag = "Frilling 2009 wording unverified [U]; operational reading [D]"
    n = len(intrahepatic)

    def out(t: str | None, why: str, missing: Sequence[str] = ()) -> dict[str, Any]:
        return {"type": t, "missing_inputs": list(missing), "rationale": [f"{why} ({flag})"]}

    if n == 0:
        return out(None, "Frilling type not applicable: no lesions")
    if n == 1:
        return out("I", "Frilling type I: single metastasis")
    if distribution is None or distribution == "unknown":
        lacking = list(distribution_missing or ["segment map"])
        return out(None, f"Frilling type II or III undetermined: {n} lesions, distribution unknown", lacking)
    if distribution == "unilobar":
        return out(
            None,
            f"no Frilling type: {n} lesions confined to one hemiliver; types II and III both involve both lobes",
        )
    vols = sorted((les.volume_ml for les in intrahepatic), reverse=True)
    total = sum(vols)
    frac = vols[0] / total if total > 0 else 0.0
    need = float(frilling["dominant_lesion_fraction"])
    if meets(frac, need, ">"):  # the edges within float noise (the quotients of voxel volumes)
        return out(
            "II",
            f"Frilling type II: {n} bilobar lesions, a dominant bulk holding {100 * frac:.1f}% > {100 * need:g}% "
            "of tumour volume with smaller deposits",
        )
    diffuse = float(frilling["diffuse_min_involvement_percent"])
    if involvement_percent is None:
        return out(
            None,
            f"Frilling type III undetermined: {n} bilobar lesions without a dominant one, involvement unknown",
            ["liver mask"],
        )
    if meets(involvement_percent, diffuse, ">="):
        return out(
            "III",
            f"Frilling type III: {n} bilobar lesions without a dominant one, involvement "
            f"{involvement_percent:.1f}% >= {diffuse:g}% (little normal parenchyma)",
        )
    return out(
        None,
        f"no Frilling type: {n} bilobar lesions without a dominant bulk (largest {100 * frac:.1f}%) and "
        f"involvement {involvement_percent:.1f}% < {diffuse:g}%: neither II (bulk) nor III (diffuse)",
    )


def recist_targets(
    lesions: Sequence[Lesion], recist: Mapping[str, Any], slice_thickness_mm: float | None = None
) -> dict[str, Any]:
    """RECIST 1.1 targets for the report (see :func:`netlm_imaging.classify.recist.recist_assessment`).

    Returns
    -------
    dict
        ``targets`` (lesion_id, organ, lymph_node, diameter_mm, diameter_axis,
        diameter_method, longest_axial_diameter_mm), ``sum_of_diameters_mm``,
        ``lesions`` (id -> per-lesion record), ``method``, ``rationale``,
        ``missing_inputs``.
    """
    a = recist_assessment(lesions, recist, slice_thickness_mm)
    by_id = {les.id: les for les in lesions}
    targets = [
        {
            "lesion_id": r["lesion_id"],
            "organ": r["organ"],
            "lymph_node": r["lymph_node"],
            "diameter_mm": r["diameter_mm"],
            "diameter_axis": r["diameter_axis"],
            "diameter_method": r["diameter_method"],
            "longest_axial_diameter_mm": by_id[r["lesion_id"]].longest_axial_diameter_mm,
        }
        for r in a["targets"]
    ]
    return {
        "targets": targets,
        "sum_of_diameters_mm": a["sum_of_diameters_mm"],
        "lesions": a["lesions"],
        "measurable_limit_mm": a["measurable_limit_mm"],
        "method": a["method"],
        "missing_inputs": [],
        "rationale": a["rationale"],
    }
