"""What the plan says about the vessels next to the lesions it treats: warnings and notes, never a change.

The tool cannot compute surgical feasibility from vascular involvement (clinical_rules.md section 2,
"What it cannot compute"): the measured gaps (:mod:`netlm_imaging.measure.vessels`) are put before the
surgeon next to the plan, and the plan stays as planned.

- A lesion planned for ablation within ``planner.ablation_vessel_contact_mm`` of a vessel gets a
  warning naming the lesion, the vessel and the gap (the heat-sink effect of a vessel's flow on a
  thermal ablation) [D].
- A lesion the plan resects (segment resection or wedge / enucleation) within
  ``planner.resection_vessel_contact_mm`` of a named major vessel (portal vein, hepatic vein, IVC,
  hepatic artery) gets a note in the plan [D].

:func:`every_plan_messages` says the same of every plan the report states that names its lesions'
treatments: the tool's ``remnant.resection_plan``, each user resection's ``plan_with_sparing``
(``--resection``) and the clearing plan of staged strategies (``clearing_lesion_treatments``: the tool's
``classification.staged_strategies``, a user plan's ``plan_with_sparing.staged_strategies``). A warning of
another plan names it ("user plan 'Right hemihepatectomy' (segments 5+6+7+8): lesion 3 ..."); one
identical to the tool's plan's is not repeated: the tool's says which other plans it holds for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..segmentation import MAJOR_VESSELS

__all__ = ["PlanVesselMessages", "every_plan_messages", "vascular_plan_messages"]

_MAJOR = frozenset(name for name, _ in MAJOR_VESSELS)
_STAGED = "PVE / two-stage hepatectomy / ALPPS"


def _mm(v: float) -> str:
    return f"{v:.1f} mm"


def vascular_plan_messages(
    treatments: Sequence[Mapping[str, Any]],
    distances_mm: Mapping[int, Mapping[str, float]],
    planner: Mapping[str, Any],
) -> tuple[list[str], list[str]]:
    """(warnings, plan notes) on the vessels near the lesions the plan treats.

    Parameters
    ----------
    treatments : sequence of mapping
        The plan's ``lesion_treatments`` (``lesion_id``, ``treatment``).
    distances_mm : mapping
        Lesion id -> {vessel name: surface gap mm} (empty: no vessel given, nothing to say).
    planner : mapping
        The rules' ``planner`` table (``ablation_vessel_contact_mm``, ``resection_vessel_contact_mm``).

    Returns
    -------
    (list of str, list of str)

    Examples
    --------
    >>> rules = {"ablation_vessel_contact_mm": 5.0, "resection_vessel_contact_mm": 0.0}
    >>> w, n = vascular_plan_messages([{"lesion_id": 2, "treatment": "ablation"}], {2: {"portal vein": 3.2}}, rules)
    >>> w[0][:69]
    'lesion 2 is planned for ablation 3.2 mm from the portal vein (within '
    >>> vascular_plan_messages([{"lesion_id": 2, "treatment": "ablation"}], {2: {"portal vein": 6.0}}, rules)
    ([], [])
    """
    ablation_mm = float(planner["ablation_vessel_contact_mm"])
    resection_mm = float(planner["resection_vessel_contact_mm"])
    warnings: list[str] = []
    notes: list[str] = []
    for t in treatments:
        lid, kind = int(t["lesion_id"]), t.get("treatment")
        near = sorted(distances_mm.get(lid, {}).items(), key=lambda kv: kv[1])
        if kind == "ablation":
            for vessel, gap in near:
                if gap <= ablation_mm:
                    warnings.append(
                        f"lesion {lid} is planned for ablation {_mm(gap)} from the {vessel} (within "
                        f"planner.ablation_vessel_contact_mm {ablation_mm:g} mm): the vessel's blood flow can cool "
                        "the ablation zone next to it (heat-sink effect) and leave tumour there; the plan is not "
                        "changed (vascular involvement is the surgeon's assessment, clinical_rules.md section 2)"
                    )
        elif kind in ("resection", "enucleation"):
            for vessel, gap in near:
                if vessel in _MAJOR and gap <= resection_mm:
                    contact = "in contact with" if gap == 0 else f"{_mm(gap)} from"
                    notes.append(
                        f"lesion {lid} ({kind}) is {contact} the {vessel} (planner.resection_vessel_contact_mm "
                        f"{resection_mm:g} mm): the plan is not changed; whether the vessel is involved is the "
                        "surgeon's assessment (clinical_rules.md section 2)"
                    )
    return warnings, notes


@dataclass(frozen=True)
class PlanVesselMessages:
    """What :func:`every_plan_messages` says, and the blocks that carry its notes.

    Attributes
    ----------
    warnings : list of str
        One per lesion-vessel pair of each plan (an identical one of several plans once, naming them).
    plan_notes : list of str
        The resection notes of every plan, named as the warnings are (``vascular_contact.plan_notes``).
    remnant : dict
        The remnant block, its ``resection_plan`` and user plans' ``notes`` with their own resection notes.
    staged : dict or None
        The tool's staged strategies with their clearing plan's resection notes (``notes``).
    """

    warnings: list[str]
    plan_notes: list[str]
    remnant: dict[str, Any]
    staged: dict[str, Any] | None


def _and(labels: Sequence[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _merged(tool: Sequence[str], others: Mapping[str, Sequence[str]]) -> list[str]:
    """The tool's messages (naming the other plans that share one), then the other plans' own, named."""
    out = []
    for text in tool:
        also = others.get(text)
        out.append(f"{text}; the same in {_and(also)}" if also else text)
    return out + [f"{_and(labels)}: {text}" for text, labels in others.items() if text not in tool]


def every_plan_messages(
    remnant: Mapping[str, Any],
    staged: Mapping[str, Any] | None,
    distances_mm: Mapping[int, Mapping[str, float]],
    planner: Mapping[str, Any],
) -> PlanVesselMessages:
    """The vessel warnings and notes of every plan in the report that names its lesions' treatments.

    Parameters
    ----------
    remnant : mapping
        The report's remnant block (``resection_plan``, ``standard_resections`` with user rows ``custom:...``).
    staged : mapping or None
        The report's ``classification.staged_strategies``.
    distances_mm : mapping
        Lesion id -> {vessel name: surface gap mm}.
    planner : mapping
        The rules' ``planner`` table.

    Returns
    -------
    PlanVesselMessages

    Examples
    --------
    >>> rules = {"ablation_vessel_contact_mm": 5.0, "resection_vessel_contact_mm": 0.0}
    >>> row = {"name": "custom:2+3", "removed_segments": [2, 3], "plan_with_sparing": {
    ...     "resection_name": "Left lateral sectionectomy", "notes": [],
    ...     "lesion_treatments": [{"lesion_id": 2, "treatment": "ablation"}]}}
    >>> out = every_plan_messages({"standard_resections": [row]}, None, {2: {"portal vein": 3.2}}, rules)
    >>> out.warnings[0][:99]
    "user plan 'Left lateral sectionectomy' (segments 2+3): lesion 2 is planned for ablation 3.2 mm from"
    """
    tool_w: list[str] = []
    tool_n: list[str] = []
    other_w: dict[str, list[str]] = {}
    other_n: dict[str, list[str]] = {}

    def said(label: str, treatments: Sequence[Mapping[str, Any]]) -> list[str]:
        w, n = vascular_plan_messages(treatments, distances_mm, planner)
        for text in w:
            other_w.setdefault(text, []).append(label)
        for text in n:
            other_n.setdefault(text, []).append(label)
        return n

    def with_staged(block: Mapping[str, Any] | None, label: str | None) -> dict[str, Any] | None:
        """The staged block with its clearing plan's notes; ``label`` None: the tool's (named by its resection)."""
        if not isinstance(block, Mapping) or not block.get("clearing_lesion_treatments"):
            return None if block is None else dict(block)
        then = "" if label else f", then {block.get('clearing_resection')}"
        name = f"{label or 'the staged strategies'} ({_STAGED}{then})"
        notes = said(name, block["clearing_lesion_treatments"])
        return {**block, "notes": [*block.get("notes", []), *notes]} if notes else dict(block)

    out = dict(remnant)
    plan = remnant.get("resection_plan")
    if isinstance(plan, Mapping):
        tool_w, tool_n = vascular_plan_messages(plan.get("lesion_treatments") or [], distances_mm, planner)
        out["resection_plan"] = {**plan, "notes": [*plan.get("notes", []), *tool_n]}
    rows = []
    for row in remnant.get("standard_resections") or []:
        block = row.get("plan_with_sparing")
        if not str(row.get("name", "")).startswith("custom:") or not isinstance(block, Mapping):
            rows.append(row)
            continue
        segs = "+".join(str(k) for k in row.get("removed_segments") or [])
        label = f"user plan '{block.get('resection_name') or row['name']}' (segments {segs})"
        notes = said(label, block.get("lesion_treatments") or [])
        block = {**block, "notes": [*block.get("notes", []), *notes]}
        if block.get("staged_strategies") is not None:
            block["staged_strategies"] = with_staged(block["staged_strategies"], f"{label} staged")
        rows.append({**row, "plan_with_sparing": block})
    if "standard_resections" in remnant:
        out["standard_resections"] = rows
    staged_out = with_staged(staged, None)
    return PlanVesselMessages(_merged(tool_w, other_w), _merged(tool_n, other_n), out, staged_out)
