"""A SEG off the image grid: its masks on its own grid (frame positions, orientation, spacing), for resampling.

Part of the DICOM SEG reader (:mod:`netlm_imaging.io.dicom_seg`). When the frames do not lie on the
image grid (a half-pixel shift, another pixel spacing, frames between the slices) but share its
frame of reference, :func:`decode_own_grid` builds the masks on the SEG's own grid, which the caller
resamples by physical position (:func:`~netlm_imaging.placement.reconcile_layers`).
:func:`coarser_slices` tells a SEG whose frames are slabs of a coarser slice grid (a declared
SpacingBetweenSlices at least :data:`COARSER_RATIO` times the image's step, frames on that spacing):
they fall on image slices but must not be placed there. On a gantry-tilted image the spacing is
across the planes or along the tilted step (:func:`_across_planes`), and the slabs are filled along
the normal (:mod:`._seg_slabs`, with the warning :data:`SLABS_NOTE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import GeometryError
from ..volume import Volume
from .dicom_seg_header import SegHeader, functional_group, plane_of

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["COARSER_RATIO", "SLABS_NOTE", "coarser_slices", "decode_own_grid", "plane_step_mm"]


#: A SEG whose declared slice spacing is at least this many times the image's is on a coarser grid.
COARSER_RATIO = 1.5


#: The warning of a coarser SEG's frames filled onto a tilted image as slabs along the normal.
SLABS_NOTE = (
    "the SEG is not on the image grid ({why}); its frames are slabs of a coarser slice grid (shape {shape}) and "
    "each image voxel took the frame whose slab along the slice normal holds it, at its projection (gantry tilt: "
    "not by index)"
)


def plane_step_mm(positions: np.ndarray, reference: Volume) -> float:
    """Smallest distance between the distinct frame planes along the image's normal (inf for one plane)."""
    normal = reference.slice_normal
    d = np.sort(np.asarray(positions, dtype=np.float64) @ normal)  # (np.unique would import numpy.ma)
    gaps = np.diff(d)
    gaps = gaps[gaps > 1e-3]  # frames of several segments share a plane
    return float(gaps.min()) if gaps.size else float("inf")


def coarser_slices(ds: Dataset, reference: Volume, positions: np.ndarray | None) -> str | None:
    """Why the SEG's frames are slabs of a coarser slice grid than the image's, or None.

    A SEG made on a thick reconstruction (5 mm) and read on a thin one of the same acquisition
    (2.5 mm, same frame of reference) has frames that fall exactly on every second image slice:
    placed there, the slices between stay empty (half the volume, every lesion cut in slices).
    When the SEG declares a SpacingBetweenSlices (as highdicom and dcmqi write it) at least
    :data:`COARSER_RATIO` times the image's step, and its frame planes lie on that spacing, the
    masks are built on the SEG's own grid and resampled onto the image by position.
    """
    pm = functional_group(ds, 0, "PixelMeasuresSequence")
    try:
        declared = abs(float(getattr(pm, "SpacingBetweenSlices", 0) or 0)) if pm is not None else 0.0
    except (TypeError, ValueError):
        return None
    step = reference.slice_separation_mm  # the distance between the image's planes (a tilt's step is longer)
    if not declared > COARSER_RATIO * step:
        return None
    if positions is None:
        ipps = [plane_of(ds, f)[0] for f in range(int(getattr(ds, "NumberOfFrames", 1) or 1))]
        if any(p is None for p in ipps):
            return None
        positions = np.asarray([[float(x) for x in p] for p in ipps], dtype=np.float64)
    d = np.unique(np.round(np.asarray(positions, dtype=np.float64) @ reference.slice_normal, 3))
    if _across_planes(declared, d, reference) is None:
        return None  # the declared spacing does not fit the frame positions: believe the positions
    return f"its slices are {declared:g} mm apart (SpacingBetweenSlices), the image's {step:g} mm"


def _across_planes(declared: float, d: np.ndarray, reference: Volume) -> float | None:
    """The SEG's declared slice spacing as a distance between its planes, if it fits them (``d``: along the normal).

    Exporters give a tilted reconstruction's spacing across its planes or along its tilted step (the table
    increment, ``1 / cos(tilt)`` times longer); the image's tilt tells which fits the frames. None: neither.
    """
    cos_tilt = reference.slice_separation_mm / float(reference.spacing[reference.slice_axis])
    for spacing in (declared, declared * cos_tilt) if reference.sheared else (declared,):
        n = (d - d[0]) / spacing
        if float(np.max(np.abs(n - np.round(n)), initial=0.0)) <= 0.1:
            return spacing
    return None


def _own_grid_error(source: str, why: str, problem: str) -> GeometryError:
    """The error of a SEG off the image grid that cannot be built on a grid of its own either: one line.

    ``why`` is the grid error's finding (:func:`~.dicom_seg_geometry.grid_finding`); the file is named once and
    the advice once, at the end.
    """
    return GeometryError(
        f"{source}: {why}, and {problem}, so it cannot be resampled by position; resample the "
        "segmentation onto the image (e.g. with dcmqi/Slicer) or pass the image series the SEG was made on."
    )


def decode_own_grid(
    hdr: SegHeader, reference: Volume, wanted: set[int], why: str
) -> tuple[Volume, dict[int, np.ndarray]]:
    """Masks on the SEG's own grid (its frames' positions, orientation and spacing), for resampling onto the image.

    Used when the frames do not lie on the image grid (half-pixel shift, other pixel
    spacing, other slice positions) but share its frame of reference: the caller
    resamples by physical position as for label maps (``placement.reconcile_layers``).

    Raises
    ------
    GeometryError
        When the frames have no common orientation / spacing or do not stack on one grid.
    """
    ds, source = hdr.ds, hdr.source
    rows, cols = int(ds.Rows), int(ds.Columns)
    n = len(hdr.frame_segments)
    ipps, iop_ref, spacing_ref = [], None, None
    for f in range(n):
        ipp, iop, spc = plane_of(ds, f)
        if ipp is None or iop is None or spc is None:
            raise _own_grid_error(source, why, f"frame {f + 1} has no position/orientation to place it by")
        iop_a = np.asarray([float(x) for x in iop])
        spc_a = np.asarray([float(x) for x in spc])
        if iop_ref is None:
            iop_ref, spacing_ref = iop_a, spc_a
        elif np.max(np.abs(iop_a - iop_ref)) > 1e-4 or np.max(np.abs(spc_a - spacing_ref)) > 1e-4:
            raise _own_grid_error(source, why, "its frames differ in orientation or pixel spacing")
        ipps.append([float(x) for x in ipp])
    assert iop_ref is not None
    assert spacing_ref is not None
    row_dir, col_dir = iop_ref[:3], iop_ref[3:6]
    normal = np.cross(row_dir, col_dir)
    pts = np.asarray(ipps, dtype=np.float64)
    d = pts @ normal
    in_plane = pts - np.outer(d, normal)
    drift = np.zeros(3)  # in-plane move of the frame origins per mm along the normal (a gantry tilt)
    if float(np.max(np.abs(in_plane - in_plane[0]))) > 1e-2:
        rel = d - d[0]
        if float(rel @ rel) > 0:
            drift = ((in_plane - in_plane[0]).T @ rel) / float(rel @ rel)
        if float(np.max(np.abs(in_plane - in_plane[0] - np.outer(rel, drift)))) > 1e-2:
            raise _own_grid_error(source, why, "its frames do not share one in-plane origin")
    order = np.sort(d)
    planes = np.split(order, np.flatnonzero(np.diff(order) > 1e-3) + 1)  # frames of one plane (several segments)
    uniq = np.array([float(p.mean()) for p in planes])
    pm = functional_group(ds, 0, "PixelMeasuresSequence")
    between = float(getattr(pm, "SpacingBetweenSlices", 0) or 0) if pm is not None else 0.0
    if between > 0 and reference.sheared:  # across the planes or along the tilted step: whichever fits
        between = _across_planes(between, uniq, reference) or between
    if between <= 0:
        between = float(np.min(np.diff(uniq))) if uniq.size > 1 else reference.slice_separation_mm
    ks = (d - uniq[0]) / between
    if float(np.max(np.abs(ks - np.round(ks)))) > 0.1:
        raise _own_grid_error(source, why, "its frame positions are not on regular slices")
    k_of = np.round(ks).astype(int)
    nk = int(k_of.max()) + 1
    affine = np.eye(4)
    affine[:3, 0] = row_dir * float(spacing_ref[1])
    affine[:3, 1] = col_dir * float(spacing_ref[0])
    affine[:3, 2] = (normal + drift) * between
    affine[:3, 3] = in_plane[0] + (uniq[0] - d[0]) * drift + uniq[0] * normal
    grid = Volume(np.zeros((cols, rows, nk), dtype=bool), affine, reference.frame_of_reference_uid, source=source)
    labelmap = hdr.seg_type == "LABELMAP"
    fractional = hdr.seg_type == "FRACTIONAL"
    arrays: dict[int, np.ndarray] = {}
    from ._seg_frames import iter_frames

    for f, frame in enumerate(iter_frames(ds, source)):
        if f >= n:
            break
        k = int(k_of[f])
        if labelmap:
            for v in np.unique(frame):
                v = int(v)
                if v in wanted:
                    arrays.setdefault(v, np.zeros(grid.shape, dtype=bool))[:, :, k] |= (frame == v).T
            continue
        seg_no = hdr.frame_segments[f]
        if seg_no not in wanted:
            continue
        target = arrays.setdefault(seg_no, np.zeros(grid.shape, dtype=np.uint16 if fractional else bool))
        if fractional:
            np.maximum(target[:, :, k], frame.T.astype(np.uint16), out=target[:, :, k])
        else:
            target[:, :, k] |= frame.T.astype(bool)
    hdr.warnings.append(
        f"the SEG is not on the image grid ({why}); its masks were built on its own grid "
        f"(shape {grid.shape}, spacing {np.round(grid.spacing, 4).tolist()} mm) in the image's frame of reference "
        "and resampled onto the image by physical position"
    )
    return grid, arrays
