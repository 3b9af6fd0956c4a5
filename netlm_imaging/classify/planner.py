"""Debulking planner: the most tumour volume treatable by a plan a liver surgeon could do.

Why one module (~600 lines): the search over segment resections and the sparing treatment of what
they leave is one optimisation; split, its bound and its tie-breaks would be read in two places.

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
zones of the sparing treatments (untreated tumour is never FLR). A plan is
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

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..measure.context import MeasurementContext
from ..measure.segments import N_SEGMENTS, SegmentTable
from ..rules_data import default_rules_tree
from .anatomy import candidate_resections, remnant_check, resection_name
from .involvement import SegmentSpill, involved_segments, spill_notes
from .knapsack import ABLATION as _ABL
from .knapsack import NONE as _NONE
from .knapsack import VALUE_TOL_ML as _VALUE_TOL_ML
from .knapsack import WEDGE as _WEDGE
from .knapsack import objective_values as _objective_values
from .knapsack import solve_dp as _solve_dp
from .knapsack import solve_enum as _solve_enum
from .sparing import SPARING, planner_zones, refusal
from .zones import LesionZones, union_voxels_by_label

__all__ = [
    "DebulkingPlan",
    "LesionOption",
    "kept_label_mask",
    "lesion_options",
    "optimise_plan",
    "plan_debulking",
]

logger = logging.getLogger(__name__)

#: Largest DP table (ablation counts x capacity units x lesions); the resolution is coarsened above it.
_MAX_DP_CELLS = 30_000_000
_KIND = {_WEDGE: "enucleation", _ABL: "ablation"}


def kept_label_mask(resected: frozenset[int]) -> np.ndarray:
    """(9,) boolean: segment labels left in place (label 0, unlabelled liver, always stays).

    Examples
    --------
    >>> kept_label_mask(frozenset({2, 3})).astype(int).tolist()
    [1, 1, 0, 0, 1, 1, 1, 1, 1]
    """
    m = np.ones(N_SEGMENTS + 1, dtype=bool)
    m[sorted(resected)] = False
    return m


@dataclass(eq=False)
class LesionOption:
    """What the planner may do with one intrahepatic lesion.

    Attributes
    ----------
    lesion_id : int
    volume_ml : float
    segments : frozenset of int
        Couinaud segments it involves (empty: none / no map): its majority segment and every
        segment holding at least the rules' involvement tolerance of it.
    enucleation_ml_by_label, ablation_ml_by_label : numpy.ndarray or None
        (9,) parenchyma cost (mL) of each sparing option per segment label
        (None = option not available).
    unavailable : list of str
        Why an option is not available (for the untreated lesion's reason).
    mapped : bool
        False when there is no Couinaud segment map (no segment resection is planned at all).
    spills : list of SegmentSpill
        Its parts in other segments, below the tolerance (not counted in ``segments``).
    """

    lesion_id: int
    volume_ml: float
    segments: frozenset[int] = frozenset()
    enucleation_ml_by_label: np.ndarray | None = None
    ablation_ml_by_label: np.ndarray | None = None
    unavailable: list[str] = field(default_factory=list)
    mapped: bool = True
    spills: list[SegmentSpill] = field(default_factory=list)

    def cost_ml(self, kind: int, kept: np.ndarray) -> float | None:
        """Parenchyma cost of a sparing option in the kept labels (None if not available)."""
        v = self.enucleation_ml_by_label if kind == _WEDGE else self.ablation_ml_by_label
        return None if v is None else float(v[kept].sum())


def lesion_options(
    ctx: MeasurementContext,
    table: SegmentTable | None,
    planner: Mapping[str, Any],
    zones: Mapping[int, LesionZones],
) -> list[LesionOption]:
    """Planner options for the intrahepatic lesions, from the rules' ``planner`` table and the zones.

    Raises
    ------
    ValueError
        If a zone that the rules allow is missing from ``zones`` (computed without it).
    """
    out = []
    for les in ctx.intrahepatic_lesions:
        segs: frozenset[int] = frozenset()
        spills: list[SegmentSpill] = []
        if table is not None and les.id in table.lesion_ids:
            segs, spills = involved_segments(table, les.id, planner)
        z = zones.get(les.id)
        why: list[str] = []
        costs: dict[str, np.ndarray | None] = {}
        for kind, label in SPARING:
            refused = refusal(les, planner, kind, label)
            costs[kind] = None
            if refused is not None:
                why.append(refused)
            elif z is not None:
                costs[kind] = z.enucleation_ml_by_label if kind == "enucleation" else z.ablation_ml_by_label
                if costs[kind] is None:
                    raise ValueError(f"lesion {les.id}: its {kind} zone was not computed (see sparing.zone_lesion_ids)")
        enuc, abl = costs["enucleation"], costs["ablation"]
        if table is not None:  # with a map, unlabelled liver is not FLR and costs nothing
            enuc = None if enuc is None else np.concatenate([[0.0], enuc[1:]])
            abl = None if abl is None else np.concatenate([[0.0], abl[1:]])
        out.append(
            LesionOption(les.id, float(les.volume_ml), segs, enuc, abl, why, mapped=table is not None, spills=spills)
        )
    return out


@dataclass
class DebulkingPlan:
    """The best plan found and what it leaves.

    Attributes
    ----------
    feasible : bool
        False when no plan (not even treating nothing) keeps an adequate FLR.
    resected_segments : list of int
    treatments : dict
        Lesion id -> ("resection" | "enucleation" | "ablation" | None, parenchyma cost mL).
    treated_ml, total_tumor_ml : float
    treated_count, total_count : int
    remnant_ml : float
        Non-tumorous FLR left by the plan (set by :func:`plan_debulking` from
        the union of the zones; the optimiser's own estimate otherwise).
    optimiser : str
    notes : list of str
    untreated_reasons : dict
        Lesion id -> why it stays untreated.
    resection_name : str
        Brisbane / segmentectomy name of the resected set.
    remnant_check : str
        The anatomy test's verdict on the remnant.
    zone_union_ml_by_label : dict
        Kept segment label (0 = no segment) -> non-tumorous liver (mL) in the union of the
        chosen enucleation/ablation zones there (overlaps counted once; empty when infeasible).
    segment_spills : list of SegmentSpill
        The lesions' parts in segments below the involvement tolerance (set by :func:`plan_debulking`).
    """

    feasible: bool
    resected_segments: list[int]
    treatments: dict[int, tuple[str | None, float]]
    treated_ml: float
    total_tumor_ml: float
    treated_count: int
    total_count: int
    remnant_ml: float
    optimiser: str
    notes: list[str] = field(default_factory=list)
    untreated_reasons: dict[int, str] = field(default_factory=dict)
    resection_name: str = "no resection"
    remnant_check: str = ""
    zone_union_ml_by_label: dict[int, float] = field(default_factory=dict)
    segment_spills: list[SegmentSpill] = field(default_factory=list)

    @property
    def debulking_percent_volume(self) -> float | None:
        """100 x treated / total tumour volume (None without tumour)."""
        return 100.0 * self.treated_ml / self.total_tumor_ml if self.total_tumor_ml > 0 else None

    @property
    def debulking_percent_count(self) -> float | None:
        """100 x treated / total lesion count (None without lesions)."""
        return 100.0 * self.treated_count / self.total_count if self.total_count else None

    @property
    def clears_all(self) -> bool:
        """Every lesion treated."""
        return self.total_count > 0 and self.treated_count == self.total_count


def remnant_after_zones_ml(flr_ml: float, zone_voxels: float, voxel_ml: float) -> float:
    """The remnant left when the sparing zones' parenchyma is taken from the kept segments.

    A truly empty remnant comes out as a float residue (1e-16 mL, either sign: per-segment sums
    minus voxel counts), which a staged growth would read as 1e17 %. Under half a voxel is 0.

    Examples
    --------
    >>> remnant_after_zones_ml(0.1 + 0.1 + 0.5, 7, 0.1)
    0.0
    >>> round(remnant_after_zones_ml(1.0, 4, 0.1), 12)
    0.6
    """
    remnant = flr_ml - zone_voxels * voxel_ml
    return 0.0 if abs(remnant) < 0.5 * voxel_ml else remnant


def _covered(opt: LesionOption, s: frozenset[int]) -> bool:
    return bool(opt.segments) and opt.segments <= s


def _better(a: tuple[float, float, int], b: tuple[float, float, int] | None) -> bool:
    """Compare (treated_ml, remnant_ml, -n_segments) keys with a tolerance on volumes."""
    if b is None:
        return True
    if abs(a[0] - b[0]) > _VALUE_TOL_ML:
        return a[0] > b[0]
    if abs(a[1] - b[1]) > _VALUE_TOL_ML:
        return a[1] > b[1]
    return a[2] > b[2]


def _combos(options: Sequence[LesionOption]) -> np.ndarray:
    """(C, n) every combination of per-lesion choices (0 none, 1 wedge, 2 ablation)."""
    per = []
    for o in options:
        c = [_NONE]
        if o.enucleation_ml_by_label is not None:
            c.append(_WEDGE)
        if o.ablation_ml_by_label is not None:
            c.append(_ABL)
        per.append(c)
    if not per:
        return np.zeros((1, 0), dtype=np.int8)
    return np.array(list(itertools.product(*per)), dtype=np.int8)


def _n_combos(options: Sequence[LesionOption]) -> int:
    return math.prod(
        1 + (o.enucleation_ml_by_label is not None) + (o.ablation_ml_by_label is not None) for o in options
    )


@dataclass(frozen=True)
class _Sparing:
    """The lesions with a sparing option (enucleation/wedge or ablation) and their volumes."""

    index: list[int]  # their positions in the options
    options: list[LesionOption]
    volumes: np.ndarray


def _solve_resection(
    options: Sequence[LesionOption],
    sparing: _Sparing,
    s: frozenset[int],
    free: np.ndarray,
    capacity: float,
    k_max: int,
    combos: np.ndarray | None,
    resolution: float,
) -> tuple[float, float, np.ndarray, float]:
    """The best sparing choices beside resection ``s`` within ``capacity`` mL of parenchyma.

    ``free`` marks the sparing lesions that ``s`` does not take.

    Returns (tumour mL treated by sparing, their parenchyma cost, the choice per sparing lesion,
    the cost resolution used: the DP's rounding, coarser when the problem is large).
    """
    kept = kept_label_mask(s)
    ce = np.array([np.nan if (c := o.cost_ml(_WEDGE, kept)) is None else c for o in sparing.options], dtype=np.float64)
    ca = np.array([np.nan if (c := o.cost_ml(_ABL, kept)) is None else c for o in sparing.options], dtype=np.float64)
    ce[~free] = np.nan
    ca[~free] = np.nan
    vals = np.where(free, sparing.volumes, 0.0)
    cheapest = np.fmin(ce, ca)
    pick_abl = np.isnan(ce) | (ca < ce)
    n_abl = int((free & ~np.isnan(cheapest) & pick_abl).sum())
    treatable = ~np.isnan(cheapest)
    if n_abl <= k_max and float(np.nansum(cheapest)) <= capacity:  # every free lesion fits: its cheapest option
        choice = np.where(treatable, np.where(pick_abl, _ABL, _WEDGE), _NONE).astype(np.int8)
        return float(vals[treatable].sum()), float(np.nansum(cheapest)), choice, resolution
    if combos is not None:
        v, c, choice = _solve_enum(combos, vals, np.nan_to_num(ce), np.nan_to_num(ca), capacity, k_max)
        return v, c, np.where(free, choice, _NONE).astype(np.int8), resolution
    idx = np.flatnonzero(free & treatable)
    cap = min(capacity, float(np.nansum(ce[idx]) + np.nansum(ca[idx])))
    k_top = min(k_max, int((~np.isnan(ca[idx])).sum()))
    res = max(resolution, cap * idx.size * (k_top + 1) / _MAX_DP_CELLS) if idx.size else resolution
    v, c, sub = _solve_dp(vals[idx], ce[idx], ca[idx], cap, k_max, res)
    choice = np.zeros(len(sparing.index), dtype=np.int8)
    choice[idx] = sub
    return v, c, choice, max(resolution, res)


def _optimiser_text(n_combos: int | None, n_resections: int, resolution: float, max_ablations: int | None) -> str:
    """How the plan was found (the report's ``optimiser``)."""
    if n_combos is not None:
        text = f"exact enumeration of {n_combos} per-lesion choice combinations x {n_resections} resections"
    else:
        text = (
            f"knapsack dynamic programme over (ablation count, cost rounded up to {resolution:g} mL) "
            f"x {n_resections} resections"
        )
    if max_ablations is not None:
        text += f"; at most {max_ablations} ablations per operation"
    return text


def _untreated_reason(opt: LesionOption, has_sparing: bool) -> str:
    """Why a lesion is left untreated by the chosen plan."""
    why = list(opt.unavailable)
    if has_sparing:
        why.append("a sparing option exists but was not chosen (FLR budget or ablation count)")
    else:
        why.append("no permitted sparing option")
    if not opt.mapped:
        why.append("no Couinaud segment map: no segment resection was planned")
    elif not opt.segments:
        why.append("outside every segment: no segment resection can take it")
    else:
        why.append(f"not covered by the resection (it lies in segment(s) {','.join(map(str, sorted(opt.segments)))})")
    return "; ".join(why)


def _plan(
    options: Sequence[LesionOption],
    sparing: _Sparing,
    s: frozenset[int],
    choice: np.ndarray,
    flr_ml: float,
    total_ml: float,
    optimiser: str,
) -> DebulkingPlan:
    """The plan of resection ``s`` with the sparing ``choice``: each lesion's treatment and cost, the remnant."""
    kept = kept_label_mask(s)
    treatments: dict[int, tuple[str | None, float]] = {}
    reasons: dict[int, str] = {}
    pos = {i: k for k, i in enumerate(sparing.index)}
    for i, o in enumerate(options):
        if _covered(o, s):
            treatments[o.lesion_id] = ("resection", 0.0)
            continue
        kind = int(choice[pos[i]]) if i in pos else _NONE
        if kind != _NONE:
            treatments[o.lesion_id] = (_KIND[kind], float(o.cost_ml(kind, kept) or 0.0))
            continue
        treatments[o.lesion_id] = (None, 0.0)
        reasons[o.lesion_id] = _untreated_reason(o, i in pos)
    treated = [o for o in options if treatments[o.lesion_id][0] is not None]
    spent = sum(c for _, c in treatments.values())
    return DebulkingPlan(
        True,
        sorted(s),
        treatments,
        float(sum(o.volume_ml for o in treated)),
        total_ml,
        len(treated),
        len(options),
        flr_ml - spent,
        optimiser,
        untreated_reasons=reasons,
    )


def optimise_plan(
    options: Sequence[LesionOption],
    flr_by_resection: Mapping[frozenset[int], float],
    required_flr_ml: float,
    *,
    comparator: str | None = None,
    exact_max_lesions: int | None = None,
    cost_resolution_ml: float | None = None,
    max_ablations: int | None = None,
    objective: str = "volume",
) -> DebulkingPlan:
    """Best plan over the candidate resections and the per-lesion sparing treatments.

    For each candidate resection that leaves at least the required FLR, the sparing lesions
    it does not take get their best choices within the FLR left (all of them when they fit;
    else exact enumeration of the choices while there are few, a knapsack DP above that). The
    best plan treats the most tumour, then keeps the most FLR, then resects the fewest segments.

    Parameters
    ----------
    options : sequence of LesionOption
    flr_by_resection : Mapping
        Resected segment set -> non-tumorous FLR (mL) of the kept segments; its
        keys are the candidate resections (already anatomically feasible).
    required_flr_ml : float
        The FLR the threshold demands (threshold % x denominator); ``-inf``
        finds the plan treating the most tumour whatever the FLR.
    comparator : {">", ">="}, optional
        Default: the shipped rules key ``flr.comparator``.
    exact_max_lesions : int, optional
        Enumerate exactly while there are at most ``2 ** exact_max_lesions``
        combinations of per-lesion choices (default: shipped
        ``planner.exact_enumeration_max_lesions``).
    cost_resolution_ml : float, optional
        Cost rounding of the DP used above that (default: shipped
        ``planner.cost_resolution_ml``).
    max_ablations : int, optional
        Ablations allowed in one operation (None: no limit).
    objective : {"volume", "count"}
        What "the most tumour" means: treated volume, or (the rules' ``debulking.primary_measure =
        "count"``) the number of lesions treated, ties broken by treated volume. The Mahuron and
        Cloyd decisions read the achievable debulking on that measure (clinical_rules.md section 4),
        so the plan maximises it: a volume-best plan may treat fewer lesions than another one.

    Returns
    -------
    DebulkingPlan
    """
    if comparator is None or exact_max_lesions is None or cost_resolution_ml is None:
        shipped = default_rules_tree()
        comparator = str(shipped["flr"]["comparator"]) if comparator is None else comparator
        if exact_max_lesions is None:
            exact_max_lesions = int(shipped["planner"]["exact_enumeration_max_lesions"])
        if cost_resolution_ml is None:
            cost_resolution_ml = float(shipped["planner"]["cost_resolution_ml"])
    total_ml = float(sum(o.volume_ml for o in options))
    k_max = len(options) if max_ablations is None else int(max_ablations)
    index = [
        i for i, o in enumerate(options) if o.enucleation_ml_by_label is not None or o.ablation_ml_by_label is not None
    ]
    values = _objective_values([o.volume_ml for o in options], objective)
    sparing = _Sparing(index, [options[i] for i in index], np.array([values[i] for i in index], float))
    combos = _combos(sparing.options) if _n_combos(sparing.options) <= 2 ** int(exact_max_lesions) else None
    finite = math.isfinite(required_flr_ml)
    slack = 1e-9 * max(1.0, abs(required_flr_ml)) if finite else 0.0
    resolution = float(cost_resolution_ml)
    best_key: tuple[float, float, int] | None = None
    best: tuple[frozenset[int], np.ndarray] | None = None
    for s, flr in flr_by_resection.items():
        capacity = (flr - required_flr_ml + (slack if comparator == ">=" else -slack)) if finite else math.inf
        if capacity < 0:
            continue
        covered = [_covered(o, s) for o in options]
        covered_ml = float(sum(v for v, c in zip(values, covered) if c))  # the objective's value
        free = np.array([not covered[i] for i in index], dtype=bool)
        if (
            best_key is not None
            and covered_ml + float(np.where(free, sparing.volumes, 0.0).sum()) < best_key[0] - _VALUE_TOL_ML
        ):
            continue  # cannot beat the best plan even treating every free lesion
        v, c, choice, resolution = _solve_resection(options, sparing, s, free, capacity, k_max, combos, resolution)
        key = (covered_ml + v, flr - c, -len(s))
        if _better(key, best_key):
            best_key, best = key, (s, choice)
    n_combos = len(combos) if combos is not None else None
    optimiser = _optimiser_text(n_combos, len(flr_by_resection), resolution, max_ablations)
    if best is None:
        return DebulkingPlan(
            False,
            [],
            {o.lesion_id: (None, 0.0) for o in options},
            0.0,
            total_ml,
            0,
            len(options),
            flr_by_resection.get(frozenset(), 0.0),
            optimiser,
            ["no plan keeps an adequate FLR: even the untreated liver is below the threshold"],
            {o.lesion_id: "; ".join(["no plan keeps an adequate FLR", *o.unavailable]) for o in options},
        )
    s, choice = best
    return _plan(options, sparing, s, choice, flr_by_resection[s], total_ml, optimiser)


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
        union = union_voxels_by_label(ctx, chosen)  # overlapping zones counted once
        plan.remnant_ml = remnant_after_zones_ml(flr_by[s], float(union[kept].sum()), ctx.voxel_volume_ml)
        plan.zone_union_ml_by_label = {k: float(union[k]) * ctx.voxel_volume_ml for k in kept}
        plan.remnant_check = checks.get(s, "")
        plan.resection_name = resection_name(s, rules["anatomy"], rules["resections"])
    plan.segment_spills = [sp for o in options for sp in o.spills]
    notes += spill_notes(plan.segment_spills, plan.treatments, plan.resected_segments) if plan.feasible else []
    plan.notes = notes + plan.notes
    return plan
