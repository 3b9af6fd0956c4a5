"""Reading the elements of a PET header that the SUV conversion needs (:mod:`netlm_imaging.io.suv`).

Text values, private elements by their creator, and the first item of the Radiopharmaceutical
Information Sequence (0054,0016): the small accessors every part of the conversion shares.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GE_CREATOR", "PHILIPS_CREATOR", "private_value", "radiopharm", "str_value", "tag_text"]

#: Private creator of the GE PET block holding the scan DateTime (0009,100d).
GE_CREATOR = "GEMS_PETD_01"
#: Private creator of the Philips block holding the SUV and activity concentration scale factors (7053,10xx).
PHILIPS_CREATOR = "Philips PET Private Group"


def tag_text(ds: Any, keyword: str) -> str | None:
    """The value of ``keyword`` as stripped text, None when absent or empty."""
    val = ds.get(keyword)
    if val is None:
        return None
    s = str(val).strip()
    return s or None


def private_value(ds: Any, group: int, creator: str, offset: int) -> Any:
    """Value of a private element by creator, falling back to the conventional ``(gggg,10xx)`` tag."""
    try:
        block = ds.private_block(group, creator)
        if offset in block:
            return block[offset].value
    except (KeyError, ValueError):
        pass
    elem = ds.get((group, 0x1000 + offset))
    return None if elem is None else elem.value


def radiopharm(ds: Any) -> Any:
    """The first item of the Radiopharmaceutical Information Sequence (0054,0016), None without one."""
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return None
    return seq[0]


def str_value(value: Any) -> str | None:
    """A private element's value as text (bytes decoded as ASCII, padding stripped), None for None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    return str(value)
