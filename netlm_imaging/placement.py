"""Put every mask on the image grid: use as is when the grids agree, else resample by physical position.

The load stage calls it (:func:`reconcile_layers`), so that the measure stage receives the image
and its masks on one grid; it is geometry of masks (:class:`~netlm_imaging.volume.Volume`'s
``same_grid``, ``box_in`` and ``resample_to``), below both the readers and the measurements.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import GeometryError
from .geometry import bbox
from .segmentation import MaskLayer
from .volume import Volume, sparse_zeros

__all__ = ["ReconciledLayers", "place_exactly", "reconcile_layers", "voxels_box"]

logger = logging.getLogger(__name__)


def _voxels_outside(mask: Volume, image: Volume) -> int:
    """How many non-zero voxels of ``mask`` have their centre outside the image's extent (Slicer PR #6739).

    The extent is the image's voxels' boxes (index -0.5 .. n-0.5 on each axis); a mask voxel centred
    beyond it is never sampled by the resampling onto the image grid. The mask's non-zero box is tested
    first, so a mask inside the image costs one pass for its box.
    """
    box = bbox(mask.array)
    if box is None:
        return 0
    lo, hi = box[0], box[1] - 1
    to_image = np.linalg.solve(image.affine, mask.affine)
    corners = np.array([[c[0], c[1], c[2], 1.0] for c in np.array(np.meshgrid(*zip(lo, hi))).T.reshape(-1, 3)])
    idx = (corners @ to_image.T)[:, :3]
    limit = np.asarray(image.shape, float) - 0.5
    if np.all(idx >= -0.5) and np.all(idx <= limit):
        return 0
    sub = mask.array[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
    n_out = 0
    for k in range(sub.shape[2]):  # slice by slice: memory of one slice's voxel list
        ij = np.argwhere(sub[:, :, k])
        if ij.size == 0:
            continue
        pts = np.column_stack([ij + lo[:2], np.full(len(ij), lo[2] + k), np.ones(len(ij))]) @ to_image.T
        inside = np.all((pts[:, :3] >= -0.5) & (pts[:, :3] <= limit), axis=1)
        n_out += int(np.count_nonzero(~inside))
    return n_out


@dataclass
class ReconciledLayers:
    """Layers on the image grid, whether any was resampled, and the warnings to report."""

    layers: list[MaskLayer] = field(default_factory=list)
    resampled: bool = False
    warnings: list[str] = field(default_factory=list)
    #: masks placed from a crop of the image grid (nothing resampled)
    notes: list[str] = field(default_factory=list)


#: How far (image voxels per mask voxel) the mask's axes may be from the image's, axis for axis, to be re-indexed.
_AXIS_TOLERANCE = 1e-3


def _reindexing(m: Volume, image: Volume) -> tuple[list[int], np.ndarray, np.ndarray] | None:
    """How ``m``'s axes map onto the image's: (image axis i is mask axis ``order[i]``, signs, new affine), or None.

    None when its axes are already the image's, or are not a signed permutation of them. Grids
    alone: no voxel is read.
    """
    r = np.linalg.solve(image.affine[:3, :3], m.affine[:3, :3])  # mask axis j in image index units: column j
    perm = np.argmax(np.abs(r), axis=0)
    signs = np.sign(r[perm, np.arange(3)])
    expected = np.zeros((3, 3))
    expected[perm, np.arange(3)] = signs
    if sorted(perm.tolist()) != [0, 1, 2] or float(np.max(np.abs(r - expected))) > _AXIS_TOLERANCE:
        return None
    if perm.tolist() == [0, 1, 2] and bool(np.all(signs > 0)):
        return None
    corner = np.array([m.shape[j] - 1 if signs[j] < 0 else 0 for j in range(3)], float)
    order = [int(np.flatnonzero(perm == i)[0]) for i in range(3)]
    affine = np.eye(4)
    affine[:3, :3] = m.affine[:3, :3][:, order] * signs[order]
    affine[:3, 3] = (m.affine @ np.append(corner, 1.0))[:3]
    return order, signs, affine


def _axes_aligned(m: Volume, image: Volume) -> Volume | None:
    """``m`` re-indexed so that its axes run along the image's (axes permuted and reversed), or None.

    A mask written by a tool that reorients (dcm2niix and dicom2nifti flip the rows of a DICOM
    CT; TotalSegmentator keeps the orientation of its NIfTI input) has the image's voxel centres
    in another index order: transposed and flipped, its voxels are the image's one for one
    (:meth:`Volume.box_in` then places them). None when its axes are already the image's, or are
    not a signed permutation of them (another spacing or an oblique mask: resampled).
    """
    how = _reindexing(m, image)
    if how is None:
        return None
    order, signs, affine = how
    arr = m.array
    for j in range(3):
        if signs[j] < 0:
            arr = np.flip(arr, axis=j)
    return m.with_grid(np.ascontiguousarray(np.transpose(arr, order)), affine)


def voxels_box(m: Volume, image: Volume) -> tuple[slice, slice, slice] | None:
    """The box of the image grid whose voxels are ``m``'s, one for one; None when they are not.

    ``m`` is the image grid, a crop of it (Slicer's cropped ``.seg.nrrd``) or either with its axes
    in another order or direction (:func:`_axes_aligned`): what :func:`place_exactly` copies into
    place. Grids alone decide (a :meth:`Volume.header_grid` will do): no voxel is read.

    Examples
    --------
    >>> image = Volume.header_grid((10, 8, 6), np.diag([0.8, 0.8, 2.5, 1.0]))
    >>> crop = np.diag([-0.8, 0.8, 2.5, 1.0]); crop[:3, 3] = [4.8, 0.8, 5.0]  # i reversed: voxels 3..6
    >>> voxels_box(Volume.header_grid((4, 3, 2), crop), image)
    (slice(3, 7, None), slice(1, 4, None), slice(2, 4, None))
    """
    how = _reindexing(m, image)
    if how is None:
        return m.box_in(image)
    order, _signs, affine = how
    return Volume.header_grid(tuple(m.shape[o] for o in order), affine).box_in(image)


def place_exactly(m: Volume, image: Volume) -> tuple[np.ndarray, tuple[slice, slice, slice], bool] | None:
    """``m``'s array placed on the image grid voxel for voxel, when its voxels are the image's; else None.

    Its voxels are the image's when, its axes re-indexed to the image's (:func:`_axes_aligned`), it is
    the image grid or a crop of it (:meth:`Volume.box_in`; Slicer crops a ``.seg.nrrd`` to its
    segments). Nothing is interpolated: the array is copied into its box.

    Returns
    -------
    (numpy.ndarray, box, bool) or None
        The array on the image grid (zero outside the box), the box, and whether the axes were re-indexed.
    """
    aligned = _axes_aligned(m, image)
    src = aligned if aligned is not None else m
    box = src.box_in(image)
    if box is None:
        return None
    placed = sparse_zeros(image.shape, src.array.dtype, "F" if image.array.flags.f_contiguous else "C")
    placed[box] = src.array
    return placed, box, aligned is not None


def reconcile_layers(image: Volume, layers: list[MaskLayer]) -> ReconciledLayers:
    """Bring every layer onto the image grid.

    Same grid within the named tolerances of :meth:`Volume.same_grid`: used
    as is. A crop of the image grid (:meth:`Volume.box_in`) is copied into its box, voxel for
    voxel, with a note. Otherwise the mask is resampled by physical coordinates (nearest
    neighbour; fractional masks linearly), a warning is added and
    ``resampled`` is set. Never compares arrays index by index across files.

    Raises
    ------
    GeometryError
        When a mask has no usable geometry (header without orientation) and
        a shape different from the image, when FrameOfReferenceUIDs differ,
        or when a non-empty mask falls entirely outside the image.
    """
    out = ReconciledLayers()
    for layer in layers:
        m = layer.mask
        if m.same_grid(image):
            out.layers.append(
                layer.with_mask(Volume(m.array, image.affine, image.frame_of_reference_uid, m.source, m.meta))
            )
            continue
        if not m.meta.get("geometry_known", True) or not image.meta.get("geometry_known", True):
            if m.shape == image.shape:
                out.warnings.append(
                    f"{layer.source}: mask or image has no orientation in its header; assumed to share the image grid "
                    f"(same shape {image.shape})"
                )
                out.layers.append(layer.with_mask(image.with_array(m.array, source=m.source, meta=m.meta)))
                continue
            raise GeometryError(
                f"{layer.source}: mask shape {m.shape} differs from image shape {image.shape} and the header has no "
                "usable geometry (sform/qform unset); export the mask with the image's geometry."
            )
        if (
            m.frame_of_reference_uid
            and image.frame_of_reference_uid
            and (m.frame_of_reference_uid != image.frame_of_reference_uid)
        ):
            raise GeometryError(
                f"{layer.source}: mask FrameOfReferenceUID differs from the image's; it was drawn on another scan. "
                "Pass the image it was drawn on."
            )
        exact = place_exactly(m, image)
        if exact is not None:  # a crop of the image grid (Slicer's .seg.nrrd): its voxels are the image's, copied
            placed, box, reindexed = exact
            whole = all(b.stop - b.start == n for b, n in zip(box, image.shape, strict=True))
            what = "the image grid" if whole else "a crop of the image grid"
            turned = " with its axes in another order or direction (re-indexed)" if reindexed else ""
            out.notes.append(
                f"{layer.source}: {layer.role} mask on {what}{turned} (index offset "
                f"{[b.start for b in box]}); placed voxel for voxel, nothing resampled"
            )
            out.layers.append(layer.with_mask(image.with_array(placed, source=m.source, meta=m.meta)))
            continue
        moving = m if m.array.dtype == bool else m.with_array(m.array.astype(np.float32))
        arr = moving.resample_to(image, "linear" if layer.fractional else "nearest").array
        n_before = float(np.count_nonzero(m.array))
        if n_before > 0 and not np.any(arr):
            raise GeometryError(
                f"{layer.source}: the {layer.role} mask lies entirely outside the image after placing it by physical "
                "coordinates; mask and image do not overlap (wrong image, or an LPS/RAS flip in one header)."
            )
        n_out = _voxels_outside(m, image)
        if n_out:
            out.warnings.append(
                f"{layer.source}: {n_out} of the {layer.role} mask's {int(n_before)} voxels "
                f"({100.0 * n_out / n_before:.1f} %, {n_out * m.voxel_volume_ml:.2f} mL) lie outside the image and "
                "are not counted; its volumes are of the part inside the image (Slicer's scalar-volume statistics "
                "count so too)"
            )
        out.resampled = True
        out.warnings.append(
            f"{layer.source}: {layer.role} mask was on another grid (shape {m.shape}, spacing "
            f"{np.round(m.spacing, 4).tolist()} mm) and was resampled onto the image grid by physical coordinates "
            f"({'linear' if layer.fractional else 'nearest neighbour'})"
        )
        out.layers.append(layer.with_mask(image.with_array(arr, source=m.source, meta=m.meta)))
    return out
