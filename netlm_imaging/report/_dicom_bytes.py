"""Explicit VR Little Endian encoding of the few element types the DICOM writers emit in bulk.

The derived SEG holds one per-frame functional group item per frame (hundreds)
and references every source image; building each as a pydicom Dataset and
writing it with pydicom costs about 0.3 ms per item. These helpers encode such
items straight to bytes (tags must be passed in ascending order), and
:func:`part10` splices them into the file pydicom writes for the rest of the
object (Explicit VR Little Endian).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
    return element(tag, vr, joined.encode("ascii"))


def ds_number(value: float) -> str:
    """A DS string as highdicom writes numbers (pydicom ``DS(value, auto_format=True)``)."""
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


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


def part10(ds: Any, encoded: Mapping[int, bytes]) -> bytes:
    """A Part-10 file (Explicit VR Little Endian) of ``ds`` with the already encoded elements ``encoded`` spliced in.

    ``encoded`` maps a tag to its whole encoded element (:func:`element`, :func:`sequence`); pydicom
    writes the file meta and the elements of ``ds`` between them, so the bulky elements are never
    pydicom objects (pydicom's writer would parse raw elements back to datasets).
    """
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    elements = sorted(ds, key=lambda e: e.tag)
    start = 0
    for tag in [*sorted(encoded), None]:
        part = Dataset()
        part.set_original_encoding(False, True)
        while start < len(elements) and (tag is None or elements[start].tag < tag):
            if tag is not None and elements[start].tag == tag:
                raise ValueError(f"element {tag:08X} given twice")
            part.add(elements[start])
            start += 1
        write_dataset(fp, part)
        if tag is not None:
            if start < len(elements) and elements[start].tag == tag:
                raise ValueError(f"element {tag:08X} given twice")
            fp.write(encoded[tag])
    return bytes(fp.getvalue())
