"""Polygon rasterisation on a pixel grid with the voxel-centre rule (private).

Rule
----
A pixel ``(i, j)`` belongs to a closed polygon given in continuous pixel
coordinates when its **centre** (the integer point ``(i, j)``) is inside the
polygon by the even-odd (crossing-number) rule. Centres exactly on an edge are
decided half-open: a scanline ``y = j`` counts an edge when
``min(y0, y1) <= j < max(y0, y1)``, and a crossing at ``x`` flips all centres
``i >= x``. So an axis-aligned square with corners on centres ``[a, b] x [c, d]``
covers ``a <= i < b`` and ``c <= j < d``: adjacent polygons sharing an edge
never count a centre twice.

Because the even-odd rule is additive under XOR, nested contours (holes,
islands in holes) combine by XOR of their fills, and a contour too small to
contain a centre changes nothing (it can never erase a slice; cf. vv PR #117).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "add_outline_centres",
    "collapse_repeated_traversal",
    "ends_on_its_start",
    "fill_polygon",
    "on_centres",
    "outline_centres",
    "shoelace_area",
]


def shoelace_area(points: np.ndarray) -> float:
    """Unsigned area of a closed polygon ``(N, 2)`` (shoelace formula)."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def fill_polygon(points_ij: np.ndarray, shape_ij: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie inside a polygon.

    Parameters
    ----------
    points_ij : numpy.ndarray
        ``(N, 2)`` vertices in continuous pixel coordinates ``(i, j)``; the
        polygon is closed implicitly (last vertex joins the first).
    shape_ij : (int, int)
        Plane shape ``(ni, nj)``.

    Returns
    -------
    numpy.ndarray
        ``(ni, nj)`` bool mask by the centre rule described in the module docstring.

    Examples
    --------
    >>> m = fill_polygon(np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 2.5], [0.5, 2.5]]), (5, 4))
    >>> np.argwhere(m).tolist()
    [[1, 1], [1, 2], [2, 1], [2, 2], [3, 1], [3, 2]]
    """
    ni, nj = int(shape_ij[0]), int(shape_ij[1])
    out = np.zeros((ni, nj), dtype=bool)
    p = np.asarray(points_ij, dtype=np.float64)
    if p.shape[0] < 3:
        return out
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    j_lo = max(int(np.ceil(y0.min())), 0)
    j_hi = min(int(np.floor(y0.max())), nj - 1)
    if j_hi < j_lo:
        return out
    rows = np.arange(j_lo, j_hi + 1, dtype=np.float64)
    ylo, yhi = np.minimum(y0, y1)[:, None], np.maximum(y0, y1)[:, None]
    hit = (ylo <= rows[None, :]) & (rows[None, :] < yhi)  # (edges, rows), horizontal edges never hit
    e_idx, r_idx = np.nonzero(hit)
    if e_idx.size == 0:
        return out
    t = (rows[r_idx] - y0[e_idx]) / (y1[e_idx] - y0[e_idx])
    x = x0[e_idx] + t * (x1[e_idx] - x0[e_idx])
    col = np.clip(np.ceil(x), 0, ni).astype(np.int64)
    toggles = np.zeros((ni + 1, rows.size), dtype=np.int32)
    np.add.at(toggles, (col, r_idx), 1)
    parity = (np.cumsum(toggles, axis=0)[:ni] & 1).astype(bool)
    out[:, j_lo : j_hi + 1] = parity
    return out


def on_centres(points_ij: np.ndarray) -> bool:
    """True when every vertex lies exactly on a pixel centre (integer coordinates)."""
    p = np.asarray(points_ij, dtype=np.float64)
    return bool(p.size) and bool(np.all(p == np.round(p)))


def outline_centres(points_ij: np.ndarray, shape_ij: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixel centres lying on the edges of a polygon whose vertices are on centres.

    An edge from ``p`` to ``q`` (integer points) passes through the centres ``p + t (q - p) / g`` for
    ``t = 0 .. g``, ``g = gcd(|dx|, |dy|)``; centres outside ``shape_ij`` are dropped.

    Examples
    --------
    >>> m = outline_centres(np.array([[1, 1], [3, 1], [3, 2], [1, 2]]), (5, 4))
    >>> np.argwhere(m).tolist()
    [[1, 1], [1, 2], [2, 1], [2, 2], [3, 1], [3, 2]]
    """
    ni, nj = int(shape_ij[0]), int(shape_ij[1])
    out = np.zeros((ni, nj), dtype=bool)
    p = np.round(np.asarray(points_ij, dtype=np.float64)).astype(np.int64)
    for a, b in zip(p, np.roll(p, -1, axis=0)):
        d = b - a
        g = max(int(np.gcd(abs(int(d[0])), abs(int(d[1])))), 1)
        pts = a[None, :] + np.arange(g + 1)[:, None] * (d // g)[None, :]
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < ni) & (pts[:, 1] >= 0) & (pts[:, 1] < nj)
        out[pts[ok, 0], pts[ok, 1]] = True
    return out


def add_outline_centres(fill: np.ndarray, polygons: list[np.ndarray]) -> int:
    """Add to ``fill`` the pixels whose centres lie on the polygons' outlines; return how many were added.

    For an ROI whose every vertex is a pixel centre (:func:`on_centres`): rt-utils (cv2.findContours)
    and other mask-to-RTSTRUCT writers trace the centres of the mask's edge pixels, for outer borders
    and holes alike, so the pixels on the outline belong to the mask; the half-open centre rule alone
    keeps only half of them (a traced 10 x 10 square would come back as 9 x 9; rt-utils PR #141).
    """
    edge = np.zeros_like(fill)
    for poly in polygons:
        edge |= outline_centres(poly, fill.shape)
    added = int(np.count_nonzero(edge & ~fill))
    fill |= edge
    return added


def collapse_repeated_traversal(points: np.ndarray, tol: float = 1e-3) -> tuple[np.ndarray, int]:
    """One traversal of a polygon whose vertex list goes round the same outline several times.

    Exports sometimes write a contour twice over (``a b c d a b c d``). Filled by
    the even-odd rule, as plastimatch and dcmrtstruct2nii (skimage) fill each
    contour, every crossing is counted twice and the region vanishes. The
    vertex list is first cleaned of consecutive duplicates and of a closing
    vertex equal to the first; when it is then ``k`` repeats of one period, the
    period is returned.

    Parameters
    ----------
    points : numpy.ndarray
        ``(N, d)`` vertices.
    tol : float
        Coordinates equal within this (same units as the points).

    Returns
    -------
    (numpy.ndarray, int)
        The vertices of one traversal and how many traversals the input held (1 when none repeat).

    Examples
    --------
    >>> sq = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    >>> one, k = collapse_repeated_traversal(np.vstack([sq, sq[:1], sq, sq[:1]]))
    >>> k, one.tolist() == sq.tolist()
    (2, True)
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] < 6:
        return p, 1
    keep = np.ones(p.shape[0], dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(p, axis=0)) > tol, axis=1)
    q = p[keep]
    while q.shape[0] > 3 and np.all(np.abs(q[-1] - q[0]) <= tol):
        q = q[:-1]
    n = q.shape[0]
    for period in range(3, n // 2 + 1):
        if n % period == 0 and np.all(np.abs(q[period:] - q[:-period]) <= tol):
            return q[:period], n // period
    return p, 1


def ends_on_its_start(raw: Any, npts: int) -> bool:
    """True when ContourData ends on its first point (within 1e-3 mm) and holds 3 other points: a closed outline."""
    if raw is None or npts < 4 or len(raw) % 3 != 0:
        return False
    try:
        first = np.asarray([float(v) for v in raw[:3]])
        last = np.asarray([float(v) for v in raw[-3:]])
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.isfinite(first)) and np.max(np.abs(first - last)) < 1e-3)
