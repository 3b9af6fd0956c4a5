"""Which lesions are intrahepatic: the one rule that analyze and compare-seg both apply (DESIGN.md).

A lesion instance is intrahepatic when it overlaps the liver mask or the liver dilated by
``margin_mm`` (2 mm by default): some lesion voxel centre lies within the margin of a liver voxel
centre, or face to face with one. The dilation is never built on the whole grid: each lesion's box
is tested against the liver around it (:func:`touches_liver`), with the structuring element of
:func:`margin_ball` (per-axis spacings on an orthogonal grid, patient-space offsets on a sheared one).
"""

from __future__ import annotations

import numpy as np

from ..geometry import ball_offsets
from ..volume import Volume

__all__ = ["DEFAULT_MARGIN_MM", "intrahepatic_voxels", "is_intrahepatic", "margin_ball", "touches_liver"]

#: A lesion abutting the liver within this distance is intrahepatic (mm).
DEFAULT_MARGIN_MM = 2.0


def margin_ball(grid: Volume, margin_mm: float) -> np.ndarray:
    """The margin's structuring element on ``grid``: the offsets within ``margin_mm``, plus the six face neighbours.

    Per-axis spacings on an orthogonal grid (any rotation), the patient-space ball on a sheared one
    (gantry tilt).

    Examples
    --------
    >>> grid = Volume(np.zeros((3, 3, 3)), np.diag([1.0, 1.0, 1.0, 1.0]))
    >>> int(margin_ball(grid, 1.0).sum())  # the centre and its six face neighbours
    7
    """
    return _ball_sheared(margin_mm, grid.affine) if grid.sheared else _ball(margin_mm, grid.spacing)


def _ball(margin_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Structuring element: voxel centres within ``margin_mm``, plus the six face neighbours.

    The face neighbours make "abutting" hold on any grid: with voxels larger
    than the margin, a lesion touching the liver face to face is still
    intrahepatic (a lesion enclosed by a liver label that excludes it).
    """
    r = np.maximum(1, np.floor(margin_mm / spacing + 1e-9)).astype(int)
    grids = np.ogrid[tuple(slice(-int(x), int(x) + 1) for x in r)]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, spacing))
    ball = np.asarray(d2 <= margin_mm**2 + 1e-9)
    centre = tuple(int(x) for x in r)
    for axis in range(3):
        for step in (-1, 1):
            idx = list(centre)
            idx[axis] += step
            ball[tuple(idx)] = True
    return ball


def _ball_sheared(margin_mm: float, affine: np.ndarray) -> np.ndarray:
    """:func:`_ball` on a sheared grid (gantry tilt): the offsets within ``margin_mm`` in patient space
    (:func:`~netlm_imaging.geometry.ball_offsets`), plus the six face neighbours."""
    offsets = ball_offsets(affine, margin_mm)
    r = np.maximum(1, np.max(np.abs(offsets), axis=0))
    ball = np.zeros(tuple(int(2 * x + 1) for x in r), dtype=bool)
    ball[tuple((offsets + r).T)] = True
    for axis in range(3):
        for step in (-1, 1):
            idx = [int(x) for x in r]
            idx[axis] += step
            ball[tuple(idx)] = True
    return ball


def touches_liver(liver: np.ndarray, bbox: tuple[slice, slice, slice], mask: np.ndarray, ball: np.ndarray) -> bool:
    """Does the instance, dilated by the ball, overlap the liver? (Called when the instance itself does not.)"""
    shape = liver.shape
    # face neighbours first (always inside the ball): the mask against the liver's box moved by one voxel
    # along each axis (the part of it inside the image), no padded copy and no dilation
    for axis in range(3):
        start, stop = bbox[axis].start, bbox[axis].stop
        for step in (1, -1):
            lo, hi = max(start + step, 0), min(stop + step, shape[axis])
            if lo >= hi:
                continue
            moved = list(bbox)
            moved[axis] = slice(lo, hi)
            part = [slice(None)] * 3
            part[axis] = slice(lo - step - start, hi - step - start)
            if np.any(mask[tuple(part)] & liver[tuple(moved)]):
                return True
    pad = [b // 2 for b in ball.shape]
    big = tuple(slice(max(0, bbox[a].start - pad[a]), min(shape[a], bbox[a].stop + pad[a])) for a in range(3))
    local = np.zeros(tuple(s.stop - s.start for s in big), dtype=bool)
    inner = tuple(slice(bbox[a].start - big[a].start, bbox[a].stop - big[a].start) for a in range(3))
    local[inner] = mask
    region = liver[big]
    # the dilation by the ball, one offset at a time on the small box (no full dilated copy)
    centre = [b // 2 for b in ball.shape]
    for off in np.argwhere(ball) - centre:
        src, dst = [], []
        for ax in range(3):
            o, n = int(off[ax]), local.shape[ax]
            src.append(slice(max(0, -o), min(n, n - o)))
            dst.append(slice(max(0, o), min(n, n + o)))
        if np.any(local[tuple(src)] & region[tuple(dst)]):
            return True
    return False


def is_intrahepatic(liver: np.ndarray, bbox: tuple[slice, slice, slice], mask: np.ndarray, ball: np.ndarray) -> bool:
    """Is the lesion ``mask`` (within ``bbox`` of the liver's grid) intrahepatic by :func:`margin_ball`'s ``ball``?"""
    return bool(np.any(mask & liver[bbox])) or touches_liver(liver, bbox, mask, ball)


def intrahepatic_voxels(
    liver: np.ndarray, lesion: np.ndarray, grid: Volume, margin_mm: float = DEFAULT_MARGIN_MM
) -> np.ndarray:
    """The voxels of the intrahepatic lesions of a lesion mask (its 26-connected components), on ``grid``.

    Parameters
    ----------
    liver, lesion : numpy.ndarray
        Masks on ``grid`` (non-zero = in).
    grid : Volume
        Their grid (only its geometry is read).
    margin_mm : float
        The intrahepatic margin (:data:`DEFAULT_MARGIN_MM`).

    Returns
    -------
    numpy.ndarray
        Boolean mask of the lesion voxels whose component is intrahepatic (:func:`is_intrahepatic`).
    """
    from scipy import ndimage  # compare-seg's path only: analyze labels its instances itself

    les = np.asarray(lesion, dtype=bool)
    if not les.any():
        return les
    liv = np.asarray(liver, dtype=bool)
    lab, n = ndimage.label(les, structure=np.ones((3, 3, 3), dtype=bool))
    ball = margin_ball(grid, margin_mm)
    keep = np.zeros(n + 1, dtype=bool)
    for i, box in enumerate(ndimage.find_objects(lab), start=1):
        if box is not None:
            keep[i] = is_intrahepatic(liv, (box[0], box[1], box[2]), lab[box] == i, ball)
    return np.asarray(keep[lab])
