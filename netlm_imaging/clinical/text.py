"""Clinical values and column names as people write them: units, "G2", "ECOG 1", "yes", "NA".

:mod:`netlm_imaging.clinical.inputs` validates the fields; this module only reads the
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
    "BOOL_WORDS",
    "CHOICE_WORDS",
    "CONDITION_COLUMNS",
    "ECOG_PREFIXES",
    "FIELD_ALIASES",
    "GRADE_PREFIXES",
    "MISSING_WORDS",
    "NON_FUNCTIONING",
    "NON_FUNCTIONING_WHY",
    "ROMAN_GRADES",
    "UNITS",
    "Interval",
    "canonical_field",
    "is_missing_text",
    "number_with_unit",
    "parse_interval",
    "spaced",
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
    "pet_half_life_s": {"s": 1.0, "sec": 1.0, "seconds": 1.0, "min": 60.0, "minutes": 60.0, "h": 3600.0},
}

#: "non-functioning (NET)" in a symptoms cell: no hormonal syndrome, bulk symptoms not stated.
NON_FUNCTIONING_WHY = "a non-functioning tumour has no hormonal syndrome; say whether there are bulk symptoms"
NON_FUNCTIONING = re.compile(r"\bnon[\s_-]?function\w*(?:\s+(?:neuroendocrine\s+)?(?:net|tumou?r|neoplasm))?", re.I)

#: Real-world words for each allowed value (lower-case; the value itself is always accepted).
CHOICE_WORDS: Mapping[str, Mapping[str, str]] = {
    "symptoms": {
        **dict.fromkeys(
            (
                "no",
                "n",
                "false",
                "0",
                "asymptomatic",
                "absent",
                "nil",
                "no symptoms",
                "symptom free",
                "not symptomatic",
            ),
            "none",
        ),
        **dict.fromkeys(
            (
                "functional",
                "functioning",
                "carcinoid syndrome",
                "carcinoid",
                "hormonal syndrome",
                "hormonal symptoms",
                "syndrome",
                "flushing",
                "diarrhoea",
                "diarrhea",
            ),
            "hormonal",
        ),
        **dict.fromkeys(("mass effect", "bulk symptoms", "pain", "abdominal pain"), "bulk"),
        **dict.fromkeys(
            ("yes", "y", "true", "1", "present", "symptomatic", "both", "hormonal and bulk"), "symptomatic"
        ),
    },
    "liver_condition": {
        **dict.fromkeys(("healthy", "none", "no", "normal liver"), "normal"),
        **dict.fromkeys(
            (
                "chemo",
                "post-chemotherapy",
                "chemotherapy-injured",
                "chemotherapy injured",
                "chemotherapy-associated liver injury",
                "cali",
            ),
            "chemotherapy",
        ),
        **dict.fromkeys(
            ("steatotic", "fatty liver", "fatty", "nafld", "masld", "steatohepatitis", "nash", "mash"), "steatosis"
        ),
        **dict.fromkeys(("fibrotic",), "fibrosis"),
        **dict.fromkeys(("cirrhotic",), "cirrhosis"),
    },
    "differentiation": {
        **dict.fromkeys(("well differentiated", "well-differentiated", "wd", "well-diff"), "well"),
        **dict.fromkeys(("poorly differentiated", "poorly-differentiated", "poorly", "pd", "poorly-diff"), "poor"),
    },
    "sex": {**dict.fromkeys(("m", "man"), "male"), **dict.fromkeys(("f", "woman"), "female")},
}


def spaced(text: str) -> str:
    """``text`` with hyphens, underscores and runs of spaces as one space.

    Examples
    --------
    >>> spaced("post-chemotherapy"), spaced("well_differentiated")
    ('post chemotherapy', 'well differentiated')
    """
    return " ".join(t for t in re.split(r"[\s_-]+", text) if t)


#: Field -> words that state its truth value (lower-case), beside yes/no/true/false/1/0.
BOOL_WORDS: Mapping[str, Mapping[str, bool]] = {
    "extrahepatic_disease": {
        **dict.fromkeys(("none", "absent", "nil", "not present"), False),
        **dict.fromkeys(("present",), True),
    },
    "primary_resected": {
        **dict.fromkeys(("resected",), True),
        **dict.fromkeys(("not resected", "in situ", "in place", "unresected"), False),
    },
}

#: Words before a grade number, longest first ("WHO grade 2" must not read as "who g" + "rade 2").
GRADE_PREFIXES = ("net grade", "who grade", "tumour grade", "tumor grade", "net g", "who g", "grade", "g")
#: Words before an ECOG performance status, longest first.
ECOG_PREFIXES = ("ecog performance status", "ecog ps", "ecog", "who ps", "performance status", "ps")
#: Roman grades ("Grade II", "GIII") as numbers.
ROMAN_GRADES: Mapping[str, str] = {"i": "1", "ii": "2", "iii": "3"}

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
    "chemo_cycles": "chemotherapy_cycles",
    "chemotherapy_cycle_count": "chemotherapy_cycles",
    "cycles_of_chemotherapy": "chemotherapy_cycles",
    "number_of_chemotherapy_cycles": "chemotherapy_cycles",
}

#: Folded column names, without a unit, of the fields whose columns may name their unit: ``Height (in)``
#: folds to ``height_in``, whose bare numbers are inches (any unit of :data:`UNITS` for that field).
_UNIT_COLUMN_BASES: Mapping[str, str] = {
    "height": "height_cm",
    "body_height": "height_cm",
    "weight": "weight_kg",
    "body_weight": "weight_kg",
    "pet_half_life": "pet_half_life_s",
    "half_life": "pet_half_life_s",
}

#: A height in feet and inches as US records write it: ``5'8"``, ``5' 8``, ``5 ft 8 in``, ``5ft``, ``68"``.
_FEET_INCHES = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*(?:'|’|′|ft\.?|feet|foot))?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*(?:\"|”|″|''|in\.?|inch|inches)?)?\s*$",
    re.IGNORECASE,
)

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
    >>> canonical_field("Height (in)", known), canonical_field("weight_lbs", known)
    (('height_cm', 'in'), ('weight_kg', 'lbs'))
    """
    folded = _fold(name)
    if folded in known or folded in CONDITION_COLUMNS:
        return folded, None
    base, _, unit = folded.rpartition("_")
    unit_field = _UNIT_COLUMN_BASES.get(base)
    if unit_field is not None and unit in UNITS[unit_field]:
        return unit_field, unit
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
    >>> number_with_unit("5' 8", "height_cm"), number_with_unit("5 ft 8 in", "height_cm")
    (172.72, 172.72)
    """
    if field == "height_cm":
        feet_inches = _feet_inches_cm(text)
        if feet_inches is not None:
            return feet_inches
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


def _feet_inches_cm(text: str) -> float | None:
    """A height written in feet and inches (``5'8"``, ``5 ft 8 in``, ``68"``) in cm; None if it is not one.

    Inches after feet must be below 12 (``5'13"`` is not a height: ValueError). A bare number is not
    read here (its unit is the column's).

    Raises
    ------
    ValueError
        Inches of 12 or more after a number of feet.
    """
    m = _FEET_INCHES.match(text)
    if m is None or m.group(0).strip() == "" or (m.group(1) is None and m.group(2) is None):
        return None
    feet, inches = m.group(1), m.group(2)
    marked = text.strip() != (inches or "").strip()  # a feet or inch mark was written
    if not marked:
        return None
    if feet is not None and inches is not None and float(inches) >= 12.0:
        raise ValueError(f"{text.strip()!r}: {inches} inches after {feet} feet (inches must be below 12)")
    total_in = 12.0 * float(feet or 0.0) + float(inches or 0.0)
    return round(total_in * 2.54, 6)


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
            rest = t[len(p) :].strip().lstrip(":=").strip()  # "ECOG: 1", "grade = 2"
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
