"""Tables for cohorts: one row per lesion (``lesions.csv``, ``StudyReport.lesions_frame()``).

Like pyradiomics, TotalSegmentator ``--statistics`` and Slicer Segment
Statistics, a lesion table has one row per segment: the study, the lesion id
(the value in the instance map, the ``Lesion <id>`` of the SR and SEG), its
location, Couinaud segment, volume, diameters and, with PET, its SUVs.
Numbers are copied from ``report.json`` (units in the column names).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import readable
from .lesion_columns import csv_columns, csv_names, csv_values

__all__ = [
    "CSV_COLUMNS",
    "LESIONS_KEY",
    "LESION_COLUMNS",
    "NUMBER_COLUMNS",
    "RUN_COLUMNS",
    "STUDY_COLUMNS",
    "csv_cell",
    "failure_row",
    "format_lesions_csv",
    "lesion_rows",
    "one_line",
    "row_from_report",
    "study_numbers",
    "to_frame",
]

#: Study-level numbers (cohort.csv's number columns, ``StudyReport.to_frame()``), in order.
STUDY_COLUMNS = (
    "liver_volume_ml",
    "intrahepatic_tumor_ml",
    "extrahepatic_tumor_ml",
    "involvement_percent",
    "lesion_count",
    "extrahepatic_lesion_count",
    "non_tumorous_liver_volume_ml",
    "mahuron_type",
    "burden_category",
    "achievable_debulking_percent",
    "distribution",
    "resectable_cloyd",
    "warnings_count",
    "modality",
    "pet_suv_type",
    "pet_suv_max",
    "pet_liver_suv_mean",
    "pet_spleen_suv_mean",
    "pet_sretv_ml",
    "pet_tlsre",
    "pet_whole_body_sretv_ml",
    "pet_whole_body_tlsre",
    "pet_delineation",
    "mri_phase",
    "mri_phase_basis",
    "mri_delay_s",
    "mri_image_component",
    "mri_liver_to_spleen_contrast_ratio",
    "mri_relative_enhancement_liver",
    "mri_hepatic_uptake_index_ml",
    "mri_functional_flr_plan_percent",
    "classification_missing_inputs",
    "rules_version",
)

#: lesions.csv columns, in order: the study, then the per-lesion registry's (report/lesion_columns.py).
LESION_COLUMNS = ("study_id", "study_instance_uid", *(n for c in csv_columns() for n in csv_names(c)))
#: Report numbers copied into cohort.csv, in column order (PET and classification columns included).
NUMBER_COLUMNS = STUDY_COLUMNS
#: Columns that change from run to run over the same inputs (always last).
RUN_COLUMNS = ("elapsed_s", "resumed")
#: All cohort.csv columns, in order.
CSV_COLUMNS = ("study_id", "study_instance_uid", "status", "error", *NUMBER_COLUMNS, "fingerprint", *RUN_COLUMNS)

#: Key of a row's lesion rows (not a cohort.csv column; they go to lesions.csv).
LESIONS_KEY = "_lesions"


def study_numbers(report: Mapping[str, Any]) -> dict[str, Any]:
    """The study-level numbers of a report, keyed by :data:`STUDY_COLUMNS`.

    PET columns (``pet_*``) are empty without PET, MR columns (``mri_*``, docs/mri.md) without an
    MR image; ``classification_missing_inputs``
    joins the names of the inputs a classification lacked with ``;``.
    """
    tumor = report.get("tumor") or {}
    cls = report.get("classification") or {}
    pet = report.get("pet") or {}
    mri = report.get("mri") or {}
    return {
        "liver_volume_ml": (report.get("liver") or {}).get("volume_ml"),
        "intrahepatic_tumor_ml": tumor.get("intrahepatic_volume_ml"),
        "extrahepatic_tumor_ml": tumor.get("extrahepatic_volume_ml"),
        "involvement_percent": report.get("involvement_percent"),
        "lesion_count": tumor.get("lesion_count"),
        "extrahepatic_lesion_count": tumor.get("extrahepatic_lesion_count"),
        "non_tumorous_liver_volume_ml": (report.get("remnant") or {}).get("non_tumorous_liver_volume_ml"),
        "mahuron_type": cls.get("mahuron_type"),
        "burden_category": cls.get("burden_category"),
        "achievable_debulking_percent": cls.get("achievable_debulking_percent"),
        "distribution": cls.get("distribution"),
        "resectable_cloyd": cls.get("resectable_cloyd"),
        "warnings_count": len(report.get("warnings") or []),
        "modality": (report.get("study") or {}).get("modality"),
        "pet_suv_type": pet.get("suv_type"),
        "pet_suv_max": pet.get("suv_max"),
        "pet_liver_suv_mean": pet.get("liver_suv_mean"),
        "pet_spleen_suv_mean": pet.get("spleen_suv_mean"),
        "pet_sretv_ml": pet.get("sretv_ml"),
        "pet_tlsre": pet.get("tlsre"),
        "pet_whole_body_sretv_ml": pet.get("whole_body_sretv_ml"),
        "pet_whole_body_tlsre": pet.get("whole_body_tlsre"),
        "pet_delineation": pet.get("delineation"),
        "mri_phase": (mri.get("phase") or {}).get("phase"),
        "mri_phase_basis": (mri.get("phase") or {}).get("basis"),
        "mri_delay_s": (mri.get("phase") or {}).get("delay_s"),
        "mri_image_component": (mri.get("provenance") or {}).get("image_component"),
        "mri_liver_to_spleen_contrast_ratio": mri.get("liver_to_spleen_contrast_ratio"),
        "mri_relative_enhancement_liver": (mri.get("relative_enhancement") or {}).get("liver"),
        "mri_hepatic_uptake_index_ml": mri.get("hepatic_uptake_index_ml"),
        "mri_functional_flr_plan_percent": (mri.get("functional_flr_plan") or {}).get("functional_flr_percent"),
        "classification_missing_inputs": ";".join(str(m) for m in cls.get("missing_inputs") or []) or None,
        "rules_version": cls.get("rules_version"),
    }


def lesion_rows(report: Mapping[str, Any], study_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per lesion of a report (``StudyReport.to_dict()`` or report.json).

    Parameters
    ----------
    report : mapping
        The report.
    study_id : str, optional
        Study key (default: the Study Instance UID).

    Returns
    -------
    list of dict
        Keys :data:`LESION_COLUMNS`; centroids are patient LPS millimetres.
    """
    uid = (report.get("study") or {}).get("study_instance_uid") or ""
    rows = []
    for les in report.get("lesions") or []:
        row: dict[str, Any] = {"study_id": study_id if study_id is not None else uid, "study_instance_uid": uid}
        for col in csv_columns():
            row.update(csv_values(col, les))
        rows.append(row)
    return rows


def csv_cell(value: Any) -> str:
    """A CSV cell: empty for None, true/false, floats as their shortest repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_lesions_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """lesions.csv text: header :data:`LESION_COLUMNS`, rows sorted by study id then lesion id."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LESION_COLUMNS)
    for row in sorted(rows, key=lambda r: (str(r["study_id"]), int(r["lesion_id"] or 0))):
        w.writerow([csv_cell(row.get(c)) for c in LESION_COLUMNS])
    return buf.getvalue()


def to_frame(rows: list[dict[str, Any]], columns: Iterable[str]) -> Any:
    """A pandas DataFrame of rows (optional extra ``pandas``).

    Raises
    ------
    UnsupportedError
        pandas is not installed.
    """
    try:
        import pandas as pd
    except ImportError:
        from ..errors import UnsupportedError

        raise UnsupportedError(
            "pandas is not installed; pip install 'netlm-imaging[pandas]' for DataFrames, "
            "or use the lists of dicts (lesion_rows)"
        ) from None
    return pd.DataFrame(rows, columns=list(columns))


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space), with the
    bytes of a file name that are not UTF-8 as U+FFFD (:func:`~netlm_imaging.errors.readable`)."""
    return " ".join(readable(str(text)).split())


def row_from_report(study_id: str, report: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """The cohort.csv row of a successful study, from its report dict.

    Parameters
    ----------
    study_id : str
        Study key.
    report : dict
        ``StudyReport.to_dict()`` (or the JSON file read back).
    fingerprint : str
        Input fingerprint.

    Returns
    -------
    dict
        Keys :data:`CSV_COLUMNS` (run columns filled by the caller) and :data:`LESIONS_KEY`.
    """
    row: dict[str, Any] = {
        "study_id": study_id,
        "study_instance_uid": (report.get("study") or {}).get("study_instance_uid") or "",
        "status": "ok",
        "error": "",
        **study_numbers(report),
        "fingerprint": fingerprint,
        "elapsed_s": None,
        "resumed": False,
        LESIONS_KEY: lesion_rows(report, study_id),
    }
    return row


def failure_row(study_id: str, error: str, fingerprint: str, status: str = "failed") -> dict[str, Any]:
    """The cohort.csv row of a study that has no report (failed, or still pending), with its one-line error."""
    row = dict.fromkeys(CSV_COLUMNS)
    row.update(study_id=study_id, status=status, error=one_line(error), fingerprint=fingerprint, resumed=False)
    return row
