"""Parsers for DICOM value representations used by several layers (DA, TM, DT, DS).

A base module (like :mod:`netlm_imaging.volume`): io, measure and classify may
all import it. Every parser returns ``None`` for a missing or malformed value
instead of raising, so the caller decides what a missing value means.

Examples
--------
>>> parse_time("101500.25")
datetime.time(10, 15, 0, 250000)
>>> parse_time("10:15")
datetime.time(10, 15)
>>> parse_date("20260131")
datetime.date(2026, 1, 31)
>>> parse_datetime("20260131101500+0100")
datetime.datetime(2026, 1, 31, 10, 15)
>>> seconds_of_day(parse_time("000130"))
90.0
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from typing import Any

__all__ = ["parse_date", "parse_datetime", "parse_float", "parse_time", "seconds_of_day"]


def parse_float(value: Any) -> float | None:
    """A finite float from a DS/IS/FD value (bytes or text allowed), else ``None``."""
    if value is None:
        return None
    try:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace").strip("\x00 ")
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def parse_date(text: str | None) -> date | None:
    """DICOM DA ``YYYYMMDD`` (also ``YYYY.MM.DD`` and ``YYYY-MM-DD``)."""
    if not text:
        return None
    t = str(text).strip().replace(".", "").replace("-", "")
    if len(t) < 8 or not t[:8].isdigit():
        return None
    try:
        return date(int(t[:4]), int(t[4:6]), int(t[6:8]))
    except ValueError:
        return None


def parse_time(text: str | None) -> time | None:
    """DICOM TM (``HHMMSS.FFFFFF``, also ``HH:MM:SS`` and partial forms)."""
    if not text:
        return None
    t = str(text).strip().replace(":", "")
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", t)
    if not m:
        return None
    hh, mm, ss, frac = m.groups()
    try:
        return time(int(hh), int(mm or 0), int(ss or 0), int((frac or "0").ljust(6, "0")[:6]))
    except ValueError:
        return None


def parse_datetime(text: str | None) -> datetime | None:
    """DICOM DT ``YYYYMMDDHHMMSS.FFFFFF&ZZXX``; the UTC offset is dropped (local times compared)."""
    if not text:
        return None
    t = re.sub(r"[+-]\d{4}$", "", str(text).strip())
    d = parse_date(t[:8])
    if d is None:
        return None
    tm = parse_time(t[8:]) if len(t) > 8 else time(0, 0)
    if tm is None:
        return None
    return datetime.combine(d, tm)


def seconds_of_day(t: time) -> float:
    """Seconds since midnight of a :class:`datetime.time`."""
    return t.hour * 3600.0 + t.minute * 60.0 + t.second + t.microsecond / 1e6
