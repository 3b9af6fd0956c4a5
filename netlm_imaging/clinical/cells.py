"""One clinical value, as a sidecar, a Python mapping or a cohort CSV cell writes it, checked and converted.

Each function takes the ``source`` (file and row) and the field name for its one-line
:class:`~netlm_imaging.errors.InputError` (the file, the field, the bad value and what is allowed);
:mod:`netlm_imaging.clinical.inputs` decides what the values together say (the liver condition,
the grade a NEC cell implies) and builds :class:`~netlm_imaging.clinical.inputs.ClinicalInputs`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InputError
from .text import (
    BOOL_WORDS,
    CHOICE_WORDS,
    NON_FUNCTIONING,
    NON_FUNCTIONING_WHY,
    ROMAN_GRADES,
    UNITS,
    number_with_unit,
    parse_interval,
    spaced,
    strip_prefix,
)

__all__ = [
    "DIFFERENTIATION",
    "LIVER_CONDITIONS",
    "NEC_WORDS",
    "SEXES",
    "SYMPTOMS",
    "as_bool",
    "as_choice",
    "as_int",
    "as_number",
    "bad",
    "condition_cell",
    "in_range",
    "ki67_cell",
    "symptoms_cell",
]

SYMPTOMS = ("none", "hormonal", "bulk", "symptomatic")
SEXES = ("male", "female")
#: Liver conditions with an FLR threshold in the rules (``flr.threshold_percent``), least demanding first.
LIVER_CONDITIONS = ("normal", "chemotherapy", "steatosis", "fibrosis", "cirrhosis")
DIFFERENTIATION = ("well", "poor")
#: Truth words of every boolean field.
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}
#: Grade cells that name a neuroendocrine carcinoma (poorly differentiated, G3).
NEC_WORDS = {"nec", "g3 nec", "nec g3", "neuroendocrine carcinoma"}


def bad(source: str, name: str, value: Any, allowed: str) -> InputError:
    """The error for field ``name`` of ``source`` holding ``value``, saying what is ``allowed``."""
    return InputError(f"{source}: clinical field {name!r} has invalid value {value!r}; allowed: {allowed}")


def as_bool(source: str, name: str, value: Any) -> bool:
    """A truth value: a boolean, 0/1, or a word (yes/no, true/false, y/n, t/f, and the field's own words)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = " ".join(value.strip().lower().split())
        if text in _TRUE | _FALSE:
            return text in _TRUE
        if text in BOOL_WORDS.get(name, {}):
            return BOOL_WORDS[name][text]
    raise bad(source, name, value, "true or false (yes/no, y/n, 1/0)")


def as_number(source: str, name: str, value: Any, default_unit: str | None = None) -> float:
    """A finite number in the field's unit (a text may name one of its units; bare numbers are in ``default_unit``)."""
    units = UNITS.get(name)
    with_units = f" (units: {', '.join(units)})" if units else ""
    if isinstance(value, bool):
        raise bad(source, name, value, "a number")
    if isinstance(value, (int, float)):
        out = float(value) * (units[default_unit] if units and default_unit else 1.0)
    elif isinstance(value, str):
        try:
            parsed = number_with_unit(value, name, default_unit)
        except ValueError as exc:
            raise bad(source, name, value, f"a number{with_units}: {exc}") from None
        if parsed is None:
            # a decimal comma in a comma-separated table cannot be told from a thousands separator
            hint = " written with a decimal point (12.5)" if "," in value else ""
            raise bad(source, name, value, f"a number{hint}{with_units}")
        out = parsed
    else:
        raise bad(source, name, value, "a number")
    if not math.isfinite(out):
        raise bad(source, name, value, "a finite number")
    return out


def as_int(source: str, name: str, value: Any, lo: int, hi: int, prefixes: tuple[str, ...]) -> int:
    """A whole number ``lo``-``hi``, after a word such as "grade" or "ECOG" (``prefixes``)."""
    text = strip_prefix(value, prefixes) if isinstance(value, str) else value
    if name == "grade" and isinstance(text, str):  # "Grade II", "GIII"
        text = ROMAN_GRADES.get(text.strip().lower(), text)
    try:
        num = as_number(source, name, text)
    except InputError:
        raise bad(source, name, value, f"a number, a whole number {lo}-{hi}") from None
    if not num.is_integer() or not lo <= num <= hi:
        raise bad(source, name, value, f"a whole number {lo}-{hi}")
    return int(num)


def as_choice(source: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``, or a spelling of one the field knows (``CHOICE_WORDS``)."""
    if isinstance(value, str):
        text = " ".join(value.strip().lower().split())
        words = CHOICE_WORDS.get(name, {})
        # "post chemotherapy" / "post-chemotherapy", "well_differentiated": hyphens and underscores as spaces
        folded = {spaced(k): v for k, v in words.items()}
        text = words.get(text, folded.get(spaced(text), text))
        if text in choices:
            return text
    raise bad(source, name, value, " | ".join(choices))


def symptoms_cell(source: str, raw: Any) -> str:
    """A ``symptoms`` value: a word of :data:`SYMPTOMS` (or a spelling of one), a truth value, or several words.

    ``true`` / ``1`` (JSON or TOML) is ``symptomatic``, ``false`` / ``0`` is ``none``, as the texts
    "yes" / "no" are. Several words in one cell ("flushing, diarrhoea", "yes, flushing", "hormonal + bulk")
    give the kind they name, ``symptomatic`` when they name different kinds; "none" beside a symptom
    is a contradiction and refused.
    """
    name = "symptoms"
    if isinstance(raw, bool) or (isinstance(raw, int) and raw in (0, 1)):
        return "symptomatic" if raw else "none"
    if not isinstance(raw, str):
        raise bad(source, name, raw, " | ".join(SYMPTOMS) + " (or true/false)")
    try:
        return as_choice(source, name, raw, SYMPTOMS)
    except InputError:
        if nf := NON_FUNCTIONING.search(raw):  # no hormonal syndrome; bulk symptoms not stated
            if rest := (raw[: nf.start()] + raw[nf.end() :]).strip(" ,;/+&:-()"):  # "non-functioning, pain"
                return symptoms_cell(source, rest)
            raise bad(source, name, raw, f"none or bulk ({NON_FUNCTIONING_WHY})") from None
        # "flushing, diarrhoea", "yes - flushing", "carcinoid syndrome with flushing", "hormonal (flushing)"
        parts = [t for t in re.split(r"\s*(?:[,;/+&():]|\s-\s|\band\b|\bwith\b)\s*", raw.strip()) if t]
        if len(parts) < 2:
            raise
    found = {as_choice(source, name, t, SYMPTOMS) for t in parts}
    if "none" in found and len(found) > 1:
        raise bad(source, name, raw, "one of " + " | ".join(SYMPTOMS) + ": 'none' contradicts the symptoms named")
    kinds = found - {"symptomatic"} or found  # "yes, flushing": the kind named
    return kinds.pop() if len(kinds) == 1 else "symptomatic"


def _unit_hint(name: str, value: float, lo: float, hi: float) -> str:
    """For an impossible height / weight, the unit it would be plausible in ("; if it is in inches, write '68 in'")."""
    named = {"m": "metres", "mm": "millimetres", "in": "inches", "ft": "feet", "lb": "pounds", "g": "grams"}
    for unit, factor in UNITS.get(name, {}).items():
        if unit in named and lo <= value * factor <= hi:
            column = f"{name.split('_')[0]} ({unit})"
            return f"; if it is in {named[unit]}, write '{value:g} {unit}' (or name the column '{column}')"
    return ""


def in_range(source: str, name: str, value: float, lo: float, hi: float, unit: str, key: str = "") -> float:
    """``value`` when within ``lo``-``hi`` (the rules ``key`` giving the range), else the error with a unit hint."""
    if not lo <= value <= hi:
        hint = _unit_hint(name, value, lo, hi)
        raise bad(
            source, name, value, f"{lo:g}-{hi:g} {unit} (impossible value{', rules key ' + key if key else ''}){hint}"
        )
    return value


def condition_cell(source: str, raw: Any) -> str:
    """A ``liver_condition`` cell; several conditions in one ("chemotherapy, steatosis") give the most demanding."""
    name = "liver_condition"
    parts = [t for t in re.split(r"\s*(?:[,;/+&]|\band\b)\s*", raw.strip()) if t] if isinstance(raw, str) else []
    found = [as_choice(source, name, t, LIVER_CONDITIONS) for t in parts] or [
        as_choice(source, name, raw, LIVER_CONDITIONS)
    ]
    return max(found, key=LIVER_CONDITIONS.index)


def ki67_cell(source: str, name: str, raw: Any) -> tuple[str, Any]:
    """A Ki-67 cell: ``("ki67_range", "<2")`` for bounds ("<2 %", "1-2 %"), else ``("ki67_percent", value)``."""
    bounds = parse_interval(raw) if isinstance(raw, str) else None
    if bounds is not None:
        if not 0.0 <= bounds.low <= bounds.high <= 100.0:
            raise bad(source, name, raw, "bounds within 0-100 %, low <= high (e.g. <2 %, 1-2 %)")
        return "ki67_range", bounds.text()
    if name == "ki67_range":
        raise bad(source, name, raw, "bounds such as <2 %, >20 %, 1-2 % (a single value goes in ki67_percent)")
    return name, in_range(source, name, as_number(source, name, raw), 0.0, 100.0, "%")
