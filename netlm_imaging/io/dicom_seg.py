"""Read DICOM Segmentation objects (SEG and Label Map SEG) onto a reference grid.

:func:`read_dicom_seg` returns one :class:`~netlm_imaging.segmentation.MaskLayer`
per segment, every mask on the grid of the reference image (same affine and
shape), ready for measuring.

How frames are placed
---------------------
A SEG usually stores only the frames where a segment is present (empty frames
omitted) and may be cropped in-plane. Every stored frame is put back on the
reference grid:

1. **Slice** ``k``: by the frame's physical position (PlanePositionSequence >
   ImagePositionPatient) mapped through :meth:`Volume.lps_to_index`, when it
   lies on a slice within :data:`~.dicom_seg_geometry.GRID_TOLERANCE_VOXELS`; otherwise (position
   missing or between slices) by the frame's source image
   (DerivationImageSequence > SourceImageSequence > ReferencedSOPInstanceUID
   and, for an Enhanced multi-frame image, ReferencedFrameNumber) when it is
   one of the reference's slices (``meta["sop_instance_uids"]`` and
   ``meta["frame_numbers"]``, slice order), with a warning. Position first keeps the per-frame header
   parsing to the minimum on SEGs with thousands of frames.
2. **In-plane offset and axes**: from the same position and the SEG's
   ImageOrientationPatient / PixelSpacing. The SEG's pixel grid must coincide
   with the reference grid (axes along ``+-i``/``+-j`` with the same spacing)
   within :data:`~.dicom_seg_geometry.GRID_TOLERANCE_VOXELS` over the whole frame. Otherwise (a
   half-pixel shift, another pixel spacing, frames between the image slices)
   the masks are built on the SEG's **own grid** (its frames' positions,
   orientation and spacing, same frame of reference) and returned on it, with a
   warning; the caller resamples them by physical position as for label maps
   (:func:`~netlm_imaging.placement.reconcile_layers`). So are frames of a
   coarser slice grid that happen to fall on image slices (a SEG of the 5 mm
   reconstruction read on the 2.5 mm one: SpacingBetweenSlices at least
   :data:`~.dicom_seg_own_grid.COARSER_RATIO` times the image's step, frames on that spacing), whose
   frames are slabs of several image slices. On a gantry-tilted image the
   spacing is across the planes (or the tilted step, whichever fits the frames),
   and the slabs are filled onto the image along the planes' normal
   (:mod:`._seg_slabs`), not by index.
4. Source-image references that contradict the positions are reported by
   :class:`~.dicom_seg_geometry.SourceRefCheck` (the plane positions are believed).
5. Non-empty frames that fall outside the reference grid raise
   :class:`~netlm_imaging.errors.DicomError`.

Slice positions never come from SliceThickness or SpacingBetweenSlices, so a
SEG without SpatialLocationsPreserved (the dcmqi ``liver.dcm``) gives the
volume on the reference's true slice step.

Segment types
-------------
* BINARY: boolean masks.
* FRACTIONAL: float32 fractions ``stored / MaximumFractionalValue`` in [0, 1],
  ``MaskLayer.fractional`` is True. The volume is the **sum of fractions**;
  ``MaskLayer.binary(fractional_threshold)`` gives the thresholded mask.
* LABELMAP (Label Map Segmentation SOP, 1.2.840.10008.5.1.4.1.1.66.7): pixel
  value = segment number; segment 0 / the DCM 125040 "Background" segment and
  PixelPaddingValue are not segments.

Overlapping segments stay separate layers. Segment roles come from
:func:`~netlm_imaging.io.role_precedence.decide_role` (a user mapping is exclusive;
otherwise the SegmentedPropertyType code, then conservative name patterns;
see docs/roles.md).

Decoding does not go through highdicom: pixel frames are decoded once, frame
by frame, by :mod:`netlm_imaging.io._seg_frames` (numpy bit unpacking for
native BINARY, pydicom plugins for JPEG 2000 etc., own decoders for 1-bit RLE
and Deflated Image Frame Compression, which pydicom 3.0.2 and highdicom 0.28.2
refuse), and highdicom's per-frame index (the slow path of highdicom #202)
and its SpatialLocationsPreserved check are not needed.

Modules
-------
This module is the entry (:func:`read_dicom_seg`, and the raw-byte path of a plain BINARY SEG the
folder scan read). The reader's concepts live beside it: the SEG's pydicom header and segments
(:mod:`.dicom_seg_header`), the per-frame geometry and frame-to-slice mapping with its checks
(:mod:`.dicom_seg_geometry`), decoding onto the reference grid (:mod:`.dicom_seg_decode`), the
SEG's own grid for frames off the image grid (:mod:`.dicom_seg_own_grid`) and the mask layers with
their segment metadata (:mod:`.dicom_seg_layers`); the one-pass decoder of plain BINARY SEGs is
:mod:`._seg_fast`, the frame decoders :mod:`._seg_frames`.

References
----------
DICOM PS3.3 A.51 (Segmentation IOD), C.8.20 (Segmentation Image Module),
C.7.6.16 (Multi-frame Functional Groups); PS3.5 8.2.16 (Deflated Image Frame
Compression), annex G (RLE).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GeometryError
from ..segmentation import MaskLayer
from ..volume import Volume
from ._dicom_guard import guard_malformed
from ._seg_fast import decode_binary, read_frame_table
from ._seg_header import PlainSeg
from ._seg_slabs import slabs_along_normal
from .budget import check_voxel_budget
from .dicom_seg_decode import decode_frames, decode_plain, mask_order, onto_resampled
from .dicom_seg_geometry import (
    GRID_TOLERANCE_VOXELS,
    OffGrid,
    SourceSlices,
    check_frame_of_reference,
    grid_finding,
    series_warning,
)
from .dicom_seg_header import check_seg_file, parse_seg_header, read_seg_dataset, segment_list
from .dicom_seg_layers import SegIdentity, mask_layers
from .dicom_seg_own_grid import COARSER_RATIO, SLABS_NOTE, coarser_slices, decode_own_grid, plane_step_mm
from .label_spec import LabelSpec
from .role_decision import RoleDecision
from .role_precedence import assign_roles

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["read_dicom_seg"]


@guard_malformed("DICOM SEG")
def read_dicom_seg(
    path: str | Path,
    reference: Volume,
    spec: LabelSpec,
    *,
    fractional_threshold: float = 0.5,
    max_voxels: int | None = None,
    role_log: list[RoleDecision] | None = None,
    dataset: Dataset | PlainSeg | None = None,
) -> list[MaskLayer]:
    """Read a DICOM SEG (BINARY, FRACTIONAL or Label Map) onto a reference image grid.

    Parameters
    ----------
    path : str or Path
        The SEG file.
    reference : Volume
        The image the masks are returned on (its affine and shape). When its
        ``meta["sop_instance_uids"]`` lists the slice SOP Instance UIDs in
        ``k`` order, frames are matched to slices by their source image UID.
    spec : LabelSpec
        Segment name -> role mapping (see :func:`~netlm_imaging.io.role_precedence.role_for_segment`).
    fractional_threshold : float, optional
        Threshold in (0, 1] recorded for FRACTIONAL segments: their thresholded
        mask is ``MaskLayer.binary(fractional_threshold)``, the volume the sum
        of fractions.
    max_voxels : int, optional
        Voxel budget for the declared frame stack and the reference grid.
    role_log : list of RoleDecision, optional
        Collects the role decision of every segment (see
        :func:`~netlm_imaging.io.role_precedence.assign_roles`); without it this file
        alone must give a liver or a lesion.
    dataset : pydicom.Dataset or PlainSeg, optional
        The file's header as the folder scan parsed it (``DicomFileInfo.dataset``), so it is
        not parsed twice; None reads the file. A :class:`~netlm_imaging.io._seg_header.PlainSeg`
        (a plain BINARY SEG read from its raw bytes) is decoded without pydicom; whatever it
        cannot place goes to the pydicom reader.

    Returns
    -------
    list of MaskLayer
        One per segment, in SegmentNumber order, except segments mapped to
        ``ignore``. ``mask.meta`` holds ``sop_instance_uid``,
        ``series_instance_uid`` (of the SEG), ``segment_number``,
        ``segment_label``, ``segment_code``, ``segmentation_type``,
        ``referenced_series_instance_uid``, ``n_frames`` and ``warnings``.

    Raises
    ------
    DicomError
        Unreadable or truncated file, not a SEG, frame of reference mismatch,
        frames outside the reference grid.
    GeometryError
        SEG frames on another pixel grid (orientation/spacing) or between slices.
    LabelError
        No segment is a liver or a lesion (without ``role_log``), or a ``--labels`` name matches no segment.
    UnsupportedError
        Pixel encodings no installed decoder handles.
    ResourceLimitError
        Declared sizes above ``max_voxels``.

    Examples
    --------
    >>> from netlm_imaging.io.label_spec import parse_label_spec
    >>> layers = read_dicom_seg("seg.dcm", ct, parse_label_spec(None))  # doctest: +SKIP
    >>> [(layer.role, int(layer.mask.array.sum())) for layer in layers]  # doctest: +SKIP
    [('liver', 107098)]
    """
    path = Path(path)
    source = str(path)
    if not 0.0 < float(fractional_threshold) <= 1.0:
        raise ValueError(f"fractional_threshold must be in (0, 1], got {fractional_threshold}")
    check_voxel_budget(reference.shape, max_voxels, f"{source} (reference grid)")
    if isinstance(dataset, PlainSeg):  # the folder scan read it from its raw bytes: no pydicom parse
        check_seg_file(path)
        plain_layers = _read_plain(dataset, reference, spec, fractional_threshold, max_voxels, role_log)
        if plain_layers is not None:
            return plain_layers
        dataset = None  # something the one-pass reader does not place: pydicom and the general reader
    ds = read_seg_dataset(path, dataset)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if "Rows" in ds and "Columns" in ds:
        check_voxel_budget((int(ds.Columns), int(ds.Rows), n_frames), max_voxels, source)
    table = read_frame_table(ds, path)  # plain BINARY SEGs: per-frame facts without a pydicom parse per frame
    hdr = parse_seg_header(ds, source, None if table is None else [int(s) for s in table.segments])
    check_frame_of_reference(str(getattr(ds, "FrameOfReferenceUID", "") or ""), reference, source)
    roles = assign_roles(hdr.segments, spec, source, noun="segments", log=role_log)
    wanted = {num for num, role in roles.items() if role != "ignore"}
    ref_series = ""
    rss = getattr(ds, "ReferencedSeriesSequence", None)
    if rss:
        ref_series = str(getattr(rss[0], "SeriesInstanceUID", "") or "")
    hdr.warnings.extend(series_warning(ref_series, reference))
    slices = SourceSlices(reference)
    grid = reference
    written: set[int] | None = None  # segments known to hold pixels (the one-pass decoder's arrays)
    coarser = coarser_slices(ds, reference, None if table is None else table.positions)
    try:
        if coarser is not None:  # frames on every n-th image slice, each a slab of n slices
            raise OffGrid(source, coarser)
        arrays = decode_plain(hdr, table, reference, wanted) if table is not None else None
        if arrays is not None:
            written = set(arrays)
        else:
            arrays = decode_frames(hdr, reference, wanted, slices)
    except GeometryError as exc:  # frames off the image grid: build the SEG's own grid, resampled later
        grid, arrays = decode_own_grid(hdr, reference, wanted, grid_finding(exc))
        if coarser is not None and reference.sheared:  # tilted slabs: along the normal, not by index (_seg_slabs)
            on_reference = slabs_along_normal(grid, arrays, reference, mask_order(reference))
            if on_reference is not None:
                note = SLABS_NOTE.format(why=coarser, shape=grid.shape)
                hdr.warnings[-1:] = (
                    [note] if hdr.warnings[-1].startswith("the SEG is not on") else [hdr.warnings[-1], note]
                )
                grid, arrays = reference, on_reference
    if grid is reference:
        arrays = onto_resampled(arrays, reference, hdr.warnings)
    frac_type = str(getattr(ds, "SegmentationFractionalType", "") or "")
    if hdr.seg_type == "FRACTIONAL" and frac_type.upper() == "PROBABILITY":
        hdr.warnings.append("FRACTIONAL type PROBABILITY: the sum of fractions is an expected volume, not occupancy")
    ident = SegIdentity(
        sop_instance_uid=str(getattr(ds, "SOPInstanceUID", "")),
        series_instance_uid=str(getattr(ds, "SeriesInstanceUID", "")),
        sop_class_uid=str(ds.SOPClassUID),
        seg_type=hdr.seg_type,
        referenced_series=ref_series,
        n_frames=n_frames,
        max_fractional=float(getattr(ds, "MaximumFractionalValue", 255) or 255),
        fractional_type=frac_type,
    )
    return mask_layers(
        ident, hdr.segments, roles, wanted, arrays, grid, reference, hdr.warnings, fractional_threshold, source, written
    )


def _read_plain(
    plain: PlainSeg,
    reference: Volume,
    spec: LabelSpec,
    fractional_threshold: float,
    max_voxels: int | None,
    role_log: list[RoleDecision] | None,
) -> list[MaskLayer] | None:
    """The layers of a plain BINARY SEG read by the folder scan (:mod:`._seg_header`); ``None``: general path.

    Same layers, warnings and role decisions as the pydicom path gives the same
    file (tests/test_perf_paths.py); the role decisions reach ``role_log`` only
    when this path answers.
    """
    source = str(plain.path)
    rows, cols = plain.us(0x00280010) or 0, plain.us(0x00280011) or 0
    n_frames = len(plain.table.segments)
    check_voxel_budget((cols, rows, n_frames), max_voxels, source)
    segments = segment_list(plain.segments, source)
    if not {int(s) for s in plain.table.segments} <= {s.number for s in segments}:
        return None  # the general path names the undeclared segment
    check_frame_of_reference(plain.uid(0x00200052), reference, source)
    log: list[RoleDecision] | None = [] if role_log is not None else None
    roles = assign_roles(segments, spec, source, noun="segments", log=log)
    wanted = {num for num, role in roles.items() if role != "ignore"}
    try:
        pixel_data = plain.pixel_bytes()
    except OSError:  # the file changed since the scan: pydicom reads it again and says what is wrong
        return None
    if plane_step_mm(plain.table.positions, reference) > COARSER_RATIO * reference.slice_separation_mm:
        return None  # perhaps slabs of a coarser grid: the general path reads SpacingBetweenSlices
    arrays = decode_binary(
        pixel_data,
        plain.table,
        rows,
        cols,
        reference,
        wanted,
        np.asarray(plain.orientation, dtype=float),
        plain.pixel_spacing,
        GRID_TOLERANCE_VOXELS,
        mask_order(reference),
    )
    if arrays is None:
        return None
    if role_log is not None and log is not None:
        role_log.extend(log)
    ident = SegIdentity(
        sop_instance_uid=plain.uid(0x00080018),
        series_instance_uid=plain.uid(0x0020000E),
        sop_class_uid=plain.uid(0x00080016),
        seg_type="BINARY",
        referenced_series=plain.first_referenced_series,
        n_frames=n_frames,
    )
    warnings = series_warning(plain.first_referenced_series, reference)
    arrays = onto_resampled(arrays, reference, warnings)
    return mask_layers(
        ident,
        segments,
        roles,
        wanted,
        arrays,
        reference,
        reference,
        warnings,
        fractional_threshold,
        source,
        set(arrays),
    )
