"""Explicit VR Little Endian encoding of the few element types the DICOM writers emit in bulk.

The derived SEG holds one per-frame functional group item per frame (hundreds)
and references every source image; building each as a pydicom Dataset and
writing it with pydicom costs about 0.3 ms per item. These helpers encode such
items straight to bytes (tags must be passed in ascending order), and
:func:`part10` splices them into the file pydicom writes for the rest of the
object (Explicit VR Little Endian).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["code_item", "ds_number", "element", "item", "part10", "sequence", "tag_of", "text", "uid", "ul", "us"]

_LONG = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM = struct.Struct("<HHI")


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One data element; the value is padded to even length (UI and OB with NUL, text with a space)."""
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    if vr in _LONG:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def text(tag: int, vr: str, value: str | Sequence[str]) -> bytes:
    """A string element (CS, DS, IS, LO, SH, ...); a sequence of strings is backslash-joined."""
    joined = value if isinstance(value, str) else "\\".join(value)
    return element(tag, vr, joined.encode("latin-1"))  # byte-transparent for values read as latin-1


def ds_number(value: float) -> str:
    """A DS string as highdicom writes numbers: pydicom's ``format_number_as_ds`` (at most 16 characters).

    Written out here so the writers need not import pydicom; tests/test_seg_writer.py compares it
    with pydicom's on many values.
    """
    val = float(value)
    if not math.isfinite(val):
        raise ValueError(f"cannot encode {val} as a DICOM decimal string")
    text = str(val)
    if len(text) <= 16:
        return text
    logval = math.log10(abs(val))
    sign = 1 if val < 0.0 else 0
    if logval < -4 or logval >= 14 - sign:
        digits = 10 - sign
        text = f"{val:.{digits}e}"
        return text if len(text) <= 16 else f"{val:.{digits - 1}e}"
    digits = 14 - sign - math.floor(logval) if logval >= 1.0 else 14 - sign
    return f"{val:.{digits}f}"


def uid(tag: int, value: str) -> bytes:
    """A UI element."""
    return element(tag, "UI", value.encode("ascii"))


def us(tag: int, value: int) -> bytes:
    """A US element with one value."""
    return element(tag, "US", struct.pack("<H", value))


def ul(tag: int, values: Iterable[int]) -> bytes:
    """A UL element."""
    vals = list(values)
    return element(tag, "UL", struct.pack(f"<{len(vals)}I", *vals))


def tag_of(encoded: bytes) -> int:
    """The tag of an encoded element."""
    group, number = struct.unpack("<HH", encoded[:4])
    return int(group) << 16 | int(number)


def item(body: bytes) -> bytes:
    """One sequence item of defined length."""
    return _ITEM.pack(0xFFFE, 0xE000, len(body)) + body


def sequence(tag: int, items: Iterable[bytes]) -> bytes:
    """An SQ element of defined length holding the encoded item bodies ``items``."""
    return element(tag, "SQ", b"".join(item(b) for b in items))


def code_item(value: str, scheme: str, meaning: str) -> bytes:
    """The body of a code sequence item (Code Value, Coding Scheme Designator, Code Meaning)."""
    return text(0x00080100, "SH", value) + text(0x00080102, "SH", scheme) + text(0x00080104, "LO", meaning)


#: Implementation Class UID and Version Name of files the tool encodes itself.
IMPLEMENTATION_UID = (
    "1.2.826.0.1.3680043.8.498.11462032310908509795550063089386202912"  # from "netlm-imaging implementation"
)
IMPLEMENTATION_NAME = "NETLM"


def part10(sop_class: str, sop_instance: str, elements: Mapping[int, bytes]) -> bytes:
    """A Part-10 file (Explicit VR Little Endian): preamble, file meta, then the encoded ``elements`` by tag.

    ``elements`` maps a tag to its whole encoded element (:func:`element`, :func:`sequence`, or an
    element copied from a source file).
    """
    meta = (
        element(0x00020001, "OB", b"\0\1")
        + uid(0x00020002, sop_class)
        + uid(0x00020003, sop_instance)
        + uid(0x00020010, "1.2.840.10008.1.2.1")
        + uid(0x00020012, IMPLEMENTATION_UID)
        + text(0x00020013, "SH", IMPLEMENTATION_NAME)
    )
    head = b"\0" * 128 + b"DICM" + element(0x00020000, "UL", struct.pack("<I", len(meta))) + meta
    return head + b"".join(elements[t] for t in sorted(elements))
