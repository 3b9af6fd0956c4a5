"""Debulking planner: the most tumour volume treatable while the FLR stays adequate.

A plan combines

- resection of whole Couinaud segments: every subset ``S`` of segments 1-8
  (256 candidates; only the empty set without a segment map). A lesion is
  treated by the resection when every one of its voxels that lies in a
  segment lies in ``S`` (a lesion crossing into a kept segment is not);
- parenchymal-sparing treatment of single lesions not covered by ``S``:
  enucleation / wedge resection with margin ``m`` (parenchyma cost = the shell
  of thickness ``m`` around a sphere of the lesion's equivalent diameter
  ``d = (6 V / pi)^(1/3)``: ``pi/6 ((d + 2m)^3 - d^3)``), or ablation of a
  lesion whose maximum 3-D diameter ``D`` is at most the rules' limit (cost =
  ablation zone ``pi/6 (D + 2 m_a)^3`` minus the lesion volume). Each lesion
  uses its cheaper available option. The cost model is geometric (a sphere),
  not the lesion mask dilated in the liver; it is an estimate [D].

The FLR after a plan is the non-tumorous liver in the kept segments minus the
parenchyma cost of the sparing treatments (untreated tumour is never FLR). A
plan is feasible when that FLR, as a percentage of the deciding denominator
(TELV or the non-tumorous liver), meets the threshold of the liver condition.

For a fixed ``S`` the choice of sparing treatments is a 0/1 knapsack
(value = lesion volume, weight = parenchyma cost, capacity = FLR(S) minus the
required FLR). Solved

- exactly, by enumerating all subsets of the lesions with a sparing option,
  when there are at most ``planner.exact_enumeration_max_lesions`` of them
  (vectorised: ``2^n`` subsets x 256 segment sets);
- otherwise by an exact dynamic programme over costs rounded **up** to
  ``planner.cost_resolution_ml``. Rounding up keeps every plan feasible in the
  true costs, and because each chosen lesion's rounded cost exceeds its true
  cost by less than the resolution, the plan treats at least as much tumour as
  the true optimum for a budget smaller by ``n x resolution`` (``n`` lesions).

Ties in treated volume are broken by the larger remaining FLR, then by fewer
resected segments. Segment sets whose upper bound (covered tumour plus every
free lesion) cannot beat the best plan so far are skipped, and when every free
lesion fits the budget all are taken without solving the knapsack; neither
shortcut changes the optimum.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..measure.context import Lesion
from ..measure.segments import N_SEGMENTS, SegmentTable

__all__ = [
    "DebulkingPlan",
    "LesionOption",
    "ablation_cost_ml",
    "enucleation_cost_ml",
    "lesion_options",
    "optimise_plan",
    "plan_debulking",
]

logger = logging.getLogger(__name__)

_VALUE_TOL_ML = 1e-9
#: Largest DP table (capacity units); the resolution is coarsened above it and the plan says so.
_MAX_DP_UNITS = 200_000


def enucleation_cost_ml(volume_ml: float, margin_mm: float) -> float:
    """Parenchyma in a shell of ``margin_mm`` around the lesion's equivalent sphere (mL).

    Examples
    --------
    >>> d = 20.0; v = math.pi / 6 * d**3 / 1000  # a 20 mm sphere
    >>> round(enucleation_cost_ml(v, 10.0), 4) == round(math.pi / 6 * (40.0**3 - 20.0**3) / 1000, 4)
    True
    """
    d_mm = (6.0 * volume_ml * 1000.0 / math.pi) ** (1.0 / 3.0)
    return math.pi / 6.0 * ((d_mm + 2.0 * margin_mm) ** 3 - d_mm**3) / 1000.0


def ablation_cost_ml(volume_ml: float, max_diameter_mm: float, margin_mm: float) -> float:
    """Ablation zone (sphere of the maximum diameter plus the margin on each side) minus the lesion (mL)."""
    zone_ml = math.pi / 6.0 * (max_diameter_mm + 2.0 * margin_mm) ** 3 / 1000.0
    return max(0.0, zone_ml - volume_ml)


@dataclass(frozen=True)
class LesionOption:
    """What the planner may do with one intrahepatic lesion.

    Attributes
    ----------
    lesion_id : int
    volume_ml : float
    segments : frozenset of int
        Couinaud segments holding any of its voxels (empty: none / no map).
    enucleation_cost_ml, ablation_cost_ml : float or None
        Parenchyma cost of each sparing option (None = not allowed).
    """

    lesion_id: int
    volume_ml: float
    segments: frozenset[int] = frozenset()
    enucleation_cost_ml: float | None = None
    ablation_cost_ml: float | None = None

    @property
    def sparing(self) -> tuple[str, float] | None:
        """The cheaper available sparing treatment and its cost, or None."""
        opts = [
            (c, t)
            for t, c in (("ablation", self.ablation_cost_ml), ("enucleation", self.enucleation_cost_ml))
            if c is not None
        ]
        if not opts:
            return None
        cost, kind = min(opts)
        return kind, cost


def lesion_options(
    lesions: Sequence[Lesion], table: SegmentTable | None, planner: Mapping[str, Any]
) -> list[LesionOption]:
    """Planner options for the intrahepatic lesions, from the rules' ``planner`` table."""
    out = []
    for les in lesions:
        if les.location != "intrahepatic":
            continue
        segs: frozenset[int] = frozenset()
        if table is not None and les.id in table.lesion_ids:
            segs = frozenset(table.lesion_segments_touched(les.id))
        enuc = enucleation_cost_ml(les.volume_ml, planner["margin_mm"]) if planner["allow_enucleation"] else None
        abl = None
        if planner["allow_ablation"] and les.max_3d_diameter_mm <= planner["ablation_max_diameter_mm"]:
            abl = ablation_cost_ml(les.volume_ml, les.max_3d_diameter_mm, planner["ablation_margin_mm"])
        out.append(LesionOption(les.id, float(les.volume_ml), segs, enuc, abl))
    return out


@dataclass
class DebulkingPlan:
    """The best plan found and what it leaves.

    Attributes
    ----------
    feasible : bool
        False when not even the untreated liver meets the FLR threshold.
    resected_segments : list of int
    treatments : dict
        Lesion id -> ("resection" | "enucleation" | "ablation" | None, parenchyma cost mL).
    treated_ml, total_tumor_ml : float
    treated_count, total_count : int
    remnant_ml : float
        Non-tumorous FLR left by the plan.
    optimiser : str
        How the knapsack was solved.
    notes : list of str
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

    @property
    def debulking_percent_volume(self) -> float | None:
        """100 x treated / total tumour volume (None without tumour)."""
        return 100.0 * self.treated_ml / self.total_tumor_ml if self.total_tumor_ml > 0 else None

    @property
    def debulking_percent_count(self) -> float | None:
        """100 x treated / total lesion count (None without lesions)."""
        return 100.0 * self.treated_count / self.total_count if self.total_count else None


def _subsets(allow_resection: bool) -> list[frozenset[int]]:
    if not allow_resection:
        return [frozenset()]
    segs = range(1, N_SEGMENTS + 1)
    return [frozenset(c) for r in range(N_SEGMENTS + 1) for c in itertools.combinations(segs, r)]


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


def _subset_bits(n: int) -> np.ndarray:
    """(2^n, n) 0/1 matrix of every subset of n items."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)


def _enumerate(
    values: np.ndarray, costs: np.ndarray, capacity: float, bits: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """Exact 0/1 knapsack by enumeration: (best value, its cost, chosen mask); least cost among ties."""
    n = values.size
    if n == 0:
        return 0.0, 0.0, np.zeros(0, dtype=bool)
    tot_v = bits @ values
    tot_c = bits @ costs
    ok = tot_c <= capacity
    if not ok.any():
        return 0.0, 0.0, np.zeros(n, dtype=bool)
    best_v = tot_v[ok].max()
    cand = ok & (tot_v >= best_v - _VALUE_TOL_ML)
    idx = np.flatnonzero(cand)[np.argmin(tot_c[cand])]
    return float(tot_v[idx]), float(tot_c[idx]), bits[idx].astype(bool)


def _dp(values: np.ndarray, costs: np.ndarray, capacity: float, resolution: float) -> tuple[float, float, np.ndarray]:
    """0/1 knapsack DP on costs rounded up to ``resolution``: (value, true cost, chosen mask)."""
    n = values.size
    if n == 0 or capacity < 0:
        return 0.0, 0.0, np.zeros(n, dtype=bool)
    w = np.ceil(costs / resolution - 1e-12).astype(np.int64)
    cap = min(math.floor(capacity / resolution + 1e-12), int(w.sum()))
    dp = np.zeros(cap + 1)
    take = np.zeros((n, cap + 1), dtype=bool)
    for i in range(n):
        wi, vi = int(w[i]), float(values[i])
        if wi > cap:
            continue
        if wi == 0:
            cand = dp + vi
        else:
            cand = dp.copy()
            cand[wi:] = dp[:-wi] + vi
        better = cand > dp + _VALUE_TOL_ML
        take[i] = better
        dp = np.where(better, cand, dp)
    chosen = np.zeros(n, dtype=bool)
    c = cap
    for i in range(n - 1, -1, -1):
        if take[i, c]:
            chosen[i] = True
            c -= int(w[i])
    return float(values[chosen].sum()), float(costs[chosen].sum()), chosen


def optimise_plan(
    options: Sequence[LesionOption],
    flr_by_resection: Mapping[frozenset[int], float],
    required_flr_ml: float,
    *,
    comparator: str = ">=",
    exact_max_lesions: int = 14,
    cost_resolution_ml: float = 0.1,
) -> DebulkingPlan:
    """Best plan over the candidate resections and the per-lesion sparing treatments.

    Parameters
    ----------
    options : sequence of LesionOption
    flr_by_resection : Mapping
        Resected segment set -> non-tumorous FLR (mL) of the kept segments;
        its keys are the candidate resections.
    required_flr_ml : float
        The FLR the threshold demands (threshold % x denominator).
    comparator : {">=", ">"}
    exact_max_lesions : int
        Enumerate exactly up to this many lesions with a sparing option.
    cost_resolution_ml : float
        Cost rounding of the DP used above that.

    Returns
    -------
    DebulkingPlan
    """
    total_ml = float(sum(o.volume_ml for o in options))
    sparing = {i: o.sparing for i, o in enumerate(options)}
    spar_idx = [i for i, sp in sparing.items() if sp is not None]
    spar_cost = np.array([sp[1] for sp in sparing.values() if sp is not None], dtype=np.float64)
    spar_val = np.array([options[i].volume_ml for i in spar_idx], dtype=np.float64)
    exact = len(spar_idx) <= exact_max_lesions
    slack = 1e-9 * max(1.0, abs(required_flr_ml))
    resolution = cost_resolution_ml
    bits = _subset_bits(len(spar_idx)) if exact else np.zeros((1, 0))
    if not exact:
        max_cap = min(max(flr_by_resection.values()) - required_flr_ml, float(spar_cost.sum()))
        if max_cap / resolution > _MAX_DP_UNITS:
            resolution = max_cap / _MAX_DP_UNITS
    best_key: tuple[float, float, int] | None = None
    best: tuple[frozenset[int], np.ndarray, float] | None = None
    for s, flr in flr_by_resection.items():
        capacity = flr - required_flr_ml + (slack if comparator == ">=" else -slack)
        if capacity < 0:
            continue
        covered = [_covered(o, s) for o in options]
        covered_ml = float(sum(o.volume_ml for o, c in zip(options, covered) if c))
        free = np.array([not covered[i] for i in spar_idx], dtype=bool)
        if best_key is not None and covered_ml + float(spar_val[free].sum()) < best_key[0] - _VALUE_TOL_ML:
            continue  # cannot beat the best plan even treating every free lesion
        if float(spar_cost[free].sum()) <= capacity:
            v, c, chosen = float(spar_val[free].sum()), float(spar_cost[free].sum()), free.copy()
        elif exact:
            v, c, chosen = _enumerate(np.where(free, spar_val, 0.0), np.where(free, spar_cost, 0.0), capacity, bits)
            chosen &= free
        else:
            chosen = np.zeros(free.size, dtype=bool)
            v, c, sub = _dp(spar_val[free], spar_cost[free], capacity, resolution)
            chosen[np.flatnonzero(free)[sub]] = True
        key = (covered_ml + v, flr - c, -len(s))
        if _better(key, best_key):
            best_key, best = key, (s, chosen, c)
    if exact:
        optimiser = f"exact enumeration of {2 ** len(spar_idx)} lesion subsets x {len(flr_by_resection)} resections"
    else:
        optimiser = (
            f"0/1 knapsack dynamic programme on costs rounded up to {resolution:g} mL "
            f"x {len(flr_by_resection)} resections"
        )
    if best is None:
        treatments: dict[int, tuple[str | None, float]] = {o.lesion_id: (None, 0.0) for o in options}
        return DebulkingPlan(
            False,
            [],
            treatments,
            0.0,
            total_ml,
            0,
            len(options),
            flr_by_resection.get(frozenset(), 0.0),
            optimiser,
            ["no plan keeps an adequate FLR: even the untreated liver is below the threshold"],
        )
    s, chosen, cost = best
    treatments = {}
    chosen_ids = {options[spar_idx[k]].lesion_id for k in np.flatnonzero(chosen)}
    for i, o in enumerate(options):
        sp = sparing[i]
        if _covered(o, s):
            treatments[o.lesion_id] = ("resection", 0.0)
        elif o.lesion_id in chosen_ids and sp is not None:
            treatments[o.lesion_id] = sp
        else:
            treatments[o.lesion_id] = (None, 0.0)
    treated = [o for o in options if treatments[o.lesion_id][0] is not None]
    return DebulkingPlan(
        True,
        sorted(s),
        treatments,
        float(sum(o.volume_ml for o in treated)),
        total_ml,
        len(treated),
        len(options),
        flr_by_resection[s] - cost,
        optimiser,
    )


def plan_debulking(
    lesions: Sequence[Lesion],
    table: SegmentTable | None,
    planner: Mapping[str, Any],
    *,
    non_tumorous_total_ml: float,
    required_flr_ml: float,
    comparator: str = ">=",
) -> DebulkingPlan:
    """Plan from the measured lesions, the segment table and the rules' ``planner`` table.

    Parameters
    ----------
    lesions : sequence of Lesion
        Extrahepatic lesions are ignored.
    table : SegmentTable or None
        Without it only lesion-level treatments are planned (and the plan says so).
    planner : Mapping
        ``rules["planner"]``.
    non_tumorous_total_ml : float
        FLR when nothing is resected and there is no segment map.
    required_flr_ml : float
        Threshold percentage x deciding denominator.
    comparator : {">=", ">"}

    Returns
    -------
    DebulkingPlan
    """
    options = lesion_options(lesions, table, planner)
    notes = []
    if table is None:
        flr_by: dict[frozenset[int], float] = {frozenset(): non_tumorous_total_ml}
        notes.append("no Couinaud segment map: lesion-level treatments only (no segment resection planned)")
    else:
        subsets = _subsets(bool(planner["allow_segment_resection"]))
        flr_by = {s: table.non_tumorous_ml([k for k in range(1, N_SEGMENTS + 1) if k not in s]) for s in subsets}
        if not planner["allow_segment_resection"]:
            notes.append("segment resection disabled in the rules: lesion-level treatments only")
        outside = [o.lesion_id for o in options if not o.segments]
        if outside:
            notes.append(f"lesions {outside} lie outside every segment: only sparing treatment can treat them")
    plan = optimise_plan(
        options,
        flr_by,
        required_flr_ml,
        comparator=comparator,
        exact_max_lesions=int(planner["exact_enumeration_max_lesions"]),
        cost_resolution_ml=float(planner["cost_resolution_ml"]),
    )
    plan.notes = notes + plan.notes
    return plan
