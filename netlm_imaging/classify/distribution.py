"""The unilobar / bilobar distribution of the intrahepatic lesions, from their Couinaud segments.

Conventions (clinical_rules.md section 9): a lesion's segment is the segment holding most of
its voxels (:class:`~netlm_imaging.measure.segments.SegmentTable`); hemilivers are functional
(Cantlie's line): right = segments 5-8, left = 2-4 (from the rules file); segment 1 is
``caudate_side = "separate"`` (no side, flagged) or ``"left"``; ``bilobar`` = intrahepatic
lesions in both hemilivers, else ``unilobar`` (no published definition [U]; this convention
is [D]). A lesion outside every segment (liver without a segment label) could lie on either
side: unless the others are already bilobar the distribution is ``unknown``, with the
lesions named in ``missing_inputs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..measure.segments import SegmentTable

__all__ = ["lesion_distribution"]


def lesion_distribution(
    table: SegmentTable | None, anatomy: Mapping[str, Any], n_lesions: int, *, no_table_because: str = "segment map"
) -> dict[str, Any]:
    """Unilobar / bilobar distribution of the intrahepatic lesions.

    Parameters
    ----------
    table : SegmentTable or None
        ``None`` (no segment map) gives ``"unknown"``.
    anatomy : Mapping
        ``rules["anatomy"]``: ``right_hemiliver``, ``left_hemiliver``,
        ``caudate_side`` ("separate" | "left").
    n_lesions : int
        Number of intrahepatic lesions.
    no_table_because : str
        The missing input named when ``table`` is None: the segment map, or the liver mask the
        segment table needs beside a given map.

    Returns
    -------
    dict
        ``distribution`` ("unilobar" | "bilobar" | "unknown" | None),
        ``caudate_involved``, ``caudate_only``, lesion counts per side,
        ``rationale`` (list of str) and ``missing_inputs``.
    """
    if n_lesions == 0:
        return {
            "distribution": None,
            "caudate_involved": False,
            "caudate_only": False,
            "rationale": ["no intrahepatic lesions: distribution not applicable"],
            "missing_inputs": [],
        }
    if table is None:
        return {
            "distribution": "unknown",
            "caudate_involved": None,
            "caudate_only": None,
            "rationale": [
                "no Couinaud segment map: distribution unknown"
                if no_table_because == "segment map"
                else f"Couinaud segment map not measured without a {no_table_because}: distribution unknown"
            ],
            "missing_inputs": [no_table_because],
        }
    right = set(anatomy["right_hemiliver"])
    left = set(anatomy["left_hemiliver"])
    caudate_left = anatomy["caudate_side"] == "left"
    if caudate_left:
        left |= {1}
    segs = [s for s in table.lesion_segment.values() if s is not None]
    n_right = sum(1 for s in segs if s in right)
    n_left = sum(1 for s in segs if s in left)
    n_caudate = sum(1 for s in segs if s == 1)
    outside = sorted(lid for lid, s in table.lesion_segment.items() if s is None)
    unassigned = len(outside)
    rationale = []
    missing: list[str] = []
    caudate_only = n_caudate > 0 and n_caudate == len(segs) and not outside
    if n_right and n_left:
        dist = "bilobar"  # whatever the unassigned lesions are
    elif outside:
        # a lesion outside every segment could lie in either hemiliver: uni- vs bilobar is not known
        dist = "unknown"
        missing.append(f"segment map covering lesion(s) {', '.join(map(str, outside))}")
    elif n_right or n_left or caudate_only:
        dist = "unilobar"
    else:
        dist = "unknown"
    side_note = "counted with the left hemiliver" if caudate_left else "counted on neither side (caudate_side=separate)"
    rationale.append(
        f"lesions by majority segment: right hemiliver (segments {sorted(right)}) {n_right}, "
        f"left hemiliver (segments {sorted(left)}) {n_left}, caudate (segment 1) {n_caudate} {side_note}"
        f" -> {dist}"
    )
    if n_caudate:
        rationale.append(f"caudate lobe (segment 1) involved by {n_caudate} lesion(s)")
    if caudate_only:
        rationale.append("caudate-only disease: every assigned lesion lies in segment 1")
    if unassigned:
        rationale.append(f"{unassigned} lesion(s) lie outside every Couinaud segment and are not counted")
        if dist == "unknown":
            rationale.append(
                f"distribution unknown: lesion(s) {', '.join(map(str, outside))} outside every segment could lie in "
                "either hemiliver"
            )
    return {
        "distribution": dist,
        "caudate_involved": n_caudate > 0,
        "caudate_only": caudate_only,
        "right_lesion_count": n_right,
        "left_lesion_count": n_left,
        "caudate_lesion_count": n_caudate,
        "rationale": rationale,
        "missing_inputs": missing,
    }
