"""Read DICOM Segmentation objects (SEG and Label Map SEG) onto a reference grid.

Why one module (~1140 lines): SEG decoding (binary, fractional, label map) onto a reference
grid shares the frame-to-slice mapping and its checks; the fast path lives in _seg_fast.py.

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
   lies on a slice within :data:`GRID_TOLERANCE_VOXELS`; otherwise (position
   missing or between slices) by the frame's source image
   (DerivationImageSequence > SourceImageSequence > ReferencedSOPInstanceUID
   and, for an Enhanced multi-frame image, ReferencedFrameNumber) when it is
   one of the reference's slices (``meta["sop_instance_uids"]`` and
   ``meta["frame_numbers"]``, slice order), with a warning. Position first keeps the per-frame header
   parsing to the minimum on SEGs with thousands of frames.
2. **In-plane offset and axes**: from the same position and the SEG's
   ImageOrientationPatient / PixelSpacing. The SEG's pixel grid must coincide
   with the reference grid (axes along ``+-i``/``+-j`` with the same spacing)
   within :data:`GRID_TOLERANCE_VOXELS` over the whole frame. Otherwise (a
   half-pixel shift, another pixel spacing, frames between the image slices)
   the masks are built on the SEG's **own grid** (its frames' positions,
   orientation and spacing, same frame of reference) and returned on it, with a
   warning; the caller resamples them by physical position as for label maps
   (:func:`~netlm_imaging.placement.reconcile_layers`). So are frames of a
   coarser slice grid that happen to fall on image slices (a SEG of the 5 mm
   reconstruction read on the 2.5 mm one: SpacingBetweenSlices at least
   :data:`_COARSER_RATIO` times the image's step, frames on that spacing), whose
   frames are slabs of several image slices. On a gantry-tilted image the
   spacing is across the planes (or the tilted step, whichever fits the frames),
   and the slabs are filled onto the image along the planes' normal
   (:mod:`._seg_slabs`), not by index.
4. Source-image references that contradict the positions are reported by
   ``_RefCheck`` (the plane positions are believed).
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

References
----------
DICOM PS3.3 A.51 (Segmentation IOD), C.8.20 (Segmentation Image Module),
C.7.6.16 (Multi-frame Functional Groups); PS3.5 8.2.16 (Deflated Image Frame
Compression), annex G (RLE).
"""

from __future__ import annotations

import logging
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import DicomError, GeometryError, ResourceLimitError
from ..segmentation import MaskLayer
from ..volume import Volume, sparse_zeros
from ._dicom_files import without_preamble
from ._dicom_guard import guard_malformed
from ._dicom_header import with_transfer_syntax
from ._dicom_resampled import grid_slice_of_original, nearest_original_slices, resampled_note
from ._inflate import dcmread as bounded_dcmread
from ._seg_fast import FrameTable, decode_binary, read_frame_table
from ._seg_header import PlainSeg
from ._seg_slabs import slabs_along_normal
from .budget import check_voxel_budget
from .label_spec import LabelSpec
from .role_decision import RoleDecision
from .role_precedence import assign_roles

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "GRID_TOLERANCE_VOXELS",
    "LABEL_MAP_SEG_SOP_CLASS",
    "SEG_SOP_CLASS",
    "SegmentInfo",
    "read_dicom_seg",
    "read_seg_segments",
]

logger = logging.getLogger(__name__)

#: Segmentation Storage SOP class.
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage SOP class.
LABEL_MAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
#: A SEG frame must sit on the reference grid within this many voxels (position and drift across the frame).
GRID_TOLERANCE_VOXELS = 0.2
_BACKGROUND_CODE = ("DCM", "125040")


@dataclass(frozen=True)
class SegmentInfo:
    """One entry of a SEG's SegmentSequence.

    Parameters
    ----------
    number : int
        SegmentNumber.
    label : str
        SegmentLabel.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue) of SegmentedPropertyTypeCodeSequence.
    meaning : str
        CodeMeaning of that code (for messages).
    unnamed : bool
        No SegmentLabel in the file (``label`` is then ``Segment N``, not a name to judge).
    """

    number: int
    label: str
    code: tuple[str, str] | None
    meaning: str = ""
    #: the SEG gave no SegmentLabel: ``label`` is ``Segment N``, made up here for messages
    unnamed: bool = False

    def describe(self) -> str:
        """``2 'ORANGE' (SCT 51114001 Artery)`` for messages."""
        code = f" ({self.code[0]} {self.code[1]} {self.meaning})".rstrip() if self.code else ""
        return f"{self.number} {self.label!r}{code}"


@dataclass
class _FrameGeometry:
    k: int
    start_ij: tuple[int, int]
    # Frame (r, c) -> plane (i, j): transpose when columns run along j, flips per axis.
    transpose: bool
    flip_r: bool
    flip_c: bool
    size_ij: tuple[int, int]


@dataclass
class _SegHeader:
    ds: Dataset
    source: str
    seg_type: str
    segments: list[SegmentInfo]
    frame_segments: list[int | None]
    warnings: list[str] = field(default_factory=list)


def _read_dataset(path: Path, scanned: Dataset | None = None) -> Dataset:
    source = str(path)
    _check_file(path)
    if scanned is not None:  # parsed moments ago by study discovery (DicomFileInfo.dataset)
        return _check_sop(scanned, source)
    try:
        ds = with_transfer_syntax(bounded_dcmread(str(path), force=without_preamble(path)))  # old exports
    except ResourceLimitError:  # a deflate bomb or an oversized header: say so
        raise
    except Exception as exc:  # InvalidDicomError, EOFError, struct.error, ... on broken files
        raise DicomError(
            f"{source}: not a readable DICOM file ({type(exc).__name__}: {exc}); export it again."
        ) from exc
    return _check_sop(ds, source)


def _check_sop(ds: Dataset, source: str) -> Dataset:
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop not in (SEG_SOP_CLASS, LABEL_MAP_SEG_SOP_CLASS):
        raise DicomError(
            f"{source}: SOPClassUID {sop or '(missing)'} is not a DICOM Segmentation "
            f"({SEG_SOP_CLASS} or {LABEL_MAP_SEG_SOP_CLASS}); pass a SEG file or an RTSTRUCT/label map to --seg."
        )
    return ds


def _code_of(item: Dataset) -> tuple[tuple[str, str] | None, str]:
    seq = getattr(item, "SegmentedPropertyTypeCodeSequence", None)
    if not seq:
        return None, ""
    c = seq[0]
    return (str(getattr(c, "CodingSchemeDesignator", "")), str(getattr(c, "CodeValue", ""))), str(
        getattr(c, "CodeMeaning", "")
    )


def read_seg_segments(path: str | Path) -> list[SegmentInfo]:
    """List the segments a SEG declares (number, label, property type code).

    Parameters
    ----------
    path : str or Path
        DICOM SEG file.

    Returns
    -------
    list of SegmentInfo
        Background segments of label-map SEGs are left out.

    Raises
    ------
    DicomError
        If the file is not a readable SEG.
    """
    return _segments(_read_dataset(Path(path)), str(path))


def _segments(ds: Dataset, source: str) -> list[SegmentInfo]:
    seq = getattr(ds, "SegmentSequence", None)
    if not seq:
        raise DicomError(f"{source}: the SEG has no SegmentSequence; the file is incomplete. Export it again.")
    items: list[tuple[int, Any, tuple[str, str] | None, str]] = []
    for item in seq:
        if "SegmentNumber" not in item:
            raise DicomError(f"{source}: a SegmentSequence item has no SegmentNumber; the SEG is invalid.")
        code, meaning = _code_of(item)
        items.append((int(item.SegmentNumber), getattr(item, "SegmentLabel", None), code, meaning))
    return _segment_list(items, source)


def _segment_list(items: Sequence[tuple[int, Any, tuple[str, str] | None, str]], source: str) -> list[SegmentInfo]:
    """SegmentInfo of each (number, label, property code, meaning) item; background segments left out."""
    out: list[SegmentInfo] = []
    for num, label, code, meaning in items:
        if num == 0 or code == _BACKGROUND_CODE:
            continue
        text = str(label or "").strip()
        out.append(SegmentInfo(num, text or f"Segment {num}", code, meaning, unnamed=not text))
    return out


def _fg(ds: Dataset, f: int, seq_name: str) -> Dataset | None:
    """Functional group macro ``seq_name`` of frame ``f`` (per-frame first, then shared)."""
    pf = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if pf is not None and f < len(pf):
        s = getattr(pf[f], seq_name, None)
        if s:
            return s[0]
    sh = getattr(ds, "SharedFunctionalGroupsSequence", None)
    if sh:
        s = getattr(sh[0], seq_name, None)
        if s:
            return s[0]
    return None


def _plane_of(ds: Dataset, f: int) -> tuple[Any, Any, Any]:
    """ImagePositionPatient, ImageOrientationPatient and PixelSpacing of frame ``f`` (``None`` where absent)."""
    pos = _fg(ds, f, "PlanePositionSequence")
    ori = _fg(ds, f, "PlaneOrientationSequence")
    pix = _fg(ds, f, "PixelMeasuresSequence")
    return (
        getattr(pos, "ImagePositionPatient", None) if pos is not None else None,
        getattr(ori, "ImageOrientationPatient", None) if ori is not None else None,
        getattr(pix, "PixelSpacing", None) if pix is not None else None,
    )


def _source_ref(ds: Dataset, f: int) -> tuple[str | None, int | None]:
    """(ReferencedSOPInstanceUID, ReferencedFrameNumber) of frame ``f``'s first source image, if given."""
    pf = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if pf is None or f >= len(pf):
        return None, None
    for der in getattr(pf[f], "DerivationImageSequence", None) or []:
        for src in getattr(der, "SourceImageSequence", None) or []:
            uid = getattr(src, "ReferencedSOPInstanceUID", None)
            if not uid:
                continue
            number = getattr(src, "ReferencedFrameNumber", None)
            first = number[0] if isinstance(number, (list, tuple, MutableSequence)) else number  # VM 1-n (MultiValue)
            try:
                return str(uid), int(first) if first not in (None, "") else None
            except (TypeError, ValueError):
                return str(uid), None
    return None, None


class _SourceSlices:
    """Reference slice of each source image frame: (SOPInstanceUID, frame number) -> ``k``.

    Frames of one Enhanced (multi-frame) image share its UID and differ by frame number, so the
    UID alone does not name a slice. On a resampled reference, original slice ``s`` lies on grid
    slice ``g[s]`` (:func:`~._dicom_resampled.grid_slice_of_original`).
    """

    def __init__(self, reference: Volume) -> None:
        uids = [str(u) for u in reference.meta.get("sop_instance_uids") or []]
        numbers = reference.meta.get("frame_numbers") or [1] * len(uids)
        g = grid_slice_of_original(reference)
        self.k: dict[tuple[str, int], int] = {}
        self.frames: dict[str, int] = {}
        for s, (uid, number) in enumerate(zip(uids, numbers)):
            self.k[(uid, int(number))] = s if g is None or s >= g.size else int(g[s])
            self.frames[uid] = self.frames.get(uid, 0) + 1

    def known(self, uid: str) -> bool:
        """Whether the reference holds the image ``uid``."""
        return uid in self.frames

    def k_of(self, uid: str | None, number: int | None) -> int | None:
        """The slice of frame ``number`` of ``uid`` (the image itself when it has one frame); None if unknown."""
        if uid is None:
            return None
        if number is None:
            return self.k.get((uid, 1)) if self.frames.get(uid) == 1 else None
        return self.k.get((uid, number))


class _RefCheck:
    """Frames whose references contradict their position; one warning per kind, saying what was believed."""

    def __init__(self, reference: Volume) -> None:
        self.frames_per_sop: dict[str, int] = {}
        uids = reference.meta.get("sop_instance_uids") or []
        for u, n in zip(uids, reference.meta.get("frame_numbers") or [1] * len(uids)):
            self.frames_per_sop[str(u)] = max(self.frames_per_sop.get(str(u), 0), int(n))
        self.unknown: list[int] = []
        self.shuffled: list[tuple[int, int, int]] = []
        self.bad_frame: list[tuple[int, int]] = []
        self.planes: dict[tuple[int, int], int] = {}
        self.conflicts: list[tuple[int, int, int, int]] = []

    def frame(self, ds: Dataset, f: int, k: int, slices: _SourceSlices, by_position: bool) -> None:
        uid, number = _source_ref(ds, f)
        if uid is None or not slices.frames:  # a NIfTI / NRRD image names no source images to check against
            return
        k_src = slices.k_of(uid, number)
        if not slices.known(uid):
            self.unknown.append(f)
        elif by_position and k_src is not None and k_src != k:
            self.shuffled.append((f, k_src, k))
        if number is not None and uid in self.frames_per_sop and not 1 <= number <= self.frames_per_sop[uid]:
            self.bad_frame.append((f, number))

    def plane(self, f: int, seg_no: int, g: _FrameGeometry, plane: np.ndarray, target: np.ndarray) -> None:
        """Before placing: a second frame of one segment on one slice must repeat what the first placed."""
        first = self.planes.setdefault((seg_no, g.k), f)
        if first == f or not 0 <= g.k < target.shape[2]:
            return
        i0, j0 = g.start_ij
        li, lj = max(i0, 0), max(j0, 0)
        hi, hj = min(i0 + plane.shape[0], target.shape[0]), min(j0 + plane.shape[1], target.shape[1])
        if li >= hi or lj >= hj:
            return
        before = target[li:hi, lj:hj, g.k]
        if not np.array_equal(before.astype(bool), plane[li - i0 : hi - i0, lj - j0 : hj - j0].astype(bool)):
            self.conflicts.append((first, f, seg_no, g.k))

    def warnings(self) -> list[str]:
        out = []
        if self.unknown:
            out.append(
                f"{len(self.unknown)} frame(s) (first: frame {self.unknown[0] + 1}) reference source images that "
                "are not in the image series; their plane positions were believed"
            )
        if self.shuffled:
            f, k_uid, k = self.shuffled[0]
            out.append(
                f"{len(self.shuffled)} frame(s) reference a source image on another slice than their position "
                f"(first: frame {f + 1}, source image on slice {k_uid}, position on slice {k}); the plane "
                "positions were believed"
            )
        if self.bad_frame:
            f, number = self.bad_frame[0]
            out.append(
                f"{len(self.bad_frame)} frame(s) give a ReferencedFrameNumber the source image does not have "
                f"(first: frame {f + 1} references frame {number}); ignored, the plane positions were believed"
            )
        if self.conflicts:
            a, b, seg_no, k = self.conflicts[0]
            out.append(
                f"{len(self.conflicts)} pair(s) of frames give different masks for one segment on one slice "
                f"(first: frames {a + 1} and {b + 1}, segment {seg_no}, slice {k}); their union was used"
            )
        return out


def _axis_map(step: np.ndarray, n: int, what: str, f: int, source: str) -> tuple[int, int]:
    """(axis 0/1, sign) of an in-plane SEG pixel step expressed in reference index units."""
    target = np.round(step)
    ok = (
        abs(target[2]) == 0
        and np.count_nonzero(target) == 1
        and np.max(np.abs(target)) == 1
        and float(np.linalg.norm(step - target)) * max(n - 1, 1) <= GRID_TOLERANCE_VOXELS
    )
    if not ok:
        raise _OffGrid(
            source,
            f"frame {f + 1}: the SEG pixel grid ({what} step = {np.round(step, 4).tolist()} reference voxels) is "
            "not the reference image grid (different orientation or pixel spacing)",
        )
    axis = int(np.flatnonzero(target)[0])
    return axis, int(target[axis])


def _frame_geometry(
    ds: Dataset, f: int, reference: Volume, slices: _SourceSlices, source: str, warnings: list[str]
) -> _FrameGeometry:
    rows, cols = int(ds.Rows), int(ds.Columns)
    ipp, iop, spacing = _plane_of(ds, f)
    k_uid: int | None = None
    if ipp is None or iop is None or spacing is None:
        k_uid = slices.k_of(*_source_ref(ds, f))
        if k_uid is None:
            raise DicomError(
                f"{source}: frame {f + 1} has no plane position/orientation/spacing and its source image "
                "is not in the reference series; it cannot be placed. Pass the image series the SEG was made on."
            )
        ni, nj = reference.shape[0], reference.shape[1]
        if (cols, rows) != (ni, nj):
            raise DicomError(
                f"{source}: frame {f + 1} has no plane position and its size {rows}x{cols} differs from the "
                f"reference slice {nj}x{ni}; it cannot be placed."
            )
        return _FrameGeometry(k_uid, (0, 0), False, False, False, (ni, nj))
    ipp_a = np.asarray([float(x) for x in ipp], dtype=np.float64)
    iop_a = np.asarray([float(x) for x in iop], dtype=np.float64)
    dr, dc = float(spacing[0]), float(spacing[1])
    inv = np.linalg.inv(reference.affine[:3, :3])
    step_c = inv @ (iop_a[:3] * dc)  # moving one column (c + 1)
    step_r = inv @ (iop_a[3:6] * dr)  # moving one row (r + 1)
    ax_c, sg_c = _axis_map(step_c, cols, "column", f, source)
    ax_r, sg_r = _axis_map(step_r, rows, "row", f, source)
    if ax_c == ax_r:
        raise GeometryError(f"{source}: frame {f + 1}: SEG row and column directions are parallel; invalid header.")
    p0 = reference.lps_to_index(ipp_a)[0]
    r0 = np.round(p0)
    if float(np.max(np.abs(p0[:2] - r0[:2]))) > GRID_TOLERANCE_VOXELS:
        raise _OffGrid(
            source,
            f"frame {f + 1} starts at reference index {np.round(p0, 3).tolist()}, off the voxel grid by more than "
            f"{GRID_TOLERANCE_VOXELS} voxel; the SEG is on another grid",
        )
    k = int(r0[2])
    on_slice = abs(float(p0[2] - r0[2])) <= GRID_TOLERANCE_VOXELS
    if not on_slice:
        k_uid = slices.k_of(*_source_ref(ds, f))
        if k_uid is None:
            raise _OffGrid(
                source,
                f"frame {f + 1} lies between reference slices (index {p0[2]:.3f}); the SEG was made on another series",
            )
        if abs(k_uid - float(p0[2])) > 1.0:  # not a rounded position: the reference contradicts the position
            raise _OffGrid(
                source,
                f"frame {f + 1} lies between reference slices (index {p0[2]:.2f}) while its source image is slice "
                f"{k_uid}, more than a slice away: its position and its source image disagree, the positions "
                "were believed",
            )
        k = k_uid
        msg = (
            "frames between the slices of the resampled image were placed on the slice nearest their source image"
            if reference.meta.get("resampled")
            else f"frame {f + 1}: position lies at slice {p0[2]:.2f}, between slices; placed on slice {k_uid} "
            "by its source image UID"
        )
        if msg not in warnings:
            warnings.append(msg)
    size = [0, 0]
    size[ax_c] = cols
    size[ax_r] = rows
    start = [int(r0[0]), int(r0[1])]
    if sg_c < 0:
        start[ax_c] -= cols - 1
    if sg_r < 0:
        start[ax_r] -= rows - 1
    return _FrameGeometry(k, (start[0], start[1]), ax_c == 1, sg_r < 0, sg_c < 0, (size[0], size[1]))


def _to_plane(frame: np.ndarray, g: _FrameGeometry) -> np.ndarray:
    """Reorient a stored frame ``[r, c]`` to reference plane axes ``[i, j]``."""
    arr = frame
    if g.flip_r:
        arr = arr[::-1, :]
    if g.flip_c:
        arr = arr[:, ::-1]
    return arr if g.transpose else arr.T


def _place(
    target: np.ndarray, plane: np.ndarray, g: _FrameGeometry, f: int, seg_no: int | None, source: str, combine: str
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


def _header(ds: Dataset, source: str, known_segments: list[int] | None = None) -> _SegHeader:
    seg_type = str(getattr(ds, "SegmentationType", "") or "").upper()
    if str(ds.SOPClassUID) == LABEL_MAP_SEG_SOP_CLASS:
        seg_type = "LABELMAP"
    if seg_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise DicomError(
            f"{source}: SegmentationType {seg_type or '(missing)'} is not BINARY, FRACTIONAL or LABELMAP; "
            "the SEG is invalid or the file is truncated. Export it again."
        )
    for attr in ("Rows", "Columns", "BitsAllocated"):
        if attr not in ds:
            raise DicomError(f"{source}: the SEG has no {attr}; the file is incomplete. Export it again.")
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if known_segments is not None and seg_type == "BINARY":  # read from the raw per-frame groups (counted)
        return _SegHeader(ds, source, seg_type, _segments(ds, source), list(known_segments))
    pf = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if pf is None or len(pf) != n:
        raise DicomError(
            f"{source}: NumberOfFrames is {n} but PerFrameFunctionalGroupsSequence has "
            f"{0 if pf is None else len(pf)} items; the file is truncated or corrupt. Export the SEG again."
        )
    frame_segments: list[int | None] = []
    for f in range(n):
        if seg_type == "LABELMAP":
            frame_segments.append(None)
            continue
        ident = _fg(ds, f, "SegmentIdentificationSequence")
        if ident is None or "ReferencedSegmentNumber" not in ident:
            raise DicomError(f"{source}: frame {f + 1} has no ReferencedSegmentNumber; the SEG is invalid.")
        frame_segments.append(int(ident.ReferencedSegmentNumber))
    return _SegHeader(ds, source, seg_type, _segments(ds, source), frame_segments)


def _order(reference: Volume) -> Literal["C", "F"]:
    """Memory order of the reference image, so masks and image are traversed alike (no strided copies)."""
    return "F" if reference.array.flags.f_contiguous and not reference.array.flags.c_contiguous else "C"


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
        _check_file(path)
        plain_layers = _read_plain(dataset, reference, spec, fractional_threshold, max_voxels, role_log)
        if plain_layers is not None:
            return plain_layers
        dataset = None  # something the one-pass reader does not place: pydicom and the general reader
    ds = _read_dataset(path, dataset)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if "Rows" in ds and "Columns" in ds:
        check_voxel_budget((int(ds.Columns), int(ds.Rows), n_frames), max_voxels, source)
    table = read_frame_table(ds, path)  # plain BINARY SEGs: per-frame facts without a pydicom parse per frame
    hdr = _header(ds, source, None if table is None else [int(s) for s in table.segments])
    _check_frame_of_reference(str(getattr(ds, "FrameOfReferenceUID", "") or ""), reference, source)
    roles = assign_roles(hdr.segments, spec, source, noun="segments", log=role_log)
    wanted = {num for num, role in roles.items() if role != "ignore"}
    ref_series = ""
    rss = getattr(ds, "ReferencedSeriesSequence", None)
    if rss:
        ref_series = str(getattr(rss[0], "SeriesInstanceUID", "") or "")
    hdr.warnings.extend(_series_warning(ref_series, reference))
    slices = _SourceSlices(reference)
    grid = reference
    written: set[int] | None = None  # segments known to hold pixels (the one-pass decoder's arrays)
    coarser = _coarser_slices(ds, reference, None if table is None else table.positions)
    try:
        if coarser is not None:  # frames on every n-th image slice, each a slab of n slices
            raise _OffGrid(source, coarser)
        arrays = _decode_plain(hdr, table, reference, wanted) if table is not None else None
        if arrays is not None:
            written = set(arrays)
        else:
            arrays = _decode(hdr, reference, wanted, slices)
    except GeometryError as exc:  # frames off the image grid: build the SEG's own grid, resampled later
        grid, arrays = _decode_own_grid(hdr, reference, wanted, _finding(exc))
        if coarser is not None and reference.sheared:  # tilted slabs: along the normal, not by index (_seg_slabs)
            on_reference = slabs_along_normal(grid, arrays, reference, _order(reference))
            if on_reference is not None:
                note = _SLABS_NOTE.format(why=coarser, shape=grid.shape)
                hdr.warnings[-1:] = (
                    [note] if hdr.warnings[-1].startswith("the SEG is not on") else [hdr.warnings[-1], note]
                )
                grid, arrays = reference, on_reference
    if grid is reference:
        arrays = _onto_resampled(arrays, reference, hdr.warnings)
    frac_type = str(getattr(ds, "SegmentationFractionalType", "") or "")
    if hdr.seg_type == "FRACTIONAL" and frac_type.upper() == "PROBABILITY":
        hdr.warnings.append("FRACTIONAL type PROBABILITY: the sum of fractions is an expected volume, not occupancy")
    ident = _SegIdentity(
        sop_instance_uid=str(getattr(ds, "SOPInstanceUID", "")),
        series_instance_uid=str(getattr(ds, "SeriesInstanceUID", "")),
        sop_class_uid=str(ds.SOPClassUID),
        seg_type=hdr.seg_type,
        referenced_series=ref_series,
        n_frames=n_frames,
        max_fractional=float(getattr(ds, "MaximumFractionalValue", 255) or 255),
        fractional_type=frac_type,
    )
    return _layers(
        ident, hdr.segments, roles, wanted, arrays, grid, reference, hdr.warnings, fractional_threshold, source, written
    )


#: A SEG whose declared slice spacing is at least this many times the image's is on a coarser grid.
_COARSER_RATIO = 1.5


class _OffGrid(GeometryError):
    """A SEG's frames off the image grid (``finding``: what is off, without the file name), caught by the reader.

    It never reaches the user: :func:`read_dicom_seg` then builds the SEG on its own grid and resamples it by
    position, its warning giving the finding; when that fails too, :func:`_own_grid_error` gives the finding and
    the advice once.
    """

    def __init__(self, source: str, finding: str) -> None:
        super().__init__(f"{source}: {finding}")
        self.finding = finding


def _finding(exc: GeometryError) -> str:
    """What a grid error found, without its file name and advice (another GeometryError: its text after the file)."""
    return exc.finding if isinstance(exc, _OffGrid) else str(exc).split(": ", 1)[-1].rstrip(" .")


def _own_grid_error(source: str, why: str, problem: str) -> GeometryError:
    """The error of a SEG off the image grid that cannot be built on a grid of its own either: one line.

    ``why`` is the grid error's finding (:func:`_finding`); the file is named once and the advice once, at the end.
    """
    return GeometryError(
        f"{source}: {why}, and {problem}, so it cannot be resampled by position; resample the "
        "segmentation onto the image (e.g. with dcmqi/Slicer) or pass the image series the SEG was made on."
    )


#: The warning of a coarser SEG's frames filled onto a tilted image as slabs along the normal.
_SLABS_NOTE = (
    "the SEG is not on the image grid ({why}); its frames are slabs of a coarser slice grid (shape {shape}) and "
    "each image voxel took the frame whose slab along the slice normal holds it, at its projection (gantry tilt: "
    "not by index)"
)


def _plane_step_mm(positions: np.ndarray, reference: Volume) -> float:
    """Smallest distance between the distinct frame planes along the image's normal (inf for one plane)."""
    normal = reference.slice_normal
    d = np.sort(np.asarray(positions, dtype=np.float64) @ normal)  # (np.unique would import numpy.ma)
    gaps = np.diff(d)
    gaps = gaps[gaps > 1e-3]  # frames of several segments share a plane
    return float(gaps.min()) if gaps.size else float("inf")


def _coarser_slices(ds: Dataset, reference: Volume, positions: np.ndarray | None) -> str | None:
    """Why the SEG's frames are slabs of a coarser slice grid than the image's, or None.

    A SEG made on a thick reconstruction (5 mm) and read on a thin one of the same acquisition
    (2.5 mm, same frame of reference) has frames that fall exactly on every second image slice:
    placed there, the slices between stay empty (half the volume, every lesion cut in slices).
    When the SEG declares a SpacingBetweenSlices (as highdicom and dcmqi write it) at least
    :data:`_COARSER_RATIO` times the image's step, and its frame planes lie on that spacing, the
    masks are built on the SEG's own grid and resampled onto the image by position.
    """
    pm = _fg(ds, 0, "PixelMeasuresSequence")
    try:
        declared = abs(float(getattr(pm, "SpacingBetweenSlices", 0) or 0)) if pm is not None else 0.0
    except (TypeError, ValueError):
        return None
    step = reference.slice_separation_mm  # the distance between the image's planes (a tilt's step is longer)
    if not declared > _COARSER_RATIO * step:
        return None
    if positions is None:
        ipps = [_plane_of(ds, f)[0] for f in range(int(getattr(ds, "NumberOfFrames", 1) or 1))]
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


def _onto_resampled(arrays: dict[int, np.ndarray], reference: Volume, warnings: list[str]) -> dict[int, np.ndarray]:
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
    return {n: np.asarray(np.take(a, kmap, axis=2), order=_order(reference)) for n, a in arrays.items()}


@dataclass(frozen=True)
class _SegIdentity:
    """What a SEG's mask layers carry in their meta, whichever reader decoded it."""

    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    seg_type: str
    referenced_series: str
    n_frames: int
    max_fractional: float = 255.0
    fractional_type: str = ""


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DicomError(f"{path}: file not found; check the --seg path.")
    if path.stat().st_size == 0:
        raise DicomError(f"{path}: file is empty (0 bytes); export the SEG again.")


def _check_frame_of_reference(seg_for: str, reference: Volume, source: str) -> None:
    ref_for = reference.frame_of_reference_uid
    if seg_for and ref_for and seg_for != ref_for:
        raise DicomError(
            f"{source}: FrameOfReferenceUID {seg_for} differs from the image's {ref_for}; the SEG belongs to "
            "another image. Pass the series the SEG references."
        )


def _series_warning(ref_series: str, reference: Volume) -> list[str]:
    own_series = reference.meta.get("series_instance_uid")
    if ref_series and own_series and ref_series != own_series:
        return [f"the SEG references series {ref_series}, the image is series {own_series}; frames placed by position"]
    return []


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
    segments = _segment_list(plain.segments, source)
    if not {int(s) for s in plain.table.segments} <= {s.number for s in segments}:
        return None  # the general path names the undeclared segment
    _check_frame_of_reference(plain.uid(0x00200052), reference, source)
    log: list[RoleDecision] | None = [] if role_log is not None else None
    roles = assign_roles(segments, spec, source, noun="segments", log=log)
    wanted = {num for num, role in roles.items() if role != "ignore"}
    try:
        pixel_data = plain.pixel_bytes()
    except OSError:  # the file changed since the scan: pydicom reads it again and says what is wrong
        return None
    if _plane_step_mm(plain.table.positions, reference) > _COARSER_RATIO * reference.slice_separation_mm:
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
        _order(reference),
    )
    if arrays is None:
        return None
    if role_log is not None and log is not None:
        role_log.extend(log)
    ident = _SegIdentity(
        sop_instance_uid=plain.uid(0x00080018),
        series_instance_uid=plain.uid(0x0020000E),
        sop_class_uid=plain.uid(0x00080016),
        seg_type="BINARY",
        referenced_series=plain.first_referenced_series,
        n_frames=n_frames,
    )
    warnings = _series_warning(plain.first_referenced_series, reference)
    arrays = _onto_resampled(arrays, reference, warnings)
    return _layers(
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


def _fractions(stored: np.ndarray, max_fractional: float, segment: str, source: str, warns: list[str]) -> np.ndarray:
    """Fractions ``stored / MaximumFractionalValue`` in [0, 1] of one FRACTIONAL segment.

    A segment that stores only 0 and 1 under a MaximumFractionalValue above 1 is a binary mask
    written as FRACTIONAL with the wrong scale (OHIF #1346, dcmjs PR #309: the declared maximum is
    not reliable). Read literally, every voxel would be 1/255 inside: the sum of fractions would be
    255 times too small and the thresholded mask empty. It is read as binary (1 = inside), with a warning.
    """
    if max_fractional > 1 and stored.size and int(stored.max()) == 1:
        msg = (
            f"segment {segment}: FRACTIONAL with MaximumFractionalValue {max_fractional:g} but no stored value "
            "above 1; read as a binary mask (1 = inside), as written by exporters that store binary masks as "
            "FRACTIONAL"
        )
        warns.append(msg)
        logger.warning("%s: %s", source, msg)
        return (stored > 0).astype(np.float32)
    return (stored.astype(np.float32) / np.float32(max_fractional)).clip(0.0, 1.0)


def _layers(
    ident: _SegIdentity,
    segments: list[SegmentInfo],
    roles: dict[int, str],
    wanted: set[int],
    arrays: dict[int, np.ndarray],
    grid: Volume,
    reference: Volume,
    warnings: list[str],
    fractional_threshold: float,
    source: str,
    written: set[int] | None = None,
) -> list[MaskLayer]:
    """One MaskLayer per wanted segment, in SegmentNumber order.

    ``written``: the segments whose arrays :func:`~._seg_fast.decode_binary` wrote pixels
    into (each holds at least one); then no full-grid scan is needed to find the empty ones.
    """
    layers: list[MaskLayer] = []
    by_number = {s.number: s for s in segments}
    fractional = ident.seg_type == "FRACTIONAL"
    for num in sorted(wanted):
        info = by_number[num]
        arr = arrays.get(num)
        if arr is None:
            dtype: type = np.float32 if fractional else bool
            arr = np.zeros(grid.shape, dtype=dtype, order=_order(reference))
        warns = list(warnings)
        if fractional:
            arr = _fractions(arr, ident.max_fractional, info.describe(), source, warns)
        if (num not in written) if written is not None else not np.any(arr):
            warns.append(f"segment {info.describe()} is empty")
            logger.warning("%s: segment %s is empty", source, info.describe())
        meta: dict[str, Any] = {
            "sop_instance_uid": ident.sop_instance_uid,
            "series_instance_uid": ident.series_instance_uid,
            "sop_class_uid": ident.sop_class_uid,
            "segment_number": num,
            "segment_label": info.label,
            "segment_code": list(info.code) if info.code else None,
            "segmentation_type": ident.seg_type,
            "referenced_series_instance_uid": ident.referenced_series or None,
            "n_frames": ident.n_frames,
            "warnings": warns,
        }
        if fractional:
            meta["fractional_threshold"] = float(fractional_threshold)
            meta["fractional_type"] = ident.fractional_type or None
            meta["volume_rule"] = "sum of fractions; MaskLayer.binary(fractional_threshold) for the mask"
        mask = grid.with_array(arr, source=source, meta=meta)
        layers.append(MaskLayer(roles[num], mask, label=info.label, source=source, fractional=fractional))
    return layers


def _decode_plain(
    hdr: _SegHeader, table: FrameTable, reference: Volume, wanted: set[int]
) -> dict[int, np.ndarray] | None:
    """All frames of a plain BINARY SEG at once (:mod:`._seg_fast`); ``None``: use :func:`_decode`."""
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
        _order(reference),
    )


def _decode(hdr: _SegHeader, reference: Volume, wanted: set[int], slices: _SourceSlices) -> dict[int, np.ndarray]:
    """Decode every needed frame once and place it on per-segment reference arrays."""
    ds, source = hdr.ds, hdr.source
    shape = reference.shape
    fractional = hdr.seg_type == "FRACTIONAL"
    labelmap = hdr.seg_type == "LABELMAP"
    padding = getattr(ds, "PixelPaddingValue", None)
    arrays: dict[int, np.ndarray] = {}
    geom_cache: dict[int, _FrameGeometry] = {}
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
    refs = _RefCheck(reference)
    from ._seg_frames import iter_frames

    for f, frame in enumerate(iter_frames(ds, source)):
        if f >= n:
            break
        if not needed[f]:
            continue
        g = geom_cache.get(f)
        if g is None:
            g = _frame_geometry(ds, f, reference, slices, source, hdr.warnings)
            geom_cache[f] = g
            refs.frame(ds, f, g.k, slices, _fg(ds, f, "PlanePositionSequence") is not None)
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
                    target = arrays[v] = sparse_zeros(shape, bool, _order(reference))
                _place(target, _to_plane(frame == v, g), g, f, v, source, "or")
            continue
        seg_no = hdr.frame_segments[f]
        assert seg_no is not None
        target = arrays.get(seg_no)
        if target is None:
            target = arrays[seg_no] = sparse_zeros(shape, np.uint16 if fractional else bool, _order(reference))
        plane = _to_plane(frame if fractional else frame.astype(bool), g)
        refs.plane(f, seg_no, g, plane, target)
        _place(target, plane.astype(target.dtype, copy=False), g, f, seg_no, source, "max" if fractional else "or")
    hdr.warnings.extend(w for w in refs.warnings() if w not in hdr.warnings)
    return arrays


def _decode_own_grid(
    hdr: _SegHeader, reference: Volume, wanted: set[int], why: str
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
        ipp, iop, spc = _plane_of(ds, f)
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
    pm = _fg(ds, 0, "PixelMeasuresSequence")
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
