"""Whether a DICOM file ends where its own element lengths say it does (a copy cut short).

pydicom reads a file cut inside a sequence without a word: a value of declared
length gets the bytes that are left, an undefined-length sequence ends at the end
of the file. Objects without pixel data (an RT Structure Set) then lose their
last ROIs or contours silently. :func:`cut_short` walks the element lengths
(not the values) of the data set and says whether the file ends before them.
"""

from __future__ import annotations

import struct
from pathlib import Path

# the element encoding is the fast header reader's (_dicom_fast); this walker checks bounds instead of
# giving up where the fast path would, so it keeps its own loop
from ._dicom_fast import _ITEM, _ITEM_END, _LONG_VRS, _SEQ_END
from ._dicom_fast import _UNDEFINED_LENGTH as _UNDEFINED

__all__ = ["cut_short"]

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_MAX_DEPTH = 64


class _Short(Exception):
    """The file ends before a declared length."""


class _Odd(Exception):
    """Something this walker does not judge (big endian, deflate, an unknown VR)."""


def _element(data: bytes, pos: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR, value length, value position) of the element at ``pos``."""
    if pos + 8 > len(data):
        raise _Short
    group, elem = struct.unpack_from("<HH", data, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE or not explicit:
        return tag, None, struct.unpack_from("<I", data, pos + 4)[0], pos + 8
    vr = data[pos + 4 : pos + 6]
    if not vr.isalpha() or not vr.isupper():
        raise _Odd
    if vr in _LONG_VRS:
        if pos + 12 > len(data):
            raise _Short
        return tag, vr, struct.unpack_from("<I", data, pos + 8)[0], pos + 12
    return tag, vr, struct.unpack_from("<H", data, pos + 6)[0], pos + 8


def _skip_value(data: bytes, pos: int, length: int, explicit: bool, depth: int) -> int:
    """Position after a value of ``length`` (undefined: its items up to the sequence delimiter)."""
    if length != _UNDEFINED:
        end = pos + length
        if end > len(data):
            raise _Short
        return end
    if depth > _MAX_DEPTH:
        raise _Odd
    while True:
        tag, _, item_length, pos = _element(data, pos, explicit)
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Odd
        if item_length != _UNDEFINED:
            pos = _skip_value(data, pos, item_length, explicit, depth + 1)
            continue
        while True:  # an item of undefined length: its elements up to the item delimiter
            tag, vr, value_length, pos = _element(data, pos, explicit)
            if tag == _ITEM_END:
                break
            pos = _skip_value(data, pos, value_length, explicit and vr != b"UN", depth + 1)


def cut_short(path: str | Path) -> bool | None:
    """Whether ``path`` ends before the end its data set's element lengths declare.

    Parameters
    ----------
    path : str or Path
        A Part-10 file (preamble, ``DICM``, file meta) in implicit or explicit VR little endian.

    Returns
    -------
    bool or None
        True when cut short, False when every element ends within the file; None when the walker
        does not judge the file (no preamble, big endian, deflate, an unexpected encoding).
    """
    data = Path(path).read_bytes()
    if data[128:132] != b"DICM":
        return None
    try:
        pos = 132
        syntax = ""
        while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
            tag, vr, length, vpos = _element(data, pos, True)
            if tag == 0x00020010:
                syntax = data[vpos : vpos + length].rstrip(b"\0 ").decode("ascii", "replace")
            pos = _skip_value(data, vpos, length, True, 0)
        if syntax not in (_EXPLICIT_LE, _IMPLICIT_LE):
            return None
        explicit = syntax == _EXPLICIT_LE
        while pos < len(data):
            if len(data) - pos < 8:
                return True
            tag, vr, length, vpos = _element(data, pos, explicit)
            pos = _skip_value(data, vpos, length, explicit and vr != b"UN", 0)
        return False
    except _Short:
        return True
    except (_Odd, struct.error, UnicodeDecodeError):
        return None
