"""Which Couinaud segments a lesion involves for the planner, and the boundary spills it does not count.

A segment map drawn by a model or by hand puts the boundary planes (the hepatic and portal vein
planes, not visible on most images) within a few millimetres of where the surgeon finds them. A
lesion lying in segment 5 whose edge crosses that drawn plane by a voxel then "lies in segments 4
and 5", and a plan that treats it by resection had to take segment 4 as well. The planner counts
a segment as involved only when the lesion's part there is at least ``planner.segment_involvement_min_ml``
or at least ``planner.segment_involvement_min_fraction`` of the lesion; the lesion's majority segment
always counts. A smaller part is a spill: the resection of the lesion's other segments takes it with a
transection plane moved a few millimetres into the neighbouring segment, which the plan reports
(:func:`spill_notes`). Either key 0 counts every voxel, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..measure.segments import N_SEGMENTS, SegmentTable

__all__ = ["SegmentSpill", "involved_segments", "spill_entries", "spill_notes"]


@dataclass(frozen=True)
class SegmentSpill:
    """A lesion's part in a segment too small to count as involving it.

    Attributes
    ----------
    lesion_id, segment : int
    voxels : int
    volume_ml : float
    fraction : float
        Of the lesion's voxels in the liver (0-1).
    """

    lesion_id: int
    segment: int
    voxels: int
    volume_ml: float
    fraction: float


def involved_segments(
    table: SegmentTable, lesion_id: int, planner: Mapping[str, Any]
) -> tuple[frozenset[int], list[SegmentSpill]]:
    """The segments ``lesion_id`` involves under the rules' tolerance, and its spills into others.

    Parameters
    ----------
    table : SegmentTable
    lesion_id : int
        An intrahepatic lesion of ``table``.
    planner : Mapping
        ``rules["planner"]`` (``segment_involvement_min_ml``, ``segment_involvement_min_fraction``).

    Returns
    -------
    segments : frozenset of int
    spills : list of SegmentSpill

    Examples
    --------
    >>> import numpy as np
    >>> t = SegmentTable(0.1, np.zeros(9), np.zeros(9), [7], np.array([[0, 0, 0, 0, 1, 99, 0, 0, 0]]), {7: 5})
    >>> segs, spills = involved_segments(t, 7, {"segment_involvement_min_ml": 0.5,
    ...                                         "segment_involvement_min_fraction": 0.05})
    >>> sorted(segs), [(s.segment, s.voxels, s.fraction) for s in spills]
    ([5], [(4, 1, 0.01)])
    """
    row = table.lesion_segment_voxels[table.lesion_ids.index(lesion_id)]
    total = int(row.sum())
    min_ml = float(planner["segment_involvement_min_ml"])
    min_fraction = float(planner["segment_involvement_min_fraction"])
    majority = table.lesion_segment.get(lesion_id)
    involved: set[int] = set()
    spills: list[SegmentSpill] = []
    for s in range(1, N_SEGMENTS + 1):
        n = int(row[s])
        if n == 0:
            continue
        ml, fraction = n * table.voxel_volume_ml, n / total
        if s == majority or ml >= min_ml or fraction >= min_fraction:
            involved.add(s)
        else:
            spills.append(SegmentSpill(lesion_id, s, n, ml, fraction))
    return frozenset(involved), spills


def spill_entries(spills: Sequence[SegmentSpill], resected: Sequence[int]) -> list[dict[str, Any]]:
    """The plan block's ``ignored_segment_overlaps``: each spill and whether the plan resects its segment."""
    return [
        {
            "lesion_id": s.lesion_id,
            "segment": s.segment,
            "voxels": s.voxels,
            "volume_ml": s.volume_ml,
            "fraction_of_lesion": s.fraction,
            "segment_resected": s.segment in resected,
        }
        for s in spills
    ]


def spill_notes(
    spills: Sequence[SegmentSpill], treatments: Mapping[int, tuple[str | None, float]], resected: Sequence[int]
) -> list[str]:
    """One note per spill of a lesion the plan resects while keeping the spill's segment."""
    out = []
    for s in spills:
        if treatments.get(s.lesion_id, (None, 0.0))[0] == "resection" and s.segment not in resected:
            out.append(
                f"lesion {s.lesion_id}: {s.volume_ml:.2f} mL ({s.voxels} voxel(s), {100.0 * s.fraction:.1f}% of the "
                f"lesion) lies over the boundary in segment {s.segment}, below planner.segment_involvement_min_ml / "
                f"segment_involvement_min_fraction: segment {s.segment} is kept and the transection plane must "
                "include that part"
            )
    return out
