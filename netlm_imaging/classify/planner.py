"""Debulking planner: the most tumour volume treatable by a plan a liver surgeon could do.

This module plans from the measured masks (:func:`plan_debulking`) and keeps the names callers import;
the lesions' options and the plan it returns are :mod:`.planner_model`, the search over resections and
sparing choices (the knapsack, its bound and tie-breaks, in one place) :mod:`.planner_search`.

A plan combines

- resection of whole Couinaud segments ``S``, only when the remnant passes the
  anatomy test of :func:`~netlm_imaging.classify.anatomy.remnant_check`
  (contiguous, at least two segments, each with inflow, outflow and biliary
  drainage; the table is data in the rules file). A lesion is treated by the
  resection when every segment it involves lies in ``S`` (a part below the rules'
  ``planner.segment_involvement_min_ml`` / ``_min_fraction`` is a boundary spill, not an
  involvement: :mod:`netlm_imaging.classify.involvement`);
- parenchymal-sparing treatment of single lesions not covered by ``S``:
  wedge resection / enucleation (zone = the lesion dilated by ``margin_mm`` on
  the liver mask; only up to ``enucleation_max_diameter_mm``) or ablation
  (zone = the lesion dilated by ``ablation_margin_mm``; only up to
  ``ablation_max_diameter_mm`` and at most ``max_ablations_per_operation``
  lesions). Diameters are the edge-to-edge maximum 3-D diameters. The
  parenchyma cost of a zone is its non-tumorous liver in the kept segments,
  counted on the masks (:mod:`netlm_imaging.classify.zones`).

The FLR after a plan is the non-tumorous liver in the kept segments minus the
zones of the sparing treatments (untreated tumour is never FLR) and minus the zones of
the spills the resection takes: a lesion it takes may lie over a boundary into a kept
segment by less than the involvement tolerance, and the transection plane takes that
part with the wedges' ``margin_mm`` around it (:func:`~netlm_imaging.classify.involvement.spill_zones`).
Those zones are charged to the resection before the sparing choices (its FLR). A plan is
feasible when that FLR, as a percentage of the deciding denominator, passes
the threshold of the liver condition with the rules' comparator.

For a fixed ``S`` the sparing choice is a multiple-choice knapsack (each lesion:
nothing, wedge or ablation; value = lesion volume, weight = parenchyma cost,
capacity = FLR(S) minus the required FLR; at most K ablations). Solved

- exactly, by enumerating every combination of the per-lesion choices when there
  are at most ``2 ** planner.exact_enumeration_max_lesions`` of them;
- otherwise by an exact dynamic programme over (ablation count, cost rounded
  **up** to ``planner.cost_resolution_ml``). Rounding up keeps every plan
  feasible in the true costs, and the plan treats at least as much tumour as
  the true optimum for a budget smaller by ``n x resolution``.

The optimiser adds the zone costs lesion by lesion (an overlap of two zones is
charged twice: conservative); the reported remnant is counted once on the
union of the chosen zones, so it is never below what the optimiser assumed.
Ties in treated volume are broken by the larger remaining FLR, then by fewer
resected segments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..measure.context import MeasurementContext
from ..measure.segments import N_SEGMENTS, SegmentTable
from .anatomy import candidate_resections, remnant_check, resection_name
from .involvement import SegmentSpill, spill_notes, spill_zones
from .planner_model import DebulkingPlan, LesionOption, kept_label_mask, lesion_options, remnant_after_zones_ml
from .planner_model import covered as _covered
from .planner_search import optimise_plan
from .sparing import planner_zones
from .zones import LesionZones, union_voxels_by_label

__all__ = [
    "DebulkingPlan",
    "LesionOption",
    "kept_label_mask",
    "lesion_options",
    "optimise_plan",
    "plan_debulking",
    "remnant_after_zones_ml",
]

logger = logging.getLogger(__name__)


def _taken_spills(options: Sequence[LesionOption], s: frozenset[int]) -> list[tuple[int, int]]:
    """The spills resection ``s`` takes into segments it keeps: (lesion id, segment) of each lesion it takes."""
    return [(sp.lesion_id, sp.segment) for o in options if _covered(o, s) for sp in o.spills if sp.segment not in s]


def _spill_unions(
    ctx: MeasurementContext, options: Sequence[LesionOption], resections: Sequence[frozenset[int]], margin_mm: float
) -> tuple[dict[tuple[int, int], LesionZones], dict[frozenset[int], list[tuple[int, int]]], dict[frozenset[int], Any]]:
    """The zones of the spills the resections take, each resection's spills, and the voxels of their union per
    segment label (counted once where they overlap, :func:`union_voxels_by_label`)."""
    taken = {s: _taken_spills(options, s) for s in resections}
    spills: dict[tuple[int, int], SegmentSpill] = {(sp.lesion_id, sp.segment): sp for o in options for sp in o.spills}
    needed = sorted({k for t in taken.values() for k in t})
    zones = spill_zones(ctx, [spills[k] for k in needed], margin_mm) if needed else {}
    cache: dict[frozenset[tuple[int, int]], np.ndarray] = {}
    unions = {}
    for s, t in taken.items():
        key = frozenset(k for k in t if k in zones)
        if key not in cache:
            cache[key] = union_voxels_by_label(ctx, [(zones[k], "enucleation") for k in sorted(key)])
        unions[s] = cache[key]
    return zones, taken, unions


def plan_debulking(
    ctx: MeasurementContext,
    table: SegmentTable | None,
    rules: Mapping[str, Any],
    *,
    non_tumorous_total_ml: float,
    required_flr_ml: float,
    comparator: str = ">",
    zones: Mapping[int, LesionZones] | None = None,
    require_resection: bool = False,
    fixed_resection: frozenset[int] | None = None,
) -> DebulkingPlan:
    """Plan from the measured masks, the segment table and the rules.

    Parameters
    ----------
    ctx : MeasurementContext
        Lesions, liver mask, lesion labels (zones are measured on them).
    table : SegmentTable or None
        Without it only lesion-level treatments are planned (and the plan says so).
    rules : Mapping
        The rules (``planner``, ``anatomy``, ``resections`` tables).
    non_tumorous_total_ml : float
        FLR when nothing is resected and there is no segment map.
    required_flr_ml : float
        Threshold percentage x deciding denominator (``-inf``: ignore the FLR).
    comparator : {">", ">="}
    zones : Mapping, optional
        Precomputed :func:`~netlm_imaging.classify.sparing.planner_zones`.
    require_resection : bool
        Only plans whose resection takes a lesion (the staged strategies grow such a remnant).
    fixed_resection : frozenset of int, optional
        Plan the sparing treatments beside this resection only (a user's ``--resection``).

    Returns
    -------
    DebulkingPlan
    """
    planner = rules["planner"]
    if zones is None:
        zones = planner_zones(ctx, ctx.intrahepatic_lesions, planner)
    options = lesion_options(ctx, table, planner, zones)
    notes = []
    checks: dict[frozenset[int], str] = {frozenset(): "no resection"}
    if table is None:
        flr_by: dict[frozenset[int], float] = {frozenset(): non_tumorous_total_ml}
        notes.append("no Couinaud segment map: lesion-level treatments only (no segment resection planned)")
    else:
        checks, rejected = candidate_resections(table, rules["anatomy"], bool(planner["allow_segment_resection"]))
        # the FLR is the kept segments' non-tumorous liver; liver without a segment label is not counted
        flr_by = {s: table.non_tumorous_ml([k for k in range(1, N_SEGMENTS + 1) if k not in s]) for s in checks}
        if not planner["allow_segment_resection"]:
            notes.append("segment resection disabled in the rules: lesion-level treatments only")
        else:
            notes.append(
                f"{len(checks)} segment sets have an anatomically possible remnant; {rejected} were rejected "
                "(remnant not contiguous, < minimum segments, or a kept segment without inflow/outflow/biliary)"
            )
        absent = [k for k in range(1, N_SEGMENTS + 1) if table.liver_voxels[k] == 0]
        if absent and (unlabelled_ml := float(table.non_tumorous_voxels[0]) * table.voxel_volume_ml) > 0:
            notes.append(
                f"segment(s) {', '.join(map(str, absent))} absent from the map while {unlabelled_ml:.1f} mL of "
                "non-tumorous liver has no segment label: that liver is not counted as FLR and the anatomy test "
                "treats the absent segments as missing, so the plan is a conservative lower bound if they exist"
            )
        outside = [o.lesion_id for o in options if not o.segments]
        if outside:
            notes.append(f"lesions {outside} lie outside every segment: only sparing treatment can treat them")
    if fixed_resection is not None and table is not None:
        kept_segs = [k for k in range(1, N_SEGMENTS + 1) if k not in fixed_resection]
        flr_by = {fixed_resection: table.non_tumorous_ml(kept_segs)}
        present = {k for k in range(1, N_SEGMENTS + 1) if table.liver_voxels[k] > 0}
        checks = {fixed_resection: remnant_check(present - fixed_resection, rules["anatomy"], present)[1]}
        notes[0] = f"resection given by the user (remnant: {checks[fixed_resection]})"  # not the candidates' count
    if require_resection:  # a resection that takes at least one lesion
        flr_by = {k: v for k, v in flr_by.items() if any(_covered(o, k) for o in options)}
    raw_flr = dict(flr_by)
    # the spills a resection takes into kept segments take their zones from its FLR, before the sparing choices
    sz, taken, unions = _spill_unions(ctx, options, list(flr_by), float(planner["margin_mm"]))
    for k, u in unions.items():
        if u.any():
            kept_k = [x for x in range(1, N_SEGMENTS + 1) if x not in k]
            flr_by[k] = remnant_after_zones_ml(raw_flr[k], float(u[kept_k].sum()), ctx.voxel_volume_ml)
    plan = optimise_plan(
        options,
        flr_by,
        required_flr_ml,
        comparator=comparator,
        exact_max_lesions=int(planner["exact_enumeration_max_lesions"]),
        cost_resolution_ml=float(planner["cost_resolution_ml"]),
        max_ablations=int(planner["max_ablations_per_operation"]),
        objective=str(rules.get("debulking", {}).get("primary_measure", "volume")),
    )
    if plan.feasible:
        s = frozenset(plan.resected_segments)
        kept = [k for k in range(N_SEGMENTS + 1) if kept_label_mask(s)[k] and (k > 0 or table is None)]
        chosen = [
            (zones[lid], kind) for lid, (kind, _) in plan.treatments.items() if kind in ("enucleation", "ablation")
        ]
        chosen += [(sz[k], "enucleation") for k in taken.get(s, []) if k in sz]
        union = union_voxels_by_label(ctx, chosen)  # overlapping zones counted once
        plan.remnant_ml = remnant_after_zones_ml(raw_flr[s], float(union[kept].sum()), ctx.voxel_volume_ml)
        plan.zone_union_ml_by_label = {k: float(union[k]) * ctx.voxel_volume_ml for k in kept}
        plan.remnant_check = checks.get(s, "")
        plan.resection_name = resection_name(s, rules["anatomy"], rules["resections"])
    elif fixed_resection is not None and fixed_resection in flr_by:  # the resection alone, its spills' zones taken
        s = fixed_resection
        plan.remnant_ml = flr_by[s]
        kept = [k for k in range(1, N_SEGMENTS + 1) if k not in s]
    if plan.feasible or (fixed_resection is not None and fixed_resection in flr_by):
        plan.spill_taken_ml = {
            k: float(np.asarray(sz[k].enucleation_ml_by_label)[kept].sum()) for k in taken.get(s, []) if k in sz
        }
        plan.spill_zone_ml = float(unions[s][kept].sum()) * ctx.voxel_volume_ml if s in unions else 0.0
    plan.segment_spills = [sp for o in options for sp in o.spills]
    margin = float(planner["margin_mm"])
    notes += (
        spill_notes(plan.segment_spills, plan.treatments, plan.resected_segments, plan.spill_taken_ml, margin)
        if plan.feasible
        else []
    )
    plan.notes = notes + plan.notes
    return plan
