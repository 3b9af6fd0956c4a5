"""CSV tables as users save them from a spreadsheet: the delimiter, a byte-order mark and decimal commas.

A cohort list (``netlm batch COHORT.csv``) or a table of reported burdens (``netlm check``) is
often written in Excel or LibreOffice. In the locales whose decimal separator is a comma
(German, French, Dutch, Italian, Spanish, ...), "Save as CSV" separates the cells with a
semicolon and writes ``172,5`` for 172.5; "Unicode text" separates them with tabs; Excel puts
a UTF-8 byte-order mark in front (its "Unicode text" is UTF-16 with one) and sometimes a first
line ``sep=;``. None of this is
ambiguous once the header is read:

* the delimiter is the one of ``,`` ``;`` and tab (in that order of preference) that makes the
  header hold the table's required column (``path``, ``study``...), or the one a first line
  ``sep=X`` names;
* in a table separated by ``;`` or tab a comma cannot separate cells, so a cell that is a number
  written with one decimal comma (``-12,5``) is that number (``-12.5``); in a comma-separated
  table such a cell stays as written, and a reader that wants a number says how to write it.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

__all__ = ["DELIMITERS", "Table", "delimiter_name", "read_table", "table_path"]

#: Cell delimiters tried on the header, in order of preference.
DELIMITERS = (",", ";", "\t")
_SEP_LINE = re.compile(r"^\s*sep=(.)\s*$", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


@dataclass
class Table:
    """A CSV table read by :func:`read_table`.

    Attributes
    ----------
    path : pathlib.Path
    header : list of str
        The column names, stripped.
    rows : list of (int, dict)
        (line number in the file, column -> stripped cell) of each row that is not empty.
    delimiter : str
    decimal_comma : bool
        Numbers written ``12,5`` were read as ``12.5`` (a table separated by ``;`` or tab).
    """

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delimiter: str = ","
    decimal_comma: bool = False

    def column(self, *names: str) -> str | None:
        """The header name matching the first of ``names`` (case-insensitively), or None."""
        lower = {h.lower(): h for h in self.header}
        return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _split(line: str, delimiter: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]


def _delimiter(header_line: str, required: Collection[str]) -> str:
    """The delimiter that makes ``header_line`` hold a required column; else the one splitting it most."""
    wanted = {r.lower() for r in required}
    for d in DELIMITERS:
        if wanted & {c.lower() for c in _split(header_line, d)}:
            return d
    return max(DELIMITERS, key=lambda d: len(_split(header_line, d)))


def read_table(
    csv_path: str | os.PathLike[str],
    required: Sequence[str],
    *,
    text_columns: Collection[str] = (),
    what: str = "CSV",
) -> Table:
    """Read a CSV table with a header row, as a spreadsheet saves it.

    Parameters
    ----------
    csv_path : path-like
    required : sequence of str
        Column names of which the header must hold one (case-insensitive); they decide the
        delimiter. The caller reports a header without any of them (see :attr:`Table.header`).
    text_columns : collection of str
        Columns never read as numbers (paths, identifiers): their decimal commas stay.
    what : str
        Names the table in messages (``"cohort CSV"``).

    Returns
    -------
    Table

    Raises
    ------
    InputError
        If the file is missing or unreadable, is not UTF-8, or has no header row.
    """
    path = Path(csv_path)
    try:
        raw = path.read_bytes()
        # Excel's "Unicode text" is UTF-16 with a byte-order mark; anything else must be UTF-8
        utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found; check the path.") from None
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: the {what} is not UTF-8 text; save it as 'CSV UTF-8' (Excel) or with the UTF-8 "
            "character set (LibreOffice)."
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc}); check the file.") from None
    lines = text.splitlines()
    first = 0
    forced = _SEP_LINE.match(lines[0]) if lines else None
    if forced:
        first = 1  # Excel's "sep=;" line: not part of the table
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first >= len(lines):
        raise InputError(f"{path}: the {what} is empty; give a header row and one row per study.")
    delimiter = forced.group(1) if forced else _delimiter(lines[first], required)
    decimal_comma = delimiter != ","
    # one stream, so that a quoted cell may hold a line break; reader.line_num counts its lines
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        text_cols = {c.lower() for c in text_columns}
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            n = first + reader.line_num  # the row's last line in the file (1-based)
            row = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header) if h}
            if not any(row.values()):
                continue
            if decimal_comma:
                for k, v in row.items():
                    if k.lower() not in text_cols and _DECIMAL_COMMA.match(v):
                        row[k] = v.replace(",", ".")
            rows.append((n, row))
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc}); check its quoting.") from None
    return Table(path, header, rows, delimiter, decimal_comma)


def delimiter_name(delimiter: str) -> str:
    """``"semicolons"`` for ``";"`` and so on (for notes and messages)."""
    return _NAMES.get(delimiter, repr(delimiter))


def table_path(base: Path, rel: str) -> Path:
    """The file or folder a table's cell names, relative to the table's folder ``base`` (resolved).

    A table written on Windows separates folders with backslashes (``studies\\p1``); on Linux and
    macOS that is one odd name. When the name as written does not exist and the one with ``/``
    does, that one is meant.

    Parameters
    ----------
    base : pathlib.Path
        The folder of the table.
    rel : str
        The cell: a path relative to ``base`` (or absolute).

    Returns
    -------
    pathlib.Path
    """
    path = (base / rel).resolve()
    if "\\" in rel and not path.exists():
        slashed = (base / rel.replace("\\", "/")).resolve()
        if slashed.exists():
            return slashed
    return path
