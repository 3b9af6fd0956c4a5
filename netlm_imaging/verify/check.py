"""Check reported burden numbers against a recomputation from the segmentations.

Why one module (~600 lines): reading a reported table (its columns, units, number formats and
tolerances) and explaining each discrepancy are one comparison of a reported burden with its
recomputation; a report.json's own checks are in :mod:`netlm_imaging.verify.check_report`.

Input: a CSV with a ``study`` column (study folder, path relative to the CSV)
and any of the quantity columns in :data:`QUANTITIES` (:func:`column_quantity`: any case, volume
columns in another unit are converted); or a DICOM SR TID 1500
file with the measurements of one study (:func:`check_sr`).

Tolerances
----------
A reported value **agrees** when ``|reported - recomputed| <= abs_tol`` **or**
``|reported - recomputed| <= rel_tol x |recomputed|`` (the recomputed value is
the reference of the relative difference). The tolerances are the rules keys
``check.abs_tolerance`` and ``check.rel_tolerance`` (shipped: :data:`DEFAULT_ABS_TOL`,
:data:`DEFAULT_REL_TOL`: volumes 1 mL or 2 %; involvement 0.5 percentage points or
2 %; lesion count exact); ``abs_tol`` / ``rel_tol`` override single quantities. A CSV cell
written with decimals also agrees when it is the recomputed value rounded as written
(``0.9`` in a litre column for 856.3 mL: within half its last decimal, 50 mL). A cell
that cannot be recomputed (the study fails, or the quantity is undefined) gets the
verdict ``error``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_open
from ..errors import InputError, NetlmError
from ..rules_data import default_section
from ..spreadsheet import table_path
from .reported_cells import QUANTITIES, ReportedCell, cell_number, column_quantity, read_cell, read_reported_table

__all__ = [
    "DEFAULT_ABS_TOL",
    "DEFAULT_REL_TOL",
    "QUANTITIES",
    "CheckResult",
    "CheckRow",
    "ReportedCell",
    "cell_number",
    "check_one_study",
    "check_reported",
    "check_sr",
    "check_values",
    "column_quantity",
    "quantities_from_report",
    "read_cell",
    "undefined_reasons",
]

logger = logging.getLogger(__name__)

#: Shipped absolute tolerances (units of each quantity): the rules key ``check.abs_tolerance``.
DEFAULT_ABS_TOL: dict[str, float] = {q: float(v) for q, v in default_section("check")["abs_tolerance"].items()}
#: Shipped relative tolerances (fraction of the recomputed value): the rules key ``check.rel_tolerance``.
DEFAULT_REL_TOL: dict[str, float] = {q: float(v) for q, v in default_section("check")["rel_tolerance"].items()}
#: Discrepancy table columns.
TABLE_COLUMNS = ("study", "quantity", "reported", "recomputed", "difference", "relative_difference", "verdict", "note")


#: Quantities that need the lesions segmented (a liver-only segmentation leaves them undefined).
_NEED_LESIONS = ("tumor_volume_ml", "involvement_percent", "lesion_count", "remnant_volume_ml")
#: Quantities that need a liver mask.
_NEED_LIVER = ("liver_volume_ml", "involvement_percent", "remnant_volume_ml")


def quantities_from_report(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The checkable quantities of a report dict (``StudyReport.to_dict()``).

    ``tumor_volume_ml`` is the intrahepatic tumour volume, ``remnant_volume_ml``
    the non-tumorous liver volume, ``lesion_count`` the intrahepatic lesions. The
    tumour quantities are None (not recomputable) when the study's segmentation has no
    lesion segmentation (``tumor.lesions_segmented`` false): its 0 is not a measurement.
    """
    liver = report.get("liver") or {}
    tumor = report.get("tumor") or {}
    rem = report.get("remnant") or {}
    values: dict[str, float | None] = {
        "liver_volume_ml": liver.get("volume_ml"),
        "tumor_volume_ml": tumor.get("intrahepatic_volume_ml"),
        "involvement_percent": report.get("involvement_percent"),
        "lesion_count": tumor.get("lesion_count"),
        "remnant_volume_ml": rem.get("non_tumorous_liver_volume_ml"),
    }
    for q in undefined_reasons(report):
        values[q] = None
    return values


def undefined_reasons(report: Mapping[str, Any]) -> dict[str, str]:
    """Why quantities of a report cannot be recomputed: quantity -> reason.

    Examples
    --------
    >>> undefined_reasons({"liver": {"volume_ml": 70.4}, "tumor": {"lesions_segmented": False}})["lesion_count"]
    'the study has no lesion segmentation, only a liver'
    >>> undefined_reasons({"liver": {"volume_ml": None}, "tumor": {}})["liver_volume_ml"]
    'the study has no liver mask'
    """
    reasons: dict[str, str] = {}
    if (report.get("tumor") or {}).get("lesions_segmented") is False:
        reasons.update(dict.fromkeys(_NEED_LESIONS, "the study has no lesion segmentation, only a liver"))
    if (report.get("liver") or {}).get("volume_ml") is None:
        reasons.update(dict.fromkeys(_NEED_LIVER, "the study has no liver mask"))
    return reasons


@dataclass
class CheckRow:
    """One checked cell."""

    study: str
    quantity: str
    reported: float
    recomputed: float | None
    difference: float | None
    relative_difference: float | None
    verdict: str  # "agree" | "DISCREPANT" | "error"
    note: str = ""

    def as_csv(self) -> list[str]:
        """Cells of the discrepancy table."""

        def c(v: float | None) -> str:
            return "" if v is None else f"{v:.6g}"

        return [
            self.study,
            self.quantity,
            c(self.reported),
            c(self.recomputed),
            c(self.difference),
            c(self.relative_difference),
            self.verdict,
            self.note,
        ]


@dataclass
class CheckResult:
    """All checked cells, plus notes (e.g. ignored columns)."""

    rows: list[CheckRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_discrepant(self) -> int:
        """Cells outside tolerance."""
        return sum(r.verdict == "DISCREPANT" for r in self.rows)

    @property
    def n_errors(self) -> int:
        """Cells that could not be recomputed."""
        return sum(r.verdict == "error" for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 all agree, 1 any discrepancy, 3 any cell not recomputable (unreadable study)."""
        if self.n_errors:
            return 3
        return 1 if self.n_discrepant else 0

    def format_table(self) -> str:
        """Fixed-width text table for the console."""

        def c(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        lines = [
            f"{'study':<28} {'quantity':<20} {'reported':>11} {'recomputed':>11} {'diff':>10} {'rel diff':>9}  verdict"
        ]
        for r in self.rows:
            lines.append(
                f"{r.study[-28:]:<28} {r.quantity:<20} {c(r.reported, '.6g'):>11} {c(r.recomputed, '.6g'):>11} "
                f"{c(r.difference, '.3g'):>10} {c(r.relative_difference, '.2%'):>9}  {r.verdict}"
                f"{'  ' + r.note if r.note else ''}"
            )
        lines.append(
            f"{len(self.rows)} cell(s): {len(self.rows) - self.n_discrepant - self.n_errors} agree, "
            f"{self.n_discrepant} DISCREPANT, {self.n_errors} error"
        )
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the discrepancy table (all checked cells) as CSV, atomically."""
        out = Path(path)
        with atomic_open(out, "w") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(TABLE_COLUMNS)
            for r in self.rows:
                w.writerow(r.as_csv())
        return out


def _tolerances(
    abs_tol: Mapping[str, float] | None, rel_tol: Mapping[str, float] | None, rules: Mapping[str, Any] | None = None
) -> tuple[dict, dict]:
    """The tolerances of a check: the rules' ``[check]`` tables (shipped ones without rules), then the overrides."""
    if rules is None:
        a, r = dict(DEFAULT_ABS_TOL), dict(DEFAULT_REL_TOL)
    else:
        a = {q: float(v) for q, v in rules["check"]["abs_tolerance"].items()}
        r = {q: float(v) for q, v in rules["check"]["rel_tolerance"].items()}
    for given, target, name in ((abs_tol, a, "abs"), (rel_tol, r, "rel")):
        for q, v in (given or {}).items():
            if q not in QUANTITIES:
                raise InputError(f"{name} tolerance for unknown quantity {q!r}; use one of {', '.join(QUANTITIES)}.")
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InputError(f"{name} tolerance {q}={v!r} must be a finite number >= 0.")
            target[q] = float(v)
    return a, r


def check_values(
    study: str,
    reported: Mapping[str, float],
    recomputed: Mapping[str, float | None],
    *,
    abs_tol: Mapping[str, float] | None = None,
    rel_tol: Mapping[str, float] | None = None,
    rules: Mapping[str, Any] | None = None,
    reasons: Mapping[str, str] | None = None,
    rounding: Mapping[str, float] | None = None,
) -> list[CheckRow]:
    """Compare reported with recomputed values of one study (see the module docstring for the rule).

    Parameters
    ----------
    study : str
        Study name for the table.
    reported : mapping
        Quantity -> reported value.
    recomputed : mapping
        Quantity -> recomputed value (``None`` when undefined).
    abs_tol, rel_tol : mapping, optional
        Overrides of single tolerances.
    rules : Rules, optional
        Rules whose ``check.abs_tolerance`` / ``check.rel_tolerance`` replace the shipped tolerances.
    reasons : mapping, optional
        Quantity -> why it is undefined (:func:`undefined_reasons`), for the note of its cell.
    rounding : mapping, optional
        Quantity -> half the unit of the last decimal the reported value was written with (in the
        quantity's unit): a value that is the recomputed one rounded as written agrees.

    Returns
    -------
    list of CheckRow
    """
    a, r = _tolerances(abs_tol, rel_tol, rules)
    why = reasons or {}
    rows = []
    for q, rep in reported.items():
        rec = recomputed.get(q)
        if rec is None:
            note = f"not recomputable ({why.get(q, 'undefined')})"
            rows.append(CheckRow(study, q, float(rep), None, None, None, "error", note))
            continue
        diff = float(rep) - float(rec)
        rel = diff / abs(float(rec)) if rec != 0 else None

        def agrees(value: float, q: str = q, rec: float = float(rec)) -> bool:
            d = value - rec
            return abs(d) <= a[q] + 1e-12 or (rec != 0 and abs(d / rec) <= r[q] + 1e-12)

        ok, note = agrees(float(rep)), ""
        half = (rounding or {}).get(q)
        if not ok and half is not None and abs(diff) <= half * (1 + 1e-9):
            ok, note = True, f"the recomputed value rounded as reported (+/- {half:g} {_UNITS[q]})"
        elif not ok:
            note = _unit_slip(q, float(rep), agrees)
        rows.append(CheckRow(study, q, float(rep), float(rec), diff, rel, "agree" if ok else "DISCREPANT", note))
    return rows


#: The unit of each quantity, for notes.
_UNITS = {q: "mL" if q.endswith("_ml") else "points" if q.endswith("_percent") else "" for q in QUANTITIES}
#: Slips of unit a reviewer meets: (factor, how the reported number then reads) per kind of quantity.
_SLIPS = {
    "_percent": ((100.0, "a fraction (x 100)"),),
    "_ml": ((1e-3, "mm3 (x 0.001)"), (1e3, "litres (x 1000)")),
}


def _unit_slip(quantity: str, reported: float, agrees: Callable[[float], bool]) -> str:
    """A note when a discrepant value agrees once read in another unit (the verdict stays DISCREPANT)."""
    for suffix, slips in _SLIPS.items():
        if quantity.endswith(suffix):
            for factor, how in slips:
                if reported != 0 and agrees(reported * factor):
                    return f"agrees if the reported value is {how}: check the unit of the column"
    return ""


def _against_report(
    study: str,
    reported: Mapping[str, float],
    report: Mapping[str, Any],
    abs_tol: Mapping[str, float] | None,
    rel_tol: Mapping[str, float] | None,
    rules: Mapping[str, Any] | None,
    rounding: Mapping[str, float] | None = None,
) -> list[CheckRow]:
    """:func:`check_values` against a recomputed report dict, each undefined cell with its reason."""
    recomputed = quantities_from_report(report)
    reasons = undefined_reasons(report)
    rows = check_values(
        study, reported, recomputed, abs_tol=abs_tol, rel_tol=rel_tol, rules=rules, reasons=reasons, rounding=rounding
    )
    others = _other_readings(report, recomputed)
    for row in rows:  # a number that another quantity of the study gives: say which (the verdict stays)
        if row.verdict != "DISCREPANT" or row.note:
            continue
        for value, what in others.get(row.quantity, ()):
            alt = check_values(
                study,
                {row.quantity: row.reported},
                {row.quantity: value},
                abs_tol=abs_tol,
                rel_tol=rel_tol,
                rules=rules,
                rounding=rounding,
            )[0]
            if alt.verdict == "agree":
                shown = f"{value:.2f} mL" if row.quantity.endswith("_ml") else f"{value:g}"
                row.note = f"agrees with {what} ({shown}); {row.quantity} is {_MEANING[row.quantity]}"
                break
    return rows


#: What each quantity is, for the notes of a cell that agrees with another reading.
_MEANING = {
    "lesion_count": "of the intrahepatic lesions",
    "tumor_volume_ml": "of the intrahepatic lesions",
    "remnant_volume_ml": "the non-tumorous liver",
}


def _other_readings(report: Mapping[str, Any], recomputed: Mapping[str, float | None]) -> dict[str, list[tuple]]:
    """Other numbers a reviewer may have reported under a quantity's name: quantity -> [(value, what)].

    The lesion count and tumour volume with the extrahepatic lesions (another tool's total of all
    lesions), and the plan's future liver remnant for the remnant (a surgeon's "remnant").
    """
    tumor = report.get("tumor") or {}
    flr = (report.get("remnant") or {}).get("future_liver_remnant_ml")
    out: dict[str, list[tuple]] = {}
    for q, extra in (
        ("lesion_count", tumor.get("extrahepatic_lesion_count")),
        ("tumor_volume_ml", tumor.get("extrahepatic_volume_ml")),
    ):
        base = recomputed.get(q)
        if base is not None and extra:
            out[q] = [(float(base) + float(extra), "all lesions, extrahepatic ones included")]
    if flr is not None and recomputed.get("remnant_volume_ml") is not None:
        out["remnant_volume_ml"] = [(float(flr), "the future liver remnant of the plan")]
    return out


def check_reported(
    csv_path: str | os.PathLike[str],
    *,
    abs_tol: Mapping[str, float] | None = None,
    rel_tol: Mapping[str, float] | None = None,
    analyze: Callable[..., Any] | None = None,
    studies_dir: str | os.PathLike[str] | None = None,
    **analyze_kwargs: Any,
) -> CheckResult:
    """Recompute every study of a reported-values CSV and compare cell by cell.

    Parameters
    ----------
    csv_path : path-like
        CSV with a ``study`` (or cohort.csv's ``study_id``) column (folder relative to the CSV, or
        to ``studies_dir``) and any of :data:`QUANTITIES` (:func:`column_quantity`).
    abs_tol, rel_tol : mapping, optional
        Per-quantity overrides of the tolerances (the rules' ``[check]`` tables, shipped:
        :data:`DEFAULT_ABS_TOL` / :data:`DEFAULT_REL_TOL`).
    analyze : callable, optional
        The analysis function (default :func:`netlm_imaging.api.analyze`).
    studies_dir : path-like, optional
        The folder the study paths are relative to (default: the CSV's folder), e.g. the
        ``COHORT_DIR`` of the ``netlm batch`` run that wrote a cohort.csv.
    **analyze_kwargs
        Passed to ``analyze`` (``labels``, ``options``, ``rules``, ...). A ``rules`` file or
        ``Rules`` is read once: the recomputation and the tolerances both use it.

    Returns
    -------
    CheckResult

    Raises
    ------
    InputError
        Unreadable CSV, no ``study`` column, a non-numeric cell (naming the row and column), bad tolerances.
    """
    path = Path(csv_path)
    rules = _loaded_rules(analyze_kwargs)
    _tolerances(abs_tol, rel_tol, rules)  # validate before any work
    rows, notes = read_reported_table(path)
    analyze_fn = analyze if analyze is not None else _default_analyze()
    result = CheckResult(notes=notes)
    base = path.parent if studies_dir is None else Path(studies_dir)
    done: dict[str, dict[str, Any] | NetlmError] = {}  # a study on several rows (one per reader) is analysed once
    for line, study, values, rounding, row_uid in rows:
        if not values:
            continue
        folder = table_path(base, study)  # resolved; backslashes of a table written on Windows too
        key = str(folder)
        if key not in done:
            try:
                report = analyze_fn(folder, **analyze_kwargs)
                done[key] = report.to_dict() if hasattr(report, "to_dict") else report
            except NetlmError as exc:
                done[key] = exc
        data = done[key]
        if isinstance(data, NetlmError):
            logger.info("row %d (%s): %s", line, study, data)
            result.rows.extend(CheckRow(study, q, v, None, None, None, "error", str(data)) for q, v in values.items())
            continue
        folder_uid = (data.get("study") or {}).get("study_instance_uid")
        if row_uid and folder_uid and row_uid != str(folder_uid):  # the row reports another study
            why = (
                f"row {line} describes the study {row_uid}, but {study} is the study {folder_uid}; "
                "correct the row's study folder (or its StudyInstanceUID)"
            )
            logger.info("%s: %s", path, why)
            result.rows.extend(CheckRow(study, q, v, None, None, None, "error", why) for q, v in values.items())
            continue
        result.rows.extend(_against_report(study, values, data, abs_tol, rel_tol, rules, rounding))
    if not result.rows:
        raise InputError(f"{path}: every reported cell is empty; nothing to check (fill in the reported values).")
    return result


def _loaded_rules(analyze_kwargs: dict[str, Any]) -> Any:
    """The ``rules`` of ``analyze_kwargs`` loaded once (and put back loaded); None when not given."""
    given = analyze_kwargs.get("rules")
    if given is None:
        return None
    from ..classify.rules import Rules, load_rules

    rules = given if isinstance(given, Rules) else load_rules(given)
    analyze_kwargs["rules"] = rules
    return rules


def _default_analyze() -> Callable[..., Any]:
    """:func:`netlm_imaging.api.analyze`, imported when first needed."""
    from ..api import analyze

    return analyze


def check_sr(
    sr_path: str | os.PathLike[str],
    study: str | os.PathLike[str],
    *,
    abs_tol: Mapping[str, float] | None = None,
    rel_tol: Mapping[str, float] | None = None,
    analyze: Callable[..., Any] | None = None,
    **analyze_kwargs: Any,
) -> CheckResult:
    """Check the measurements of a DICOM SR TID 1500 against a recomputation of ``study``.

    Parameters
    ----------
    sr_path : path-like
        SR file; read with :func:`netlm_imaging.report.sr_read.read_sr_measurements`.
    study : path-like
        The study folder the SR describes.
    abs_tol, rel_tol, analyze, **analyze_kwargs
        As in :func:`check_reported`.

    Returns
    -------
    CheckResult

    Raises
    ------
    InputError
        An unreadable SR, an SR without checkable quantities, or an SR whose StudyInstanceUID is
        not the study's (both known).
    """
    from ..report.sr_read import read_sr_measurements

    rules = _loaded_rules(analyze_kwargs)
    _tolerances(abs_tol, rel_tol, rules)
    found = read_sr_measurements(sr_path)
    values = {q: float(v) for q, v in found.items() if q in QUANTITIES and v is not None}
    if not values:
        raise InputError(f"{sr_path}: the SR holds none of {', '.join(QUANTITIES)}; nothing to check.")
    result, _ = check_one_study(
        sr_path, "SR", values, study, found.get("study_instance_uid"), abs_tol, rel_tol, rules, analyze, analyze_kwargs
    )
    for row in result.rows:  # a value the SR does not state itself says how it was derived
        how = (found.get("derived") or {}).get(row.quantity)
        if how:
            row.note = "; ".join(n for n in (f"derived: {how}", row.note) if n)
    return result


def check_one_study(
    source: str | os.PathLike[str],
    kind: str,
    values: Mapping[str, float],
    study: str | os.PathLike[str],
    reported_uid: Any,
    abs_tol: Mapping[str, float] | None,
    rel_tol: Mapping[str, float] | None,
    rules: Any,
    analyze: Callable[..., Any] | None,
    analyze_kwargs: dict[str, Any],
) -> tuple[CheckResult, dict[str, Any] | None]:
    """Recompute ``study`` and check the ``values`` one file (an SR, a report) reports for it.

    Returns the result and the recomputed report dict (None when the study could not be
    recomputed: every cell then has the verdict ``error``). An InputError when the file names
    another StudyInstanceUID than the study's (both known): every cell would be compared with
    another study.
    """
    analyze_fn = analyze if analyze is not None else _default_analyze()
    name = str(study)
    result = CheckResult()
    try:
        report = analyze_fn(Path(study), **analyze_kwargs)
    except NetlmError as exc:
        result.rows.extend(CheckRow(name, q, v, None, None, None, "error", str(exc)) for q, v in values.items())
        return result, None
    data = report.to_dict() if hasattr(report, "to_dict") else report
    study_uid = (data.get("study") or {}).get("study_instance_uid")
    if reported_uid and study_uid and str(reported_uid) != str(study_uid):
        raise InputError(
            f"{source}: the {kind} describes the study {reported_uid}, but {study} is the study {study_uid}; "
            f"give the study folder the {kind} describes with --study."
        )
    result.rows.extend(_against_report(name, values, data, abs_tol, rel_tol, rules))
    return result, data
