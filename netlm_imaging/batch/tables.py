"""The cohort tables of a batch: ``cohort.csv`` and ``lesions.csv``, rewritten after every finished study.

Every write is atomic (temp file + rename), so a kill loses nothing already finished; each
row is formatted once (:class:`CohortTables`), so the rewrite after each of n studies formats
one row, not all n again. The columns are :data:`~netlm_imaging.report.tables.CSV_COLUMNS` and
:data:`~netlm_imaging.report.tables.LESION_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_texts
from ..errors import OutputError
from ..report.tables import CSV_COLUMNS, LESION_COLUMNS, LESIONS_KEY, csv_cell

__all__ = ["CohortTables", "OutputFolderGone", "format_csv"]


class OutputFolderGone(OutputError):
    """The output folder was deleted, moved or replaced during the run."""


class CohortTables:
    """Writes cohort.csv and lesions.csv after every finished study, formatting each row once.

    The text is that of :func:`format_csv` and :func:`format_lesions_csv` over
    all rows (rows sorted by study id; a study's lesions by lesion id): the
    lines of a row are kept until the row object changes, so the parent's
    rewrite after each of n studies formats one row, not all n again.
    """

    def __init__(self) -> None:
        self._lines: dict[str, tuple[dict[str, Any], str, str]] = {}
        self._folder: tuple[int, int] | None = None  # (device, inode) of the output folder at the first write

    def _check_folder(self, out: Path) -> None:
        """Refuse to write into an output folder that is no longer the one the run started in.

        Writing recreates a missing folder (``mkdir -p``): a folder deleted or moved away during the
        run would come back holding a cohort.csv that lists studies whose reports went with the
        old folder. The run stops instead (an :class:`~netlm_imaging.errors.OutputError`).
        """
        try:
            st = os.stat(out)
            now: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            now = None
        if self._folder is None and now is not None:
            self._folder = now
        elif now != self._folder:
            raise OutputFolderGone(
                f"{out}: the output folder was deleted, moved or replaced while the batch ran; keep it in place "
                "and rerun with --resume (the studies that finished are in its reports/, wherever it went)",
                path=str(out),
            )

    def _row_lines(self, row: dict[str, Any]) -> tuple[str, str]:
        sid = row["study_id"]
        kept = self._lines.get(sid)
        if kept is not None and kept[0] is row:
            return kept[1], kept[2]
        study_line = _csv_lines([row], CSV_COLUMNS, key=None)
        lesions = sorted(row.get(LESIONS_KEY) or [], key=lambda r: (str(r["study_id"]), int(r["lesion_id"] or 0)))
        lesion_lines = _csv_lines(lesions, LESION_COLUMNS, key=None)
        self._lines[sid] = (row, study_line, lesion_lines)
        return study_line, lesion_lines

    def write(self, out: Path, rows: Iterable[dict[str, Any]]) -> None:
        self._check_folder(out)
        ordered = sorted(rows, key=lambda r: r["study_id"])
        lines = [self._row_lines(r) for r in ordered]
        # both or neither: a full disk while writing lesions.csv must not leave cohort.csv a study ahead
        atomic_write_texts(
            {
                out / "cohort.csv": _csv_lines([], CSV_COLUMNS, key=None, header=True) + "".join(a for a, _ in lines),
                out / "lesions.csv": _csv_lines([], LESION_COLUMNS, key=None, header=True)
                + "".join(b for _, b in lines),
            }
        )


def _csv_lines(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, key: Any, header: bool = False) -> str:
    """CSV text of ``rows`` (in the given order, or sorted by ``key``) under ``columns``, optionally with the header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for row in rows if key is None else sorted(rows, key=key):
        w.writerow([csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def format_csv(rows: Iterable[dict[str, Any]]) -> str:
    """cohort.csv text: header :data:`CSV_COLUMNS`, rows sorted by study id, floats as shortest repr.

    Parameters
    ----------
    rows : iterable of dict
        Rows keyed by column name.

    Returns
    -------
    str
        CSV text with ``\\n`` line ends.
    """
    return _csv_lines(rows, CSV_COLUMNS, key=lambda r: r["study_id"], header=True)
