"""Check a netlm report.json (a colleague's, or an older run's) against a recomputation of its study.

The reported values are the report's own quantities (:func:`~netlm_imaging.verify.check.quantities_from_report`:
those it could not measure are not checked). A discrepancy often means the report was made from
other inputs (another version of the segmentation, another image series) or another tool or rules
version: each such difference between the report and the recomputation is listed in the notes,
so a reviewer can tell a changed segmentation from a wrong number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from .check import QUANTITIES, CheckResult, _loaded_rules, _tolerances, check_one_study, quantities_from_report

__all__ = ["check_report_json", "provenance_differences", "read_report_json"]


def read_report_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The report dict of a netlm report.json.

    Raises
    ------
    InputError
        An unreadable file, not JSON, or JSON that is not a netlm report (no ``schema_version``,
        ``liver`` and ``tumor``).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))  # a report saved again by a Windows editor has a BOM
    except OSError as exc:
        raise InputError(f"{p}: cannot read the report ({exc.strerror}); check the path") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a JSON file ({exc}); pass the report.json that netlm analyze wrote") from None
    if not (isinstance(data, dict) and "schema_version" in data and "liver" in data and "tumor" in data):
        raise InputError(
            f"{p}: not a netlm report (no schema_version, liver and tumor); pass the report.json that netlm analyze "
            "wrote, a CSV of reported values or a DICOM SR"
        )
    return data


def _provenance(report: Mapping[str, Any]) -> dict[str, Any]:
    study = report.get("study") or {}
    grid = study.get("grid") or {}
    return {
        "image": study.get("image_source"),
        "segmentation": study.get("segmentation_sources"),
        "image series": study.get("series_instance_uid"),
        "grid shape": grid.get("shape"),
        "grid spacing (mm)": grid.get("spacing_mm"),
        "volume method": (report.get("method") or {}).get("volume"),
        "tool version": (report.get("tool") or {}).get("version"),
        "rules version": (report.get("classification") or {}).get("rules_version"),
    }


def provenance_differences(reported: Mapping[str, Any], recomputed: Mapping[str, Any]) -> list[str]:
    """What the report was made from that differs from the recomputation, one line each.

    Examples
    --------
    >>> old = {"study": {"segmentation_sources": ["seg_v1.nii.gz"]}, "tool": {"version": "0.1.0"}}
    >>> new = {"study": {"segmentation_sources": ["seg_v2.nii.gz"]}, "tool": {"version": "0.1.0"}}
    >>> provenance_differences(old, new)
    ["the report's segmentation ['seg_v1.nii.gz'] is now ['seg_v2.nii.gz']"]
    """
    a, b = _provenance(reported), _provenance(recomputed)
    return [f"the report's {k} {a[k]} is now {b[k]}" for k in a if a[k] is not None and a[k] != b[k]]


def check_report_json(
    report_path: str | os.PathLike[str],
    study: str | os.PathLike[str],
    *,
    abs_tol: Mapping[str, float] | None = None,
    rel_tol: Mapping[str, float] | None = None,
    analyze: Callable[..., Any] | None = None,
    **analyze_kwargs: Any,
) -> CheckResult:
    """Check the quantities of a netlm report.json against a recomputation of ``study``.

    Parameters
    ----------
    report_path : path-like
        A report.json written by ``netlm analyze`` (or ``netlm batch``'s reports/).
    study : path-like
        The study folder it reports.
    abs_tol, rel_tol, analyze, **analyze_kwargs
        As in :func:`netlm_imaging.verify.check.check_reported`.

    Returns
    -------
    CheckResult
        Its notes name every difference of inputs, tool or rules between the report and the
        recomputation (:func:`provenance_differences`).

    Raises
    ------
    InputError
        Not a netlm report, a report with no measured quantity, or one of another study
        (StudyInstanceUIDs both known and different).
    """
    rules = _loaded_rules(analyze_kwargs)
    _tolerances(abs_tol, rel_tol, rules)
    reported = read_report_json(report_path)
    values = {q: float(v) for q, v in quantities_from_report(reported).items() if v is not None}
    if not values:
        raise InputError(f"{report_path}: the report measured none of {', '.join(QUANTITIES)}; nothing to check.")
    uid = (reported.get("study") or {}).get("study_instance_uid")
    result, data = check_one_study(
        report_path, "report", values, study, uid, abs_tol, rel_tol, rules, analyze, analyze_kwargs
    )
    if data is not None:
        result.notes.extend(provenance_differences(reported, data))
    return result
