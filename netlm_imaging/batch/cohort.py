"""Find the studies of a cohort: the sub-folders of a folder, or the rows of a CSV listing.

A cohort is either

* a folder: every sub-folder one level below it is one study, keyed by its
  folder name (hidden folders and the batch output folder are skipped); an
  archive file there (``.zip``, ``.tar.gz`` ...: a study exported as one file)
  is listed too, and fails with the command that unpacks it; or
* a CSV file with a header row and one study per row: a ``path`` column
  (also accepted: ``study``, ``study_dir``, ``folder``) holding the study
  folder relative to the CSV file (or absolute), an optional ``study_id``
  column (default: the folder name), and any clinical columns, which are
  handed to :func:`netlm_imaging.clinical.inputs.clinical_from_row` (validated
  before any study is analysed).

Study ids name the output files (``reports/<study_id>.json``), so they must be
unique and usable as file names. Folder names are echoed as study ids (cohort.csv,
report file names, the QA index) unless ``netlm batch --pseudonymize`` replaces
them by stable pseudonyms (:mod:`netlm_imaging.batch.pseudonym`); the reports
themselves carry no identifiers and name files relative to the study folder.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, readable
from ..spreadsheet import read_table, table_path

__all__ = [
    "ARCHIVE_SUFFIXES",
    "PATH_COLUMNS",
    "Study",
    "archive_error",
    "archive_kind",
    "discover_cohort",
    "studies_from_csv",
    "studies_from_folder",
]


logger = logging.getLogger(__name__)

#: Accepted names (case-insensitive) of the study-path column of a cohort CSV.
PATH_COLUMNS = ("path", "study", "study_dir", "folder")
_ID_COLUMN = "study_id"


@dataclass(frozen=True)
class Study:
    """One study of a cohort.

    Attributes
    ----------
    study_id : str
        Key of the study in ``cohort.csv`` and the report file name.
    path : pathlib.Path
        Absolute study folder (or file).
    clinical : dict of str to str
        Raw clinical columns from a cohort CSV (empty for folder cohorts).
    pseudonymized : bool
        ``study_id`` is a pseudonym (:mod:`netlm_imaging.batch.pseudonym`): error messages then
        name files relative to the study, never by the folder's real name.
    """

    study_id: str
    path: Path
    clinical: dict[str, str] = field(default_factory=dict)
    pseudonymized: bool = False


#: Longest study id in bytes: ``reports/<id>.failed.json`` and its temporary sibling must fit in a
#: file name (255 bytes on common file systems).
MAX_ID_BYTES = 200


def _check_id(study_id: str, where: str) -> str:
    sid = study_id.strip()
    if not sid or sid in (".", "..") or sid.startswith(".") or "/" in sid or "\\" in sid or "\x00" in sid:
        raise InputError(
            f"{where}: study id {study_id!r} cannot name a report file; use a non-empty name without '/' "
            "that does not start with '.'"
        )
    if len(sid.encode("utf-8")) > MAX_ID_BYTES:
        raise InputError(
            f"{where}: study id {sid[:40]}... is {len(sid.encode('utf-8'))} bytes, too long to name its report "
            f"files (at most {MAX_ID_BYTES}); rename the folder, or list the cohort in a CSV with a shorter "
            "study_id column"
        )
    return sid


def _check_unique(studies: Sequence[Study], source: str) -> list[Study]:
    seen: dict[str, Path] = {}
    for s in studies:
        if s.study_id in seen:
            raise InputError(
                f"{source}: study id {s.study_id!r} is used by both {seen[s.study_id]} and {s.path}; "
                "give each row a unique study_id column value"
            )
        seen[s.study_id] = s.path
    return sorted(studies, key=lambda s: s.study_id)


#: Name endings of the archives a PACS or a colleague exports a study as.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".7z", ".rar")


def archive_kind(path: str | os.PathLike[str]) -> str | None:
    """``"zip"``, ``"tar"`` ... when ``path`` is an archive file (by its name ending), else None."""
    p = Path(path)
    name = p.name.lower()
    if not name.endswith(ARCHIVE_SUFFIXES) or not p.is_file():
        return None
    return (
        "zip" if name.endswith(".zip") else "7z" if name.endswith(".7z") else "rar" if name.endswith(".rar") else "tar"
    )


def archive_error(
    path: str | os.PathLike[str], kind: str, *, private_label: str | None = None, in_cohort: bool = True
) -> str:
    """The one-line refusal of a study given as an archive, with the command that unpacks it.

    With ``private_label`` (a pseudonym) the line names that instead of any path (the archive's
    name often carries the patient's) and gives no command line. ``in_cohort`` False (``netlm
    analyze`` of the archive): the archive need only be moved aside, not out of a cohort folder.
    """
    move = "out of the cohort folder" if in_cohort else "aside"
    if private_label is not None:
        return (
            f"{private_label}: a {kind} archive, not a study folder (netlm reads study folders); unpack it into "
            f"a folder, then move the archive {move} and pass the folder"
        )
    p = Path(path)
    stem = p.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)] or stem
            break
    a, f = _sh_quote(str(p)), _sh_quote(str(p.with_name(stem)))
    unpack = {
        "zip": f"unzip {a} -d {f}",
        "tar": f"mkdir {f} && tar -xf {a} -C {f}",
        "7z": f"7z x {a} -o{f}",
        "rar": f"unrar x {a} {_sh_quote(str(p.with_name(stem)) + '/')}",
    }[kind]
    return (
        f"{p}: a {kind} archive, not a study folder (netlm reads study folders); unpack it ({unpack}), "
        f"then move the archive {move} and pass the folder"
    )


def _sh_quote(text: str) -> str:
    """``text`` in single quotes for a POSIX shell (an ``'`` in a name, as in O'Brien, included)."""
    return "'" + text.replace("'", "'\\''") + "'"


def studies_from_folder(cohort_dir: str | os.PathLike[str], *, exclude: Sequence[Path] = ()) -> list[Study]:
    """Every sub-folder one level under ``cohort_dir`` is a study.

    Parameters
    ----------
    cohort_dir : path-like
        The cohort folder.
    exclude : sequence of pathlib.Path
        Output folders: neither they nor their ``reports/`` (a sub-folder of the cohort folder
        when ``--out`` is the cohort folder itself) are studies.

    Returns
    -------
    list of Study
        Sorted by study id.

    Raises
    ------
    InputError
        If the folder does not exist or holds no study folder.
    """
    root = Path(cohort_dir).resolve()
    if not root.is_dir():
        raise InputError(f"{cohort_dir}: cohort folder not found; pass a folder of study folders or a cohort CSV")
    # the output folder, and its reports/ (a sub-folder of the cohort folder when --out is the cohort folder)
    skip = {q for p in exclude for q in (Path(p).resolve(), Path(p).resolve() / "reports")}
    studies = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or child.resolve() in skip:
            continue
        # a study exported as an archive (it fails saying how to unpack it), or a link whose target is gone (an
        # unmounted disk: it fails naming the target), is listed, never silently left out
        if child.is_dir() or archive_kind(child) or (child.is_symlink() and not child.exists()):
            studies.append(Study(_check_id(readable(child.name), readable(str(child))), child.resolve()))
    if not studies:
        raise InputError(
            f"{cohort_dir}: no study folder found one level below it; put each study in its own sub-folder "
            "or pass a cohort CSV with a 'path' column"
        )
    return _check_unique(studies, str(cohort_dir))


def _same_name_normalised(path: Path) -> Path:
    """``path``, or the existing path whose names differ from it only in Unicode normalisation.

    A cohort CSV typed in a spreadsheet holds ``é`` as one character (NFC); folders copied from a
    Mac keep it as ``e`` + a combining accent (NFD). Both spell the same name, so the folder is found.
    """
    if path.exists():
        return path
    parts = path.parts
    found = Path(parts[0])
    for i, name in enumerate(parts[1:], start=1):
        if not (found / name).exists():
            want = unicodedata.normalize("NFC", name)
            try:
                match = [e for e in os.listdir(found) if unicodedata.normalize("NFC", e) == want]
            except OSError:
                return path
            if len(match) != 1:
                return path
            name = match[0]
        found = found / name
        if i < len(parts) - 1 and not found.is_dir():
            return path
    return found


def _body_rules(rules: Any) -> Any:
    """The ``body`` table of the run's rules (its height and weight ranges bound the clinical columns)."""
    from ..classify.rules import Rules, load_rules

    return (rules if isinstance(rules, Rules) else load_rules(rules))["body"]


def _validate_clinical(row: dict[str, str], where: str, body: Any) -> None:
    """Run the clinical parser on a row now, so a bad value stops the run before any work."""
    from ..clinical.inputs import clinical_from_row

    clinical_from_row(row, where, body=body)


def studies_from_csv(csv_path: str | os.PathLike[str], *, rules: Any = None) -> list[Study]:
    """Studies listed in a cohort CSV (paths relative to the CSV file).

    Parameters
    ----------
    csv_path : path-like
        Cohort CSV with a header row, separated by commas, semicolons or tabs as a spreadsheet
        saves it (:func:`netlm_imaging.spreadsheet.read_table`: with semicolons or tabs, clinical
        numbers may have a decimal comma).
    rules : path or Rules, optional
        The rules of the run (``--rules``): the clinical columns are validated with its
        ``body`` ranges (default: the shipped rules).

    Returns
    -------
    list of Study
        Sorted by study id.

    Raises
    ------
    InputError
        Unreadable file, no path column, an empty path, a bad or duplicate
        study id, or an invalid clinical value.
    """
    path = Path(csv_path)
    table = read_table(path, PATH_COLUMNS, text_columns=(*PATH_COLUMNS, _ID_COLUMN), what="cohort CSV")
    path_col = table.column(*PATH_COLUMNS)
    if path_col is None:
        raise InputError(
            f"{path}: no study path column (found columns {table.header}); add a header column named 'path' "
            "holding each study folder relative to the CSV"
        )
    id_col = table.column(_ID_COLUMN)
    base = path.resolve().parent
    studies = []
    first_line: dict[str, tuple[int, Study]] = {}
    body = None
    for n, row in table.rows:
        rel = row.get(path_col, "")
        where = f"{path} line {n}"
        if not rel:
            raise InputError(f"{where}: empty '{path_col}' value; give the study folder relative to the CSV")
        study_path = _same_name_normalised(table_path(base, rel))
        sid_raw = row.get(id_col, "") if id_col else ""
        sid = _check_id(sid_raw if sid_raw else study_path.name, where)
        clinical = {k: v for k, v in row.items() if k not in (path_col, id_col) and k}
        if any(clinical.values()):
            body = _body_rules(rules) if body is None else body
            _validate_clinical(clinical, where, body)
        study = Study(sid, study_path, clinical)
        if sid in first_line:
            n0, other = first_line[sid]
            if other == study:  # a row pasted twice in the spreadsheet: the same study, the same values
                logger.warning("%s: line %d repeats line %d (study %r, same values); analysed once", path, n, n0, sid)
                continue
            what = "another folder" if other.path != study.path else "other clinical values"
            diff = [k for k in sorted({*other.clinical, *clinical}) if other.clinical.get(k) != clinical.get(k)]
            detail = (
                f" ({', '.join(diff)})" if diff and other.path == study.path else f" ({other.path} vs {study.path})"
            )
            raise InputError(
                f"{path}: lines {n0} and {n} both give study id {sid!r}, with {what}{detail}; delete one of the rows "
                "or give each a unique study_id column value"
            )
        first_line[sid] = (n, study)
        studies.append(study)
    if not studies:
        raise InputError(f"{path}: the cohort CSV lists no study; add one row per study folder")
    return _check_unique(studies, str(path))


def discover_cohort(
    source: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None, rules: Any = None
) -> list[Study]:
    """Studies of a cohort given as a folder or a CSV file.

    Parameters
    ----------
    source : path-like
        Cohort folder or cohort CSV (``.csv``/``.tsv`` is not required: any file is read as CSV).
    out_dir : path-like, optional
        Batch output folder, skipped when it lies inside the cohort folder.
    rules : path or Rules, optional
        As :func:`studies_from_csv`.

    Returns
    -------
    list of Study
        Sorted by study id.
    """
    p = Path(source)
    if p.is_file():
        return studies_from_csv(p, rules=rules)
    return studies_from_folder(p, exclude=[Path(out_dir)] if out_dir is not None else [])
