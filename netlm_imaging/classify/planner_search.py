"""The debulking planner's search: the best plan over the candidate resections and the sparing choices
beside each (every free lesion when they fit; else exact enumeration or the knapsack DP of
:mod:`.knapsack`), its bound and its tie-breaks (see :mod:`.planner` for the method)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..rules_data import default_rules_tree
from .knapsack import ABLATION as _ABL
from .knapsack import NONE as _NONE
from .knapsack import VALUE_TOL_ML as _VALUE_TOL_ML
from .knapsack import WEDGE as _WEDGE
from .knapsack import objective_values as _objective_values
from .knapsack import solve_dp as _solve_dp
from .knapsack import solve_enum as _solve_enum
from .planner_model import DebulkingPlan, LesionOption, kept_label_mask
from .planner_model import covered as _covered

__all__ = ["optimise_plan"]

#: Largest DP table (ablation counts x capacity units x lesions); the resolution is coarsened above it.
_MAX_DP_CELLS = 30_000_000
_KIND = {_WEDGE: "enucleation", _ABL: "ablation"}


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
