"""Geometry operations on arrays and their index -> LPS affines, in one place.

Everything that changes or crosses a grid lives here, and nowhere else:
SimpleITK conversion (the only ``transpose(2, 1, 0)`` between a Volume's
``[i, j, k]`` and SimpleITK's ``[k, j, i]`` arrays), resampling by physical
(LPS) position, cropping with the corrected affine, and dilation by a
physical radius. :class:`~netlm_imaging.volume.Volume` (one layer up: this
module never imports it) exposes them as methods (``to_sitk``, ``from_sitk``,
``resample_to``, ``crop``, ``dilate_mm``); callers that hold a bare array on a
Volume's grid use the functions.

SimpleITK images are LPS, as Volumes are, so no axis flip is needed: the
spacing, origin and direction cosines of the affine are set on the image.

Examples
--------
>>> import numpy as np
>>> aff = np.diag([0.5, 0.7, 2.0, 1.0])
>>> crop_affine(aff, (1, 0, 2))[:3, 3].tolist()
[0.5, 0.0, 4.0]
>>> img = array_to_sitk(np.arange(24, dtype=np.int16).reshape(2, 3, 4), aff)
>>> img.GetSize(), np.allclose(sitk_affine(img), aff)
((2, 3, 4), True)
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "Box",
    "Interpolation",
    "array_from_sitk",
    "array_to_sitk",
    "ball_offsets",
    "bbox",
    "box_from_frame",
    "box_in_frame",
    "box_union",
    "crop_affine",
    "dilate_mm",
    "dilate_mm_affine",
    "grid_image",
    "grow_box",
    "is_orthogonal",
    "nonzero_bbox",
    "nonzero_box",
    "nonzero_count",
    "register_rigid",
    "remember_nonzero_bbox",
    "resample_array",
    "sitk_affine",
    "within_mm",
]


#: Interpolation of :func:`resample_array`: nearest neighbour (masks, labels) or linear (images, fractions).
Interpolation = Literal["nearest", "linear"]


def _set_geometry(img: Any, affine: np.ndarray) -> Any:
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in affine[:3, 3]])
    img.SetDirection([float(d) for d in (affine[:3, :3] / spacing).ravel()])
    return img


def sitk_affine(img: Any) -> np.ndarray:
    """The index -> LPS affine of a 3-D SimpleITK image (direction x spacing, origin)."""
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = direction @ np.diag(np.array(img.GetSpacing(), dtype=np.float64))
    aff[:3, 3] = np.array(img.GetOrigin(), dtype=np.float64)
    return aff


def array_to_sitk(array: np.ndarray, affine: np.ndarray) -> Any:
    """A SimpleITK image of an ``[i, j, k]`` array on ``affine`` (boolean arrays become uint8)."""
    import SimpleITK as sitk

    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    return _set_geometry(img, affine)


def array_from_sitk(img: Any) -> np.ndarray:
    """The ``[i, j, k]`` (or ``[i, j, k, component]``) array of a SimpleITK image."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(img)  # [k, j, i] or [k, j, i, c]
    return arr.transpose(2, 1, 0, 3) if arr.ndim == 4 else arr.transpose(2, 1, 0)


def grid_image(shape: Sequence[int], affine: np.ndarray) -> Any:
    """An empty (uint8) SimpleITK image on a grid: the reference of a resampling."""
    import SimpleITK as sitk

    return _set_geometry(sitk.Image([int(s) for s in shape], sitk.sitkUInt8), affine)


def resample_array(
    array: np.ndarray,
    affine: np.ndarray,
    ref_shape: Sequence[int],
    ref_affine: np.ndarray,
    *,
    interpolation: Interpolation = "nearest",
    transform: Any | None = None,
) -> np.ndarray:
    """Resample ``array`` (on ``affine``) onto a reference grid by physical (LPS) position.

    Parameters
    ----------
    array : numpy.ndarray
        ``[i, j, k]`` array; boolean arrays are resampled as uint8.
    affine : numpy.ndarray
        Its index -> LPS affine.
    ref_shape : sequence of int
        Reference grid shape.
    ref_affine : numpy.ndarray
        Reference grid affine.
    interpolation : {"nearest", "linear"}
        SimpleITK interpolator.
    transform : SimpleITK.Transform, optional
        Maps reference points to moving points (identity when omitted).

    Returns
    -------
    numpy.ndarray
        C-contiguous array of ``ref_shape``, 0 outside the moving grid; boolean
        for boolean input with nearest neighbour, else the input's pixel type.
    """
    import SimpleITK as sitk

    moving = array_to_sitk(array, affine)
    interp = sitk.sitkLinear if interpolation == "linear" else sitk.sitkNearestNeighbor
    tx = transform if transform is not None else sitk.Transform()
    out = sitk.Resample(moving, grid_image(ref_shape, ref_affine), tx, interp, 0.0, moving.GetPixelID())
    res = array_from_sitk(out)
    if array.dtype == bool and interpolation == "nearest":
        return np.ascontiguousarray(res != 0)
    return np.ascontiguousarray(res)


#: An index box of a 3-D array: one slice per axis (steps of 1).
Box = tuple[slice, slice, slice]


def grow_box(box: Box, pad: int | Sequence[int], shape: Sequence[int]) -> Box:
    """``box`` grown by ``pad`` voxels (one value, or one per axis) on each side, clipped to ``shape``.

    Examples
    --------
    >>> grow_box((slice(1, 3), slice(0, 2), slice(5, 6)), 2, (4, 4, 7))
    (slice(0, 4, None), slice(0, 4, None), slice(3, 7, None))
    """
    p = [int(pad)] * 3 if isinstance(pad, (int, np.integer)) else [int(x) for x in pad]
    s = [slice(max(0, b.start - q), min(int(n), b.stop + q)) for b, q, n in zip(box, p, shape)]
    return (s[0], s[1], s[2])


def nonzero_box(arr: np.ndarray, pad: int = 0) -> Box | None:
    """Bounding box of the non-zero voxels of a 3-D array as slices (``None`` when all zero), padded and clipped.

    One pass over the array, then a pass over a box only (no boolean copy). A C-ordered array is reduced
    along its long rows first (``any`` of each i-slab, then ``any`` over axis 0 of the slabs in range):
    ``any`` along a short last axis is ~4x slower per byte than along long contiguous runs.

    Examples
    --------
    >>> a = np.zeros((4, 5, 6), np.uint8); a[1, 2:4, 5] = 3
    >>> nonzero_box(a)
    (slice(1, 2, None), slice(2, 4, None), slice(5, 6, None))
    """
    if arr.flags.c_contiguous and not arr.flags.f_contiguous:
        ii = np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1))
        if ii.size == 0:
            return None
        i0, i1 = int(ii[0]), int(ii[-1]) + 1
        plane = np.any(arr[i0:i1], axis=0)
        jj = np.flatnonzero(plane.any(axis=1))
        kk = np.flatnonzero(plane.any(axis=0))
        j0, j1, k0, k1 = int(jj[0]), int(jj[-1]) + 1, int(kk[0]), int(kk[-1]) + 1
    else:
        plane = np.any(arr, axis=2)
        ii = np.flatnonzero(plane.any(axis=1))
        if ii.size == 0:
            return None
        jj = np.flatnonzero(plane.any(axis=0))
        i0, i1, j0, j1 = int(ii[0]), int(ii[-1]) + 1, int(jj[0]), int(jj[-1]) + 1
        kk = np.flatnonzero(np.any(arr[i0:i1, j0:j1], axis=(0, 1)))
        k0, k1 = int(kk[0]), int(kk[-1]) + 1
    return grow_box((slice(i0, i1), slice(j0, j1), slice(k0, k1)), pad, arr.shape)


#: id(array) -> (weak reference to it, the box of its non-zero voxels or None when all zero)
_KNOWN_BOXES: dict[int, tuple[weakref.ref[np.ndarray], Box | None]] = {}


def remember_nonzero_bbox(arr: np.ndarray, box: Box | None) -> None:
    """Record the bounding box of a read-only array's non-zero voxels, known to the reader that wrote it.

    :func:`nonzero_bbox` then answers for this array object without reading it (a first read of a
    mostly untouched mask faults in every zero page: ~8 ms at 512 x 512 x 200). The array must be
    read-only and its writer must keep no writeable reference to its buffer; the entry goes with
    the array.

    Parameters
    ----------
    arr : numpy.ndarray
        Read-only 3-D array.
    box : tuple of slice or None
        The tight box of its non-zero voxels (``None``: all zero), as :func:`nonzero_bbox` gives it.

    Raises
    ------
    ValueError
        If ``arr`` is writeable (its box could change).
    """
    if arr.flags.writeable:
        raise ValueError("remember_nonzero_bbox: the array must be read-only")
    key = id(arr)
    _KNOWN_BOXES[key] = (weakref.ref(arr, lambda _ref: _KNOWN_BOXES.pop(key, None)), box)


def _known_box(arr: np.ndarray) -> tuple[bool, Box | None]:
    """(known, box) for an array recorded by :func:`remember_nonzero_bbox` and still read-only."""
    entry = _KNOWN_BOXES.get(id(arr))
    if entry is None or entry[0]() is not arr or arr.flags.writeable:
        return False, None
    return True, entry[1]


def nonzero_count(arr: np.ndarray) -> int:
    """``np.count_nonzero(arr)``, counted inside the box recorded by :func:`remember_nonzero_bbox` when there is one.

    Examples
    --------
    >>> a = np.zeros((3, 4, 5), bool); a[1, 2, 3:] = True; a.flags.writeable = False
    >>> remember_nonzero_bbox(a, (slice(1, 2), slice(2, 3), slice(3, 5)))
    >>> nonzero_count(a)
    2
    """
    known, box = _known_box(arr)
    if not known:
        return int(np.count_nonzero(arr))
    return 0 if box is None else int(np.count_nonzero(arr[box]))


def nonzero_bbox(arr: np.ndarray, pad: int = 0) -> tuple[slice, slice, slice] | None:
    """Bounding box of the non-zero voxels of a 3-D array as slices (``None`` when all zero), padded and clipped.

    :func:`~netlm_imaging.geometry.nonzero_box`, answered without reading the array when its reader
    recorded the box (:func:`remember_nonzero_bbox`).

    Examples
    --------
    >>> a = np.zeros((4, 5, 6), np.uint8); a[1, 2:4, 5] = 3
    >>> nonzero_bbox(a)
    (slice(1, 2, None), slice(2, 4, None), slice(5, 6, None))
    """
    known, box = _known_box(arr)
    if not known:
        return nonzero_box(arr, pad)
    # the reader that wrote it recorded its box (remember_nonzero_bbox)
    return None if box is None else grow_box(box, pad, arr.shape)


def bbox(mask: np.ndarray, margin: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Index bounds ``(lo, hi)`` (hi exclusive) of a 3-D mask's non-zero voxels, grown by ``margin`` and clipped.

    :func:`nonzero_bbox` as arrays.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray) or None
        None for an empty mask.
    """
    box = nonzero_bbox(mask, margin)
    if box is None:
        return None
    return np.array([s.start for s in box]), np.array([s.stop for s in box])


def box_union(*boxes: Box | None) -> Box | None:
    """Smallest box holding every given box (``None`` when none is given).

    Examples
    --------
    >>> box_union((slice(1, 3), slice(0, 2), slice(5, 6)), None, (slice(2, 4), slice(1, 2), slice(0, 1)))
    (slice(1, 4, None), slice(0, 2, None), slice(0, 6, None))
    """
    given = [b for b in boxes if b is not None]
    if not given:
        return None
    return (
        slice(min(b[0].start for b in given), max(b[0].stop for b in given)),
        slice(min(b[1].start for b in given), max(b[1].stop for b in given)),
        slice(min(b[2].start for b in given), max(b[2].stop for b in given)),
    )


def box_in_frame(box: Box, frame: Box) -> Box:
    """``box`` in the coordinates of the crop ``frame`` (whose first voxel is index 0 there)."""
    return (
        slice(box[0].start - frame[0].start, box[0].stop - frame[0].start),
        slice(box[1].start - frame[1].start, box[1].stop - frame[1].start),
        slice(box[2].start - frame[2].start, box[2].stop - frame[2].start),
    )


def box_from_frame(box: Box, frame: Box) -> Box:
    """A box given in the coordinates of the crop ``frame``, in the coordinates of the whole array.

    Examples
    --------
    >>> frame = (slice(10, 20), slice(5, 9), slice(0, 4))
    >>> inner = (slice(2, 3), slice(0, 4), slice(1, 2))
    >>> box_from_frame(inner, frame)
    (slice(12, 13, None), slice(5, 9, None), slice(1, 2, None))
    >>> box_in_frame(box_from_frame(inner, frame), frame) == inner
    True
    """
    return (
        slice(box[0].start + frame[0].start, box[0].stop + frame[0].start),
        slice(box[1].start + frame[1].start, box[1].stop + frame[1].start),
        slice(box[2].start + frame[2].start, box[2].stop + frame[2].start),
    )


def crop_affine(affine: np.ndarray, lo: Sequence[int] | np.ndarray) -> np.ndarray:
    """The affine of the sub-grid whose voxel (0, 0, 0) is voxel ``lo`` of ``affine``."""
    aff = np.array(affine, dtype=np.float64)
    aff[:3, 3] = (np.atleast_2d(np.asarray(lo, dtype=np.float64)) @ aff[:3, :3].T + aff[:3, 3])[0]
    return aff


def dilate_mm(mask: np.ndarray, spacing: Sequence[float] | np.ndarray, radius_mm: float) -> np.ndarray:
    """Dilate a boolean mask by a physical radius: voxel centres within ``radius_mm`` of the mask.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean mask on a grid with ``spacing`` (mm, along i, j, k).
    spacing : sequence of float
        Voxel spacing.
    radius_mm : float
        Radius (0 or less: a copy of the mask).

    Returns
    -------
    numpy.ndarray
        New boolean mask (the distance transform runs on the mask's bounding box only).
    """
    from scipy import ndimage

    if radius_mm <= 0 or not mask.any():
        return mask.copy()
    sp = np.asarray(spacing, dtype=np.float64)
    margin = int(np.ceil(radius_mm / float(np.min(sp)))) + 1
    box = bbox(mask, margin)
    assert box is not None  # mask.any()
    lo, hi = box
    sub = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    dist = ndimage.distance_transform_edt(~mask[sub], sampling=sp)
    out = mask.copy()
    out[sub] = dist <= radius_mm + 1e-6
    return out


def register_rigid(
    moving: np.ndarray,
    moving_affine: np.ndarray,
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    default_value: float = 0.0,
) -> np.ndarray:
    """``moving`` rigidly registered onto ``fixed``'s grid (linear), as a float32 array; voxels of the
    grid that ``moving`` does not cover take ``default_value``.

    Euler 3-D transform initialised on the image centres, Mattes mutual information (32 bins,
    20 % random samples, seed 1234), regular-step gradient descent over three levels
    (shrink 4/2/1, smoothing 2/1/0 voxels). For images of one patient without a shared frame
    of reference (an MR pre-contrast series).
    """
    import SimpleITK as sitk

    f = array_to_sitk(fixed.astype(np.float32), fixed_affine)
    m = array_to_sitk(moving.astype(np.float32), moving_affine)
    init = sitk.CenteredTransformInitializer(
        f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1234)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SetInitialTransform(init, inPlace=False)
    tx = reg.Execute(f, m)
    out = sitk.Resample(m, f, tx, sitk.sitkLinear, float(default_value), sitk.sitkFloat32)
    return np.ascontiguousarray(array_from_sitk(out))


def is_orthogonal(affine: np.ndarray, tol: float = 1e-3) -> bool:
    """Whether the affine's three axes are orthogonal (direction cosines within ``tol``).

    Parameters
    ----------
    affine : numpy.ndarray
        4x4 (or 3x3) index -> LPS affine.
    tol : float
        Largest off-diagonal entry of the unit columns' Gram matrix still taken as orthogonal.

    Returns
    -------
    bool
    """
    cols = np.asarray(affine, dtype=np.float64)[:3, :3]
    unit = cols / np.linalg.norm(cols, axis=0)
    return bool(np.allclose(unit.T @ unit, np.eye(3), atol=tol))


def _ball_reach(a3: np.ndarray, r: float) -> np.ndarray:
    """Per-axis index half-widths of the ball of radius ``r`` (mm) on the grid of ``a3``.

    ``|d_i| = |(A^-1 A d)_i| <= |row i of A^-1| |A d|``: no offset in the ball lies beyond these.
    """
    return np.floor(r * np.linalg.norm(np.linalg.inv(a3), axis=1) + 1e-9).astype(int)


def ball_offsets(affine: np.ndarray, radius_mm: float) -> np.ndarray:
    """Integer index offsets ``d`` (N x 3) whose length in patient space ``|A d|`` is at most ``radius_mm``.

    ``A`` is the affine's 3 x 3 part, so this is the ball of any grid, sheared (gantry tilt) or not;
    the radius gets the dilations' relative tolerance of 1e-6 (a voxel at exactly the radius is in).

    Parameters
    ----------
    affine : numpy.ndarray
        4x4 (or 3x3) index -> LPS affine of the grid.
    radius_mm : float
        Ball radius (mm).

    Returns
    -------
    numpy.ndarray
        (N, 3) integer offsets, the centre (0, 0, 0) included.

    Examples
    --------
    >>> len(ball_offsets(np.diag([1.0, 1.0, 1.0, 1.0]), 1.0))  # the centre and its 6 face neighbours
    7
    """
    a3 = np.asarray(affine, dtype=np.float64)[:3, :3]
    r = float(radius_mm) * (1.0 + 1e-6)
    reach = _ball_reach(a3, r)
    axes = [np.arange(-int(n), int(n) + 1) for n in reach]
    d = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    mm = d @ a3.T
    return d[np.einsum("ij,ij->i", mm, mm) <= r * r]


def within_mm(mask: np.ndarray, affine: np.ndarray, radius_mm: float, points: np.ndarray) -> np.ndarray:
    """For each voxel index of ``points`` (N x 3): does a ``True`` voxel of ``mask`` lie within ``radius_mm``?

    Exact on any grid (distances between voxel centres in patient space, ``+1e-6`` relative, as
    :func:`ball_offsets`): the nearest mask voxel of each point, from a k-d tree of the mask's voxels.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean mask; ``points`` index the same array.
    affine : numpy.ndarray
        4x4 (or 3x3) index -> LPS affine of the grid (only its 3 x 3 part is used).
    radius_mm : float
        Distance (mm).
    points : numpy.ndarray
        (N, 3) voxel indices.

    Returns
    -------
    numpy.ndarray
        (N,) boolean.
    """
    from scipy.spatial import cKDTree

    a3 = np.asarray(affine, dtype=np.float64)[:3, :3]
    src = np.argwhere(mask)
    if src.size == 0 or len(points) == 0:
        return np.zeros(len(points), dtype=bool)
    r = float(radius_mm) * (1.0 + 1e-6)
    dist, _ = cKDTree(src @ a3.T).query(np.asarray(points, dtype=np.float64) @ a3.T, distance_upper_bound=r)
    return np.asarray(dist <= r)


def _relevant_offsets(a3: np.ndarray) -> np.ndarray:
    """The index offsets of a grid's Voronoi-relevant neighbours (and any tied with them), K x 3.

    A voxel centre ``x`` outside a mask always has a nearest mask voxel ``m`` with one of these neighbours
    outside the mask: ``A (x - m)`` is a lattice vector off the origin's Voronoi cell, so some relevant
    neighbour ``d`` is strictly closer to it, and ``m + d`` would be a nearer mask voxel. A relevant vector
    ``v`` has its midpoint on the cell's boundary, within the covering radius ``mu`` of the origin, and
    ``mu <= sqrt(sum |b_i*|^2) / 2`` (Babai's nearest-plane bound, ``b_i*`` the Gram-Schmidt vectors of the
    columns), so the candidates are the offsets within ``sqrt(sum |b_i*|^2)``; ``v`` is kept when no lattice
    point ``w`` is nearer to ``v / 2`` than the origin is (``|w|^2 >= v . w`` for every candidate ``w``).
    On an orthogonal grid these are the 26 neighbours; on a strongly sheared one they reach further.
    """
    r_diag = np.abs(np.diag(np.linalg.qr(a3)[1]))
    cand = ball_offsets(a3, float(np.sqrt(np.sum(r_diag**2))))
    cand = cand[np.any(cand != 0, axis=1)]
    mm = cand @ a3.T
    gram = mm @ mm.T
    tol = 1e-9 * float(np.max(np.diag(gram)))
    keep = np.all(np.diag(gram)[None, :] >= gram - tol, axis=1)  # row v: |w|^2 >= v . w for every w
    return cand[keep]


def _boundary(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a neighbour ``+ offsets`` outside it (the array's outside counts as outside)."""
    reach = np.max(np.abs(offsets), axis=0)
    padded = np.pad(mask, [(int(n), int(n)) for n in reach])
    inner = np.ones(mask.shape, dtype=bool)
    n0, n1, n2 = mask.shape
    for d in offsets:
        a, b, c = (int(x) for x in reach + d)
        inner &= padded[a : a + n0, b : b + n1, c : c + n2]
    return mask & ~inner


def _box_dilate(mask: np.ndarray, reach: Sequence[int] | np.ndarray) -> np.ndarray:
    """``mask`` dilated in index space by the box of half-widths ``reach`` (separable maxima)."""
    from scipy import ndimage

    out = mask.view(np.uint8)
    for axis, n in enumerate(reach):
        if n > 0:
            out = ndimage.maximum_filter1d(out, 2 * int(n) + 1, axis=axis, mode="constant", cval=0)
    return out.astype(bool, copy=False)


def dilate_mm_affine(mask: np.ndarray, affine: np.ndarray, radius_mm: float) -> np.ndarray:
    """:func:`dilate_mm` on the grid of ``affine``: exact on a sheared grid (gantry tilt) too.

    On an orthogonal grid this is :func:`dilate_mm` with the axes' spacings. On a sheared one each voxel
    centre outside the mask within the ball's index reach of it (a box dilation, a superset) is tested
    against the mask's boundary voxels in patient space by :func:`within_mm` (``|A (p - q)|``, ``+1e-6``
    relative, as :func:`ball_offsets`): a nearest mask voxel of an outside voxel is always a boundary one
    (:func:`_relevant_offsets`), so the result is the brute-force set, in a fraction of the time.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean mask on the grid of ``affine``.
    affine : numpy.ndarray
        4x4 index -> LPS affine.
    radius_mm : float
        Radius (0 or less: a copy of the mask).

    Returns
    -------
    numpy.ndarray
        New boolean mask.
    """
    if is_orthogonal(affine):
        return dilate_mm(mask, np.linalg.norm(np.asarray(affine)[:3, :3], axis=0), radius_mm)
    if radius_mm <= 0 or not mask.any():
        return mask.copy()
    a3 = np.asarray(affine, dtype=np.float64)[:3, :3]
    reach = _ball_reach(a3, float(radius_mm) * (1.0 + 1e-6))
    box = bbox(mask)
    assert box is not None  # mask.any()
    tight_lo, hi = box
    edge = _boundary(
        np.asarray(mask[tuple(slice(int(a), int(b)) for a, b in zip(tight_lo, hi))], bool), _relevant_offsets(a3)
    )
    lo = np.maximum(tight_lo - reach, 0)
    hi = np.minimum(hi + reach, mask.shape)
    sub = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    part = np.asarray(mask[sub], dtype=bool)
    pts = np.argwhere(_box_dilate(part, reach) & ~part)
    out = mask.copy()
    if len(pts) == 0:
        return out
    hits = pts[within_mm(edge, a3, radius_mm, pts + (lo - tight_lo))]  # points in the edge's box coordinates
    view = out[sub]
    view[tuple(hits.T)] = True
    return out
