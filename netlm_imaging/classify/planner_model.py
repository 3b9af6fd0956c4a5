"""What the debulking planner chooses among and what it returns: each lesion's options
(:class:`LesionOption`, :func:`lesion_options`), the segments a resection keeps and the plan
(:class:`DebulkingPlan`) with its remnant (see :mod:`.planner`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..measure.context import MeasurementContext
from ..measure.segments import N_SEGMENTS, SegmentTable
from .involvement import SegmentSpill, involved_segments
from .knapsack import WEDGE as _WEDGE
from .sparing import SPARING, refusal
from .zones import LesionZones

__all__ = [
    "DebulkingPlan",
    "LesionOption",
    "covered",
    "kept_label_mask",
    "lesion_options",
    "remnant_after_zones_ml",
]


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
        chosen enucleation/ablation zones and of the zones of the resected lesions' spills into kept
        segments there (overlaps counted once; empty when infeasible): what ``remnant_ml`` subtracts.
    segment_spills : list of SegmentSpill
        The lesions' parts in segments below the involvement tolerance (set by :func:`plan_debulking`).
    spill_zone_ml : float
        Non-tumorous liver of the kept segments in the union of the zones of the spills the resection
        takes (a spill of a lesion it takes into a segment it keeps): what the optimiser charged the
        resection before the sparing choices.
    spill_taken_ml : dict
        (lesion id, segment) -> that mL of each such spill's own zone.
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
    spill_zone_ml: float = 0.0
    spill_taken_ml: dict[tuple[int, int], float] = field(default_factory=dict)

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


def covered(opt: LesionOption, s: frozenset[int]) -> bool:
    """Whether resection ``s`` takes the lesion: it involves segments, all of them in ``s``."""
    return bool(opt.segments) and opt.segments <= s
