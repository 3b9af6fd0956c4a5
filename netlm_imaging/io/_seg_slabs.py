"""SEG frames that are slabs of a coarser slice grid, filled onto a gantry-tilted image along the slice normal.

Private helper of :mod:`netlm_imaging.io.dicom_seg`. A SEG made on the thick reconstruction of a tilted
acquisition has frames on every n-th slice plane of the thin one; each frame is a slab as thick as its
planes' separation, extending along their normal. On the tilted grid the slices step off that normal, so
nearest-neighbour resampling in index space (SimpleITK) would fill a thin slice from the frame pixel at
the same index, up to the tilt's drift away from the voxel's footprint. Here each image voxel takes the
frame whose slab holds it (``p - 1/2 < t <= p + 1/2`` in frame-plane units along the normal: a voxel
half-way between two frames goes to the lower one, as the RTSTRUCT slabs do) and, in that frame, the
pixel holding its projection along the normal.
"""

from __future__ import annotations

import numpy as np

from ..volume import Volume, sparse_zeros

__all__ = ["slabs_along_normal"]

#: Frame planes and image planes whose normals differ by less than this are parallel.
_PARALLEL_TOLERANCE = 1e-4


def slabs_along_normal(
    grid: Volume, arrays: dict[int, np.ndarray], reference: Volume, order: str = "C"
) -> dict[int, np.ndarray] | None:
    """The masks of ``grid`` (a SEG's own grid of frames) on ``reference``'s grid, slab by slab along the normal.

    Parameters
    ----------
    grid : Volume
        The SEG's own grid: its frames on axis 2, planes parallel to the reference's slice planes.
    arrays : dict of int to numpy.ndarray
        Masks (bool, or uint16 fractions) on ``grid``.
    reference : Volume
        The image grid (slices on axis 2).
    order : {"C", "F"}
        Memory order of the masks returned (the image's).

    Returns
    -------
    dict of int to numpy.ndarray or None
        The masks on the reference grid; None when the frame planes are not parallel to the image's.
    """
    n = reference.slice_normal
    own_normal = np.cross(grid.affine[:3, 0], grid.affine[:3, 1])
    own_normal = own_normal / np.linalg.norm(own_normal)
    if reference.slice_axis != 2 or abs(abs(float(own_normal @ n)) - 1.0) > _PARALLEL_TOLERANCE:
        return None
    separation = abs(float(grid.affine[:3, 2] @ n))
    inv = np.linalg.inv(grid.affine)
    ni, nj, nk = reference.shape
    gi, gj, gk = grid.shape
    ii, jj = np.meshgrid(np.arange(ni, dtype=np.float64), np.arange(nj, dtype=np.float64), indexing="ij")
    out = {num: sparse_zeros(reference.shape, a.dtype, order) for num, a in arrays.items()}
    ref_a = reference.affine
    for k in range(nk):
        origin = ref_a[:3, 3] + k * ref_a[:3, 2]
        t = float((origin - grid.affine[:3, 3]) @ n) / separation
        m = int(np.ceil(t - 0.5 - 1e-6))  # the frame whose slab (m - 1/2, m + 1/2] holds this slice plane
        if not 0 <= m < gk:
            continue
        foot = origin - (t - m) * separation * n  # the slice origin moved along the normal onto frame m
        c = inv[:2, :3] @ foot + inv[:2, 3]
        b = inv[:2, :3] @ ref_a[:3, :2]
        fi = np.floor(b[0, 0] * ii + b[0, 1] * jj + c[0] + 0.5).astype(np.int64)
        fj = np.floor(b[1, 0] * ii + b[1, 1] * jj + c[1] + 0.5).astype(np.int64)
        inside = (fi >= 0) & (fi < gi) & (fj >= 0) & (fj < gj)
        for num, a in arrays.items():
            plane = np.zeros((ni, nj), dtype=a.dtype)
            plane[inside] = a[fi[inside], fj[inside], m]
            out[num][:, :, k] = plane
    return out
