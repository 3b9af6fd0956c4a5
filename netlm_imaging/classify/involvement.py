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

That plane takes the spill with the resection margin around it from the kept segment: the spill's zone
(:func:`spill_zones`: its voxels grown by ``planner.margin_mm``, the wedge zones' margin, by the zone
machinery of :mod:`netlm_imaging.classify.zones`) is taken from the remnant like a wedge's
(:func:`netlm_imaging.classify.planner.plan_debulking`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..measure.context import MeasurementContext
from ..measure.segments import N_SEGMENTS, SegmentTable
from .zones import LesionZones, compute_zones

__all__ = ["SegmentSpill", "involved_segments", "spill_entries", "spill_notes", "spill_zones"]


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


def spill_zones(
    ctx: MeasurementContext, spills: Sequence[SegmentSpill], margin_mm: float
) -> dict[tuple[int, int], LesionZones]:
    """The zone of each spill: the lesion's voxels in the spill's segment grown by ``margin_mm`` on the liver.

    The zones are :func:`~netlm_imaging.classify.zones.compute_zones`' enucleation zones of those parts
    (the wedge zones' rule, voxel for voxel, on any grid), one call per spilled-into segment.

    Parameters
    ----------
    ctx : MeasurementContext
        With the segment map the spills were found on.
    spills : sequence of SegmentSpill
    margin_mm : float
        The rules' ``planner.margin_mm``.

    Returns
    -------
    dict
        (lesion id, segment) -> :class:`~netlm_imaging.classify.zones.LesionZones` (its ``enucleation`` zone).
    """
    by_segment: dict[int, list[int]] = {}
    for sp in spills:
        by_segment.setdefault(sp.segment, []).append(sp.lesion_id)
    out: dict[tuple[int, int], LesionZones] = {}
    for seg, lids in sorted(by_segment.items()):
        found = compute_zones(ctx, lids, margin_mm, margin_mm, ablation_ids=(), part_segment=dict.fromkeys(lids, seg))
        out.update({(lid, seg): z for lid, z in found.items()})
    return out


def spill_entries(
    spills: Sequence[SegmentSpill], resected: Sequence[int], taken_ml: Mapping[tuple[int, int], float] | None = None
) -> list[dict[str, Any]]:
    """The plan block's ``ignored_segment_overlaps``: each spill, whether the plan resects its segment, and the
    non-tumorous liver its zone takes from the kept segments (``remnant_ml_taken``, 0 when none)."""
    taken = taken_ml or {}
    return [
        {
            "lesion_id": s.lesion_id,
            "segment": s.segment,
            "voxels": s.voxels,
            "volume_ml": s.volume_ml,
            "fraction_of_lesion": s.fraction,
            "segment_resected": s.segment in resected,
            "remnant_ml_taken": float(taken.get((s.lesion_id, s.segment), 0.0)),
        }
        for s in spills
    ]


def spill_notes(
    spills: Sequence[SegmentSpill],
    treatments: Mapping[int, tuple[str | None, float]],
    resected: Sequence[int],
    taken_ml: Mapping[tuple[int, int], float] | None = None,
    margin_mm: float | None = None,
) -> list[str]:
    """One note per spill of a lesion the plan resects while keeping the spill's segment (with the mL its
    zone takes from the remnant when ``taken_ml`` and ``margin_mm`` are given)."""
    out = []
    for s in spills:
        if treatments.get(s.lesion_id, (None, 0.0))[0] == "resection" and s.segment not in resected:
            note = (
                f"lesion {s.lesion_id}: {s.volume_ml:.2f} mL ({s.voxels} voxel(s), {100.0 * s.fraction:.1f}% of the "
                f"lesion) lies over the boundary in segment {s.segment}, below planner.segment_involvement_min_ml / "
                f"segment_involvement_min_fraction: segment {s.segment} is kept and the transection plane must "
                "include that part"
            )
            if taken_ml is not None and margin_mm is not None:
                note += (
                    f" with its {margin_mm:g} mm margin (planner.margin_mm): "
                    f"{taken_ml.get((s.lesion_id, s.segment), 0.0):.2f} mL of non-tumorous liver of the kept "
                    "segments, taken from the remnant"
                )
            out.append(note)
    return out
