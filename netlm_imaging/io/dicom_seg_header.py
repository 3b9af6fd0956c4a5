"""The pydicom header of a DICOM SEG: the file and SOP class checks, its segments and its frames' groups.

Part of the DICOM SEG reader (:mod:`netlm_imaging.io.dicom_seg`). :func:`read_seg_dataset` parses
the file (bounded inflate, old exports without a preamble) and refuses what is not a Segmentation;
:func:`parse_seg_header` checks SegmentationType, the frame count and each frame's
ReferencedSegmentNumber and gives a :class:`SegHeader`; :func:`read_seg_segments` and
:func:`segment_list` list the segments a SEG declares (:class:`SegmentInfo`; segment 0 and the
DCM 125040 "Background" segment left out); :func:`functional_group`, :func:`plane_of` and
:func:`source_ref` read one frame's functional groups (per-frame first, then shared). The raw-byte
header of a plain BINARY SEG, read without pydicom, is :mod:`._seg_header`.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DicomError, ResourceLimitError
from ._dicom_files import without_preamble
from ._dicom_header import with_transfer_syntax
from ._inflate import dcmread as bounded_dcmread

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "LABEL_MAP_SEG_SOP_CLASS",
    "SEG_SOP_CLASS",
    "SegHeader",
    "SegmentInfo",
    "check_seg_file",
    "functional_group",
    "parse_seg_header",
    "plane_of",
    "read_seg_dataset",
    "read_seg_segments",
    "segment_list",
    "source_ref",
]


#: Segmentation Storage SOP class.
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage SOP class.
LABEL_MAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"


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
class SegHeader:
    """A SEG's dataset with its type, declared segments and the segment of each frame (None: label map)."""

    ds: Dataset
    source: str
    seg_type: str
    segments: list[SegmentInfo]
    frame_segments: list[int | None]
    warnings: list[str] = field(default_factory=list)


def read_seg_dataset(path: Path, scanned: Dataset | None = None) -> Dataset:
    source = str(path)
    check_seg_file(path)
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
    return _segments(read_seg_dataset(Path(path)), str(path))


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
    return segment_list(items, source)


def segment_list(items: Sequence[tuple[int, Any, tuple[str, str] | None, str]], source: str) -> list[SegmentInfo]:
    """SegmentInfo of each (number, label, property code, meaning) item; background segments left out."""
    out: list[SegmentInfo] = []
    for num, label, code, meaning in items:
        if num == 0 or code == _BACKGROUND_CODE:
            continue
        text = str(label or "").strip()
        out.append(SegmentInfo(num, text or f"Segment {num}", code, meaning, unnamed=not text))
    return out


def functional_group(ds: Dataset, f: int, seq_name: str) -> Dataset | None:
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


def plane_of(ds: Dataset, f: int) -> tuple[Any, Any, Any]:
    """ImagePositionPatient, ImageOrientationPatient and PixelSpacing of frame ``f`` (``None`` where absent)."""
    pos = functional_group(ds, f, "PlanePositionSequence")
    ori = functional_group(ds, f, "PlaneOrientationSequence")
    pix = functional_group(ds, f, "PixelMeasuresSequence")
    return (
        getattr(pos, "ImagePositionPatient", None) if pos is not None else None,
        getattr(ori, "ImageOrientationPatient", None) if ori is not None else None,
        getattr(pix, "PixelSpacing", None) if pix is not None else None,
    )


def source_ref(ds: Dataset, f: int) -> tuple[str | None, int | None]:
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


def parse_seg_header(ds: Dataset, source: str, known_segments: list[int] | None = None) -> SegHeader:
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
        return SegHeader(ds, source, seg_type, _segments(ds, source), list(known_segments))
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
        ident = functional_group(ds, f, "SegmentIdentificationSequence")
        if ident is None or "ReferencedSegmentNumber" not in ident:
            raise DicomError(f"{source}: frame {f + 1} has no ReferencedSegmentNumber; the SEG is invalid.")
        frame_segments.append(int(ident.ReferencedSegmentNumber))
    return SegHeader(ds, source, seg_type, _segments(ds, source), frame_segments)


def check_seg_file(path: Path) -> None:
    if not path.is_file():
        raise DicomError(f"{path}: file not found; check the --seg path.")
    if path.stat().st_size == 0:
        raise DicomError(f"{path}: file is empty (0 bytes); export the SEG again.")
