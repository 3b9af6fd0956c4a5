"""Which follow-up lesions without a baseline counterpart count as new lesions in RECIST 1.1.

RECIST 1.1 (clinical_rules.md section 8, [C]): a lymph node of short axis < 10 mm is normal, not a
lesion, so it is no new lesion (:func:`normal_new_nodes`); a new lesion must be unequivocal, and one
equivocal "for example because of its small size" is confirmed at the next scan
(:func:`small_new_lesions` finds those below the measurable size, for the rationale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .lesion_match import LesionChange

__all__ = ["normal_new_nodes", "normal_nodes_note", "small_new_lesions", "small_pd_note"]


def normal_new_nodes(changes: Sequence[LesionChange], fu_rec: Mapping[int, Mapping[str, Any]]) -> dict[int, float]:
    """Follow-up lesions without a baseline counterpart that are normal lymph nodes: id -> short axis (mm).

    RECIST 1.1: a node whose short axis is below ``node_pathological_short_axis_mm`` (10 mm) is
    normal, not a lesion (``analyze`` reports it so), so it is no new lesion. Their status becomes
    ``normal_node`` (in ``changes``).
    """
    found: dict[int, float] = {}
    for c in changes:
        rec = fu_rec.get(int(c.followup_id or 0))
        if c.status == "new" and rec is not None and rec["category"] == "normal_node":
            c.status = "normal_node"
            found[int(c.followup_id or 0)] = float(rec["diameter_mm"])
    return found


def normal_nodes_note(normal_nodes: Mapping[int, float], node_normal_mm: float) -> str:
    """The rationale of the follow-up nodes found normal (:func:`normal_new_nodes`).

    Examples
    --------
    >>> normal_nodes_note({2: 7.0}, 10.0)[:52]
    'follow-up lymph node(s) 2 (short axis 7.0 mm) withou'
    """
    nodes = ", ".join(f"{i} (short axis {d:.1f} mm)" for i, d in normal_nodes.items())
    return (
        f"follow-up lymph node(s) {nodes} without a baseline counterpart: short axis < {node_normal_mm:g} mm, "
        "normal (RECIST 1.1), not new lesions"
    )


def small_new_lesions(
    changes: Sequence[LesionChange], fu_rec: Mapping[int, Mapping[str, Any]]
) -> dict[int, float | None]:
    """New non-nodal follow-up lesions below the measurable size: id -> longest diameter (mm).

    ``fu_rec`` is the follow-up's ``recist_assessment(...)["lesions"]``: a non-nodal lesion that
    is not measurable is ``non_target`` there.
    """
    found: dict[int, float | None] = {}
    for c in changes:
        rec = fu_rec.get(int(c.followup_id or 0))
        if c.status == "new" and rec is not None and not rec["lymph_node"] and rec["category"] == "non_target":
            found[int(c.followup_id or 0)] = rec["diameter_mm"]
    return found


def small_pd_note(small_new: Mapping[int, float | None], without: str) -> str:
    """The rationale of a PD that rests only on new lesions below the measurable size (``without``: the
    target response without them).

    Examples
    --------
    >>> small_pd_note({3: 6.2}, "SD")[:64]
    'the PD rests only on new lesion(s) 3 (6.2 mm) below the measurab'
    """
    sizes = ", ".join(f"{i} ({d or 0.0:.1f} mm)" for i, d in small_new.items())
    return (
        f"the PD rests only on new lesion(s) {sizes} below the measurable size: RECIST 1.1 counts a new lesion when "
        "it is unequivocal (one equivocal for its small size is confirmed at the next scan); confirm them on the "
        f"images (without them the target response is {without})"
    )
