"""The header of a plain BINARY DICOM SEG from its raw bytes, without pydicom.

Private helper of the folder scan (:mod:`netlm_imaging.io._dicom_fast`) and of
:mod:`netlm_imaging.io.dicom_seg`. The SEGs met in practice (highdicom, dcmqi,
Slicer exports) are BINARY, native explicit VR little endian, in a character set
the readers decode themselves, with their orientation and pixel spacing in the
Shared Functional Groups. For those, :func:`read_plain_seg` walks the top-level
data set up to PixelData once and decodes only what discovery and the SEG reader
use (identification, segments, references, the per-frame table); pydicom is not
imported, which a fresh ``netlm analyze`` of a CT + SEG folder would otherwise pay
for (~0.2 s and ~25 MiB).

Anything else (another transfer syntax or SOP class, FRACTIONAL, per-frame
orientation, multi-valued or non-decimal values where one is expected, an element
out of order or of an unknown VR, a private UN of undefined length, a file shorter
than its pixel data...) in what it reads returns ``None``, and the caller parses
the file with pydicom, with all its checks and messages. Sequences it does not use
are skipped by their lengths, unparsed: a damaged byte inside one (an unknown VR in
a code sequence, say) does not stop this reader, where pydicom's full parse refuses
the whole file. Tests compare both on real and generated files, and on randomly
damaged headers.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ._seg_fast import (
    _EXPLICIT_LE,
    _U16,
    _UNDEFINED,
    FrameTable,
    _after,
    _element,
    _first_item_fields,
    _items,
    _NotFast,
    _sequence_item,
    _uid,
    frame_table_from_bytes,
    referenced_from_bytes,
)

__all__ = ["PlainSeg", "read_plain_seg"]

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010
_MEDIA_SOP_CLASS = 0x00020002
_SOP_CLASS = 0x00080016
_CHARSET = 0x00080005
_SEGMENT_SEQUENCE = 0x00620002
_SEGMENT_NUMBER = 0x00620004
_SEGMENT_LABEL = 0x00620005
_PROPERTY_TYPE = 0x0062000F
_SCHEME, _CODE_VALUE, _CODE_MEANING = 0x00080102, 0x00080100, 0x00080104
_SHARED_GROUPS = 0x52009229
_PER_FRAME = 0x52009230
_PLANE_ORIENTATION, _ORIENTATION = 0x00209116, 0x00200037
_PIXEL_MEASURES, _PIXEL_SPACING = 0x00289110, 0x00280030
_REFERENCED_SERIES = 0x00081115
_SERIES_UID = 0x0020000E
_SOURCE_IMAGES = 0x00082112
_REFERENCED_SOP = 0x00081155
_MODALITY_LUT = 0x00283000
#: Character sets whose text this reader decodes itself (as the image header fast path does).
CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_FIRST_READ = 1 << 20
_MAX_HEADER = 1 << 26


@dataclass(frozen=True)
class PlainSeg:
    """What the scan and the SEG reader need of a plain BINARY SEG, decoded from its raw header.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    values : dict
        Raw values of the top-level elements that are not sequences (tag -> bytes).
    encoding : str
        Python codec of its SpecificCharacterSet.
    pixel_offset, pixel_length : int
        Byte offset and length of PixelData in the file.
    file_size : int
        Size of the file in bytes.
    segments : tuple
        Per SegmentSequence item: (SegmentNumber, SegmentLabel or None when absent,
        (scheme, value) of the first SegmentedPropertyTypeCode or None, its CodeMeaning).
    table : FrameTable
        Plane position and segment number of every frame.
    orientation : tuple of float
        ImageOrientationPatient of the shared functional groups.
    pixel_spacing : tuple of float
        PixelSpacing of the shared functional groups.
    referenced_series : tuple of str
        Non-empty SeriesInstanceUIDs of the Referenced Series Sequence, in order.
    referenced_sops : tuple of str
        The SOP instances of the Referenced Series Sequence, then those of the
        top-level Source Image Sequence, in order (repeats kept).
    first_referenced_series : str
        SeriesInstanceUID of its first item ("" when absent).
    """

    path: Path
    values: dict[int, bytes] = field(repr=False)
    encoding: str
    pixel_offset: int
    pixel_length: int
    file_size: int
    segments: tuple[tuple[int, str | None, tuple[str, str] | None, str], ...]
    table: FrameTable = field(repr=False)
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    referenced_series: tuple[str, ...]
    referenced_sops: tuple[str, ...]
    first_referenced_series: str

    def text(self, tag: int) -> str:
        """A single-valued text element as pydicom gives it ("" when absent); :class:`ValueError` if multi-valued."""
        raw = self.values.get(tag)
        if raw is None:
            return ""
        value = raw.decode(self.encoding).rstrip(" \0")
        if "\\" in value:
            raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is multi-valued")
        return value

    def uid(self, tag: int) -> str:
        """A single UID as pydicom gives it (:meth:`text`, then surrounding whitespace removed)."""
        return self.text(tag).strip()

    def us(self, tag: int) -> int | None:
        """A US value (None when absent); :class:`ValueError` if it is not one 2-byte value."""
        raw = self.values.get(tag)
        if raw is None:
            return None
        if len(raw) != 2:
            raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not one US value")
        return int(_U16.unpack(raw)[0])

    def pixel_bytes(self) -> bytes:
        """The PixelData value, read from the file."""
        with self.path.open("rb") as fh:
            fh.seek(self.pixel_offset)
            data = fh.read(self.pixel_length)
        if len(data) != self.pixel_length:
            raise OSError(f"{self.path}: the file ends inside PixelData")
        return data

    @property
    def SOPClassUID(self) -> str:
        """SOPClassUID (0008,0016), under its DICOM keyword as the segmentation loader reads it."""
        return self.uid(0x00080016)

    @property
    def Manufacturer(self) -> str:
        """Manufacturer (0008,0070), under its DICOM keyword as :func:`netlm_imaging.creator.is_own_output` reads it."""
        return self.text(0x00080070)


def _read_start(path: Path, size: int, want: int) -> bytes:
    with path.open("rb", buffering=0) as fh:
        return fh.read(min(size, want))


def _meta(buf: bytes) -> tuple[str, str, int]:
    """(transfer syntax, media storage SOP class, position after the file meta group)."""
    if buf[128:132] != b"DICM":
        raise _NotFast
    pos = 132
    syntax = sop = ""
    while _U16.unpack_from(buf, pos)[0] == 0x0002:
        tag, _vr, start, length = _element(buf, pos)
        if length == _UNDEFINED:
            raise _NotFast
        if tag == _TRANSFER_SYNTAX:
            syntax = buf[start : start + length].decode("ascii").rstrip("\0 ")
        elif tag == _MEDIA_SOP_CLASS:
            sop = buf[start : start + length].decode("ascii").rstrip("\0 ")
        pos = start + length
    return syntax, sop, pos


def _walk(buf: bytes, pos: int) -> tuple[dict[int, tuple[bytes, int, int]], int, int]:
    """Top-level elements up to PixelData: tag -> (VR, value start, length); PixelData's start and length."""
    fields: dict[int, tuple[bytes, int, int]] = {}
    previous = -1
    end = len(buf)
    while True:
        tag, vr, start, length = _element(buf, pos)
        if tag <= previous or tag >> 16 == 0xFFFE:
            raise _NotFast
        previous = tag
        if tag == _PIXEL_DATA:
            if vr not in (b"OB", b"OW") or length == _UNDEFINED:
                raise _NotFast
            return fields, start, length
        if length == _UNDEFINED and vr != b"SQ":
            raise _NotFast  # a UN of undefined length holds implicit-VR items: pydicom parses it
        fields[tag] = (vr, start, length)
        pos = _after(buf, tag, vr, start, length, end)
        if pos > end:
            raise _NotFast


def _text(buf: bytes, item: dict[int, tuple[bytes, int, int]], tag: int, encoding: str) -> str | None:
    found = item.get(tag)
    if found is None:
        return None
    vr, start, length = found
    if vr == b"SQ":
        raise _NotFast
    value = buf[start : start + length].decode(encoding).rstrip(" \0")
    if "\\" in value:
        raise _NotFast
    return value


def _segments(
    buf: bytes, seq: tuple[bytes, int, int], encoding: str
) -> tuple[tuple[int, str | None, tuple[str, str] | None, str], ...]:
    vr, start, length = seq
    if vr != b"SQ":
        raise _NotFast
    out = []
    for istart, iend in _items(buf, start, length):
        item = _first_item_fields(buf, istart, iend)
        number = item.get(_SEGMENT_NUMBER)
        if number is None or number[0] != b"US" or number[2] != 2:
            raise _NotFast  # the general reader names the item without a SegmentNumber
        code = None
        meaning = ""
        prop = item.get(_PROPERTY_TYPE)
        if prop is not None:
            if prop[0] != b"SQ":
                raise _NotFast
            items = _items(buf, prop[1], prop[2])
            if items:
                c = _first_item_fields(buf, *items[0])
                code = (_text(buf, c, _SCHEME, encoding) or "", _text(buf, c, _CODE_VALUE, encoding) or "")
                meaning = _text(buf, c, _CODE_MEANING, encoding) or ""
        out.append(
            (int(_U16.unpack_from(buf, number[1])[0]), _text(buf, item, _SEGMENT_LABEL, encoding), code, meaning)
        )
    if not out:
        raise _NotFast
    return tuple(out)


def _decimals(buf: bytes, found: tuple[bytes, int, int] | None, n: int) -> tuple[float, ...]:
    if found is None or found[0] != b"DS":
        raise _NotFast
    _vr, start, length = found
    values = buf[start : start + length].decode("ascii").strip(" \0").split("\\")
    if len(values) != n:
        raise _NotFast
    return tuple(float(v) for v in values)


def _shared_plane(
    buf: bytes, fields: dict[int, tuple[bytes, int, int]]
) -> tuple[tuple[float, ...], tuple[float, float]]:
    shared = fields.get(_SHARED_GROUPS)
    if shared is None:
        raise _NotFast
    groups = _sequence_item(buf, *shared)
    orientation = _sequence_item(buf, *groups[_PLANE_ORIENTATION])
    measures = _sequence_item(buf, *groups[_PIXEL_MEASURES])
    iop = _decimals(buf, orientation.get(_ORIENTATION), 6)
    spacing = _decimals(buf, measures.get(_PIXEL_SPACING), 2)
    return iop, (spacing[0], spacing[1])


def read_plain_seg(path: Path) -> PlainSeg | None:
    """The header of a plain BINARY SEG, or ``None`` (parse the file with pydicom).

    Parameters
    ----------
    path : pathlib.Path
        A file of the folder.

    Returns
    -------
    PlainSeg or None
        ``None`` for anything but a native explicit VR little endian BINARY
        Segmentation (SOP class 1.2.840.10008.5.1.4.1.1.66.4) whose needed
        elements are plain (see the module docstring).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    size = os.stat(path).st_size
    if size < 140:
        return None
    buf = _read_start(path, size, _FIRST_READ)
    try:
        syntax, media_sop, pos = _meta(buf)
        if syntax != _EXPLICIT_LE or media_sop != SEG_SOP_CLASS:
            return None
        try:
            fields, pixel_start, pixel_length = _walk(buf, pos)
        except (_NotFast, struct.error, IndexError):
            if len(buf) >= size or size > _MAX_HEADER:
                return None
            buf = _read_start(path, size, min(size, _MAX_HEADER))  # a header longer than the first read
            fields, pixel_start, pixel_length = _walk(buf, pos)
        return _plain(path, buf, fields, pixel_start, pixel_length, size)
    except (_NotFast, KeyError, ValueError, UnicodeDecodeError, struct.error, IndexError, TypeError):
        return None


def _plain(
    path: Path, buf: bytes, fields: dict[int, tuple[bytes, int, int]], pixel_start: int, pixel_length: int, size: int
) -> PlainSeg | None:
    values = {tag: buf[start : start + length] for tag, (vr, start, length) in fields.items() if vr != b"SQ"}
    charset = values.get(_CHARSET, b"").decode("ascii").rstrip(" \0")
    encoding = CHARSETS.get(charset)
    sop = values.get(_SOP_CLASS, b"").decode("ascii").rstrip(" \0")
    if encoding is None or sop != SEG_SOP_CLASS or _MODALITY_LUT in fields or pixel_start + pixel_length > size:
        return None
    rows = _us(values, 0x00280010)
    cols = _us(values, 0x00280011)
    bits = _us(values, 0x00280100)
    seg_type = values.get(0x00620001, b"").decode("ascii").strip(" \0").upper()
    frames_text = values.get(0x00280008, b"1").decode("ascii").strip(" \0") or "1"
    if not frames_text.isdigit() or seg_type != "BINARY" or bits != 1 or not rows or not cols or (rows * cols) % 8:
        return None
    n = int(frames_text)
    if n < 1:
        return None
    per_frame = fields.get(_PER_FRAME)
    if per_frame is None or per_frame[0] != b"SQ" or pixel_length < n * rows * cols // 8:
        return None
    table = frame_table_from_bytes(buf, per_frame[1], per_frame[2], n)
    if table is None:
        return None
    refs = fields.get(_REFERENCED_SERIES)
    series: list[str] = []
    sops: list[str] = []
    first = ""
    if refs is not None:
        if refs[0] != b"SQ":
            return None
        found = referenced_from_bytes(buf, refs[1], refs[2])
        if found is None:
            return None
        series, sops = found
        items = _items(buf, refs[1], refs[2])
        if items:
            first = _uid(buf, _first_item_fields(buf, *items[0]).get(_SERIES_UID))
    if not sops:
        return None  # the general scan reads the per-frame source images instead
    sources = fields.get(_SOURCE_IMAGES)
    if sources is not None:  # the top-level Source Image Sequence, after the referenced instances
        if sources[0] != b"SQ":
            return None
        for istart, iend in _items(buf, sources[1], sources[2]):
            value = _uid(buf, _first_item_fields(buf, istart, iend).get(_REFERENCED_SOP))
            if value:
                sops.append(value)
    orientation, spacing = _shared_plane(buf, fields)
    segments = fields.get(_SEGMENT_SEQUENCE)
    if segments is None:
        return None
    return PlainSeg(
        path=path,
        values=values,
        encoding=encoding,
        pixel_offset=pixel_start,
        pixel_length=pixel_length,
        file_size=size,
        segments=_segments(buf, segments, encoding),
        table=table,
        orientation=orientation,
        pixel_spacing=spacing,
        referenced_series=tuple(series),
        referenced_sops=tuple(sops),
        first_referenced_series=first,
    )


def _us(values: dict[int, bytes], tag: int) -> int:
    raw = values.get(tag)
    if raw is None or len(raw) != 2:
        raise _NotFast
    return int(_U16.unpack(raw)[0])
