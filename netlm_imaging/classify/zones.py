"""Parenchyma lost to wedge resection / enucleation and ablation, measured on the masks.

For each intrahepatic lesion the zone of a sparing treatment is the lesion
dilated by a margin (every voxel whose centre lies within ``margin_mm`` of a
lesion voxel centre, by a Euclidean distance transform on the voxel spacing),
intersected with the total-liver mask. Its parenchyma cost is the
non-tumorous liver inside it (lesion voxels of any lesion are not
parenchyma), counted per Couinaud segment label so the planner can charge
only what lies in the kept segments. The remnant of a chosen plan is counted
on the union of the chosen zones, so overlapping zones are not charged twice.

The dilation is exact for the voxel spacing along the array axes (a ball of
radius ``margin_mm`` in mm, built as in-plane offsets each carrying a run
along the third axis, numpy only); for an oblique grid with orthogonal axes
(any rotation) it is the Euclidean distance in patient space, for a sheared
grid an approximation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..measure.context import MeasurementContext
from ..measure.lesions import bbox_slices
from ..volume import sparse_zeros

__all__ = ["LesionZones", "compute_zones", "dilate_ball", "union_cost_ml"]

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
    import cc3d

    spacing = np.linalg.norm(ctx.image.affine[:3, :3], axis=0)
    reach = max(margin_mm, ablation_margin_mm)
    pad = [math.ceil(reach / s) + 1 for s in spacing]
    labels = np.asarray(ctx.lesion_labels)
    liver = np.asarray(ctx.liver, dtype=bool) if ctx.liver is not None else np.ones(labels.shape, bool)
    voxel_ml = ctx.voxel_volume_ml
    out: dict[int, LesionZones] = {}
    # cc3d reads either memory order: no C-ordered copy of the label map (100 MiB at 512 x 512 x 200)
    contiguous = labels if labels.flags.c_contiguous or labels.flags.f_contiguous else np.ascontiguousarray(labels)
    boxes = cc3d.statistics(contiguous)["bounding_boxes"] if labels.any() else []
    for lid in lesion_ids:
        tight = boxes[lid] if 0 < lid < len(boxes) else None
        if tight is None:
            continue
        box = tuple(slice(max(0, sl.start - p), min(n, sl.stop + p)) for sl, p, n in zip(tight, pad, labels.shape))
        box3: tuple[slice, slice, slice] = (box[0], box[1], box[2])
        lab = labels[box3]
        lesion = lab == lid
        in_liver = liver[box3]
        parenchyma = in_liver & (lab == 0)
        seg = _labels(ctx, box3) if ctx.segment_labels is not None else None
        zones = []
        for m in (margin_mm, ablation_margin_mm):
            zone = dilate_ball(lesion, m, spacing) & in_liver
            if seg is None:  # every voxel has label 0: the count is the whole histogram
                counts = np.zeros(_N_LABELS, dtype=np.int64)
                counts[0] = np.count_nonzero(zone & parenchyma)
            else:
                counts = np.bincount(seg[zone & parenchyma], minlength=_N_LABELS)[:_N_LABELS]
            zones.append((zone, counts.astype(np.float64) * voxel_ml))
        out[int(lid)] = LesionZones(int(lid), box3, zones[0][0], zones[1][0], zones[0][1], zones[1][1])
    return out


def dilate_ball(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` (+1e-6 relative) of a ``True`` voxel centre (anisotropic spacing).

    The ball is decomposed into in-plane offsets ``(di, dj)``, each with the
    half-length ``h`` it allows along the third axis; the mask is first dilated
    along that axis by every distinct ``h`` (running maxima), then shifted and
    OR-ed for each offset. Exact for the Euclidean distance on the grid.

    Examples
    --------
    >>> m = np.zeros((5, 5, 5), bool); m[2, 2, 2] = True
    >>> int(dilate_ball(m, 1.0, np.array([1.0, 1.0, 1.0])).sum())  # the centre and its 6 face neighbours
    7
    """
    si, sj, sk = (float(x) for x in spacing)
    # a relative tolerance keeps voxels at exactly the radius inside even when the affine went through float32
    radius_mm = radius_mm * (1.0 + 1e-6)
    r2 = radius_mm * radius_mm
    ni, nj = math.floor(radius_mm / si), math.floor(radius_mm / sj)
    along: dict[int, np.ndarray] = {}
    n0, n1, n2 = mask.shape
    out = np.zeros((n0, n1, (n2 + 7) // 8), dtype=np.uint8)
    for di in range(-ni, ni + 1):
        for dj in range(-nj, nj + 1):
            rest = r2 - (di * si) ** 2 - (dj * sj) ** 2
            if rest < 0:
                continue
            h = math.floor(math.sqrt(rest) / sk)
            if h not in along:
                run = mask.copy()
                for d in range(1, min(h, n2 - 1) + 1):
                    run[:, :, d:] |= mask[:, :, :-d]
                    run[:, :, :-d] |= mask[:, :, d:]
                # the in-plane shifts below OR whole rows along the third axis: on its packed bits (8 voxels
                # a byte) they move 8x less memory, with the same result
                along[h] = np.packbits(run, axis=2)
            src = along[h]
            a0, a1 = max(0, di), min(n0, n0 + di)
            b0, b1 = max(0, dj), min(n1, n1 + dj)
            if a0 >= a1 or b0 >= b1:
                continue
            out[a0:a1, b0:b1] |= src[a0 - di : a1 - di, b0 - dj : b1 - dj]
    return np.unpackbits(out, axis=2, count=n2).astype(bool)


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
    union = sparse_zeros(labels.shape, bool, "F" if labels.flags.f_contiguous else "C")  # written in zone boxes only
    for z, kind in zones:
        union[z.box] |= z.enucleation if kind == "enucleation" else z.ablation
    bb = bbox_slices(union)
    if bb is None:
        return 0.0
    sub = union[bb] & (labels[bb] == 0)
    seg = _labels(ctx, bb)
    keep = np.isin(seg, np.asarray(list(kept_labels), dtype=np.int64))
    return float(np.count_nonzero(sub & keep)) * ctx.voxel_volume_ml
