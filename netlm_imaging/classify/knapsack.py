"""The knapsack of the debulking planner: the sparing treatments (wedge / ablation) of the lesions a
resection leaves, the most tumour volume within an FLR budget and at most K ablations.

:func:`solve_enum` enumerates every combination of per-lesion choices (exact);
:func:`solve_dp` is the dynamic programme over (ablation count, cost rounded up to a
resolution) used when there are too many (see :mod:`netlm_imaging.classify.planner`).
Ties in value (within :data:`VALUE_TOL_ML`): the enumeration takes the least cost among them; the
programme keeps a table entry unless a candidate beats it by more than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["ABLATION", "NONE", "VALUE_TOL_ML", "WEDGE", "objective_values", "solve_dp", "solve_enum"]

#: Treated volumes closer than this (mL) count as equal.
VALUE_TOL_ML = 1e-9
#: Per-lesion choices: nothing, wedge resection / enucleation, ablation.
NONE, WEDGE, ABLATION = 0, 1, 2


def objective_values(volumes_ml: Sequence[float], objective: str) -> list[float]:
    """Each lesion's value in the knapsack: its volume (mL), or 1 per lesion plus a volume share.

    ``"count"`` (the rules' ``debulking.primary_measure``): the shares add up to at most 0.5 over all
    lesions, so a plan treating more lesions always wins and, among plans treating as many, the one
    treating more volume.

    Examples
    --------
    >>> objective_values([3.0, 1.0], "count")
    [1.375, 1.125]
    """
    if objective == "volume":
        return [float(v) for v in volumes_ml]
    if objective != "count":
        raise ValueError(f"objective must be 'volume' or 'count', got {objective!r}")
    total = float(sum(volumes_ml))
    scale = 0.5 / total if total > 0 else 0.0
    return [1.0 + float(v) * scale for v in volumes_ml]


def solve_enum(
    combos: np.ndarray, vals: np.ndarray, ce: np.ndarray, ca: np.ndarray, capacity: float, k_max: int
) -> tuple[float, float, np.ndarray]:
    """Exact: best value within capacity and k_max ablations, least cost among ties; (value, cost, choice)."""
    wedge = combos == WEDGE
    abl = combos == ABLATION
    value = (wedge | abl) @ vals
    cost = wedge @ ce + abl @ ca
    ok = (cost <= capacity) & (abl.sum(1) <= k_max)
    if not ok.any():
        return 0.0, 0.0, np.zeros(combos.shape[1], dtype=np.int8)
    best = value[ok].max()
    cand = ok & (value >= best - VALUE_TOL_ML)
    idx = np.flatnonzero(cand)[np.argmin(cost[cand])]
    return float(value[idx]), float(cost[idx]), combos[idx].copy()


def solve_dp(
    vals: np.ndarray, ce: np.ndarray, ca: np.ndarray, capacity: float, k_max: int, resolution: float
) -> tuple[float, float, np.ndarray]:
    """DP over (ablations <= k, cost units <= c); costs rounded up. (value, true cost, choice); NaN = unavailable."""
    n = vals.size
    choice = np.zeros(n, dtype=np.int8)
    if n == 0 or capacity < 0:
        return 0.0, 0.0, choice
    we = np.where(np.isnan(ce), -1, np.ceil(np.nan_to_num(ce) / resolution - 1e-12)).astype(np.int64)
    wa = np.where(np.isnan(ca), -1, np.ceil(np.nan_to_num(ca) / resolution - 1e-12)).astype(np.int64)
    cap = min(math.floor(capacity / resolution + 1e-12), int(np.maximum(we, 0).sum() + np.maximum(wa, 0).sum()))
    k_top = min(k_max, int((wa >= 0).sum()))
    dp = np.zeros((k_top + 1, cap + 1))
    # each item's improvements: (kind, first row, first column, where its candidate won), ablation last
    improved: list[list[tuple[int, int, int, np.ndarray]]] = []
    # after items 0..i, dp is constant from column reach[i] on (their largest usable weights summed) and
    # from row rows[i] on (their ablations): an item updates only that corner, first extended by copies
    reach, rows, done, top = [], [], 0, 0
    for i in range(n):
        v = float(vals[i])
        kinds = ((WEDGE, int(we[i])), (ABLATION, int(wa[i]))) if k_top > 0 else ((WEDGE, int(we[i])),)
        usable = [(kind, w) for kind, w in kinds if 0 <= w <= cap]
        end = min(cap, done + max((w for _, w in usable), default=0)) + 1  # columns [0, end) can change
        dp[: top + 1, done + 1 : end] = dp[: top + 1, done : done + 1]
        if top < k_top and any(kind == ABLATION for kind, _ in usable):
            dp[top + 1, :end] = dp[top, :end]
            top += 1
        # both candidates from the previous row, taken before dp is updated in place (wedge, then ablation)
        cands = []
        for kind, w in usable:
            # only the shifted region can improve (elsewhere the candidate is -inf): work on views of it
            lo = 0 if kind == WEDGE else 1
            cands.append((kind, lo, w, dp[: top + 1 - lo, : end - w] + v))
        won = []
        for kind, lo, w, cand in cands:
            dst = dp[lo : top + 1, w:end]
            better = cand > dst + VALUE_TOL_ML
            np.copyto(dst, cand, where=better)
            won.append((kind, lo, w, better))
        improved.append(won[::-1])  # a cell's kind is the last candidate that won it
        done = end - 1
        reach.append(done)
        rows.append(top)
    k, c = k_top, cap
    for i in range(n - 1, -1, -1):
        row, col = min(k, rows[i]), min(c, reach[i])  # beyond its corner an item's choice repeats
        kind = next(
            (kd for kd, lo, w, better in improved[i] if row >= lo and col >= w and better[row - lo, col - w]), NONE
        )
        choice[i] = kind
        if kind == WEDGE:
            c -= int(we[i])
        elif kind == ABLATION:
            c -= int(wa[i])
            k -= 1
    cost = float(
        np.where(choice == WEDGE, np.nan_to_num(ce), 0).sum() + np.where(choice == ABLATION, np.nan_to_num(ca), 0).sum()
    )
    return float(vals[choice != NONE].sum()), cost, choice
