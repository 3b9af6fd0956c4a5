"""Which voxels of a lesion can end one of its diameters: those extreme on their grid lines.

A vertex of the convex hull of the voxel centres cannot lie strictly between
two mask voxels on any grid line (it would be their convex combination), so
the hull vertices are among the voxels that are the first or last of the mask
on their lines along all three axes, and each slice's hull vertices among
those extreme along both in-plane axes. :mod:`netlm_imaging.measure.lesions`
measures the diameters over these candidates only, given as box masks
(:func:`_extreme_masks`) or, for a connected component whose run ends are
known, as index rows (:func:`_candidate_points`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ComponentFacts"]


@dataclass(frozen=True)
class ComponentFacts:
    """What the connected-components pass already knows of one component, within its box.

    Parameters
    ----------
    voxel_count : int
        Number of voxels.
    mean_index : numpy.ndarray
        Mean voxel index (3,) within the box (exact integer sums divided once).
    line_axis : int
        The memory-fastest axis of the label array (0: Fortran order, 2: C order).
    line_ends : numpy.ndarray
        Flat indices, in the box's memory order along ``line_axis`` first, of
        the first and the last voxel of the component on each grid line along
        ``line_axis`` (the mask of :func:`_axis_extremes` for that axis).
    """

    voxel_count: int
    mean_index: np.ndarray
    line_axis: int
    line_ends: np.ndarray


def _axis_extremes(mask: np.ndarray, axis: int) -> np.ndarray:
    """Voxels that are the first or last of the mask on their grid line along ``axis``.

    Along the slowest memory axis the lines' last and first positions are the
    maxima of the mask times ``1..n`` and ``n..1`` (elementwise over whole
    planes); ``argmax`` along that axis would first copy the mask transposed.
    """
    n = mask.shape[axis]
    slowest = 2 if mask.flags.f_contiguous else 0 if mask.flags.c_contiguous else None
    if axis == slowest and mask.ndim == 3 and not (mask.flags.f_contiguous and mask.flags.c_contiguous):
        shape = [1, 1, 1]
        shape[axis] = n
        up = np.arange(1, n + 1, dtype=np.uint8 if n < 255 else np.int32).reshape(shape)
        down = np.flip(up, axis=axis)
        last = np.maximum.reduce(mask * up, axis=axis, keepdims=True)  # 1 + the last index (0: an empty line)
        first = np.maximum.reduce(mask * down, axis=axis, keepdims=True)  # n - the first index
        return mask & ((up == last) | (down == first))
    others = [mask.shape[a] for a in range(3) if a != axis]
    index: list[np.ndarray] = [np.arange(others[0])[:, None], np.arange(others[1])[None, :]]
    index.insert(axis, mask.argmax(axis=axis))  # the first voxel of each line
    ext = np.zeros(mask.shape, dtype=bool)
    ext[tuple(index)] = True
    index[axis] = (n - 1) - np.flip(mask, axis=axis).argmax(axis=axis)  # the last
    ext[tuple(index)] = True
    # an empty line marks its positions 0 and n - 1, neither of them a mask voxel
    return ext & mask


def _extreme_masks(mask: np.ndarray, known: ComponentFacts | None = None) -> list[np.ndarray]:
    """:func:`_axis_extremes` along each of the three axes (along ``known.line_axis`` from its line ends).

    A vertex of the convex hull of the voxel centres cannot lie strictly
    between two mask voxels on any line (it would be their convex
    combination), so the hull vertices of the lesion are among the voxels
    extreme along all three axes, and the hull vertices of each slice among
    those extreme along both in-plane axes: farthest pairs and caliper widths
    can be computed from these candidates alone.
    """
    out = []
    for a in range(3):
        if known is not None and a == known.line_axis:
            order: Literal["C", "F"] = "F" if a == 0 else "C"
            ext = np.zeros(mask.shape, dtype=bool, order=order)
            ext.reshape(-1, order=order)[known.line_ends] = True  # a view: the array is contiguous in that order
            out.append(ext)
        else:
            out.append(_axis_extremes(mask, a))
    return out


def _line_first_last(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last index along ``axis`` of the mask voxels on each grid line (over the other two axes).

    The ends :func:`_axis_extremes` marks (an empty line's values mean nothing). Along the slowest
    memory axis from the maxima of the mask times ``1..n`` and ``n..1``; along the middle one the same, on
    a copy of the mask in which that axis is the slowest (plane maxima instead of one ``argmax`` per short
    line: ~40% less); along the fastest by ``argmax``.
    """
    n = mask.shape[axis]
    f_order, c_order = mask.flags.f_contiguous, mask.flags.c_contiguous
    if f_order != c_order and mask.ndim == 3 and axis != (0 if f_order else 2):
        if axis != (2 if f_order else 0):  # the middle memory axis: moved to the slowest (the other two in order)
            moved = np.moveaxis(mask, axis, 2 if f_order else 0)
            mask = np.asfortranarray(moved) if f_order else np.ascontiguousarray(moved)
            axis = 2 if f_order else 0
        values = mask.view(np.uint8) if mask.dtype == np.bool_ else mask
        shape = [1, 1, 1]
        shape[axis] = n
        up = np.arange(1, n + 1, dtype=np.uint8 if n < 255 else np.int32).reshape(shape)
        last = np.maximum.reduce(values * up, axis=axis).astype(np.intp) - 1
        first = n - np.maximum.reduce(values * np.flip(up, axis=axis), axis=axis).astype(np.intp)
        return first, last
    return mask.argmax(axis=axis), (n - 1) - np.flip(mask, axis=axis).argmax(axis=axis)


def _candidate_points(mask: np.ndarray, known: ComponentFacts, k_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The voxels of ``_extreme_masks`` that :func:`measure_instance` uses, as index rows instead of masks.

    The voxels extreme along ``known.line_axis`` are the line ends; of them, those also extreme along the
    third in-plane axis (its lines' first and last indices) are the in-plane candidates, and of those, the
    ones extreme along ``k_axis`` too are the 3-D candidates (``known.line_axis != k_axis``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The in-plane candidates as rows (slice index, then the other two in axis order) in increasing
        order (``np.argwhere`` of their mask with the slice axis first), and the 3-D candidates as
        ``np.argwhere`` of their mask gives them.
    """
    line = known.line_axis
    points = _unravel(known.line_ends, mask.shape, "F" if line == 0 else "C")
    for axis in (3 - line - k_axis, k_axis):
        first, last = _line_first_last(mask, axis)
        u, v = (points[a] for a in range(3) if a != axis)
        at = u * first.shape[1] + v  # each point's line, as a flat index into the C-order first / last
        keep = (points[axis] == first.ravel()[at]) | (points[axis] == last.ravel()[at])
        points = tuple(c[keep] for c in points)
        if axis != k_axis:
            inplane = points
    s = mask.shape
    ext_rows = _rows_of(_sorted_once((points[0] * s[1] + points[1]) * s[2] + points[2]), s)
    p, q = (a for a in range(3) if a != k_axis)
    flat = (inplane[k_axis] * s[p] + inplane[p]) * s[q] + inplane[q]
    by_slice = _rows_of(_sorted_once(flat), (s[k_axis], s[p], s[q]))
    return by_slice, ext_rows


def _unravel(keys: np.ndarray, shape: tuple[int, ...], order: Literal["C", "F"]) -> tuple[np.ndarray, ...]:
    """``np.unravel_index(keys, shape, order=order)`` of flat indices within a 3-D ``shape``: two ``divmod``."""
    if order == "F":
        head, i = np.divmod(keys, shape[0])
        k, j = np.divmod(head, shape[1])
    else:
        head, k = np.divmod(keys, shape[2])
        i, j = np.divmod(head, shape[1])
    return i, j, k


def _rows_of(keys: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``np.stack(np.unravel_index(keys, shape), axis=1)`` of flat C-order indices within ``shape``."""
    rows = np.empty((len(keys), 3), dtype=np.intp)
    rows[:, 0], rows[:, 1], rows[:, 2] = _unravel(keys, shape, "C")
    return rows


def _sorted_once(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` of integer keys (a one-voxel run is both ends of its line: listed twice), cheaper."""
    keys = np.sort(keys)
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys
