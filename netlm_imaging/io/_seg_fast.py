"""The common DICOM SEG decoded in one pass: per-frame headers from their raw bytes, frames unpacked in blocks.

Private helper of :mod:`netlm_imaging.io.dicom_seg`. Most SEGs met in practice
(highdicom, dcmqi, Slicer, TotalSegmentator exports) are BINARY, native
(uncompressed) explicit VR little endian, with one orientation and pixel
spacing in the Shared Functional Groups and, per frame, only a plane position,
a segment number and the source image. For those, :func:`read_frame_table`
reads the Per-frame Functional Groups Sequence from its raw bytes (no pydicom
dataset per frame: pydicom's parse costs ~0.3 ms a frame) and
:func:`decode_binary` unpacks the bit-packed frames a block at a time and
writes each into its slice of the segment's volume, by slice index.

Anything else (another transfer syntax, FRACTIONAL or label-map SEGs,
per-frame orientation, a frame off the reference grid, missing positions,
unexpected encodings) returns ``None`` and the caller takes the general
frame-by-frame path, which gives the same arrays and all the messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import remember_nonzero_bbox, sparse_zeros

__all__ = [
    "FrameTable",
    "decode_binary",
    "frame_table_from_bytes",
    "read_frame_table",
    "referenced_from_bytes",
    "referenced_instances",
]

_PER_FRAME = 0x52009230
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PLANE_POSITION = 0x00209113
_IMAGE_POSITION = 0x00200032
_SEGMENT_IDENT = 0x0062000A
_SEGMENT_NUMBER = 0x0062000B
_PLANE_ORIENTATION = 0x00209116
_PIXEL_MEASURES = 0x00289110
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
#: VRs with a 2-byte length (PS3.5 7.1.2); any other VR is unknown.
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
     b"ST", b"TM", b"UI", b"UL", b"US"}
)  # fmt: skip
_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
#: Frames unpacked at once (bounds the transient uint8 copy: 64 x 512 x 512 = 16 MiB).
_BLOCK_FRAMES = 64
_EXPLICIT_LE = "1.2.840.10008.1.2.1"


class _NotFast(Exception):
    """Something this reader does not handle: take the general path."""


@dataclass(frozen=True)
class FrameTable:
    """Per frame: plane position (LPS mm) and referenced segment number."""

    positions: np.ndarray  # (n, 3) float64
    segments: np.ndarray  # (n,) int


def _element(buf: bytes, pos: int) -> tuple[int, bytes, int, int]:
    """(tag, VR, value start, value length) of the explicit VR LE element at ``pos``."""
    group, elem = _TAG.unpack_from(buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item / delimiters: no VR
        return tag, b"", pos + 8, _U32.unpack_from(buf, pos + 4)[0]
    vr = buf[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        return tag, vr, pos + 12, _U32.unpack_from(buf, pos + 8)[0]
    if vr not in _SHORT_VRS:
        raise _NotFast  # an unknown VR: pydicom refuses the file, or reads it its own way
    return tag, vr, pos + 8, _U16.unpack_from(buf, pos + 6)[0]


def _skip_undefined(buf: bytes, pos: int, end: int) -> int:
    """Position after the sequence delimiter of an undefined-length sequence starting at ``pos``."""
    while pos < end:
        tag, _vr, start, length = _element(buf, pos)
        if tag == _SEQ_END:
            return start
        if tag != _ITEM:
            raise _NotFast
        pos = _skip_item(buf, start, length, end)
    raise _NotFast


def _skip_item(buf: bytes, start: int, length: int, end: int) -> int:
    if length != _UNDEFINED:
        if start + length > end:
            raise _NotFast  # an item longer than its sequence: pydicom decides what the file holds
        return start + length
    pos = start
    while pos < end:
        tag, vr, vstart, vlen = _element(buf, pos)
        if tag == _ITEM_END:
            return vstart
        pos = _after(buf, tag, vr, vstart, vlen, end)
    raise _NotFast


def _after(buf: bytes, tag: int, vr: bytes, start: int, length: int, end: int) -> int:
    if length != _UNDEFINED:
        return start + length
    if vr == b"SQ" or (vr == b"UN" and tag != 0x7FE00010):
        return _skip_undefined(buf, start, end)
    raise _NotFast


def _items(buf: bytes, start: int, length: int) -> list[tuple[int, int]]:
    """(start, end) of the items of a sequence value."""
    end = len(buf) if length == _UNDEFINED else start + length
    out = []
    pos = start
    while pos < end:
        tag, _vr, vstart, vlen = _element(buf, pos)
        if tag == _SEQ_END:
            break
        if tag != _ITEM:
            raise _NotFast
        stop = _skip_item(buf, vstart, vlen, end)
        out.append((vstart, stop - (8 if vlen == _UNDEFINED else 0)))
        pos = stop
    if length != _UNDEFINED and pos != end:
        raise _NotFast  # items that do not fill their sequence exactly
    return out


def _first_item_fields(buf: bytes, start: int, end: int) -> dict[int, tuple[bytes, int, int]]:
    """Elements of an item dataset: tag -> (VR, value start, length); sequences are skipped."""
    fields = {}
    pos = start
    previous = -1
    while pos < end:
        tag, vr, vstart, vlen = _element(buf, pos)
        if tag == _ITEM_END:
            break
        if tag <= previous:
            raise _NotFast  # out of order or repeated: not a plain item
        previous = tag
        fields[tag] = (vr, vstart, vlen)
        pos = _after(buf, tag, vr, vstart, vlen, end)
    if pos > end:
        raise _NotFast  # an element running past its item
    return fields


def _sequence_item(buf: bytes, vr: bytes, start: int, length: int) -> dict[int, tuple[bytes, int, int]]:
    if vr != b"SQ":
        raise _NotFast
    items = _items(buf, start, length)
    if len(items) != 1:
        raise _NotFast
    return _first_item_fields(buf, *items[0])


def _raw_value(ds: Any, tag: int, path: Path) -> bytes:
    raw = ds._dict.get(tag)
    value = getattr(raw, "value", None)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
    if value is not None or tell is None or length is None or length == _UNDEFINED:
        raise _NotFast  # already parsed by pydicom, or not a deferred raw element
    with open(path, "rb") as fh:
        fh.seek(int(tell))
        data = fh.read(int(length))
    if len(data) != int(length):
        raise _NotFast
    return data


def read_frame_table(ds: Any, path: Path) -> FrameTable | None:
    """Plane positions and segment numbers of every frame of a plain BINARY SEG, or ``None`` (general path).

    Parameters
    ----------
    ds : pydicom.Dataset
        The SEG header, with the Per-frame Functional Groups Sequence not yet
        parsed (deferred or raw), as :func:`pydicom.dcmread` leaves it.
    path : Path
        The file (deferred values are read from it).
    """
    try:
        meta = getattr(ds, "file_meta", None)
        if meta is None or str(meta.get("TransferSyntaxUID", "")) != _EXPLICIT_LE:
            return None
        if str(ds.get("SegmentationType", "")).upper() != "BINARY" or int(ds.get("BitsAllocated", 0) or 0) != 1:
            return None
        n = int(ds.get("NumberOfFrames", 1) or 1)
        rows, cols = int(ds.Rows), int(ds.Columns)
        if (rows * cols) % 8:
            return None
        buf = _raw_value(ds, _PER_FRAME, path)
        return frame_table_from_bytes(buf, 0, len(buf), n)
    except (_NotFast, KeyError, ValueError, UnicodeDecodeError, struct.error, IndexError, TypeError, AttributeError):
        return None


def frame_table_from_bytes(buf: bytes, start: int, length: int, n: int) -> FrameTable | None:
    """:func:`read_frame_table` from the raw value of the Per-frame Functional Groups Sequence at ``buf[start:]``.

    ``length`` may be undefined (``0xFFFFFFFF``); ``n`` is NumberOfFrames. ``None``: use the general path.
    """
    try:
        items = _items(buf, start, length)
        if len(items) != n:
            return None
        positions = np.empty((n, 3), dtype=np.float64)
        segments = np.empty(n, dtype=np.int64)
        for f, (istart, iend) in enumerate(items):
            fields = _first_item_fields(buf, istart, iend)
            if _PLANE_ORIENTATION in fields or _PIXEL_MEASURES in fields:
                return None  # per-frame orientation or spacing: the general path checks each frame
            pos = _sequence_item(buf, *fields[_PLANE_POSITION])
            vr, vstart, vlen = pos[_IMAGE_POSITION]
            if vr != b"DS":
                return None
            values = buf[vstart : vstart + vlen].decode("ascii").strip(" \0").split("\\")
            if len(values) != 3:
                return None
            positions[f] = [float(v) for v in values]
            ident = _sequence_item(buf, *fields[_SEGMENT_IDENT])
            vr, vstart, vlen = ident[_SEGMENT_NUMBER]
            if vr != b"US" or vlen != 2:
                return None
            segments[f] = _U16.unpack_from(buf, vstart)[0]
        return FrameTable(positions, segments)
    except (_NotFast, KeyError, ValueError, UnicodeDecodeError, struct.error, IndexError, TypeError):
        return None


def decode_binary(
    pixel_data: bytes,
    table: FrameTable,
    rows: int,
    cols: int,
    reference: Any,
    wanted: set[int],
    orientation: np.ndarray,
    spacing: tuple[float, float],
    tolerance: float,
    order: str,
) -> dict[int, np.ndarray] | None:
    """Place every frame of a plain BINARY SEG on the reference grid; ``None`` when a frame needs the general path.

    The SEG pixel grid must be the reference's in-plane grid (axes along +i/+j,
    same spacing, frame origins on voxel centres, whole frames inside the
    grid, slices on reference slices within ``tolerance`` voxels).

    Returns
    -------
    dict or None
        Segment number -> boolean volume (written only where frames have
        segmented pixels; the rest stays calloc'ed zero pages). A segment is
        in the dict only when it has at least one segmented pixel. When the
        columns fill whole bytes (Columns % 8 == 0), the segmented rows of a
        frame are found on its packed bytes and only those rows are unpacked.
        The arrays are read-only, and the box of each one's segmented voxels is recorded
        (:func:`~netlm_imaging.volume.remember_nonzero_bbox`), so that measuring does not scan them again.
    """
    n = len(table.segments)
    frame_bytes = rows * cols // 8
    if len(pixel_data) < n * frame_bytes:
        return None
    inv = np.linalg.inv(reference.affine[:3, :3])
    step_c = inv @ (np.asarray(orientation[:3], float) * spacing[1])
    step_r = inv @ (np.asarray(orientation[3:6], float) * spacing[0])
    exact_c = float(np.linalg.norm(step_c - [1.0, 0.0, 0.0])) * max(cols - 1, 1) <= tolerance
    exact_r = float(np.linalg.norm(step_r - [0.0, 1.0, 0.0])) * max(rows - 1, 1) <= tolerance
    if not (exact_c and exact_r):
        return None  # transposed, flipped or resampled frames: the general path handles (or refuses) them
    p0 = reference.lps_to_index(table.positions)
    r0 = np.round(p0)
    if np.abs(p0 - r0).max() > tolerance:
        return None
    idx = r0.astype(np.int64)
    ni, nj, nk = reference.shape
    if (idx[:, 0] != 0).any() or (idx[:, 1] != 0).any() or (cols, rows) != (ni, nj):
        return None
    if ((idx[:, 2] < 0) | (idx[:, 2] >= nk)).any():
        return None
    keep = np.flatnonzero(np.isin(table.segments, sorted(wanted)))
    arrays: dict[int, np.ndarray] = {}
    boxes: dict[int, list[int]] = {}  # segment -> [i0, i1, j0, j1, k0, k1] of the pixels written
    buf = np.frombuffer(pixel_data, dtype=np.uint8, count=n * frame_bytes).reshape(n, frame_bytes)
    if cols % 8 == 0:  # every row starts on a byte: find the segmented rows on the packed bytes, unpack only them
        packed = buf.reshape(n, rows, cols // 8)
        for f in keep:
            present = np.flatnonzero(packed[f].any(axis=1))
            if present.size == 0:
                continue
            a0, a1 = int(present[0]), int(present[-1]) + 1
            bits = np.unpackbits(packed[f, a0:a1], axis=1, bitorder="little")
            # the segmented columns from the OR of the packed rows (cols / 8 bytes, not rows x cols values)
            cols_set = np.unpackbits(np.bitwise_or.reduce(packed[f, a0:a1], axis=0), bitorder="little")
            _place(arrays, boxes, int(table.segments[f]), reference.shape, order, bits, a0, int(idx[f, 2]), cols_set)
    else:
        for lo in range(0, len(keep), _BLOCK_FRAMES):
            block = keep[lo : lo + _BLOCK_FRAMES]
            frames = np.unpackbits(buf[block], axis=1, bitorder="little").reshape(len(block), rows, cols)
            rows_any: np.ndarray = np.asarray(frames.any(axis=2))
            for b, f in enumerate(block):
                present = np.flatnonzero(rows_any[b])
                if present.size == 0:
                    continue
                a0, a1 = int(present[0]), int(present[-1]) + 1
                seg = int(table.segments[f])
                _place(arrays, boxes, seg, reference.shape, order, frames[b, a0:a1, :], a0, int(idx[f, 2]))
    for seg, arr in arrays.items():  # no writeable reference is kept: the recorded boxes stay true
        arr.flags.writeable = False
        i0, i1, j0, j1, k0, k1 = boxes[seg]
        remember_nonzero_bbox(arr, (slice(i0, i1), slice(j0, j1), slice(k0, k1)))
    return arrays


def _place(
    arrays: dict[int, np.ndarray],
    boxes: dict[int, list[int]],
    seg: int,
    shape: tuple[int, int, int],
    order: str,
    bits: np.ndarray,
    a0: int,
    k: int,
    cols_set: np.ndarray | None = None,
) -> None:
    """OR the frame rows ``a0 ..`` (``bits``: 0/1 uint8, rows x columns, at least one set per row range) into plane
    ``k`` of segment ``seg``'s volume (allocated sparse at its first frame), and widen its box.

    Frame ``[r, c]`` goes to voxel ``[i = c, j = r]``; only the rows holding segmented pixels are written.
    ``cols_set`` (per column, whether any of those rows has it set) is computed from ``bits`` when not given.
    """
    target = arrays.get(seg)
    if target is None:
        target = arrays[seg] = sparse_zeros(shape, bool, order)
    a1 = a0 + bits.shape[0]
    dst = target[:, a0:a1, k]
    box = boxes.get(seg)
    if box is None or not box[4] <= k < box[5]:  # a plane no frame wrote yet: its zero pages are not read
        dst[...] = bits.T.view(bool)
    else:
        np.logical_or(dst, bits.T.view(bool), out=dst)
    cols = np.flatnonzero(bits.any(axis=0) if cols_set is None else cols_set)
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    box = boxes.setdefault(seg, [c0, c1, a0, a1, k, k + 1])  # frames come in any slice order
    box[:] = [min(box[0], c0), max(box[1], c1), min(box[2], a0), max(box[3], a1), min(box[4], k), max(box[5], k + 1)]


_REFERENCED_SERIES = 0x00081115
_SERIES_UID = 0x0020000E
_REFERENCED_INSTANCES = 0x0008114A
_REFERENCED_SOP_INSTANCE = 0x00081155


def _uid(buf: bytes, field: tuple[bytes, int, int] | None) -> str:
    if field is None:
        return ""
    vr, start, length = field
    if vr != b"UI":
        raise _NotFast
    value = buf[start : start + length].decode("ascii").rstrip("\0 ")
    if "\\" in value:
        raise _NotFast  # several values where one UID belongs: pydicom decides what it reads
    return value.strip()  # as pydicom's UID: surrounding whitespace removed


def referenced_instances(ds: Any) -> tuple[list[str], list[str]] | None:
    """(series UIDs, SOP instance UIDs) of the Referenced Series Sequence, from its raw bytes; ``None``: use pydicom.

    A SEG lists every source instance there (hundreds of items): pydicom
    would build a dataset per item.
    """
    try:
        meta = getattr(ds, "file_meta", None)
        path = getattr(ds, "filename", None)
        if meta is None or str(meta.get("TransferSyntaxUID", "")) != _EXPLICIT_LE or not isinstance(path, str):
            return None
        if _REFERENCED_SERIES not in ds._dict:
            return [], []
        buf = _raw_value(ds, _REFERENCED_SERIES, Path(path))
        return referenced_from_bytes(buf, 0, len(buf))
    except (_NotFast, KeyError, ValueError, TypeError, AttributeError, OSError):
        return None


def referenced_from_bytes(buf: bytes, start: int, length: int) -> tuple[list[str], list[str]] | None:
    """:func:`referenced_instances` from the raw Referenced Series Sequence value at ``buf[start:]``."""
    try:
        series: list[str] = []
        sops: list[str] = []
        for istart, iend in _items(buf, start, length):
            fields = _first_item_fields(buf, istart, iend)
            uid = _uid(buf, fields.get(_SERIES_UID))
            if uid:
                series.append(uid)
            inst = fields.get(_REFERENCED_INSTANCES)
            if inst is None:
                continue
            if inst[0] != b"SQ":
                return None
            for jstart, jend in _items(buf, inst[1], inst[2]):
                sop = _uid(buf, _first_item_fields(buf, jstart, jend).get(_REFERENCED_SOP_INSTANCE))
                if sop:
                    sops.append(sop)
        return series, sops
    except (_NotFast, KeyError, ValueError, UnicodeDecodeError, struct.error, IndexError, TypeError):
        return None
