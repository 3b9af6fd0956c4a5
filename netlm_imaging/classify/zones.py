"""Parenchyma lost to wedge resection / enucleation and ablation, measured on the masks.

For each intrahepatic lesion the zone of a sparing treatment is the lesion
dilated by a margin (every voxel whose centre lies within ``margin_mm`` of a
lesion voxel centre, by a Euclidean distance transform on the voxel spacing),
intersected with the total-liver mask. Its parenchyma cost is the
non-tumorous liver inside it (lesion voxels of any lesion are not
parenchyma), counted per Couinaud segment label so the planner can charge
only what lies in the kept segments. The remnant of a chosen plan is counted
on the union of the chosen zones, so overlapping zones are not charged twice.

The distance transform uses the voxel spacing along the array axes; for an
oblique grid with orthogonal axes (any rotation) it is exact, for a sheared
grid it is an approximation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..measure.context import MeasurementContext
from ..measure.lesions import bbox_slices

__all__ = ["LesionZones", "compute_zones", "union_cost_ml"]

_N_LABELS = 9


@dataclass
class LesionZones:
    """Zones of one lesion within its padded bounding box.

    Attributes
    ----------
    lesion_id : int
    box : tuple of slice
        Crop of the image grid holding both zones.
    enucleation, ablation : numpy.ndarray
        Boolean zone masks (liver only) within ``box``.
    enucleation_ml_by_label, ablation_ml_by_label : numpy.ndarray
        (9,) non-tumorous liver (mL) of each zone per segment label (0 = none).
    """

    lesion_id: int
    box: tuple[slice, slice, slice]
    enucleation: np.ndarray
    ablation: np.ndarray
    enucleation_ml_by_label: np.ndarray
    ablation_ml_by_label: np.ndarray


def _labels(ctx: MeasurementContext, box: tuple[slice, slice, slice]) -> np.ndarray:
    if ctx.segment_labels is None:
        return np.zeros(tuple(s.stop - s.start for s in box), dtype=np.int64)
    lab = np.asarray(ctx.segment_labels[box]).astype(np.int64)
    return np.where((lab >= 1) & (lab <= 8), lab, 0)


def compute_zones(
    ctx: MeasurementContext, lesion_ids: Iterable[int], margin_mm: float, ablation_margin_mm: float
) -> dict[int, LesionZones]:
    """Enucleation (``margin_mm``) and ablation (``ablation_margin_mm``) zones of the given lesions.

    Parameters
    ----------
    ctx : MeasurementContext
        Needs the total-liver mask and the lesion label map.
    lesion_ids : iterable of int
    margin_mm, ablation_margin_mm : float

    Returns
    -------
    dict
        Lesion id -> :class:`LesionZones`.
    """
    from scipy.ndimage import distance_transform_edt, find_objects

    spacing = np.linalg.norm(ctx.image.affine[:3, :3], axis=0)
    reach = max(margin_mm, ablation_margin_mm)
    pad = [math.ceil(reach / s) + 1 for s in spacing]
    labels = np.asarray(ctx.lesion_labels)
    liver = np.asarray(ctx.liver, dtype=bool) if ctx.liver is not None else np.ones(labels.shape, bool)
    voxel_ml = ctx.voxel_volume_ml
    out: dict[int, LesionZones] = {}
    objects = find_objects(labels)
    for lid in lesion_ids:
        tight = objects[lid - 1] if 0 < lid <= len(objects) else None
        if tight is None:
            continue
        box = tuple(slice(max(0, sl.start - p), min(n, sl.stop + p)) for sl, p, n in zip(tight, pad, labels.shape))
        box3: tuple[slice, slice, slice] = (box[0], box[1], box[2])
        lab = labels[box3]
        lesion = lab == lid
        dist = distance_transform_edt(~lesion, sampling=spacing)
        in_liver = liver[box3]
        parenchyma = in_liver & (lab == 0)
        seg = _labels(ctx, box3)
        zones = []
        for m in (margin_mm, ablation_margin_mm):
            zone = (dist <= m + 1e-9) & in_liver
            counts = np.bincount(seg[zone & parenchyma], minlength=_N_LABELS)[:_N_LABELS]
            zones.append((zone, counts.astype(np.float64) * voxel_ml))
        out[int(lid)] = LesionZones(int(lid), box3, zones[0][0], zones[1][0], zones[0][1], zones[1][1])
    return out


def union_cost_ml(
    ctx: MeasurementContext, zones: Sequence[tuple[LesionZones, str]], kept_labels: Sequence[int]
) -> float:
    """Non-tumorous liver (mL) in the union of the chosen zones that lies in the kept segment labels.

    Parameters
    ----------
    ctx : MeasurementContext
    zones : sequence of (LesionZones, kind)
        ``kind`` is "enucleation" or "ablation".
    kept_labels : sequence of int
        Segment labels (0 = unlabelled liver, 1..8) left in place.
    """
    if not zones:
        return 0.0
    labels = np.asarray(ctx.lesion_labels)
    union = np.zeros(labels.shape, dtype=bool)
    for z, kind in zones:
        union[z.box] |= z.enucleation if kind == "enucleation" else z.ablation
    bb = bbox_slices(union)
    if bb is None:
        return 0.0
    sub = union[bb] & (labels[bb] == 0)
    seg = _labels(ctx, bb)
    keep = np.isin(seg, np.asarray(list(kept_labels), dtype=np.int64))
    return float(np.count_nonzero(sub & keep)) * ctx.voxel_volume_ml
