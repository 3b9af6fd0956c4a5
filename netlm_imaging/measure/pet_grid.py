"""Masks onto the PET grid: the frame-of-reference check and nearest-neighbour resampling by position.

Everything PET is measured on the PET grid (:mod:`netlm_imaging.measure.pet`, "Grid rule"):
:func:`to_pet_grid` resamples a mask or label map drawn on another grid of the same frame of
reference; :func:`add_tiny_lesions` gives a lesion smaller than a PET voxel the PET voxels that
contain it, so no lesion silently loses its SUV.
"""

from __future__ import annotations

import numpy as np

from ..errors import GeometryError
from ..geometry import bbox, crop_affine, resample_array
from ..volume import Volume
from .context import MeasurementContext

__all__ = ["add_tiny_lesions", "check_frame_of_reference", "fov_fractions", "to_pet_grid"]


def check_frame_of_reference(a: Volume, b: Volume, what: str, warnings: list[str]) -> None:
    """Refuse a PET ``b`` in another frame of reference than ``a``; warn when either does not name one."""
    fa, fb = a.frame_of_reference_uid, b.frame_of_reference_uid
    if fa and fb and fa != fb:
        raise GeometryError(
            f"{b.source}: PET FrameOfReferenceUID differs from that of {what} ({a.source}); the masks were drawn "
            "on a scan in another patient coordinate system. Use the CT of the same PET/CT acquisition, or "
            "register and resample the masks onto the PET first."
        )
    if not (fa and fb) and not a.same_grid(b):
        warnings.append(f"FrameOfReferenceUID unknown for the PET or {what}: assumed they share patient coordinates")


def to_pet_grid(array: np.ndarray, grid: Volume, pet: Volume) -> np.ndarray:
    """Nearest-neighbour resampling of a mask / label map onto the PET grid (cropped to its content)."""
    box = bbox(array != 0, 1)
    if box is None:
        return np.zeros(pet.shape, dtype=array.dtype)
    lo, hi = box
    crop = np.ascontiguousarray(array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    return resample_array(crop, crop_affine(grid.affine, lo), pet.shape, pet.affine)


def add_tiny_lesions(ctx: MeasurementContext, labels: np.ndarray, pet: Volume, warnings: list[str]) -> np.ndarray:
    """Give lesions with no PET voxel centre the PET voxels containing their voxel centres."""
    present = set(np.unique(labels).tolist())
    out = labels
    for les in ctx.lesions:
        if les.id in present:
            continue
        ijk = np.argwhere(np.asarray(ctx.lesion_labels) == les.id)
        if ijk.size == 0:
            continue
        idx = np.rint(pet.lps_to_index(ctx.image.index_to_lps(ijk))).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.array(pet.shape)), axis=1)
        if not ok.any():
            continue
        if out is labels:
            out = labels.copy()
        idx = idx[ok]
        free = out[idx[:, 0], idx[:, 1], idx[:, 2]] == 0
        idx = idx[free]
        if idx.size == 0:
            continue
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = les.id
        warnings.append(
            f"lesion {les.id} is smaller than a PET voxel: its SUV comes from the {len(np.unique(idx, axis=0))} "
            "PET voxel(s) containing it (partial-volume effect: SUV underestimated)"
        )
    return out


def fov_fractions(ctx: MeasurementContext, pet: Volume) -> dict[int, float]:
    """Fraction of each lesion's voxels (on the grid the masks were drawn on) with centres inside the PET image.

    A lesion the PET's axial field of view cuts (the CT of a PET/CT often reaches further) keeps only
    its part inside the PET: its SUVs and SRETV describe that part, so the fraction is reported.
    """
    labels = np.asarray(ctx.lesion_labels)
    box = bbox(labels != 0)
    if box is None:
        return {}
    lo, hi = box[0], box[1] - 1
    corners = np.array([[(lo, hi)[b][d] for d, b in enumerate(bits)] for bits in np.ndindex(2, 2, 2)])
    top = np.array(pet.shape) - 0.5
    at = pet.lps_to_index(ctx.image.index_to_lps(corners))
    if np.all((at >= -0.5) & (at <= top)):
        return {}  # every lesion voxel lies in the box whose corners the PET covers (both grids are affine)
    crop = labels[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
    ijk = np.argwhere(crop > 0)
    ids = crop[tuple(ijk.T)].astype(np.int64)
    idx = pet.lps_to_index(ctx.image.index_to_lps(ijk + lo))
    inside = np.all((idx >= -0.5) & (idx <= top), axis=1)
    total = np.bincount(ids)
    within = np.bincount(ids, weights=inside.astype(np.float64), minlength=total.size)
    return {int(i): float(within[i] / total[i]) for i in np.nonzero(total)[0]}
