"""Couinaud segments: per-segment liver and tumour volume, lesion segments.

Input is a :class:`~netlm_imaging.measure.context.MeasurementContext` whose
``segment_labels`` is a uint8 map (0 = no segment, 1..8 = Couinaud segment) on
the image grid. Only liver voxels (``ctx.liver``, which already includes the
intrahepatic lesions) are counted; tumour is the union of the intrahepatic
lesion instances of ``ctx.lesion_labels``.

Conventions (clinical_rules.md section 9):

- a lesion's segment is the segment holding most of its voxels (majority
  overlap; ties go to the lower segment number, which is stated);
- hemilivers are functional (Cantlie's line): right = segments 5-8, left =
  2-4 (from the rules file); segment 1 is ``caudate_side = "separate"`` (no
  side, flagged) or ``"left"``;
- the unilobar / bilobar distribution that follows from the lesion segments
  is a decision: :mod:`netlm_imaging.classify.distribution`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import GeometryError, LabelError
from .context import MeasurementContext

__all__ = ["SegmentTable", "compute_segment_table", "segments_block"]

logger = logging.getLogger(__name__)

N_SEGMENTS = 8


@dataclass
class SegmentTable:
    """Voxel counts per Couinaud segment (index 0 = liver voxels without a segment label).

    Attributes
    ----------
    voxel_volume_ml : float
        Volume of one voxel (mL).
    liver_voxels : numpy.ndarray
        (9,) total-liver voxels per segment label.
    tumor_voxels : numpy.ndarray
        (9,) intrahepatic tumour voxels per segment label.
    lesion_ids : list of int
        Intrahepatic lesion ids, in the order of the rows below.
    lesion_segment_voxels : numpy.ndarray
        (n_lesions, 9) voxels of each lesion per segment label.
    lesion_segment : dict
        Lesion id -> majority Couinaud segment (None if no voxel has a segment).
    segments_touched : dict
        Lesion id -> the Couinaud segments (1..8) holding at least one of its voxels.
    warnings : list of str
        Tumour or liver outside every segment, ties, empty segments.
    """

    voxel_volume_ml: float
    liver_voxels: np.ndarray
    tumor_voxels: np.ndarray
    lesion_ids: list[int]
    lesion_segment_voxels: np.ndarray
    lesion_segment: dict[int, int | None]
    segments_touched: dict[int, frozenset[int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def non_tumorous_voxels(self) -> np.ndarray:
        """(9,) non-tumorous liver voxels per segment label."""
        return self.liver_voxels - self.tumor_voxels

    def non_tumorous_ml(self, segments: list[int] | tuple[int, ...] | set[int]) -> float:
        """Non-tumorous liver volume (mL) in the given segments (1..8)."""
        idx = np.asarray(sorted(set(segments)), dtype=int)
        return float(self.non_tumorous_voxels[idx].sum()) * self.voxel_volume_ml if idx.size else 0.0

    def tumor_ml(self, segments: list[int] | tuple[int, ...] | set[int]) -> float:
        """Intrahepatic tumour volume (mL) in the given segments (1..8)."""
        idx = np.asarray(sorted(set(segments)), dtype=int)
        return float(self.tumor_voxels[idx].sum()) * self.voxel_volume_ml if idx.size else 0.0


def _intrahepatic_tumor(ctx: MeasurementContext) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Coordinates (flat indices) of intrahepatic tumour voxels and their lesion row index."""
    ids = [les.id for les in ctx.intrahepatic_lesions]
    labels = np.asarray(ctx.lesion_labels)
    flat = labels.ravel()
    nz = np.flatnonzero(flat)
    vals = flat[nz]
    if not ids:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), []
    sorter = np.asarray(ids, dtype=np.int64)
    order = np.argsort(sorter)
    pos = np.searchsorted(sorter[order], vals)
    pos = np.clip(pos, 0, len(ids) - 1)
    hit = sorter[order][pos] == vals
    return nz[hit], order[pos[hit]], ids


def compute_segment_table(ctx: MeasurementContext) -> SegmentTable | None:
    """Per-segment voxel counts and each intrahepatic lesion's majority segment.

    Parameters
    ----------
    ctx : MeasurementContext
        Needs ``liver`` and ``segment_labels`` (uint8 0..8); returns ``None``
        when either is missing.

    Returns
    -------
    SegmentTable or None

    Raises
    ------
    GeometryError
        Segment map not on the image grid (shape differs).
    LabelError
        Segment labels outside 0..8.
    """
    if ctx.segment_labels is None or ctx.liver is None:
        return None
    seg = np.asarray(ctx.segment_labels)
    if seg.shape != tuple(ctx.image.shape) or np.asarray(ctx.liver).shape != seg.shape:
        raise GeometryError(
            f"Couinaud segment map shape {seg.shape} differs from the image grid {tuple(ctx.image.shape)}; "
            "resample the segment map onto the image before measuring"
        )
    top = int(seg.max()) if seg.size else 0
    if top > N_SEGMENTS or (np.issubdtype(seg.dtype, np.signedinteger) and seg.min() < 0):
        raise LabelError(
            f"Couinaud segment map holds label {top}; segments must be 0 (none) or 1-8 — map the segment "
            "values with --labels segment1=..,segment8=.."
        )
    seg = seg.astype(np.intp, copy=False)
    liver = np.asarray(ctx.liver, dtype=bool)
    vml = float(ctx.voxel_volume_ml)
    liver_vox = np.bincount(seg[liver], minlength=N_SEGMENTS + 1).astype(np.int64)
    flat_idx, rows, ids = _intrahepatic_tumor(ctx)
    seg_flat = seg.ravel()
    tumor_seg = seg_flat[flat_idx]
    tumor_vox = np.bincount(tumor_seg, minlength=N_SEGMENTS + 1).astype(np.int64)
    n = len(ids)
    per_lesion = np.bincount(rows * (N_SEGMENTS + 1) + tumor_seg, minlength=n * (N_SEGMENTS + 1))
    per_lesion = per_lesion.reshape(n, N_SEGMENTS + 1).astype(np.int64)
    warnings: list[str] = []
    lesion_segment: dict[int, int | None] = {}
    for r, lid in enumerate(ids):
        counts = per_lesion[r, 1:]
        if counts.sum() == 0:
            lesion_segment[lid] = None
            continue
        best = int(np.argmax(counts)) + 1
        if int((counts == counts.max()).sum()) > 1:
            tied = [int(s) + 1 for s in np.nonzero(counts == counts.max())[0]]
            warnings.append(f"lesion {lid} overlaps segments {tied} equally; assigned to segment {best} (lowest)")
        lesion_segment[lid] = best
    if tumor_vox[0]:
        warnings.append(
            f"{tumor_vox[0] * vml:.2f} mL of intrahepatic tumour lies outside every Couinaud segment "
            "(segment label 0); it is not assigned to a segment"
        )
    free_liver = int(liver_vox[0] - tumor_vox[0])
    if free_liver:
        warnings.append(
            f"{free_liver * vml:.2f} mL of non-tumorous liver has no Couinaud segment label; "
            "it is not counted in any future liver remnant"
        )
    for s in range(1, N_SEGMENTS + 1):
        if liver_vox[s] == 0:
            warnings.append(f"Couinaud segment {s} has no liver voxels in the segment map")
    for w in warnings:
        logger.warning(w)
    touched = {lid: frozenset(int(s) for s in np.nonzero(per_lesion[r, 1:])[0] + 1) for r, lid in enumerate(ids)}
    return SegmentTable(vml, liver_vox, tumor_vox, ids, per_lesion, lesion_segment, touched, warnings)


def segments_block(table: SegmentTable) -> list[dict[str, Any]]:
    """The report's ``segments`` block: one dict per Couinaud segment 1..8.

    ``lesion_count`` counts lesions by majority segment; the additive key
    ``lesions_touching`` counts lesions with any voxel in the segment.
    """
    out = []
    vml = table.voxel_volume_ml
    for s in range(1, N_SEGMENTS + 1):
        liver_ml = float(table.liver_voxels[s]) * vml
        tumor_ml = float(table.tumor_voxels[s]) * vml
        out.append(
            {
                "segment": s,
                "liver_volume_ml": liver_ml,
                "tumor_volume_ml": tumor_ml,
                "non_tumorous_volume_ml": liver_ml - tumor_ml,
                "involvement_percent": 100.0 * tumor_ml / liver_ml if liver_ml > 0 else None,
                "lesion_count": sum(1 for v in table.lesion_segment.values() if v == s),
                "lesions_touching": int((table.lesion_segment_voxels[:, s] > 0).sum()),
            }
        )
    return out
