"""The raw-byte header reader: a plain image's (or plain SEG's) header facts without pydicom.

One concept: a small reader of little-endian DICOM elements. Plain single-frame images
(Part-10, implicit or explicit VR little endian, native or encapsulated pixels, no Enhanced
functional groups or Modality LUT Sequence) are parsed by walking the elements up to
PixelData, skipping sequences unparsed, and decoding only the ~20 elements needed
(:data:`_FAST_TAGS`): ~0.2 ms a file instead of ~2 ms for a pydicom parse with element
conversion (:func:`_fast_header`). A plain BINARY SEG is read the same way
(:func:`_plain_seg_header`, through :mod:`._seg_header`), and other readers take single text
values from it (:func:`fast_text_values`).

On anything unusual (unexpected VR, tags out of order, non-decimal numbers, multi-valued
scalars, another character set, end of file before PixelData...) the reader raises
:class:`_NotFast` inside and returns ``None``: the caller parses the file with pydicom
(:mod:`._dicom_header`), whose result this reader's equals on the files it accepts
(tests/test_dicom_fast_header.py).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from ._dicom_info import _NON_IMAGE_SOP_PREFIXES, IMAGE, SEG, DicomFileInfo, FrameGeometry
from .formats import LABELMAP_SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS, SEG_SOP_CLASS

__all__ = ["fast_text_values"]


#: Length value of an undefined-length element (sequences, items, encapsulated PixelData).
_UNDEFINED_LENGTH = 0xFFFFFFFF


class _NotFast(Exception):
    """The fast header path does not apply to this file; use pydicom."""


#: Transfer syntaxes whose data set is little endian: implicit VR, explicit VR.
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: Encapsulated (compressed) syntaxes: explicit VR little endian data set.
_ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5")
#: Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
     b"ST", b"TM", b"UI", b"UL", b"US"}
)  # fmt: skip
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010
#: Data set elements the fast path reads (tag -> VR); all others are skipped unparsed.
_FAST_TAGS: dict[int, bytes] = {
    0x00080005: b"CS",  # SpecificCharacterSet
    0x00080008: b"CS",  # ImageType
    0x00080016: b"UI",  # SOPClassUID
    0x00080018: b"UI",  # SOPInstanceUID
    0x00080022: b"DA",  # AcquisitionDate
    0x0008002A: b"DT",  # AcquisitionDateTime
    0x00080032: b"TM",  # AcquisitionTime
    0x00080060: b"CS",  # Modality
    0x00180050: b"DS",  # SliceThickness
    0x00180081: b"DS",  # EchoTime
    0x00180086: b"IS",  # EchoNumbers
    0x00181060: b"DS",  # TriggerTime (GE multiphase dynamics in one series)
    0x00181210: b"SH",  # ConvolutionKernel
    0x00189087: b"FD",  # DiffusionBValue
    0x0008103E: b"LO",  # SeriesDescription
    0x0020000D: b"UI",  # StudyInstanceUID
    0x0020000E: b"UI",  # SeriesInstanceUID
    0x00200011: b"IS",  # SeriesNumber
    0x00200012: b"IS",  # AcquisitionNumber
    0x00200032: b"DS",  # ImagePositionPatient
    0x00200037: b"DS",  # ImageOrientationPatient
    0x00200052: b"UI",  # FrameOfReferenceUID
    0x00200100: b"IS",  # TemporalPositionIdentifier (dynamic MR phases in one series)
    0x00200105: b"IS",  # NumberOfTemporalPositions
    0x00280002: b"US",  # SamplesPerPixel
    0x00280008: b"IS",  # NumberOfFrames
    0x00280010: b"US",  # Rows
    0x00280011: b"US",  # Columns
    0x00280030: b"DS",  # PixelSpacing
    0x00280100: b"US",  # BitsAllocated
    0x00280101: b"US",  # BitsStored
    0x00280103: b"US",  # PixelRepresentation
    0x00281052: b"DS",  # RescaleIntercept
    0x00281053: b"DS",  # RescaleSlope
    0x00541321: b"DS",  # DecayFactor (PET)
}
#: Elements whose presence sends the file to pydicom: Modality LUT Sequence,
#: Shared / Per-frame Functional Groups (Enhanced images).
_SLOW_TAGS = frozenset({0x00283000, 0x52009229, 0x52009230})
_FIRST_SLOW_TAG = min(_SLOW_TAGS)
#: Character sets whose text the fast path decodes itself (PS3.3 C.12.1.1.2).
_FAST_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_HEAD_BYTES = 16384
_MAX_HEADER_BYTES = 1 << 24
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_TAG = struct.Struct("<HH")
#: An explicit VR element's tag, VR and 2-byte length; an implicit VR element's tag and 4-byte length.
_EXPLICIT_ELEMENT = struct.Struct("<HH2sH")
_IMPLICIT_ELEMENT = struct.Struct("<HHI")


class _Head:
    """The start of a file, read on demand up to :data:`_MAX_HEADER_BYTES`."""

    __slots__ = ("data", "eof", "fh")

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.data = fh.read(_HEAD_BYTES)
        self.eof = len(self.data) < _HEAD_BYTES

    def need(self, end: int) -> None:
        """Make ``data`` at least ``end`` bytes long, or raise :class:`_NotFast`."""
        if end <= len(self.data):
            return
        if self.eof or end > _MAX_HEADER_BYTES:
            raise _NotFast
        want = max(end - len(self.data), 65536)
        more = self.fh.read(want)
        self.data += more
        self.eof = len(more) < want
        if end > len(self.data):
            raise _NotFast


def _element(head: _Head, pos: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, value position) of the element at ``pos``."""
    head.need(pos + 8)
    data = head.data
    group, elem = _TAG.unpack_from(data, pos)
    if group == 0xFFFE or not explicit:  # items and delimiters never carry a VR
        return (group << 16) | elem, None, _U32.unpack_from(data, pos + 4)[0], pos + 8
    vr = data[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        head.need(pos + 12)
        return (group << 16) | elem, vr, _U32.unpack_from(data, pos + 8)[0], pos + 12
    if vr not in _SHORT_VRS:
        raise _NotFast
    return (group << 16) | elem, vr, _U16.unpack_from(data, pos + 6)[0], pos + 8


def _skip_undefined(head: _Head, pos: int, explicit: bool, depth: int = 0) -> int:
    """Position after an undefined-length sequence (or encapsulated value) whose items start at ``pos``."""
    if depth > 32:
        raise _NotFast
    while True:
        tag, _, length, pos = _element(head, pos, explicit)
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _NotFast
        if length != _UNDEFINED_LENGTH:
            pos += length
            continue
        while True:  # an item of undefined length: its elements up to the item delimiter
            tag, vr, length, pos = _element(head, pos, explicit)
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED_LENGTH:
                pos = _skip_undefined(head, pos, explicit and vr != b"UN", depth + 1)
            else:
                pos += length


def _fast_elements(fh: Any, tags: dict[int, bytes] | None = None) -> tuple[str, dict[int, bytes], int, int | None]:
    """(transfer syntax, wanted raw values, PixelData value offset, PixelData length or None).

    Parses the file meta and the top-level data set of a Part-10 file up to
    PixelData, keeping only ``tags`` (tag -> VR; default :data:`_FAST_TAGS`). Raises :class:`_NotFast` on
    anything unusual (no ``DICM``, big endian, deflate, an unexpected VR,
    tags out of order, end of file before PixelData...).
    """
    head = _Head(fh)
    if head.data[128:132] != b"DICM":
        raise _NotFast
    pos = 132
    syntax = ""
    data = head.data
    while True:  # file meta: explicit VR little endian, group 0002
        if pos + 12 <= len(data):  # _element(head, pos, True), inlined
            group, number, vr, length = _EXPLICIT_ELEMENT.unpack_from(data, pos)
            if group != 0x0002:
                break
            tag, vpos = (group << 16) | number, pos + 8
            if vr in _LONG_VRS:
                length, vpos = _U32.unpack_from(data, pos + 8)[0], pos + 12
            elif vr not in _SHORT_VRS:
                raise _NotFast
        else:
            head.need(pos + 2)
            if _U16.unpack_from(head.data, pos)[0] != 0x0002:
                break
            tag, _, length, vpos = _element(head, pos, True)
            data = head.data
        if length == _UNDEFINED_LENGTH:
            raise _NotFast
        if tag == _TRANSFER_SYNTAX:
            head.need(vpos + length)
            syntax = head.data[vpos : vpos + length].decode("latin-1").rstrip("\0 ")
        pos = vpos + length
    if syntax == _IMPLICIT_LE:
        explicit = False
    elif syntax == _EXPLICIT_LE or syntax.startswith(_ENCAPSULATED_PREFIXES):
        explicit = True
    else:
        raise _NotFast
    wanted = _FAST_TAGS if tags is None else tags
    values: dict[int, bytes] = {}
    previous = -1
    data = head.data
    size = len(data)
    # _element(head, pos, explicit), inlined with locals: this loop runs ~40 times per file of a series
    short_vrs, long_vrs, slow_tags, element, u32 = _SHORT_VRS, _LONG_VRS, _SLOW_TAGS, _EXPLICIT_ELEMENT, _U32
    first_slow, pixel_data, undefined = _FIRST_SLOW_TAG, _PIXEL_DATA, _UNDEFINED_LENGTH
    while True:
        if pos + 12 > size:
            tag, vr, length, vpos = _element(head, pos, explicit)
            data = head.data
            size = len(data)
        elif explicit:
            group, number, vr, length = element.unpack_from(data, pos)
            tag = (group << 16) | number
            if group == 0xFFFE:
                vr, length, vpos = None, u32.unpack_from(data, pos + 4)[0], pos + 8
            elif vr in short_vrs:
                vpos = pos + 8
            elif vr in long_vrs:
                length, vpos = u32.unpack_from(data, pos + 8)[0], pos + 12
            else:
                raise _NotFast
        else:
            group, number, length = _IMPLICIT_ELEMENT.unpack_from(data, pos)
            tag, vr, vpos = (group << 16) | number, None, pos + 8
        # out of order, an item or delimiter at the top level, or a slow element (all of them >= _FIRST_SLOW_TAG)
        if tag <= previous or (tag >= first_slow and (tag in slow_tags or tag >> 16 == 0xFFFE)):
            raise _NotFast
        previous = tag
        if tag == pixel_data:
            return syntax, values, vpos, None if length == undefined else length
        expected = wanted.get(tag)
        if length == undefined:
            if expected is not None:
                raise _NotFast
            pos = _skip_undefined(head, vpos, explicit and vr != b"UN")
            data = head.data
            size = len(data)
            continue
        if expected is not None:
            if explicit and vr != expected:
                raise _NotFast
            if vpos + length > size:
                head.need(vpos + length)
                data = head.data
                size = len(data)
            values[tag] = data[vpos : vpos + length]
        pos = vpos + length


def fast_text_values(path: Path, tags: dict[int, bytes]) -> dict[int, str] | None:
    """Single-valued text of ``tags`` (tag -> VR) of a plain image file without pydicom, or ``None`` (use pydicom).

    As pydicom gives them (trailing spaces and NULs removed; absent: not in the
    result). ``None`` when the header fast path does not apply to the file (see
    :func:`_fast_header`), a value is multi-valued, its VR differs, or its character
    set is one this reader does not decode.

    Parameters
    ----------
    path : pathlib.Path
        An image file.
    tags : dict
        Tag -> VR of the text elements wanted (and SpecificCharacterSet is read too).
    """
    try:
        with path.open("rb", buffering=0) as fh:
            _syntax, v, _offset, _length = _fast_elements(fh, {**tags, 0x00080005: b"CS"})
        charset = _FAST_CHARSETS.get(_fast_text(v.get(0x00080005)))
        if charset is None:
            return None
        return {tag: _fast_text(raw, charset) for tag, raw in v.items() if tag != 0x00080005}
    except (_NotFast, ValueError, UnicodeDecodeError, struct.error, OSError):
        return None


def _fast_text(raw: bytes | None, encoding: str = "latin-1") -> str:
    """A single text value as pydicom returns it (trailing spaces and NULs removed)."""
    if raw is None:
        return ""
    text = raw.decode(encoding).rstrip(" \0")
    if "\\" in text:
        raise _NotFast
    return text


def _fast_uid(raw: bytes | None) -> str:
    """A single UID as pydicom gives it: trailing NULs and spaces removed, then surrounding whitespace."""
    return _fast_text(raw).strip()


def _fast_numbers(raw: bytes | None, integer: bool = False) -> list[float] | None:
    """DS / IS values; ``None`` when absent or empty; :class:`_NotFast` on anything but plain decimals."""
    if not raw:
        return None
    out: list[float] = []
    for item in raw.decode("latin-1").split("\\"):
        item = item.strip(" \0")
        if not item or not _NUMBER_CHARS.issuperset(item):
            raise _NotFast
        if integer:
            if not item.lstrip("+-").isdigit():
                raise _NotFast
            out.append(int(item))
        else:
            out.append(float(item))  # ValueError (e.g. "1.2.3") is caught by the caller
    return out


def _fast_slope(raw: bytes | None) -> float:
    values = _fast_numbers(raw)
    if values is None:
        return 1.0
    if len(values) != 1:
        raise _NotFast
    return float(values[0])


def _fast_scalar(raw: bytes | None, default: float, integer: bool = False) -> float:
    values = _fast_numbers(raw, integer)
    if values is None:
        return default
    if len(values) != 1:
        raise _NotFast
    return values[0] or default


def _fast_optional(raw: bytes | None) -> float | None:
    """A single DS value, or None when absent or empty."""
    values = _fast_numbers(raw)
    if values is None:
        return None
    if len(values) != 1:
        raise _NotFast
    return float(values[0])


def _fast_int(raw: bytes | None) -> int | None:
    """A single IS value, or None when absent or empty."""
    values = _fast_numbers(raw, integer=True)
    if values is None:
        return None
    if len(values) != 1:
        raise _NotFast
    return int(values[0])


def _fast_single(raw: bytes | None) -> float | None:
    """A DS value when there is exactly one, else None (as :func:`._dicom_header._ds_single` gives it)."""
    values = _fast_numbers(raw)
    return float(values[0]) if values is not None and len(values) == 1 else None


def _fast_single_int(raw: bytes | None) -> int | None:
    """An IS value when there is exactly one, else None (as :func:`._dicom_header._ds_single_int` gives it)."""
    values = _fast_numbers(raw, integer=True)
    return int(values[0]) if values is not None and len(values) == 1 else None


def _fast_fd(raw: bytes | None) -> float | None:
    """A single little-endian FD value, or None when absent (or not 8 bytes: several values)."""
    return float(_F64.unpack(raw)[0]) if raw is not None and len(raw) == 8 else None


def _fast_us(raw: bytes | None) -> int:
    if raw is None or len(raw) == 0:
        return 0
    if len(raw) != 2:
        raise _NotFast
    return int(_U16.unpack(raw)[0])


def _fast_tuple(raw: bytes | None, n: int) -> tuple[float, ...] | None:
    values = _fast_numbers(raw)
    return tuple(values) if values is not None and len(values) == n else None


#: The elements of :data:`_FAST_TAGS` that the files of a series usually share (all but the instance
#: UID and the position): decoded once per distinct set of raw values (:func:`_decode_shared`).
_SHARED_TAGS = tuple(tag for tag in _FAST_TAGS if tag not in (0x00080018, 0x00200032))
#: Decoded shared facts by their raw values (``None``: absent), cleared when it holds this many.
_DECODED: dict[tuple[bytes | None, ...], tuple[Any, ...]] = {}
_DECODED_MAX = 64


def _decode_shared(v: dict[int, bytes]) -> tuple[Any, ...]:
    """What :func:`_fast_header` decodes of the :data:`_SHARED_TAGS` values ``v``; :class:`_NotFast` as it would.

    Returns (SOP class UID, rows, columns, orientation, pixel spacing, slope, intercept, the
    :func:`_fast_common` facts but the SOP instance UID): a function of those raw bytes only.
    """
    sop_class = _fast_uid(v.get(0x00080016))
    rows, columns = _fast_us(v.get(0x00280010)), _fast_us(v.get(0x00280011))
    frames_declared = _fast_scalar(v.get(0x00280008), 1, integer=True)
    if (
        not sop_class
        or sop_class in (SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS)
        or sop_class.startswith(_NON_IMAGE_SOP_PREFIXES)
        or not rows
        or not columns
        or frames_declared != 1
    ):
        raise _NotFast
    charset = _FAST_CHARSETS.get(_fast_text(v.get(0x00080005)))
    if charset is None:
        raise _NotFast
    common = _fast_common(v, charset)
    del common["sop_instance_uid"]
    return (
        sop_class,
        rows,
        columns,
        _fast_tuple(v.get(0x00200037), 6),
        _fast_tuple(v.get(0x00280030), 2),
        _fast_slope(v.get(0x00281053)),
        float(_fast_scalar(v.get(0x00281052), 0.0)),
        common,
    )


def _fast_header(path: Path) -> DicomFileInfo | None:
    """Header facts of a plain single-frame image without pydicom, or ``None`` (use pydicom).

    Applies to Part-10 files in implicit or explicit VR little endian (native
    or encapsulated pixel data) of an image SOP class, without Enhanced
    functional groups or a Modality LUT Sequence, whose needed elements have
    their standard VR and plain values. The result equals what the pydicom
    path returns for the same file (tests/test_dicom_fast_header.py checks
    this on every real file in shared/data and on synthetic series).
    """
    try:
        with path.open("rb", buffering=0) as fh:
            syntax, v, offset, length = _fast_elements(fh)
            size = os.fstat(fh.fileno()).st_size
        key = tuple(map(v.get, _SHARED_TAGS))
        shared = _DECODED.get(key)
        if shared is None:
            shared = _decode_shared(v)
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            _DECODED[key] = shared
        sop_class, rows, columns, orientation, pixel_spacing, slope, intercept, common = shared
        frame = FrameGeometry(
            position=_fast_tuple(v.get(0x00200032), 3),  # type: ignore[arg-type]
            orientation=orientation,
            pixel_spacing=pixel_spacing,
            slope=slope,
            intercept=intercept,
        )
        return DicomFileInfo(
            path=path,
            kind=IMAGE,
            sop_class_uid=sop_class,
            rows=rows,
            columns=columns,
            number_of_frames=1,
            has_modality_lut_sequence=False,
            transfer_syntax_uid=syntax,
            frames=(frame,),
            pixel_data_offset=offset if length is not None else None,
            pixel_data_length=length,
            truncated=length is not None and size < offset + length,
            sop_instance_uid=_fast_uid(v.get(0x00080018)),
            **common,
        )
    except (_NotFast, ValueError, UnicodeDecodeError, struct.error):
        return None


def _fast_common(v: dict[int, bytes], charset: str) -> dict[str, Any]:
    """The DicomFileInfo facts both raw-byte header readers (images, plain SEGs) decode alike.

    Text as the pydicom path gives it (:func:`._dicom_header._ds_text` strips both ends of the
    acquisition facts and the kernel); :class:`_NotFast` on what it must decide.
    """
    image_type = v.get(0x00080008)
    image_type_text = image_type.decode("latin-1").rstrip(" \0") if image_type else ""
    series_number = _fast_numbers(v.get(0x00200011), integer=True)
    if series_number is not None and len(series_number) != 1:
        raise _NotFast
    return {
        "sop_instance_uid": _fast_uid(v.get(0x00080018)),
        "series_uid": _fast_uid(v.get(0x0020000E)),
        "study_uid": _fast_uid(v.get(0x0020000D)),
        "modality": _fast_text(v.get(0x00080060)),
        "frame_of_reference_uid": _fast_uid(v.get(0x00200052)),
        "series_description": _fast_text(v.get(0x0008103E), charset),
        "series_number": int(series_number[0]) if series_number else None,
        "image_type": tuple(t.upper() for t in image_type_text.split("\\")) if image_type_text else (),
        "bits_allocated": _fast_us(v.get(0x00280100)),
        "bits_stored": _fast_us(v.get(0x00280101)),
        "pixel_representation": _fast_us(v.get(0x00280103)),
        "samples_per_pixel": _fast_us(v.get(0x00280002)) if 0x00280002 in v else 1,
        "acquisition_date": _fast_text(v.get(0x00080022)).strip(),
        "acquisition_time": _fast_text(v.get(0x00080032)).strip(),
        "acquisition_datetime": _fast_text(v.get(0x0008002A)).strip(),
        "decay_factor": _fast_optional(v.get(0x00541321)),
        "acquisition_number": _fast_int(v.get(0x00200012)),
        "temporal_position": _fast_int(v.get(0x00200100)),
        "convolution_kernel": _fast_text(v.get(0x00181210), charset).strip(),
        "slice_thickness": _fast_optional(v.get(0x00180050)),
        "echo_number": _fast_single_int(v.get(0x00180086)),
        "echo_time": _fast_single(v.get(0x00180081)),
        "diffusion_b_value": _fast_fd(v.get(0x00189087)),
        "trigger_time": _fast_single(v.get(0x00181060)),
        "temporal_positions": _fast_int(v.get(0x00200105)),
    }


def _plain_seg_header(path: Path) -> DicomFileInfo | None:
    """Header facts of a plain BINARY SEG from its raw bytes (:mod:`._seg_header`), or ``None`` (use pydicom).

    The result equals what :func:`._dicom_header._read_header_pydicom` returns for the same file
    (tests/test_perf_paths.py checks this on every real SEG of shared/data and on
    generated ones); ``dataset`` holds the :class:`~._seg_header.PlainSeg` for the SEG reader.
    """
    from ._seg_header import read_plain_seg

    seg = read_plain_seg(path)
    if seg is None:
        return None
    v = seg.values
    try:
        for_uid = _fast_uid(v.get(0x00200052))
        return DicomFileInfo(
            path=path,
            kind=SEG,
            sop_class_uid=_fast_uid(v.get(0x00080016)),
            rows=_fast_us(v.get(0x00280010)),
            columns=_fast_us(v.get(0x00280011)),
            number_of_frames=int(_fast_scalar(v.get(0x00280008), 1, integer=True)),
            has_modality_lut_sequence=False,
            transfer_syntax_uid=_EXPLICIT_LE,
            frames=(),
            pixel_data_offset=seg.pixel_offset,
            pixel_data_length=seg.pixel_length,
            truncated=False,
            referenced_series_uids=tuple(dict.fromkeys(seg.referenced_series)),
            referenced_sop_uids=tuple(dict.fromkeys(seg.referenced_sops)),
            referenced_frame_of_reference_uids=(for_uid,) if for_uid else (),
            segment_labels=tuple(label or "" for _n, label, _c, _m in seg.segments),
            dataset=seg,
            **_fast_common(v, seg.encoding),
        )
    except (_NotFast, ValueError, UnicodeDecodeError, struct.error):
        return None
