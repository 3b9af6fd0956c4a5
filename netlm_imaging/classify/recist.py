"""RECIST 1.1 baseline assessment: organ, measurability, lymph nodes, targets (one implementation).

``netlm analyze`` (the report's ``recist_targets``) and ``netlm compare``
(the target sum of the follow-up comparison) both call
:func:`recist_assessment`, so one study always gets the same targets.
Rules (clinical_rules.md section 8, RECIST 1.1 [C]), thresholds from the
rules file's ``[recist]`` table:

- organ of a lesion: "liver" when intrahepatic; else the organ the input gives
  (``lesion.extra["organ"]``, or a lesion label naming a lymph node or one of
  the rules' ``organ_words``); else
  each extrahepatic lesion is its own organ, with a note;
- lymph nodes are one organ together ("lymph nodes") and are judged on their
  short axis: >= ``node_target_short_axis_mm`` (15) measurable / target,
  ``node_pathological_short_axis_mm`` (10) to < 15 non-target (pathological),
  < 10 normal (not a lesion);
- other lesions are measurable when their longest axial diameter is >=
  ``measurable_min_diameter_mm`` (10) on slices <= ``thin_slice_limit_mm``
  (5) thick, else >= ``thick_slice_min_multiple`` (2) x the slice thickness; the others are non-target;
- targets: at most ``max_targets_per_organ`` (2) per organ and ``max_targets`` (5)
  in all, "selected on the basis of their size" and "representative of all involved
  organs" (RECIST 1.1 [C]): every involved organ's largest measurable lesion first
  (largest first), then the organs' second lesions; the sum of diameters adds the
  longest diameters of non-nodal targets and the short axes of nodal ones.

Diameters are edge to edge (``*_edge_mm``: the voxel-centre distance plus one
voxel's extent along the measured direction) when the lesion carries them
(``diameter_method = "edge"``), so a 10 mm lesion measures 10 mm; lesions
built without them (hand-made ``Lesion`` objects) use the centre-to-centre
value and the record says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..measure.context import Lesion
from ..rules_data import default_section
from .rules import DIAMETER_REL_TOL, meets

__all__ = ["lesion_organ", "measurable_limit_mm", "recist_assessment"]

NODES_ORGAN = "lymph nodes"


def _is_node_name(text: str | None, node_words: Sequence[str]) -> bool:
    """Whether a label names a lymph node: a word of ``node_words`` in it.

    Words of up to 3 letters (the abbreviation "LN") must be a whole token of the label
    ("LN station 7", "ln_4R", "LNs"), not a part of another word; longer words may be
    part of one ("lymphadenopathy", "nodal").

    Examples
    --------
    >>> [_is_node_name(t, ["lymph", "node", "nodal", "ln"]) for t in ("LN station 7", "LNs", "kiln", "Nodal met")]
    [True, True, False, True]
    """
    if not text:
        return False
    low = str(text).lower()
    tokens = set(re.split(r"[^a-z]+", low))
    for word in (w.strip().lower() for w in node_words):
        if not word:
            continue
        if len(word) <= 3 and (word in tokens or word + "s" in tokens):
            return True
        if len(word) > 3 and word in low:
            return True
    return False


def _organ_of_label(label: str, organ_words: Sequence[str]) -> str | None:
    """The organ an ROI label names: the first ``organ_words`` entry with a word in it.

    An entry ``"lung|pulmonary"`` names the organ by its first word and also matches the others,
    so "pulmonary met" and "lung 2" are one organ (RECIST's 2 targets per organ).

    Examples
    --------
    >>> _organ_of_label("Pulmonary met 2", ["bone|osseous", "lung|pulmonary"]), _organ_of_label("x", ["lung"])
    ('lung', None)
    """
    text = label.lower()
    for entry in organ_words:
        words = [w.strip().lower() for w in entry.split("|") if w.strip()]
        if any(w in text for w in words):
            return words[0]
    return None


def lesion_organ(
    les: Lesion, organ_words: Sequence[str] = (), node_words: Sequence[str] | None = None
) -> tuple[str, bool, str | None]:
    """RECIST organ of a lesion, whether it is a lymph node, and a note when the organ is assumed.

    A label or organ containing one of ``node_words`` (rules ``recist.node_words``,
    the shipped ones when None) is a lymph node.

    Examples
    --------
    >>> les = Lesion(3, "extrahepatic", 1.0, 1, [0.0, 0.0, 0.0], 12.0, 8.0, 12.0, None, False, None)
    >>> lesion_organ(les)
    ('extrahepatic lesion 3', False, 'lesion 3: no organ given, counted as its own organ')
    >>> les.label = "Lung met 2"
    >>> lesion_organ(les, ["lung", "bone"])
    ('lung', False, None)
    """
    if les.location == "intrahepatic":
        return "liver", False, None
    nodes = list(default_section("recist")["node_words"] if node_words is None else node_words)
    organ = les.extra.get("organ")
    if organ is None and _is_node_name(les.label, nodes):
        organ = NODES_ORGAN
    if organ is None and les.label:
        organ = _organ_of_label(str(les.label), organ_words)
    if organ:
        if _is_node_name(str(organ), nodes):
            return NODES_ORGAN, True, None
        return str(organ), False, None
    return f"extrahepatic lesion {les.id}", False, f"lesion {les.id}: no organ given, counted as its own organ"


def measurable_limit_mm(slice_thickness_mm: float | None, recist: Mapping[str, Any]) -> float:
    """Smallest measurable longest diameter: the rules minimum, or 2 x the slice thickness on thick slices.

    Examples
    --------
    >>> r = {"measurable_min_diameter_mm": 10.0, "thin_slice_limit_mm": 5.0, "thick_slice_min_multiple": 2.0}
    >>> measurable_limit_mm(2.5, r), measurable_limit_mm(7.0, r), measurable_limit_mm(None, r)
    (10.0, 14.0, 10.0)
    """
    base = float(recist["measurable_min_diameter_mm"])
    if slice_thickness_mm is not None and slice_thickness_mm > float(recist["thin_slice_limit_mm"]):
        return max(base, float(recist["thick_slice_min_multiple"]) * float(slice_thickness_mm))
    return base


def _diameter(les: Lesion, which: str, method: str) -> tuple[float | None, str]:
    centre = les.longest_axial_diameter_mm if which == "long" else les.short_axis_diameter_mm
    if method == "edge":
        edge = les.longest_axial_diameter_edge_mm if which == "long" else les.short_axis_diameter_edge_mm
        if edge is not None:
            return float(edge), "edge"
    return (None if centre is None else float(centre)), "centre"


def _lesion_record(les: Lesion, recist: Mapping[str, Any], limit_mm: float) -> dict[str, Any]:
    organ, nodal, note = lesion_organ(les, list(recist["organ_words"]), list(recist["node_words"]))
    method = str(recist["diameter_method"])
    if nodal:
        d, used = _diameter(les, "short", method)
        target_min = float(recist["node_target_short_axis_mm"])
        path_min = float(recist["node_pathological_short_axis_mm"])
        if d is None:
            cat, why = "non_target", "lymph node without a short axis: non-target"
        elif meets(d, target_min, ">=", DIAMETER_REL_TOL):
            cat, why = "measurable", f"lymph node short axis {d:.1f} mm >= {target_min:g} mm: measurable"
        elif meets(d, path_min, ">=", DIAMETER_REL_TOL):
            cat = "non_target"
            why = f"lymph node short axis {d:.1f} mm in [{path_min:g}, {target_min:g}) mm: non-target"
        else:
            cat, why = "normal_node", f"lymph node short axis {d:.1f} mm < {path_min:g} mm: normal, not a lesion"
        axis = "short_axis"
    else:
        d, used = _diameter(les, "long", method)
        axis = "longest_axial"
        if d is not None and meets(d, limit_mm, ">=", DIAMETER_REL_TOL):
            cat, why = "measurable", f"longest diameter {d:.1f} mm >= {limit_mm:g} mm: measurable"
        else:
            cat = "non_target"
            why = f"longest diameter {0.0 if d is None else d:.1f} mm < {limit_mm:g} mm: non-measurable"
    return {
        "lesion_id": les.id,
        "organ": organ,
        "lymph_node": nodal,
        "category": cat,
        "diameter_mm": d,
        "diameter_axis": axis,
        "diameter_method": used,
        "reason": why,
        "note": note,
    }


def _choose_targets(
    by_organ: Mapping[str, list[dict[str, Any]]], per_organ: int, max_total: int
) -> list[dict[str, Any]]:
    """Targets "representative of all involved organs", chosen by size (RECIST 1.1 [C]).

    Round ``k`` offers the ``k``-th largest measurable lesion of every organ, largest first,
    until ``max_total``: each involved organ gets its largest lesion before any organ gets a
    second (so with more organs than places no organ is left out for a second lesion of
    another). Returned largest first.
    """
    ranked = {o: sorted(items, key=lambda r: (-r["diameter_mm"], r["lesion_id"])) for o, items in by_organ.items()}
    chosen: list[dict[str, Any]] = []
    for k in range(per_organ):
        offer = sorted((v[k] for v in ranked.values() if len(v) > k), key=lambda r: (-r["diameter_mm"], r["lesion_id"]))
        chosen += offer[: max(0, max_total - len(chosen))]
    return sorted(chosen, key=lambda r: (-r["diameter_mm"], r["lesion_id"]))


def recist_assessment(
    lesions: Sequence[Lesion], recist: Mapping[str, Any], slice_thickness_mm: float | None = None
) -> dict[str, Any]:
    """RECIST 1.1 baseline: per-lesion category, targets and the sum of diameters.

    Parameters
    ----------
    lesions : sequence of Lesion
    recist : Mapping
        ``rules["recist"]``.
    slice_thickness_mm : float, optional
        Spacing across the slices (the thick-slice measurability rule).

    Returns
    -------
    dict
        ``lesions`` (id -> record: organ, lymph_node, category in
        {"target", "measurable", "non_target", "normal_node"}, diameter_mm,
        reason), ``targets`` (records, largest first), ``sum_of_diameters_mm``
        (None without targets), ``measurable_limit_mm``, ``method``,
        ``rationale``.
    """
    limit = measurable_limit_mm(slice_thickness_mm, recist)
    per_organ = int(recist["max_targets_per_organ"])
    max_total = int(recist["max_targets"])
    records = {les.id: _lesion_record(les, recist, limit) for les in lesions}
    by_organ: dict[str, list[dict[str, Any]]] = {}
    for rec in records.values():
        if rec["category"] == "measurable":
            by_organ.setdefault(rec["organ"], []).append(rec)
    targets = _choose_targets(by_organ, per_organ, max_total)
    for rec in targets:
        rec["category"] = "target"
    total = float(sum(r["diameter_mm"] for r in targets))
    n_meas = sum(len(v) for v in by_organ.values())
    notes = sorted({r["note"] for r in records.values() if r["note"]})
    # without lesions the method is the one the rules would have used
    methods = sorted({r["diameter_method"] for r in records.values()} or {str(recist["diameter_method"])})
    method = (
        "diameters edge to edge (voxel-centre distance + one voxel along the measured direction)"
        if methods == ["edge"]
        else f"diameters: {', '.join(methods)} (centre = between voxel centres)"
    )
    rationale = [
        f"RECIST 1.1: {n_meas} measurable lesion(s) (non-nodal >= {limit:g} mm, nodes short axis >= "
        f"{float(recist['node_target_short_axis_mm']):g} mm), {len(targets)} target(s) (max {max_total}, "
        f"{per_organ} per organ; lymph nodes are one organ), sum of diameters {total:.1f} mm; {method}",
        *notes,
    ]
    return {
        "lesions": records,
        "targets": targets,
        "sum_of_diameters_mm": total if targets else None,
        "measurable_limit_mm": limit,
        "method": method,
        "rationale": rationale,
    }
