"""Vascular contact: the gap between each lesion and each hepatic vessel given with the segmentation.

A measured fact for the surgeon, not a decision: the tool cannot compute surgical feasibility from
vascular involvement (clinical_rules.md section 2, "What it cannot compute"). The vessels are the
masks of role ``vessel`` (portal vein, hepatic vein, IVC, hepatic artery, TotalSegmentator's
``liver_vessels``; :func:`~netlm_imaging.segmentation.vessel_name`), grouped by the vessel they name.

The gap is surface to surface in patient space: for each boundary voxel of the lesion, the nearest
boundary voxel centre of the vessel (a k-d tree on the centres mapped through the image affine, so an
oblique or anisotropic grid is measured in mm), minus the extent of one voxel along that direction
(half a voxel of each mask: face-adjacent voxels are 0 mm apart); masks that overlap or touch are 0.
The minimum over the lesion's boundary is the lesion's gap to that vessel, to within about one voxel
diagonal of the continuous surfaces the masks sample.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..segmentation import MaskLayer, vessel_name
from .context import MeasurementContext

__all__ = ["NOT_ASSESSED", "VascularContact", "measure_vascular_contact", "vessel_groups"]

logger = logging.getLogger(__name__)

#: The report's statement when the segmentation holds no vessel.
NOT_ASSESSED = (
    "vascular contact was not assessed: the segmentation holds no hepatic vessel (portal vein, hepatic vein, IVC, "
    "hepatic artery, TotalSegmentator's liver_vessels); give one to have each lesion's distance to it measured"
)


@dataclass(frozen=True)
class VascularContact:
    """What was measured.

    Attributes
    ----------
    vessels : tuple of str
        The vessel names measured against (empty: not assessed).
    distances_mm : dict
        Lesion id -> {vessel name: gap in mm}.
    """

    vessels: tuple[str, ...]
    distances_mm: dict[int, dict[str, float]]

    @property
    def assessed(self) -> bool:
        """Whether any vessel was given."""
        return bool(self.vessels)

    def block(self) -> dict[str, object]:
        """The report's ``vascular_contact`` block (additive)."""
        method = (
            "minimum surface-to-surface distance in patient space between each lesion mask and each vessel mask "
            "(nearest boundary voxel centres minus one voxel extent along their direction; 0 when they touch)"
        )
        return {
            "assessed": self.assessed,
            "vessels": list(self.vessels),
            "method": method if self.assessed else None,
            "note": None if self.assessed else NOT_ASSESSED,
        }


def vessel_groups(layers: Sequence[MaskLayer], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The union mask of each named vessel among ``layers`` (on one grid of ``shape``), in input order.

    A layer is named by its label (``Portal Vein``, ``liver_vessels``) through
    :func:`~netlm_imaging.segmentation.vessel_name`, else by its label or file as given.
    """
    out: dict[str, np.ndarray] = {}
    for la in layers:
        if la.role != "vessel":
            continue
        text = la.label or la.role  # a mask passed as vessel=PATH: its file's name (io.loader)
        if re.fullmatch(r"[\d+]+", text):  # a label map's values (--labels vessel=3): no name to read
            text = f"liver vessels (label {text})"
        name = vessel_name(text) if not text.startswith("liver vessels (") else None
        name = name or text
        mask = la.binary()
        if not mask.any():
            continue
        if name in out:
            out[name] = out[name] | mask
        else:
            out[name] = np.asarray(mask, dtype=bool).copy()
    return out


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Indices of the voxels of ``mask`` with a 6-neighbour outside it (the grid's edge counts as outside).

    Eroded on the mask's bounding box only (grown by one voxel), not on the whole grid.

    >>> m = np.zeros((5, 5, 5), bool); m[1:4, 1:4, 1:4] = True
    >>> len(_boundary(m)), len(_boundary(np.zeros((2, 2, 2), bool)))
    (26, 0)
    """
    from scipy import ndimage

    from ..geometry import nonzero_bbox

    box = nonzero_bbox(mask, 1)
    if box is None:
        return np.zeros((0, 3), dtype=np.intp)
    sub = mask[box]
    inner = ndimage.binary_erosion(sub, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
    return np.argwhere(sub & ~inner) + np.array([b.start for b in box])


def _gap_mm(lesion_idx: np.ndarray, vessel_tree: object, vessel_mm: np.ndarray, affine: np.ndarray) -> float:
    """Minimum surface gap (mm) of the lesion boundary voxels ``lesion_idx`` to the vessel boundary."""
    lin = affine[:3, :3]
    pts = lesion_idx @ lin.T + affine[:3, 3]
    dist, nearest = vessel_tree.query(pts)  # type: ignore[attr-defined]
    dist = np.asarray(dist, dtype=np.float64)
    delta = vessel_mm[np.asarray(nearest)] - pts
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = delta / dist[:, None]
    # one voxel's extent along the unit direction u is sum_i |u . a_i| over the voxel's edge vectors a_i (the
    # affine's columns): half of it belongs to each mask
    extent = np.abs(np.nan_to_num(unit) @ lin).sum(axis=1)
    gap = np.where(dist > 0, dist - extent, 0.0)
    return float(max(0.0, float(np.min(gap))))


def measure_vascular_contact(ctx: MeasurementContext, layers: Sequence[MaskLayer]) -> VascularContact:
    """Each lesion's gap (mm) to each vessel among ``layers`` (role ``vessel``, on the image grid of ``ctx``).

    Parameters
    ----------
    ctx : MeasurementContext
        The lesion instance map and lesions.
    layers : sequence of MaskLayer
        The study's layers on the image grid.

    Returns
    -------
    VascularContact
        No vessels: ``assessed`` False and no distances.
    """
    groups = vessel_groups(layers, tuple(ctx.lesion_labels.shape))
    if not groups:
        return VascularContact((), {})
    from scipy.spatial import cKDTree  # only with vessels: a plain analysis loads no scipy (test_perf_paths)

    affine = np.asarray(ctx.image.affine, dtype=np.float64)
    trees = {}
    for name, mask in groups.items():
        idx = _boundary(mask)
        mm = idx @ affine[:3, :3].T + affine[:3, 3]
        trees[name] = (cKDTree(mm), mm, mask)
    out: dict[int, dict[str, float]] = {}
    for les in ctx.lesions:
        box = ctx.lesion_boxes.get(les.id) if ctx.lesion_boxes else None
        sub = ctx.lesion_labels[box] if box is not None else ctx.lesion_labels
        own = sub == les.id
        if not own.any():
            continue
        lo = np.array([b.start or 0 for b in box]) if box is not None else np.zeros(3, dtype=int)
        local = _boundary(own) + lo
        full = np.argwhere(own) + lo
        per: dict[str, float] = {}
        for name, (tree, mm, mask) in trees.items():
            if mask[tuple(full.T)].any():
                per[name] = 0.0  # the lesion overlaps the vessel
            else:
                per[name] = _gap_mm(local.astype(np.float64), tree, mm, affine)
        out[les.id] = per
    logger.info("vascular contact: %d lesion(s) x %d vessel(s) measured", len(out), len(groups))
    return VascularContact(tuple(groups), out)
