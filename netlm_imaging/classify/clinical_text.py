"""Clinical values and column names as people write them: units, "G2", "ECOG 1", "yes", "NA".

:mod:`netlm_imaging.classify.clinical` validates the fields; this module only reads the
spellings a spreadsheet or a hand-written sidecar holds, and refuses what is ambiguous:

- a column / key name is matched case-insensitively with spaces, hyphens and a unit in
  brackets folded (``"Weight (kg)"`` -> ``weight_kg``, ``"Ki-67 %"`` -> ``ki67_percent``),
  and through :data:`FIELD_ALIASES` (``ecog`` -> ``performance_status``);
- a number may carry its unit (``"72 kg"``, ``"160 lb"``, ``"1.75 m"``, ``"25 %"``): it is
  converted to the field's unit (:data:`UNITS`); a unit of another quantity is refused;
- a grade may be written ``G2`` / ``grade 2`` / ``NET G2``; an ECOG status ``ECOG 1`` / ``PS 1``;
- words that mean "not known" (:data:`MISSING_WORDS`, e.g. ``NA``, ``unknown``) are an empty cell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

__all__ = [
    "CONDITION_COLUMNS",
    "FIELD_ALIASES",
    "MISSING_WORDS",
    "UNITS",
    "Interval",
    "canonical_field",
    "is_missing_text",
    "number_with_unit",
    "parse_interval",
    "strip_prefix",
]

#: Cell texts that mean "not known" (compared lower-case, stripped): the field is not given.
MISSING_WORDS = frozenset({"na", "n/a", "n.a.", "nan", "unknown", "unk", "not known", "not available", "?", "-", "--"})

#: Field -> unit word (lower-case) -> factor to the field's unit. The first entry is the field's own unit.
UNITS: Mapping[str, Mapping[str, float]] = {
    "height_cm": {
        "cm": 1.0,
        "m": 100.0,
        "mm": 0.1,
        "in": 2.54,
        "inch": 2.54,
        "inches": 2.54,
        "ft": 30.48,
        "feet": 30.48,
    },
    "weight_kg": {"kg": 1.0, "kgs": 1.0, "g": 0.001, "lb": 0.45359237, "lbs": 0.45359237, "pounds": 0.45359237},
    "ki67_percent": {"%": 1.0, "percent": 1.0, "pct": 1.0},
}

#: Liver-condition flag columns (true/false): a true flag gives that liver condition.
CONDITION_COLUMNS = ("chemotherapy", "steatosis", "fibrosis", "cirrhosis")

#: Folded column name -> field (the field names themselves are matched too).
FIELD_ALIASES: Mapping[str, str] = {
    "symptom": "symptoms",
    "symptomatic": "symptoms",
    "who_grade": "grade",
    "tumour_grade": "grade",
    "tumor_grade": "grade",
    "ki67": "ki67_percent",
    "ki_67": "ki67_percent",
    "ki_67_percent": "ki67_percent",
    "ki67_index": "ki67_percent",
    "ki67_pct": "ki67_percent",
    "extrahepatic": "extrahepatic_disease",
    "extrahepatic_metastases": "extrahepatic_disease",
    "ehd": "extrahepatic_disease",
    "primary_tumour_resected": "primary_resected",
    "primary_tumor_resected": "primary_resected",
    "height": "height_cm",
    "weight": "weight_kg",
    "ecog": "performance_status",
    "ecog_ps": "performance_status",
    "ps": "performance_status",
    "who_ps": "performance_status",
    "ecog_performance_status": "performance_status",
    "gender": "sex",
    "primary": "primary_site",
    "primary_tumour_site": "primary_site",
    "primary_tumor_site": "primary_site",
    "primary_location": "primary_site",
    "chemo": "chemotherapy",
}

#: Folded column names whose bare numbers are in another unit than the field's (``Height (m)``).
_COLUMN_UNITS: Mapping[str, tuple[str, str]] = {"height_m": ("height_cm", "m"), "weight_lb": ("weight_kg", "lb")}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z%]*\.?)\s*$")


def _fold(name: str) -> str:
    s = name.strip().lower().replace("%", " percent ")
    s = re.sub(r"[^a-z0-9]+", "_", s)
    return s.strip("_")


def canonical_field(name: str, known: tuple[str, ...]) -> tuple[str, str | None]:
    """The field a column / key names, and the unit its bare numbers are in (None: the field's own).

    Returns ``(name, None)`` unchanged when nothing matches (the caller names it unknown).

    Examples
    --------
    >>> known = ("weight_kg", "height_cm", "ki67_percent", "performance_status")
    >>> canonical_field("Weight (kg)", known), canonical_field("Ki-67 (%)", known)
    (('weight_kg', None), ('ki67_percent', None))
    >>> canonical_field("ECOG", known), canonical_field("Height (m)", known)
    (('performance_status', None), ('height_cm', 'm'))
    """
    folded = _fold(name)
    if folded in known or folded in CONDITION_COLUMNS:
        return folded, None
    if folded in _COLUMN_UNITS:
        return _COLUMN_UNITS[folded]
    alias = FIELD_ALIASES.get(folded)
    if alias is not None:
        return alias, None
    return name, None


def is_missing_text(value: object) -> bool:
    """An empty cell or a word meaning "not known" (:data:`MISSING_WORDS`)."""
    return isinstance(value, str) and (value.strip() == "" or value.strip().lower() in MISSING_WORDS)


def number_with_unit(text: str, field: str, default_unit: str | None = None) -> float | None:
    """The number of ``text`` in the unit of ``field``; None if ``text`` is not a number (with a unit).

    Raises
    ------
    ValueError
        A unit that is not one of ``UNITS[field]`` (its message lists the accepted ones).

    Examples
    --------
    >>> number_with_unit("72 kg", "weight_kg"), round(number_with_unit("160 lb", "weight_kg"), 3)
    (72.0, 72.575)
    >>> number_with_unit("1.75 m", "height_cm"), number_with_unit("25%", "ki67_percent")
    (175.0, 25.0)
    """
    m = _NUMBER.match(text)
    if m is None:
        return None
    value = float(m.group(1))
    unit = m.group(2).lower().rstrip(".")
    units = UNITS.get(field, {})
    if not unit:
        return value * units[default_unit] if default_unit else value
    if unit not in units:
        accepted = ", ".join(units) if units else "none (a plain number)"
        raise ValueError(f"unit {m.group(2)!r} is not one of: {accepted}")
    return value * units[unit]


def strip_prefix(text: str, prefixes: tuple[str, ...]) -> str:
    """``text`` without one leading word of ``prefixes`` (case-insensitive): ``"ECOG 1"`` -> ``"1"``.

    Examples
    --------
    >>> strip_prefix("NET G2", ("net g", "grade", "g")), strip_prefix("ECOG 1", ("ecog", "ps"))
    ('2', '1')
    """
    t = text.strip()
    low = t.lower()
    for p in prefixes:
        if low.startswith(p):
            rest = t[len(p) :].strip()
            if rest:
                return rest
    return t


class Interval(NamedTuple):
    """A value known only within bounds, as pathology reports give a Ki-67 ("<2 %", ">20 %", "1-2 %")."""

    low: float
    low_open: bool
    high: float
    high_open: bool

    def text(self) -> str:
        """The interval as written canonically: ``<2``, ``<=2``, ``>20``, ``>=20``, ``1-2``."""
        if self.low == 0.0 and not self.low_open and self.high < 100.0:
            return ("<" if self.high_open else "<=") + f"{self.high:g}"
        if self.high == 100.0 and not self.high_open and self.low > 0.0:
            return (">" if self.low_open else ">=") + f"{self.low:g}"
        return f"{self.low:g}-{self.high:g}"


_NUM = r"(\d+(?:\.\d*)?|\.\d+)\s*%?"
_BOUND = re.compile(rf"^\s*(<=|>=|<|>|≤|≥)\s*{_NUM}\s*$")
_RANGE = re.compile(rf"^\s*{_NUM}\s*(?:-|–|to)\s*{_NUM}\s*$", re.IGNORECASE)


def parse_interval(text: str, top: float = 100.0) -> Interval | None:
    """The bounds a text like ``"<2%"``, ``"≤ 2"``, ``">20 %"`` or ``"1-2%"`` gives (None: not such a text).

    Examples
    --------
    >>> parse_interval("<2%"), parse_interval(">20 %").text(), parse_interval("1 - 2%").text()
    (Interval(low=0.0, low_open=False, high=2.0, high_open=True), '>20', '1-2')
    >>> parse_interval("2") is None
    True
    """
    m = _BOUND.match(text)
    if m is not None:
        op, value = m.group(1), float(m.group(2))
        if op in ("<", "<=", "≤"):
            return Interval(0.0, False, value, op == "<")
        return Interval(value, op == ">", top, False)
    m = _RANGE.match(text)
    if m is not None:
        return Interval(float(m.group(1)), False, float(m.group(2)), False)
    return None
