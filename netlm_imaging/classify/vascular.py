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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..segmentation import MAJOR_VESSELS

__all__ = ["vascular_plan_messages"]

_MAJOR = frozenset(name for name, _ in MAJOR_VESSELS)


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
