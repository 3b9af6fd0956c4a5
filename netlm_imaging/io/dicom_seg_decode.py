"""Decoding a SEG's frames onto the reference grid: binary, fractional and label-map frames placed slice by slice.

Part of the DICOM SEG reader (:mod:`netlm_imaging.io.dicom_seg`). :func:`decode_plain` decodes all
frames of a plain BINARY SEG at once (:mod:`._seg_fast`); :func:`decode_frames` decodes every needed
frame once (:mod:`._seg_frames`) and places it on per-segment arrays of the reference grid where its
:func:`~.dicom_seg_geometry.frame_geometry` puts it (BINARY and label-map pixels OR-ed, FRACTIONAL
stored values max-ed); non-empty frames outside the grid raise DicomError.
:func:`onto_resampled` fills the masks of a resampled reference's original slices onto its other
grid slices, and :func:`mask_order` is the memory order the masks share with the image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import DicomError
from ..volume import Volume, sparse_zeros
from ._dicom_resampled import nearest_original_slices, resampled_note
from ._seg_fast import FrameTable, decode_binary
from .dicom_seg_geometry import GRID_TOLERANCE_VOXELS, SegFrameGeometry, SourceRefCheck, SourceSlices, frame_geometry
from .dicom_seg_header import SegHeader, functional_group

__all__ = ["decode_frames", "decode_plain", "mask_order", "onto_resampled"]


def mask_order(reference: Volume) -> Literal["C", "F"]:
    """Memory order of the reference image, so masks and image are traversed alike (no strided copies)."""
    return "F" if reference.array.flags.f_contiguous and not reference.array.flags.c_contiguous else "C"


def decode_plain(
    hdr: SegHeader, table: FrameTable, reference: Volume, wanted: set[int]
) -> dict[int, np.ndarray] | None:
    """All frames of a plain BINARY SEG at once (:mod:`._seg_fast`); ``None``: use :func:`decode_frames`."""
    ds = hdr.ds
    declared = {s.number for s in hdr.segments}
    if not {int(s) for s in table.segments} <= declared:
        return None  # the general path names the undeclared segment
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    ori = getattr(shared[0], "PlaneOrientationSequence", None) if shared else None
    pix = getattr(shared[0], "PixelMeasuresSequence", None) if shared else None
    iop = getattr(ori[0], "ImageOrientationPatient", None) if ori else None
    spacing = getattr(pix[0], "PixelSpacing", None) if pix else None
    if iop is None or spacing is None or len(iop) != 6 or len(spacing) != 2:
        return None
    return decode_binary(
        ds.PixelData,
        table,
        int(ds.Rows),
        int(ds.Columns),
        reference,
        wanted,
        np.asarray([float(v) for v in iop]),
        (float(spacing[0]), float(spacing[1])),
        GRID_TOLERANCE_VOXELS,
        mask_order(reference),
    )


def decode_frames(hdr: SegHeader, reference: Volume, wanted: set[int], slices: SourceSlices) -> dict[int, np.ndarray]:
    """Decode every needed frame once and place it on per-segment reference arrays."""
    ds, source = hdr.ds, hdr.source
    shape = reference.shape
    fractional = hdr.seg_type == "FRACTIONAL"
    labelmap = hdr.seg_type == "LABELMAP"
    padding = getattr(ds, "PixelPaddingValue", None)
    arrays: dict[int, np.ndarray] = {}
    geom_cache: dict[int, SegFrameGeometry] = {}
    n = len(hdr.frame_segments)
    needed = [labelmap or (s in wanted) for s in hdr.frame_segments]
    if not any(needed):
        return arrays
    for seg_no in hdr.frame_segments:
        if seg_no is not None and seg_no not in {s.number for s in hdr.segments}:
            raise DicomError(
                f"{source}: a frame references segment {seg_no}, which SegmentSequence does not declare; "
                "the SEG is invalid."
            )
    refs = SourceRefCheck(reference)
    from ._seg_frames import iter_frames

    for f, frame in enumerate(iter_frames(ds, source)):
        if f >= n:
            break
        if not needed[f]:
            continue
        g = geom_cache.get(f)
        if g is None:
            g = frame_geometry(ds, f, reference, slices, source, hdr.warnings)
            geom_cache[f] = g
            refs.frame(ds, f, g.k, slices, functional_group(ds, f, "PlanePositionSequence") is not None)
        if labelmap:
            values = np.unique(frame)
            for v in values:
                v = int(v)
                if v == 0 or (padding is not None and v == int(padding) and v not in wanted):
                    continue
                if v not in wanted:
                    if v not in {s.number for s in hdr.segments}:
                        raise DicomError(
                            f"{source}: frame {f + 1} holds label value {v}, which SegmentSequence does not "
                            "declare; the label map SEG is invalid."
                        )
                    continue
                target = arrays.get(v)
                if target is None:
                    target = arrays[v] = sparse_zeros(shape, bool, mask_order(reference))
                _place(target, _to_plane(frame == v, g), g, f, v, source, "or")
            continue
        seg_no = hdr.frame_segments[f]
        assert seg_no is not None
        target = arrays.get(seg_no)
        if target is None:
            target = arrays[seg_no] = sparse_zeros(shape, np.uint16 if fractional else bool, mask_order(reference))
        plane = _to_plane(frame if fractional else frame.astype(bool), g)
        refs.plane(f, seg_no, g, plane, target)
        _place(target, plane.astype(target.dtype, copy=False), g, f, seg_no, source, "max" if fractional else "or")
    hdr.warnings.extend(w for w in refs.warnings() if w not in hdr.warnings)
    return arrays


def _to_plane(frame: np.ndarray, g: SegFrameGeometry) -> np.ndarray:
    """Reorient a stored frame ``[r, c]`` to reference plane axes ``[i, j]``."""
    arr = frame
    if g.flip_r:
        arr = arr[::-1, :]
    if g.flip_c:
        arr = arr[:, ::-1]
    return arr if g.transpose else arr.T


def _place(
    target: np.ndarray, plane: np.ndarray, g: SegFrameGeometry, f: int, seg_no: int | None, source: str, combine: str
) -> None:
    ni, nj, nk = target.shape
    i0, j0 = g.start_ij
    si, sj = plane.shape
    li, lj = max(i0, 0), max(j0, 0)
    hi, hj = min(i0 + si, ni), min(j0 + sj, nj)
    inside_k = 0 <= g.k < nk
    if not inside_k or li >= hi or lj >= hj:
        if np.any(plane):
            raise DicomError(
                f"{source}: frame {f + 1} (segment {seg_no}) lies outside the reference image grid "
                f"(slice {g.k}, in-plane start {g.start_ij}, grid {target.shape}); the SEG was made on another "
                "series or field of view. Pass the image series the SEG references."
            )
        return
    sub = plane[li - i0 : hi - i0, lj - j0 : hj - j0]
    if sub.shape != plane.shape and np.count_nonzero(sub) != np.count_nonzero(plane):
        raise DicomError(
            f"{source}: frame {f + 1} (segment {seg_no}) extends beyond the reference image grid with segmented "
            "pixels outside it; pass the image series the SEG references."
        )
    # Write only the bounding box of the segmented pixels: a k-slice of an [i, j, k] array is strided
    # over the whole array, so touching it all would commit every memory page of every segment.
    rows_any = np.flatnonzero(sub.any(axis=1))
    if rows_any.size == 0:
        return
    cols_any = np.flatnonzero(sub.any(axis=0))
    a0, a1 = int(rows_any[0]), int(rows_any[-1]) + 1
    b0, b1 = int(cols_any[0]), int(cols_any[-1]) + 1
    sub = sub[a0:a1, b0:b1]
    dst = target[li + a0 : li + a1, lj + b0 : lj + b1, g.k]
    if combine == "or":
        np.logical_or(dst, sub, out=dst)
    else:
        np.maximum(dst, sub, out=dst)


def onto_resampled(arrays: dict[int, np.ndarray], reference: Volume, warnings: list[str]) -> dict[int, np.ndarray]:
    """Masks placed on the original slices of a resampled reference, filled onto its other grid slices.

    A series read with a missing slice or non-uniform steps was resampled onto a regular grid;
    the SEG has frames on the original slices only. Each grid slice takes the mask of the
    nearest original slice (:mod:`._dicom_resampled`), so a missing slice is no hole.
    """
    kmap = nearest_original_slices(reference)
    note = None if kmap is None else resampled_note(kmap)
    if kmap is None or note is None or not arrays:
        return arrays
    warnings.append(note)
    return {n: np.asarray(np.take(a, kmap, axis=2), order=mask_order(reference)) for n, a in arrays.items()}
