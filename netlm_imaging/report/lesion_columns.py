"""The per-lesion measurement registry: one row per number a lesion carries.

Every per-lesion output reads its columns from :data:`LESION_COLUMNS`:
the report's ``lesions[]`` items (rounding), the HTML lesion table
(:mod:`netlm_imaging.report.html`), lesions.csv / ``lesions_frame()``
(:func:`netlm_imaging.report.tables.lesion_rows`) and the SCT-coded
measurements of the DICOM SR's lesion groups (:mod:`netlm_imaging.report.sr_groups`).

How to add a per-lesion measurement
-----------------------------------
1. Compute it in ``measure/`` and put it on the lesion: an attribute of
   :class:`netlm_imaging.measure.context.Lesion`, or a key of ``Lesion.extra``
   (additive to ``report.schema.json``; name it with its unit, e.g. ``_mm``).
2. Add one :class:`LesionColumn` to :data:`LESION_COLUMNS` here, saying how the
   report rounds it, whether and how the HTML table shows it, its CSV
   column(s) and which SR concept (if any) codes it.
3. Add its test (an independent expected value). Nothing else changes: the
   report, the HTML table, the CSV and the SR pick it up from this table.

Examples
--------
>>> [c.key for c in LESION_COLUMNS if c.sr is not None]
['volume_ml', 'longest_axial_diameter_mm', 'short_axis_diameter_mm', 'max_3d_diameter_mm']
>>> round_lesion({"volume_ml": 1.23456789, "centroid_lps_mm": [1.00049, 2.0, 3.0]})
{'volume_ml': 1.234568, 'centroid_lps_mm': [1.0, 2.0, 3.0]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LESION_COLUMNS",
    "LesionColumn",
    "SrConcept",
    "csv_columns",
    "csv_names",
    "csv_values",
    "html_columns",
    "round_lesion",
    "sr_columns",
]


@dataclass(frozen=True)
class SrConcept:
    """How the SR codes one per-lesion measurement (TID 1500 measurement in the lesion's group).

    Attributes
    ----------
    name : str
        Attribute of ``pydicom.sr.codedict.codes.SCT`` naming the concept (e.g. ``"LongAxis"``).
    unit : tuple of str
        UCUM unit as (value, scheme, meaning).
    derivation : str, optional
        Attribute of ``codes.SCT`` for the derivation (e.g. ``"Maximum"``).
    """

    name: str
    unit: tuple[str, str, str]
    derivation: str | None = None


_ML = ("ml", "UCUM", "milliliter")
_MM = ("mm", "UCUM", "millimeter")


@dataclass(frozen=True)
class LesionColumn:
    """One per-lesion number or attribute and where it appears.

    Attributes
    ----------
    key : str
        Key in the report's ``lesions[]`` item (= ``Lesion`` attribute or ``Lesion.extra`` key).
    title : str
        Column heading for people (HTML table).
    report_decimals : int, optional
        Decimals the report rounds a float (or each float of a list) to; None: as measured.
    html_decimals : int, optional
        Decimals the HTML table shows a float with (other values are shown as they are); None: not in the table.
    csv : tuple of str, optional
        Its lesions.csv column(s) (default: the key; a list value such as the
        centroid spreads over several columns); None: not in the CSV.
    sr : SrConcept, optional
        The SR measurement of this number; None: not in the SR.
    """

    key: str
    title: str
    report_decimals: int | None = None
    html_decimals: int | None = None
    csv: tuple[str, ...] | None = ()
    sr: SrConcept | None = None


#: The per-lesion registry, in display order.
LESION_COLUMNS: tuple[LesionColumn, ...] = (
    LesionColumn("id", "id", html_decimals=0, csv=("lesion_id",)),
    LesionColumn("location", "location", html_decimals=0),
    LesionColumn("volume_ml", "volume (mL)", 6, 3, sr=SrConcept("Volume", _ML)),
    LesionColumn("voxel_count", "voxels"),
    LesionColumn("longest_axial_diameter_mm", "longest axial (mm)", 3, 1, sr=SrConcept("LongAxis", _MM)),
    LesionColumn("short_axis_diameter_mm", "short axis (mm)", 3, 1, sr=SrConcept("ShortAxis", _MM)),
    LesionColumn("max_3d_diameter_mm", "max 3D (mm)", 3, 1, sr=SrConcept("Diameter", _MM, "Maximum")),
    LesionColumn("longest_axial_diameter_edge_mm", "longest axial edge-to-edge (mm)", 3, 1),
    LesionColumn("short_axis_diameter_edge_mm", "short axis edge-to-edge (mm)", 3, 1),
    LesionColumn("max_3d_diameter_edge_mm", "max 3D edge-to-edge (mm)", 3, 1),
    LesionColumn("recist_measurable", "RECIST measurable", html_decimals=0),
    LesionColumn("recist_category", "RECIST category", html_decimals=0),
    LesionColumn("recist_organ", "RECIST organ", html_decimals=0),
    LesionColumn("couinaud_segment", "segment", html_decimals=0),
    # vascular contact (docs/vascular_contact.md): the nearest given vessel and the gap to it; every vessel's gap
    # is in the report's vessel_distances_mm
    LesionColumn("nearest_vessel", "nearest vessel", html_decimals=0),
    LesionColumn("nearest_vessel_distance_mm", "gap to nearest vessel (mm)", 3, 1),
    LesionColumn("touches_image_border", "touches border", html_decimals=0, csv=None),
    LesionColumn("mean_intensity", "mean intensity", 3, 1),
    LesionColumn("suv_max", "SUVmax", 3, 2),
    LesionColumn("suv_mean", "SUVmean", 3, 2),
    LesionColumn("suv_peak", "SUVpeak", 3, 2),
    LesionColumn("sretv_ml", "SRETV (mL)", html_decimals=2),
    LesionColumn("tlsre", "TLSRE", html_decimals=2),
    LesionColumn("krenning_score", "Krenning (est.)", html_decimals=0),
    # PET (issue 14, docs/pet.md): the Krenning statistic and its flags, SUL, avid-tissue threshold
    LesionColumn("krenning_confidence", "Krenning confidence", html_decimals=0),
    LesionColumn("krenning_score_lower_bound", "Krenning lower bound"),
    LesionColumn("krenning_statistic_suv", "Krenning statistic (SUV)", 4, 2),
    LesionColumn("krenning_boundary_margin_sd", "Krenning boundary margin (noise SD)", 4),
    LesionColumn("suv_mean_core", "SUVmean core", 4),
    LesionColumn("core_voxel_count", "core voxels"),
    LesionColumn("suv_peak_inside", "SUVpeak inside lesion", 4),
    LesionColumn("equivalent_diameter_mm", "equivalent diameter (mm)", 4),
    LesionColumn("partial_volume_warning", "partial volume", html_decimals=0),
    LesionColumn("fdg_pet_advised", "FDG PET advised", html_decimals=0),
    LesionColumn("sul_max", "SULmax", 4, 2),
    LesionColumn("sul_peak", "SULpeak", 4),
    LesionColumn("sul_mean", "SULmean", 4),
    LesionColumn("sretv_threshold_suv", "SRETV threshold (SUV)", 4),
    LesionColumn("pet_voxel_count", "PET voxels"),
    LesionColumn("pet_fov_fraction", "fraction inside the PET field of view", 4),
    LesionColumn("mean_signal_au", "mean signal (a.u.)", html_decimals=2),
    LesionColumn("lesion_to_liver_contrast", "lesion-to-liver contrast", html_decimals=2),
    LesionColumn("relative_enhancement", "relative enhancement", html_decimals=2),
    LesionColumn("label", "label", html_decimals=0),
    LesionColumn("centroid_lps_mm", "centroid LPS (mm)", 3, csv=("centroid_x_mm", "centroid_y_mm", "centroid_z_mm")),
)


def _round(value: Any, decimals: int) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_round(v, decimals) for v in value]
    if isinstance(value, (int, float)):
        return round(float(value), decimals)
    return value


def round_lesion(item: Mapping[str, Any]) -> dict[str, Any]:
    """A report ``lesions[]`` item with each registered number rounded as the registry says.

    Parameters
    ----------
    item : mapping
        ``Lesion.to_dict()``.

    Returns
    -------
    dict
        A new dict; keys the registry does not round are copied unchanged.
    """
    out = dict(item)
    for col in LESION_COLUMNS:
        if col.report_decimals is not None and out.get(col.key) is not None:
            out[col.key] = _round(out[col.key], col.report_decimals)
    return out


def html_columns() -> list[LesionColumn]:
    """Columns of the HTML lesion table, in order."""
    return [c for c in LESION_COLUMNS if c.html_decimals is not None]


def csv_columns() -> list[LesionColumn]:
    """Registry entries in the lesions CSV, in order."""
    return [c for c in LESION_COLUMNS if c.csv is not None]


def csv_names(col: LesionColumn) -> tuple[str, ...]:
    """The lesions.csv column name(s) of a registry entry."""
    return col.csv or (col.key,)


def csv_values(col: LesionColumn, lesion: Mapping[str, Any]) -> dict[str, Any]:
    """The lesions.csv cells of one registry entry for one report lesion (list values spread over columns)."""
    names = csv_names(col)
    value = lesion.get(col.key)
    if len(names) == 1:
        return {names[0]: value}
    values = list(value) if isinstance(value, (list, tuple)) else [None] * len(names)
    return dict(zip(names, values))


def sr_columns() -> list[LesionColumn]:
    """Measurements of an SR lesion group, in order."""
    return [c for c in LESION_COLUMNS if c.sr is not None]
