"""Longest distances between voxel centres: the farthest pair of a point set, in-plane diameters, short axis.

Exact answers with numpy only (no convex hull library): a distance bound
prunes the points that cannot end a longest pair, the few survivors are
compared all at once, and ties go to the lowest pair of indices (as with
``scipy.spatial.distance.pdist``). Coordinates are handled as rows (numpy's
reductions along a length-3 axis cost several times more than along a long
one), with the floats of the (n, 3) formulas (``((p - q) ** 2).sum(-1)``,
``np.cross``, ``np.linalg.norm``), so that every diameter is the one those
formulas give. :mod:`netlm_imaging.measure.lesions` chooses the candidate
points (voxels extreme along the grid lines) and reports the diameters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["axial_diameters", "axial_diameters_of_points", "max_pairwise_distance"]

#: Diameters closer than this (mm) count as equally long (ties between pairs of voxel centres).
_TIE_TOLERANCE_MM = 1e-6
#: Point counts from which the farthest-pair search prunes by a distance bound (fewer: every distance).
_PRUNE_FROM = 80
#: Surviving points from which the farthest-pair search prunes them again by the bound from a second centre.
_SECOND_CENTRE_FROM = 48
#: Surviving points up to which the farthest-pair search compares every pair at once (more: Gram blocks, which
#: cost ~30 us more but less per pair).
_DIRECT_UP_TO = 100


def _nonzero(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """``np.nonzero(a)`` (the same indices in the same C order), from the flat indices: several times faster."""
    return np.unravel_index(a.ravel().nonzero()[0], a.shape)


def _argwhere(a: np.ndarray) -> np.ndarray:
    """``np.argwhere(a)`` (the same rows in the same order), from the flat indices."""
    return np.stack(_nonzero(a), axis=1) if a.ndim else np.argwhere(a)


def _squares(rows: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Sum of the squares of coordinate rows, in the order of ``(a**2).sum(-1)`` over the columns of their transpose."""
    out = rows[0] * rows[0]
    for c in rows[1:]:
        out = out + c * c
    return out


def _farthest_pair_direct(xyz: np.ndarray) -> tuple[int, int]:
    """Lowest ``(i, j)``, ``i < j``, of the longest pairs of a few points ``xyz`` (d, n): every distance.

    The lengths are the square roots of :func:`_squares` of the coordinate
    differences (the order of ``((p - q) ** 2).sum(-1)``); the matrix is
    symmetric to the bit, so its first maximum in row order is the lowest pair
    (the square root first, as when the near pairs are re-measured: two squares
    one rounding apart can share their root).
    """
    return _first_max_pair(np.sqrt(_squares([c[:, None] - c[None, :] for c in xyz])))


def _first_max_pair(d: np.ndarray) -> tuple[int, int]:
    """Row and column of the first maximum of a square matrix, in row order."""
    i, j = divmod(int(d.argmax()), d.shape[1])
    return i, j


def _farthest_pair_gram(pts: np.ndarray, keep: np.ndarray) -> tuple[int, int]:
    """:func:`_farthest_pair` over the points ``keep`` (increasing) of ``pts`` (n, d): Gram matrix blocks.

    Pairs within rounding of the block maximum are re-measured exactly, so the
    result is the exact farthest pair, ties going to the lowest ``(i, j)``.
    """
    sub = pts[keep] - (pts.min(0) + pts.max(0)) / 2.0
    sq = (sub**2).sum(1)
    tol = 1e-9 * (4.0 * float(sq.max()) + 1.0)  # rounding of the Gram form, far below any real difference
    best = -1.0
    near: list[tuple[np.ndarray, np.ndarray]] = []
    rows = max(16, 2_000_000 // len(sub))  # blocks of at most ~16 MB
    for start in range(0, len(sub), rows):
        g = sq[start : start + rows, None] + sq[None, :] - 2.0 * (sub[start : start + rows] @ sub.T)
        top = float(g.max())
        if top < best - tol:
            continue
        best = max(best, top)
        ii, jj = _nonzero(g >= best - tol)
        near.append((ii + start, jj))
    ii = near[0][0] if len(near) == 1 else np.concatenate([a for a, _ in near])
    jj = near[0][1] if len(near) == 1 else np.concatenate([b for _, b in near])
    # each pair once, as (lower, higher) index: a near pair's mirror is near too (both are within
    # rounding of the same length, far inside tol), and keep is increasing
    ok = ii < jj
    lo, hi = keep[ii[ok]], keep[jj[ok]]
    d = np.sqrt(((pts[lo] - pts[hi]) ** 2).sum(-1))
    win = np.flatnonzero(d == d.max())
    k = win[0] if len(win) == 1 else win[np.lexsort((hi[win], lo[win]))[0]]
    return int(lo[k]), int(hi[k])


def _farthest_pair(pts: np.ndarray) -> tuple[int, int]:
    """Indices ``(i, j)``, ``i < j``, of the farthest pair of ``pts`` (n, d) (exact; numpy only).

    A pair can only be longer than a known pair if both points lie far enough
    from a centre ``c``: ``|p - q| <= |p - c| + max |x - c|``. A double normal
    (farthest point from the farthest point) gives that known length, the
    bound prunes the rest, and the few survivors are compared all at once
    (many: through their Gram matrix, in blocks). Ties go to the lowest
    ``(i, j)``, as with ``scipy.spatial.distance.pdist``. The coordinates are
    handled as rows (numpy's reductions along a length-3 axis cost several
    times more than along a long one).
    """
    xyz = np.ascontiguousarray(pts.T)
    if len(pts) < _PRUNE_FROM:
        return _farthest_pair_direct(xyz)
    local = xyz - ((np.minimum.reduce(xyz, axis=1) + np.maximum.reduce(xyz, axis=1)) / 2.0)[:, None]
    r = np.sqrt(_squares(local))
    r_max = float(np.maximum.reduce(r))
    far = [int(r.argmax())]
    for _ in range(2):  # the double normal: the farthest point from the farthest point, twice
        far.append(int(_squares(local - local[:, far[-1], None]).argmax()))
    step = local[:, far[1]] - local[:, far[2]]
    known = float(np.sqrt(step @ step))
    keep = (r + r_max >= known - 1e-6).nonzero()[0]
    if len(keep) > _SECOND_CENTRE_FROM:
        # the same bound from a second centre, the known pair's midpoint: a pair at least as long has both
        # ends far enough from every centre, so the survivors keep every longest pair (the same answer)
        r2 = np.sqrt(_squares(local - ((local[:, far[1]] + local[:, far[2]]) / 2.0)[:, None]))
        keep = keep[r2[keep] + float(np.maximum.reduce(r2)) >= known - 1e-6]
    if len(keep) > _DIRECT_UP_TO:
        return _farthest_pair_gram(pts, keep)
    a, b = _farthest_pair_direct(xyz[:, keep])  # keep is increasing: the lowest pair stays the lowest
    return int(keep[a]), int(keep[b])


def max_pairwise_distance(points: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Largest distance between any two points (exact), without comparing all pairs of a large set.

    Parameters
    ----------
    points : numpy.ndarray
        (N, d) coordinates in mm.

    Returns
    -------
    (float, numpy.ndarray or None)
        The distance and the unit vector between the two extreme points.
    """
    pts = np.asarray(points, dtype=np.float64)
    dist, u, _, _ = _max_pair(pts)
    return dist, u


def _max_pair(
    pts: np.ndarray, xyz: np.ndarray | None = None
) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """:func:`max_pairwise_distance` of float (n, d) points, and the distance matrix when it was computed.

    Fewer than :data:`_PRUNE_FROM` points are compared all at once; the
    matrix of all distances (or, up to 32 points, of their squares) then comes
    back for the short-axis search of the same points
    (:func:`_widest_perpendicular_extent`), which needs the same pairs.
    ``xyz``: the coordinate rows of ``pts`` when already at hand (rows equal for all the points may be
    left out: their differences are exact zeros).

    Returns
    -------
    (float, numpy.ndarray or None, numpy.ndarray or None, numpy.ndarray or None)
        The distance, the unit vector, the distances and the squared distances (one of the two or neither).
    """
    n = len(pts)
    if n < 2:
        return 0.0, None, None, None
    dmat: np.ndarray | None = None
    d2: np.ndarray | None = None
    if n < _PRUNE_FROM:
        rows = np.ascontiguousarray(pts.T) if xyz is None else xyz
        d2 = _squares([c[:, None] - c[None, :] for c in rows])
        if n <= 32:  # tiny sets: the first maximum of the squares (two squares one rounding apart can share a root)
            i, j = _first_max_pair(d2)
        else:
            dmat, d2 = np.sqrt(d2), None
            i, j = _first_max_pair(dmat)
    else:
        i, j = _farthest_pair(pts)
    step = pts[j] - pts[i]
    dist = float(np.sqrt(step.dot(step)))  # np.linalg.norm's own formula for a vector, without its overhead
    return dist, (step / dist if dist > 0 else None), dmat, d2


def axial_diameters(
    candidates: np.ndarray, affine: np.ndarray, slice_axis: int, normal: np.ndarray | None = None
) -> tuple[float, float | None, np.ndarray | None, np.ndarray | None]:
    """Longest in-plane diameter over transverse slices, its perpendicular extent and both directions.

    Parameters
    ----------
    candidates : numpy.ndarray
        Boolean mask of the voxels extreme along both in-plane axes (a
        superset of each slice's hull vertices).
    affine : numpy.ndarray
        Index -> LPS affine of the crop.
    slice_axis : int
        Array axis across the transverse slices.
    normal : numpy.ndarray, optional
        The unit vector of the affine's column ``slice_axis`` (computed when not given).

    Returns
    -------
    (float, float or None, numpy.ndarray or None, numpy.ndarray or None)
        The longest in-plane diameter (mm, between voxel centres), the widest extent
        perpendicular to it in its slice, and the unit vectors of both.
    """
    # listed slice by slice, in index order within a slice (a stable sort by slice of the index-ordered list)
    by_slice = _argwhere(candidates.transpose(slice_axis, *(a for a in range(3) if a != slice_axis)))
    return axial_diameters_of_points(by_slice, affine, slice_axis, normal)


def axial_diameters_of_points(
    by_slice: np.ndarray, affine: np.ndarray, slice_axis: int, normal: np.ndarray | None = None
) -> tuple[float, float | None, np.ndarray | None, np.ndarray | None]:
    """:func:`axial_diameters` of the candidate voxels listed as ``by_slice`` rows.

    Parameters
    ----------
    by_slice : numpy.ndarray
        (n, 3) integer rows (slice index, then the other two indices in axis
        order) of the candidates, in increasing order of those rows (the order
        of ``np.argwhere`` of the candidate mask with the slice axis first).
    affine, slice_axis, normal
        As for :func:`axial_diameters`.
    """
    if normal is None:
        normal = affine[:3, slice_axis] / np.linalg.norm(affine[:3, slice_axis])
    if by_slice.size == 0:
        return 0.0, None, None, None
    # back to (i, j, k) columns: the slice index is column 0, the other two follow in axis order
    ijk = by_slice[:, [0 if a == slice_axis else 1 + a - (a > slice_axis) for a in range(3)]]
    pts_all = ijk.astype(np.float64) @ affine[:3, :3].T + affine[:3, 3]
    counts = np.bincount(by_slice[:, 0])
    counts = counts[counts > 0]
    bounds = [0, *np.cumsum(counts).tolist()]
    starts = bounds[:-1]
    xyz_all = np.ascontiguousarray(pts_all.T)
    # a patient coordinate that the in-plane index columns do not move is the same float for every point
    # of a slice (zero terms add exactly): its differences are exact zeros, and the slices' distance
    # matrices leave it out (the same floats: adding 0.0 changes no square sum)
    varying = [r for r in range(3) if any(affine[r, a] != 0.0 for a in range(3) if a != slice_axis)]
    xyz_matrix = xyz_all if len(varying) in (0, 3) else xyz_all[varying]
    # upper bound of a slice's diameter: twice the largest distance from its centroid (tight for round
    # slices); slices are visited by decreasing bound until none can beat the best: same result, few searches
    centroids = np.add.reduceat(pts_all, starts, axis=0) / counts[:, None]
    off = pts_all - np.repeat(centroids, counts, axis=0)
    d2 = _squares([off[:, 0], off[:, 1], off[:, 2]])  # (off ** 2).sum(1)
    bound = 2.0 * np.sqrt(np.maximum.reduceat(d2, starts))
    best, best_dir = -1.0, None
    found: dict[int, tuple[float, np.ndarray | None, np.ndarray | None]] = {}
    groups: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # the visited slices' points and coordinate rows
    bound_mm = bound.tolist()
    for n in bound.argsort()[::-1].tolist():
        if bound_mm[n] < best - _TIE_TOLERANCE_MM:
            break
        groups[n] = pts_all[bounds[n] : bounds[n + 1]], xyz_all[:, bounds[n] : bounds[n + 1]]
        d, u, dmat, sq = _max_pair(groups[n][0], xyz_matrix[:, bounds[n] : bounds[n + 1]])
        found[n] = d, dmat, sq
        if d > best:
            best, best_dir = d, u
    if best <= 0.0:
        return max(best, 0.0), 0.0, None, None
    # several slices or point pairs can share the longest diameter exactly (a rectangle's diagonals, an
    # isotropic resampled grid); the short axis is taken over all of them, so the answer does not depend
    # on float noise in the affine (the same lesion stored in another axis order gives the same numbers)
    tied = [
        (n, dmat if sq is None else np.sqrt(sq)) for n, (d, dmat, sq) in found.items() if d >= best - _TIE_TOLERANCE_MM
    ]
    width, width_dir = max(
        (_widest_perpendicular_extent(groups[n][0], best, normal, dist=dmat, xyz=groups[n][1]) for n, dmat in tied),
        key=lambda t: t[0],
    )
    return best, width, best_dir, width_dir


def _widest_perpendicular_extent(
    pts: np.ndarray,
    longest_mm: float,
    normal: np.ndarray,
    *,
    prune: bool = True,
    dist: np.ndarray | None = None,
    xyz: np.ndarray | None = None,
) -> tuple[float, np.ndarray | None]:
    """Largest in-plane extent of ``pts`` perpendicular to any pair ``longest_mm`` apart, and its direction.

    With ``prune`` (the default), a pair that long has both ends at least
    ``longest_mm - r_max`` from the centre of the points' box, so the other
    points are left out of the pair search: the pairs found, their order and
    the blocks are those of the search over all points (``prune=False``). The
    pair lengths and directions are computed on coordinate rows, with the
    operations of ``np.linalg.norm`` and ``np.cross`` on (n, 3) rows (the same
    floats, without reductions along a length-3 axis). ``dist``, the matrix of
    all distances between the points (:func:`_max_pair`), gives the pairs
    without a search; ``xyz``, the coordinate rows of ``pts`` when at hand.
    """
    if xyz is None:
        xyz = np.ascontiguousarray(pts.T)
    if dist is not None and len(pts) <= 256:  # one block: the pairs in the order of the search below
        ii, jj = _nonzero(dist >= longest_mm - _TIE_TOLERANCE_MM)
        if ii.size == 0:
            return 0.0, None
        return _widest_over_pairs(pts, xyz, ii, jj, dist[ii, jj], [c[jj] - c[ii] for c in xyz], normal)
    ends = np.arange(len(pts))
    if prune:
        r = np.sqrt(_squares(xyz - ((np.minimum.reduce(xyz, axis=1) + np.maximum.reduce(xyz, axis=1)) / 2.0)[:, None]))
        ends = (r + np.maximum.reduce(r) >= longest_mm - _TIE_TOLERANCE_MM - 1e-6).nonzero()[0]
    others = xyz[:, ends]
    widest, widest_dir = 0.0, None
    for start in range(0, len(pts), 256):
        rows = ends[(ends >= start) & (ends < start + 256)]
        if rows.size == 0:
            continue
        diff = [o[None, :] - c[rows][:, None] for o, c in zip(others, xyz, strict=True)]
        dist = np.sqrt(_squares(diff))
        ii, jj = _nonzero(dist >= longest_mm - _TIE_TOLERANCE_MM)
        if ii.size == 0:
            continue
        w, w_dir = _widest_over_pairs(pts, xyz, ii, jj, dist[ii, jj], [d[ii, jj] for d in diff], normal)
        if w > widest or widest_dir is None:
            widest, widest_dir = w, w_dir
    return widest, widest_dir


def _widest_over_pairs(
    pts: np.ndarray,
    xyz: np.ndarray,
    ii: np.ndarray,
    jj: np.ndarray,
    length: np.ndarray,
    steps: list[np.ndarray],
    normal: np.ndarray,
) -> tuple[float, np.ndarray]:
    """The widest extent of ``pts`` perpendicular (in plane) to the pairs ``(ii, jj)``: the first widest pair's.

    ``steps`` are the coordinate differences ``xyz[:, jj] - xyz[:, ii]`` and
    ``length`` their lengths; the directions are ``np.cross(normal, step /
    length)`` normalised as ``np.linalg.norm(v, axis=1)`` does it.
    """
    n0, n1, n2 = normal
    u0, u1, u2 = (d / length for d in steps)
    v = np.empty((len(ii), 3), dtype=np.float64)
    v[:, 0] = n1 * u2 - n2 * u1  # np.cross(normal, u)
    v[:, 1] = n2 * u0 - n0 * u2
    v[:, 2] = n0 * u1 - n1 * u0
    v /= np.sqrt(np.add.reduce(v * v, axis=1, keepdims=True))
    proj = pts @ v.T
    ext = np.maximum.reduce(proj, axis=0) - np.minimum.reduce(proj, axis=0)
    k = int(ext.argmax())
    return float(ext[k]), v[k]
