"""Lesion instances and their geometry: volume, centroid, diameters, border flag.

Distances are measured between voxel centres in patient space (mm); each
diameter also has an edge-to-edge value (``*_edge_mm``): the centre-to-centre
value plus the extent of one voxel along the measured direction (for a voxel
with edge vectors ``a_i`` and a unit direction ``u``: ``sum_i |a_i . u|``), so
that a 10 mm sphere reads about 10 mm, not 10 mm minus a voxel. The
centre-to-centre values are the ones comparable with SimpleITK's Feret
diameter; RECIST and the ablation size limit use the edge-to-edge ones
(DESIGN.md definitions). "Axial" is the
patient transverse plane: for images whose slices are not transverse, the
lesion is resampled onto a transverse grid before the in-plane diameters are
taken. The maximum 3-D diameter compares only the voxel centres that can lie on
the convex hull, pruned by a distance bound, never all voxel pairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..geometry import resample_array
from ..volume import Volume, nonzero_bbox
from .candidates import ComponentFacts, _axis_extremes, _candidate_points, _extreme_masks
from .diameters import _argwhere, _nonzero, axial_diameters, axial_diameters_of_points, max_pairwise_distance

__all__ = [
    "AXIAL_TOLERANCE",
    "EDGE_DIAMETER_METHOD",
    "OVERLAP_RULE",
    "ComponentFacts",
    "InstanceGeometry",
    "LesionGrid",
    "attribute_overlaps",
    "component_boxes",
    "component_boxes_and_centroids",
    "label_instances_cropped",
    "max_pairwise_distance",
    "measure_instance",
    "voxel_extent_mm",
]

logger = logging.getLogger(__name__)

#: |cos| of the angle between the slice normal and patient S above which slices count as transverse.
AXIAL_TOLERANCE = 1e-4


@dataclass(frozen=True)
class InstanceGeometry:
    """Geometry of one lesion instance (units in names)."""

    voxel_count: int
    volume_ml: float
    centroid_lps_mm: tuple[float, float, float]
    longest_axial_diameter_mm: float
    short_axis_diameter_mm: float | None
    max_3d_diameter_mm: float
    touches_image_border: bool
    mean_intensity: float | None
    longest_axial_diameter_edge_mm: float | None = None
    short_axis_diameter_edge_mm: float | None = None
    max_3d_diameter_edge_mm: float | None = None
    #: exact integer sum of the intensities (integer images of at most 16 bits, binary masks; else None)
    intensity_sum: int | None = None


@dataclass(frozen=True)
class LesionGrid:
    """The facts of an image grid that every lesion measurement uses, computed once per image.

    Parameters
    ----------
    affine : numpy.ndarray
        Index -> LPS affine (4 x 4).
    shape : tuple of int
        Array shape.
    voxel_volume_ml : float
        Volume of one voxel (``Volume.voxel_volume_ml``).
    slice_axis : int
        Array axis across the slices (``Volume.slice_axis``).
    axial : bool
        True when the slices are transverse (within :data:`AXIAL_TOLERANCE`).
    normal : numpy.ndarray
        Unit vector along the slice axis.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    voxel_volume_ml: float
    slice_axis: int
    axial: bool
    normal: np.ndarray

    @classmethod
    def of(cls, image: Volume) -> LesionGrid:
        """The grid facts of ``image``."""
        k = image.slice_axis
        column = image.affine[:3, k]
        # a sheared grid's (gantry tilt) slice axis leans off its slice planes: their normal decides
        normal = image.slice_normal if image.sheared else column / np.linalg.norm(column)
        return cls(
            affine=image.affine,
            shape=image.shape,
            voxel_volume_ml=image.voxel_volume_ml,
            slice_axis=k,
            axial=bool(abs(abs(float(normal[2])) - 1.0) <= AXIAL_TOLERANCE)
            if image.sheared
            else bool(abs(abs(image.direction[2, k]) - 1.0) <= AXIAL_TOLERANCE),
            normal=normal,
        )


#: How the ``*_edge_mm`` diameters are defined (quoted in the report).
EDGE_DIAMETER_METHOD = (
    "edge to edge: voxel-centre distance plus the extent of one voxel along the measured direction; "
    "the *_diameter_mm values without _edge are between voxel centres (Feret-comparable)"
)


def voxel_extent_mm(affine: np.ndarray, direction: np.ndarray | None) -> float:
    """Extent (mm) of one voxel of ``affine`` along the unit vector ``direction``.

    For voxel edge vectors ``a_i`` (the columns of the affine's 3x3 part) the
    voxel's width along ``u`` is ``sum_i |a_i . u|``. ``None`` (a one-voxel
    lesion) gives the smallest voxel spacing.

    Examples
    --------
    >>> voxel_extent_mm(np.diag([2.0, 3.0, 5.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    3.0
    """
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    if direction is None:
        return float(np.linalg.norm(a, axis=0).min())
    u = np.asarray(direction, dtype=np.float64)
    return float(np.abs(a.T @ u).sum())


def label_instances_cropped(
    mask: np.ndarray, connectivity: int = 26, *, bbox: tuple[slice, slice, slice] | None = None
) -> tuple[tuple[slice, slice, slice] | None, np.ndarray, int]:
    """Connected components within the mask's bounding box (``bbox`` when already known).

    Returns
    -------
    (bbox or None, numpy.ndarray, int)
        The bounding box, the uint32 labels inside it, and the number of components.
    """
    import cc3d  # connected-components-3d: the same components as scipy.ndimage.label, 5-20x faster

    if connectivity not in (6, 26):
        raise ValueError("connectivity must be 6 or 26")
    bb = bbox if bbox is not None else nonzero_bbox(mask)
    if bb is None:
        return None, np.zeros((0, 0, 0), dtype=np.int32), 0
    sub = np.asarray(mask[bb], dtype=bool)
    if not sub.flags.writeable or not (sub.flags.f_contiguous or sub.flags.c_contiguous):
        # cc3d needs a writeable buffer (Volume arrays are read-only) and labels a strided view in C order,
        # several times slower than a copy in the view's own order
        sub = sub.copy(order="K")
    conn: Literal[6, 26] = 6 if connectivity == 6 else 26
    if 1 in sub.shape:
        # cc3d 4.1 sizes its union-find for a boolean box one voxel thick too small ("maximum length
        # exception" for [1, 0, 1, 0, 1] along one axis, or isolated voxels on a plane every other
        # voxel); the same bytes as uint8 label alike
        sub = sub.view(np.uint8)
    crop, n = cc3d.connected_components(sub, connectivity=conn, return_N=True, out_dtype=np.uint32)
    return bb, crop, int(n)


def component_boxes(labels: np.ndarray, n: int) -> list[tuple[slice, slice, slice] | None]:
    """Bounding box of each component ``1..n`` of a connected-components label array (``None``: absent).

    The same boxes as ``cc3d.statistics(labels)["bounding_boxes"][1:]``
    (:func:`component_boxes_and_centroids`).
    """
    return component_boxes_and_centroids(labels, n)[0]


def component_boxes_and_centroids(
    labels: np.ndarray, n: int
) -> tuple[list[tuple[slice, slice, slice] | None], list[ComponentFacts | None]]:
    """Bounding box and :class:`ComponentFacts` (count, mean index, line ends) of each component ``1..n``.

    The boxes are those of ``cc3d.statistics(labels)["bounding_boxes"][1:]``,
    from the runs of equal labels along the array's memory order
    (:func:`_label_runs`, where neighbouring labels differ: one pass over the
    voxels without cc3d.statistics' float sums): each run lies on one grid line, so its first and last voxels bound
    it, and the index sums of its voxels are exact integers, divided once by
    the count (the floats of :func:`measure_instance`'s own counts); the first
    run of a component on a line starts with its first voxel there, the last
    run ends with its last. When a run continues from one line onto the next
    (a component spanning the whole box along the fastest axis), the boxes
    come from cc3d.statistics and the rest is left to the measurement
    (``None``).

    Parameters
    ----------
    labels : numpy.ndarray
        3-D connected-components labels (0 background, components ``1..n``).
    n : int
        Number of components.

    Returns
    -------
    (list of tuple of slice or None, list of ComponentFacts or None)
        Per component ``1..n`` (index ``label - 1``): its box, and what its runs tell.
    """
    import cc3d

    none: list[ComponentFacts | None] = [None] * n
    order: Literal["C", "F"] | None = "F" if labels.flags.f_contiguous else "C" if labels.flags.c_contiguous else None
    if n == 0 or order is None or labels.ndim != 3:
        return list(cc3d.statistics(labels)["bounding_boxes"][1 : n + 1]), none
    flat, keys, counts = _label_runs(labels, n, order)
    if not len(keys):
        return list(cc3d.statistics(labels)["bounding_boxes"][1 : n + 1]), none
    fast = 0 if order == "F" else 2
    line = labels.shape[fast]
    first, last = flat[:, 0], flat[:, 1] - 1
    if np.any(first // line != last // line):  # a run wraps onto the next line: not bounded by its ends
        return list(cc3d.statistics(labels)["bounding_boxes"][1 : n + 1]), none
    lo = np.stack(np.unravel_index(first, labels.shape, order=order), axis=1)
    hi = np.stack(np.unravel_index(last, labels.shape, order=order), axis=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    box_lo = np.minimum.reduceat(lo, starts, axis=0)
    box_hi = np.maximum.reduceat(hi, starts, axis=0)
    # index sums of each run's voxels: along the run (lo + hi) * length / 2, across it index * length
    length = last - first + 1
    sums = lo * length[:, None]
    sums[:, fast] = (lo[:, fast] + hi[:, fast]) * length // 2
    voxels = np.add.reduceat(length, starts).tolist()
    index_sums = np.add.reduceat(sums, starts, axis=0).tolist()
    # each component's first and last voxel on each line: the ends of its first and last run there
    which = np.repeat(np.arange(len(keys)), counts)
    line_id = first // line
    opens = np.ones(len(first), dtype=bool)
    opens[1:] = (line_id[1:] != line_id[:-1]) | (which[1:] != which[:-1])
    closes = np.ones(len(first), dtype=bool)
    closes[:-1] = opens[1:]
    ends = [_flat_in_box(lo[opens], which[opens], box_lo, box_hi, order)]
    ends.append(_flat_in_box(hi[closes], which[closes], box_lo, box_hi, order))
    cuts = [np.cumsum(np.bincount(which[sel], minlength=len(keys))).tolist() for sel in (opens, closes)]
    boxes: list[tuple[slice, slice, slice] | None] = [None] * n
    facts = list(none)
    for c, (k, a, b, nv, sa) in enumerate(zip(keys, box_lo.tolist(), box_hi.tolist(), voxels, index_sums, strict=True)):
        boxes[int(k) - 1] = (slice(a[0], b[0] + 1), slice(a[1], b[1] + 1), slice(a[2], b[2] + 1))
        line_ends = [e[(cut[c - 1] if c else 0) : cut[c]] for e, cut in zip(ends, cuts, strict=True)]
        # integer sums relative to the box, divided once: the floats of _count_and_centroid
        mean_index = np.array([(sa[ax] - nv * a[ax]) / nv for ax in range(3)])
        facts[int(k) - 1] = ComponentFacts(nv, mean_index, fast, np.concatenate(line_ends))
    return boxes, facts


def _label_runs(labels: np.ndarray, n: int, order: Literal["C", "F"]) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The runs of equal labels ``1..n`` along the array's flat memory ``order`` (``cc3d.fastcc3d.runs``).

    Returns
    -------
    (numpy.ndarray, list of int, numpy.ndarray)
        (start, stop) flat index pairs (int64, one row per run), by label, then in memory order; the
        labels that have runs, ascending; and each one's number of runs.
    """
    values = labels.reshape(-1, order=order)  # a view: the array is contiguous in that order
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], cuts)).astype(np.int64, copy=False)
    stops = np.concatenate((cuts, [values.size])).astype(np.int64, copy=False)
    run_labels = values[starts]
    keep = (run_labels >= 1) & (run_labels <= n)
    run_labels, starts, stops = run_labels[keep], starts[keep], stops[keep]
    by_label = np.argsort(run_labels, kind="stable")  # memory order kept within a label
    run_labels = run_labels[by_label]
    flat = np.stack((starts[by_label], stops[by_label]), axis=1)
    if not len(run_labels):
        return flat, [], np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.concatenate(([True], run_labels[1:] != run_labels[:-1])))
    counts = np.diff(np.concatenate((first, [len(run_labels)])))
    return flat, run_labels[first].tolist(), counts.astype(np.int64, copy=False)


def _flat_in_box(
    points: np.ndarray, which: np.ndarray, box_lo: np.ndarray, box_hi: np.ndarray, order: Literal["C", "F"]
) -> np.ndarray:
    """Flat indices (memory ``order``) of ``points`` of the label array within the boxes ``which`` they lie in.

    For box corner ``l`` and sizes ``d`` (Fortran order): ``(p0 - l0) + d0 (p1 - l1) + d0 d1 (p2 - l2)``,
    i.e. ``p0 + d0 p1 + d0 d1 p2`` less a constant per box.
    """
    axes = (0, 1, 2) if order == "F" else (2, 1, 0)
    d = box_hi - box_lo + 1
    step1 = d[:, axes[0]]
    step2 = step1 * d[:, axes[1]]
    corner = box_lo[:, axes[0]] + step1 * box_lo[:, axes[1]] + step2 * box_lo[:, axes[2]]
    return points[:, axes[0]] + step1[which] * points[:, axes[1]] + step2[which] * points[:, axes[2]] - corner[which]


def _axial_resample(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample a cropped mask onto a transverse (patient-axis aligned) grid, nearest neighbour."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    s = float(spacing.min())
    corners = np.array(
        [
            [i, j, k]
            for i in (-0.5, mask.shape[0] - 0.5)
            for j in (-0.5, mask.shape[1] - 0.5)
            for k in (-0.5, mask.shape[2] - 0.5)
        ]
    )
    pts = corners @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = pts.min(0), pts.max(0)
    size = np.maximum(1, np.ceil((hi - lo) / s).astype(int))
    aff = np.eye(4)
    aff[:3, :3] = np.diag([s, s, s])
    aff[:3, 3] = lo + s / 2
    return resample_array(np.asarray(mask, dtype=bool), affine, size, aff), aff


def _count_and_centroid(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """Voxel count and mean voxel index of a boolean mask, from its voxel counts per index (exact integer sums)."""
    plane = mask.sum(axis=2)
    counts = (plane.sum(axis=1), plane.sum(axis=0), mask.sum(axis=(0, 1)))
    n = int(counts[0].sum())
    return n, np.array([int(np.arange(len(c)) @ c) / n for c in counts])


def measure_instance(
    image: Volume,
    bbox: tuple[slice, slice, slice],
    mask: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    grid: LesionGrid | None = None,
    known: ComponentFacts | None = None,
) -> InstanceGeometry:
    """Measure one instance given its bounding box and boolean mask within it.

    Parameters
    ----------
    image : Volume
        The image (grid and intensities).
    bbox : tuple of slice
        Crop of the instance in image indices.
    mask : numpy.ndarray
        Boolean mask of the instance within ``bbox``.
    weights : numpy.ndarray, optional
        Fractional occupancy within ``bbox`` (volume = sum of fractions).
    grid : LesionGrid, optional
        ``LesionGrid.of(image)``, when many instances of one image are measured.
    known : ComponentFacts, optional
        What the connected-components pass found of this mask
        (:func:`component_boxes_and_centroids`; binary masks only).

    Returns
    -------
    InstanceGeometry
    """
    if grid is None:
        grid = LesionGrid.of(image)
    aff = image.affine
    offset = np.array([bbox[0].start, bbox[1].start, bbox[2].start], dtype=np.float64)
    crop_aff = aff.copy()
    crop_aff[:3, 3] = aff[:3, :3] @ offset + aff[:3, 3]
    box_values = image.array[bbox]
    mean_int: float | None
    if weights is None and box_values.dtype.kind in "iu" and box_values.dtype.itemsize <= 2:
        # integer sums are exact in any order: voxel counts per index give the centroid, a masked sum the mean
        # (the same floats as the means of the voxel list, without listing the voxels)
        n, centroid_idx = (known.voxel_count, known.mean_index) if known is not None else _count_and_centroid(mask)
        volume_ml = n * grid.voxel_volume_ml
        intensity_sum = int(np.multiply(box_values, mask, dtype=np.int32).sum(dtype=np.int64))
        mean_int = float(intensity_sum) / n
    else:
        intensity_sum = None
        nz = _nonzero(mask)
        n = len(nz[0])
        if weights is not None:
            w = weights[nz].astype(np.float64)
            volume_ml = float(w.sum()) * grid.voxel_volume_ml
            centroid_idx = np.array([(c * w).sum() for c in nz]) / max(w.sum(), 1e-12)
        else:
            volume_ml = n * grid.voxel_volume_ml
            centroid_idx = np.array([c.mean() for c in nz])
        values = box_values[nz]
        numeric = values.size and np.issubdtype(values.dtype, np.number)
        mean_int = float(values.mean(dtype=np.float64)) if numeric else None
    centroid = centroid_idx @ crop_aff[:3, :3].T + crop_aff[:3, 3]
    k_axis = grid.slice_axis
    inplane: np.ndarray | None = None
    if grid.axial and weights is None and known is not None and known.line_axis != k_axis and mask.ndim == 3:
        # the same candidates as the masks below, as points: from the line ends, kept if extreme along the others
        by_slice, ext_rows = _candidate_points(mask, known, k_axis)
    else:
        extremes = _extreme_masks(mask, known if weights is None else None)
        inplane = extremes[1 if k_axis == 0 else 0] & extremes[1 if k_axis == 2 else 2]  # extreme in both others
        ext_rows = _argwhere(inplane & extremes[k_axis])
    ext = ext_rows.astype(np.float64)
    d3, u3 = max_pairwise_distance(ext @ crop_aff[:3, :3].T + crop_aff[:3, 3])
    if grid.axial:
        if inplane is None:
            dl, ds, ul, us = axial_diameters_of_points(by_slice, crop_aff, k_axis, grid.normal)
        else:
            dl, ds, ul, us = axial_diameters(inplane, crop_aff, k_axis, grid.normal)
    else:
        amask, aaff = _axial_resample(mask, crop_aff)
        dl, ds, ul, us = axial_diameters(_axis_extremes(amask, 0) & _axis_extremes(amask, 1), aaff, 2)
        # the transverse resampling moves voxel centres; an in-plane diameter never exceeds the 3-D one
        dl = min(dl, d3)
        ds = None if ds is None else min(ds, dl)
    # edge to edge: add the extent of one (original) voxel along each measured direction; an in-plane
    # direction of a one-voxel-thick slice falls back to the smallest in-plane spacing
    dl_edge = dl + voxel_extent_mm(aff, ul)
    ds_edge = None if ds is None else ds + voxel_extent_mm(aff, us if us is not None else ul)
    d3_edge = max(d3 + voxel_extent_mm(aff, u3), dl_edge)
    shape = grid.shape
    touches = any(bbox[a].start == 0 or bbox[a].stop == shape[a] for a in range(3))
    return InstanceGeometry(
        voxel_count=n,
        volume_ml=volume_ml,
        centroid_lps_mm=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
        longest_axial_diameter_mm=float(dl),
        short_axis_diameter_mm=None if ds is None else float(ds),
        max_3d_diameter_mm=float(d3),
        touches_image_border=bool(touches),
        mean_intensity=mean_int,
        longest_axial_diameter_edge_mm=float(dl_edge),
        short_axis_diameter_edge_mm=None if ds_edge is None else float(ds_edge),
        max_3d_diameter_edge_mm=float(d3_edge),
        intensity_sum=intensity_sum,
    )


#: How voxels claimed by several lesion segments are attributed (the report's ``method.lesion_overlap``).
OVERLAP_RULE = (
    "a voxel in several lesion segments belongs to the smallest of them (ties: the first in input order); every "
    "per-lesion number (volume, diameters, centroid, intensity, PET statistics) uses that one voxel set, so the "
    "lesion volumes add up to the tumour volume"
)


def attribute_overlaps(
    instances: list[tuple[tuple[slice, slice, slice], np.ndarray]],
) -> tuple[list[np.ndarray], int]:
    """Give every voxel claimed by several lesion segments to exactly one of them (:data:`OVERLAP_RULE`).

    Parameters
    ----------
    instances : list of (bbox, mask)
        Each segment's bounding box (on the image grid) and its boolean mask inside that box.

    Returns
    -------
    (list of numpy.ndarray, int)
        The masks after attribution (same boxes; a segment may become empty) and
        the number of voxels that were claimed more than once.

    Examples
    --------
    >>> big = (slice(0, 4), slice(0, 1), slice(0, 1)); small = (slice(1, 3), slice(0, 1), slice(0, 1))
    >>> masks, n = attribute_overlaps([(big, np.ones((4, 1, 1), bool)), (small, np.ones((2, 1, 1), bool))])
    >>> [int(m.sum()) for m in masks], n
    ([2, 2], 2)
    """
    if len(instances) < 2:
        return [m for _, m in instances], 0
    lo = [min(bb[a].start for bb, _ in instances) for a in range(3)]
    hi = [max(bb[a].stop for bb, _ in instances) for a in range(3)]
    shape = tuple(h - low for h, low in zip(hi, lo, strict=True))
    owner = np.zeros(shape, dtype=np.uint16 if len(instances) < 65535 else np.int32)
    multi = np.zeros(shape, dtype=bool)

    def local(bb: tuple[slice, slice, slice]) -> tuple[slice, slice, slice]:
        return (
            slice(bb[0].start - lo[0], bb[0].stop - lo[0]),
            slice(bb[1].start - lo[1], bb[1].stop - lo[1]),
            slice(bb[2].start - lo[2], bb[2].stop - lo[2]),
        )

    order = sorted(range(len(instances)), key=lambda n: (int(np.count_nonzero(instances[n][1])), n))
    for n in order:  # smallest first: it keeps all its voxels
        bb, m = instances[n]
        region = owner[local(bb)]
        taken = region != 0
        multi[local(bb)] |= m & taken
        region[m & ~taken] = n + 1
    out = [m & (owner[local(bb)] == n + 1) for n, (bb, m) in enumerate(instances)]
    return out, int(np.count_nonzero(multi))
