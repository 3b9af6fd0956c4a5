"""How a reported table's columns and cells are read: the quantity and unit of a column, the number,
unit and rounding of a cell, as spreadsheets write them (units in headers and cells, decimal commas,
thousands separators).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..spreadsheet import delimiter_name, read_table

__all__ = [
    "QUANTITIES",
    "ReportedCell",
    "cell_number",
    "column_quantity",
    "label_of_another_quantity",
    "read_cell",
    "read_reported_table",
]

#: Quantities a CSV or SR may report, with their units in the names.
QUANTITIES: tuple[str, ...] = (
    "liver_volume_ml",
    "tumor_volume_ml",
    "involvement_percent",
    "lesion_count",
    "remnant_volume_ml",
)

#: Volume columns may carry another unit in their name: unit suffix -> factor to mL.
_VOLUME_SUFFIXES = {"_ml": 1.0, "_cm3": 1.0, "_cc": 1.0, "_mm3": 1e-3, "_l": 1e3}
_VOLUMES = ("liver_volume", "tumor_volume", "remnant_volume")
#: Other names of the quantities: ``netlm batch``'s cohort.csv ones (a colleague's cohort.csv can be
#: checked as it is), the LiTS "tumour burden" as a percentage (DESIGN.md: the involvement), a count.
_COHORT_NAMES = {
    "intrahepatic_tumor_ml": "tumor_volume_ml",
    "non_tumorous_liver_volume_ml": "remnant_volume_ml",
    "tumor_burden_percent": "involvement_percent",
    "number_of_lesions": "lesion_count",
}
#: The involvement as a fraction of 1 (LiTS' tumour burden is one): its names -> factor to percent.
_FRACTION_NAMES = {"involvement_fraction": 100.0, "tumor_burden_fraction": 100.0}
#: A header with its unit in brackets: ``Tumor volume (mL)``.
_BRACKET_UNIT = re.compile(r"^(.*?)\s*[(\[]\s*([^)\]]+?)\s*[)\]]$")


def column_quantity(name: str) -> tuple[str, float] | None:
    """The quantity a CSV column reports and the factor to its unit, or None for another column.

    Names are matched without regard to case (``liver_volume_mL``), with spaces or hyphens for
    underscores and the unit in brackets as a spreadsheet header has it (``Tumor volume (mL)``,
    ``Involvement (%)``); a volume column may name its unit (``_ml``, ``_cm3``, ``_cc``, ``_mm3``,
    ``_l``) and the British ``tumour``.

    Examples
    --------
    >>> column_quantity("Tumour_Volume_mm3")
    ('tumor_volume_ml', 0.001)
    >>> column_quantity("Liver volume (cm3)")
    ('liver_volume_ml', 1.0)
    >>> column_quantity("Involvement [%]")
    ('involvement_percent', 1.0)
    >>> column_quantity("Tumour burden (%)")
    ('involvement_percent', 1.0)
    >>> column_quantity("Lesion count")
    ('lesion_count', 1.0)
    >>> column_quantity("Involvement (fraction)")  # 0.026 is 2.6 %
    ('involvement_percent', 100.0)
    >>> column_quantity("tumor_volume") is None  # no unit: not guessed
    True
    """
    key = name.strip().lower().replace("tumour", "tumor").replace("³", "3")
    bracket = _BRACKET_UNIT.match(key)
    if bracket:
        unit = bracket.group(2).strip()
        key = f"{bracket.group(1)}_{'percent' if unit == '%' else unit}"
    key = re.sub(r"[\s\-]+", "_", key.strip())
    if key in QUANTITIES:
        return key, 1.0
    if key in _COHORT_NAMES:
        return _COHORT_NAMES[key], 1.0
    if key in _FRACTION_NAMES:
        return "involvement_percent", _FRACTION_NAMES[key]
    for base in _VOLUMES:
        for suffix, factor in _VOLUME_SUFFIXES.items():
            if key == base + suffix:
                return f"{base}_ml", factor
    return None


_CELL = re.compile(r"^([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?)\s*(%|[A-Za-z][A-Za-z0-9^]*)?$")
#: Units a volume cell may carry (as a spreadsheet's number format writes it): factor to mL.
_CELL_VOLUME_UNITS = {"ml": 1.0, "cm3": 1.0, "cm^3": 1.0, "cc": 1.0, "mm3": 1e-3, "mm^3": 1e-3, "l": 1e3}
#: Digits grouped by thousands (one separator throughout), then an optional decimal part and unit.
_GROUPED = re.compile(r"^([+-]?)(\d{1,3}((?:([,.\u00a0\u202f' \u2019])\d{3})(?:\4\d{3})*))([.,]\d*)?(\s*[^\d\s.,].*)?$")
#: Thousands separators that are never a decimal separator (a space, no-break spaces, Swiss apostrophes).
_SPACE_GROUPERS = "\u00a0\u202f' \u2019"


def _ungrouped(cell: str, decimal_comma: bool) -> str:
    """``cell`` without its thousands separators when they are unambiguous, else ``cell`` unchanged.

    A space or apostrophe between groups of three digits is always a thousands separator; a comma is
    one in a table with decimal points (a point in one with decimal commas) when the number also
    has the table's decimal separator (``1,043.12``) or several groups (``1,043,120``): ``1,043``
    alone may be a decimal comma, and stays refused. The decimal part is returned with a point.
    """
    m = _GROUPED.match(cell.strip())
    if m is None:
        return cell
    sign, digits, groups, grouper, dec, rest = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
    point = "," if decimal_comma else "."
    if grouper not in _SPACE_GROUPERS:
        if grouper == point or (dec is not None and dec[0] != point):
            return cell  # the grouper is the table's decimal separator, or two decimal separators
        if dec is None and groups.count(grouper) < 2:
            return cell  # 1,043: a thousands separator or a decimal comma
    elif dec is not None and dec[0] != point:
        return cell
    number = digits.replace(grouper, "") + ("" if dec is None else "." + dec[1:])
    return sign + number + (rest or "")


#: Words a reviewer writes before the number, naming the cell's own quantity (``tumour 22.3 ml``,
#: ``involvement: 2.6 %``); lower case, ``tumour`` read as ``tumor``. A word of another quantity is refused.
_CELL_LABELS: dict[str, frozenset[str]] = {
    "liver_volume_ml": frozenset({"liver", "liver volume", "total liver", "total liver volume", "tlv"}),
    "tumor_volume_ml": frozenset({"tumor", "tumor volume", "tumor load", "tumors", "lesions", "lesion volume"}),
    "involvement_percent": frozenset(
        {"involvement", "hepatic involvement", "liver involvement", "tumor burden", "burden", "hepatic tumor burden"}
    ),
    "lesion_count": frozenset({"lesions", "lesion count", "number of lesions", "n"}),
    "remnant_volume_ml": frozenset({"remnant", "non-tumorous liver", "non tumorous liver"}),
}
_LABELLED = re.compile(r"^([A-Za-z][A-Za-z \-]*?)\s*[:=]?\s*(?=[+-]?[\d.,])")
#: A count written with its noun after it: ``5 lesions``.
_COUNT_NOUN = re.compile(r"\s*lesions?$", re.IGNORECASE)
#: One comma and no point, followed by other than three digits: only a decimal comma (``2,6``, ``856,32``);
#: ``1,043`` may be a thousands separator and is not matched.
_ONLY_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,(?:\d{1,2}|\d{4,})(?![\d.,])")


def _without_label(cell: str, quantity: str) -> tuple[str, str] | None:
    """``cell`` without a leading word naming its own quantity (and a count's trailing ``lesions``), and
    the words taken off; ``None`` when the word names something else (``liver 856`` in a tumour column)."""
    text = cell.strip()
    taken = []
    if quantity == "lesion_count" and _COUNT_NOUN.search(text):
        taken.append(_COUNT_NOUN.search(text).group(0).strip())  # type: ignore[union-attr]
        text = _COUNT_NOUN.sub("", text)
    m = _LABELLED.match(text)
    if m is not None:
        label = m.group(1).strip()
        if label.lower().replace("tumour", "tumor") not in _CELL_LABELS.get(quantity, frozenset()):
            return None
        taken.insert(0, label)
        text = text[m.end() :]
    return text, " / ".join(taken)


def label_of_another_quantity(cell: str, quantity: str) -> str | None:
    """The word before a cell's number when it names no part of ``quantity`` (``liver`` in
    ``liver 856 ml`` of a tumour column), for the refusal; ``None`` otherwise."""
    m = _LABELLED.match(cell.strip())
    if m is None or m.group(1).strip().lower().replace("tumour", "tumor") in _CELL_LABELS.get(quantity, frozenset()):
        return None
    return m.group(1).strip()


@dataclass(frozen=True)
class ReportedCell:
    """A reported cell read as a number.

    Attributes
    ----------
    value : float
        The number as written (in the column's or the cell's own unit).
    factor : float or None
        The factor to the quantity's unit the cell's own unit gives (None: the column's).
    half_step : float or None
        Half the unit of the last decimal written (``0.9`` -> 0.05): the rounding of a value written
        with a decimal part; None for an integer (``900`` may be exact).
    read_as : str
        How a cell written otherwise than a plain number was read (``"a decimal comma"``, ``"the label
        'tumor'"``), for the notes; ``""`` for a plain number or a number with its unit.
    """

    value: float
    factor: float | None
    half_step: float | None
    read_as: str = ""


def read_cell(cell: str, quantity: str, *, decimal_comma: bool = False) -> ReportedCell | None:
    """A reported cell as a number, its own unit and its rounding (:class:`ReportedCell`), or None.

    As :func:`cell_number`; the rounding is that of the decimals written (``2.6e2`` -> 5).

    Examples
    --------
    >>> read_cell("0.9", "liver_volume_ml").half_step
    0.05
    >>> read_cell("1 043,5", "liver_volume_ml", decimal_comma=True)
    ReportedCell(value=1043.5, factor=None, half_step=0.05, read_as='')
    >>> read_cell("900", "liver_volume_ml").half_step is None
    True

    A reviewer's cell may name its quantity before the number, and a comma that cannot separate
    thousands (one comma, no point, not three digits after it) is a decimal comma in any table:

    >>> read_cell("tumour 22.3 ml", "tumor_volume_ml")
    ReportedCell(value=22.3, factor=1.0, half_step=0.05, read_as="the label 'tumour'")
    >>> read_cell("2,6 %", "involvement_percent").value
    2.6
    >>> read_cell("liver 856 ml", "tumor_volume_ml") is None  # the label names another quantity
    True
    """
    unlabelled = _without_label(cell, quantity)
    if unlabelled is None:
        return None
    read_as = [f"the label {unlabelled[1]!r}"] if unlabelled[1] else []
    text = _ungrouped(unlabelled[0], decimal_comma).strip()
    if not decimal_comma and _ONLY_DECIMAL_COMMA.match(text):
        text = text.replace(",", ".", 1)
        read_as.append("a decimal comma")
    m = _CELL.match(text)
    if m is None:
        return None
    number, unit = m.group(1), m.group(2)
    if "," in number:
        if not decimal_comma or "." in number:
            return None
        number = number.replace(",", ".")
    factor: float | None = None
    if unit is not None:
        if quantity.endswith("_percent") and unit == "%":
            factor = 1.0  # a percentage whatever the column's unit (3.6 % in a fraction column)
        elif quantity.endswith("_ml") and unit.lower() in _CELL_VOLUME_UNITS:
            factor = _CELL_VOLUME_UNITS[unit.lower()]
        else:
            return None
    mantissa, _, exponent = number.lower().partition("e")
    half_step = None
    if "." in mantissa:
        decimals = len(mantissa.partition(".")[2])
        half_step = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    return ReportedCell(float(number), factor, half_step, " and ".join(read_as))


def cell_number(cell: str, quantity: str, *, decimal_comma: bool = False) -> tuple[float, float | None] | None:
    """The number of a reported cell and the factor its own unit gives (None: the column's), or None.

    A spreadsheet saves a cell as it shows it: ``3.64%`` in a percentage column, ``21.2 mL`` or
    ``770 mm3`` with a unit number format, ``1,043.12`` with thousands separators. The unit must
    fit the quantity (``%`` for the percentages, a volume unit for the volumes, none for the
    count); a decimal comma is read in tables separated by semicolons or tabs. Thousands
    separators are read where unambiguous (:func:`_ungrouped`).

    Examples
    --------
    >>> cell_number("3.64%", "involvement_percent")
    (3.64, 1.0)
    >>> cell_number("770 mm3", "tumor_volume_ml")
    (770.0, 0.001)
    >>> cell_number("3,5 %", "involvement_percent", decimal_comma=True)
    (3.5, 1.0)
    >>> cell_number("1,043.12 mL", "liver_volume_ml")
    (1043.12, 1.0)
    >>> cell_number("1.043,12", "liver_volume_ml", decimal_comma=True)
    (1043.12, None)
    >>> cell_number("1,043", "liver_volume_ml") is None  # 1043, or 1.043 with a decimal comma
    True
    >>> cell_number("12 mm", "tumor_volume_ml") is None  # not a volume
    True
    """
    read = read_cell(cell, quantity, decimal_comma=decimal_comma)
    return None if read is None else (read.value, read.factor)


#: Columns naming the study, in order of preference (``study_id``: cohort.csv's).
_STUDY_COLUMNS = ("study", "study_id")
#: A column giving each row's StudyInstanceUID (cohort.csv's ``study_instance_uid``).
_UID_COLUMNS = ("study_instance_uid", "StudyInstanceUID", "study_uid")

#: One row of a reported table: line, study folder, values, their rounding, the StudyInstanceUID it states.
_Row = tuple[int, str, dict[str, float], dict[str, float], str]


def read_reported_table(path: Path) -> tuple[list[_Row], list[str]]:
    """The rows of a reported table (one per study: line, study folder, values in each quantity's unit,
    their rounding, the StudyInstanceUID the row states or ``""``) and the notes of how it was read.

    Raises
    ------
    InputError
        No study column, no checkable column, an empty study cell, or a cell that is not a number of
        its column (naming the row and column).
    """
    table = read_table(path, _STUDY_COLUMNS, text_columns=_STUDY_COLUMNS + _UID_COLUMNS, what="CSV")
    fields = table.header
    study_col = table.column(*_STUDY_COLUMNS)
    if study_col is None:
        raise InputError(
            f"{path}: no 'study' column (columns: {', '.join(fields) or 'none'}); add a column 'study' "
            "with each study folder relative to the CSV (or to --studies DIR)."
        )
    notes = []
    if table.delimiter != ",":
        sep = delimiter_name(table.delimiter)
        notes.append(f"read as a table separated by {sep} (numbers may have a decimal comma)")
    columns: dict[str, tuple[str, float]] = {}  # column -> (quantity, factor)
    for f in fields:
        found = column_quantity(f)
        if found is None:
            continue
        other = next((c for c, (q, _) in columns.items() if q == found[0]), None)
        if other is not None:
            raise InputError(f"{path}: columns {other!r} and {f!r} both report {found[0]}; keep one of them.")
        columns[f] = found
        if f != found[0]:
            unit = "" if found[1] == 1.0 else f" (x {found[1]:g})"
            notes.append(f"column {f} read as {found[0]}{unit}")
    uid_col = table.column(*_UID_COLUMNS)
    other_ids = [f for f in fields if f not in (study_col, uid_col) and f.lower() in _STUDY_COLUMNS]
    unknown = [f for f in fields if f not in (study_col, uid_col) and f not in columns and f not in other_ids]
    if unknown:
        notes.append(f"columns not checked (unknown): {', '.join(unknown)}")
    if not columns:  # nothing would be checked, and "0 cells, all agree" would read as a pass
        raise InputError(
            f"{path}: no column to check (columns: {', '.join(fields)}); name the reported columns "
            f"{', '.join(QUANTITIES)} (any case; e.g. 'Tumor volume (mL)' or tumor_volume_mm3 also work)."
        )
    rows = []
    for n, rec in table.rows:
        study = rec.get(study_col, "")
        if not study:
            raise InputError(
                f"{path}: row {n} has an empty {study_col!r} cell; give the study folder relative to the CSV."
            )
        values: dict[str, float] = {}
        rounding: dict[str, float] = {}  # quantity -> half the unit of the last decimal written
        for col, (q, factor) in columns.items():
            cell = rec.get(col, "")
            if cell == "":
                continue
            parsed = read_cell(cell, q, decimal_comma=table.decimal_comma)
            label = label_of_another_quantity(cell, q) if parsed is None else None
            if label is not None:
                raise InputError(
                    f"{path}: row {n}, column {col}: {cell!r} is labelled {label!r}, which is not {q}; "
                    "put the value in its own column, or write the number alone."
                )
            if parsed is None:
                raise InputError(
                    f"{path}: row {n}, column {col}: {cell!r} is not a number; use a plain number "
                    "(decimal point), a number with a unit that fits the column (21.2 mL, 770 mm3, 3.6 %), "
                    "or leave the cell empty."
                )
            if not math.isfinite(parsed.value):
                raise InputError(f"{path}: row {n}, column {col}: {cell!r} is not a finite number.")
            scale = factor if parsed.factor is None else parsed.factor
            values[q] = parsed.value * scale
            if parsed.read_as:
                notes.append(f"row {n}, column {col}: {cell!r} read as {values[q]:g} ({parsed.read_as})")
            if parsed.half_step is not None:
                rounding[q] = parsed.half_step * scale
        rows.append((n, study, values, rounding, rec.get(uid_col, "").strip() if uid_col else ""))
    return rows, notes
