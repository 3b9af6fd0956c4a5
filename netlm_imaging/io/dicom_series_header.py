"""The non-identifying header facts of a DICOM image series, and the series a SEG references.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`).
:func:`series_header_facts` gives the facts a report states of a series (manufacturer, series
description, the PET units and radiopharmaceutical ...; never a name, ID or birth date), read
from one file's raw header (:func:`_fast_header_facts`) or, for every file that path declines,
through pydicom (:func:`_header_facts_pydicom`). :func:`series_referenced_by` says which of the
reconstructions filed under one SeriesInstanceUID a ``--seg`` DICOM SEG / RTSTRUCT references.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._dicom_common import read_header, scan_dicom_folder
from ._dicom_fast import fast_text_values
from ._dicom_info import DicomFileInfo
from ._inflate import dcmread as bounded_dcmread
from .dicom_series_groups import group_image_series

__all__ = ["series_header_facts", "series_referenced_by"]


def series_referenced_by(infos: Sequence[DicomFileInfo], seg_args: Sequence[str | Path]) -> str | None:
    """The reconstruction a ``--seg`` DICOM SEG / RTSTRUCT references, when a folder's series holds several.

    Only decides between reconstructions split off one SeriesInstanceUID
    (:func:`~.dicom_series_groups.split_reconstructions`); in every other case ``None`` (the usual
    series choice applies).

    Parameters
    ----------
    infos : sequence of DicomFileInfo
        The image folder's scan.
    seg_args : sequence of str or Path
        The ``--seg`` arguments (``ROLE=PATH`` allowed; non-DICOM ones are skipped).
    """
    groups = group_image_series(infos)
    split = [g for g in groups if "#" in g.uid]
    if not split:
        return None
    wanted: set[str] = set()
    for arg in seg_args:
        text = str(arg)
        path = Path(text.split("=", 1)[1]) if "=" in text and not Path(text).exists() else Path(text)
        if path.is_file():
            info = read_header(path)
            if info is not None:
                wanted.update(info.referenced_sop_uids)
        elif path.is_dir():  # --seg FOLDER: the SEG / RTSTRUCT it holds
            wanted.update(u for i in scan_dicom_folder(path) for u in i.referenced_sop_uids)
    hit = [g for g in split if any(f.sop_instance_uid in wanted for f in g.files)]
    return hit[0].uid if len(hit) == 1 else None


def series_header_facts(path: Path) -> dict[str, Any]:
    """Non-identifying header facts of a series (from one file).

    Parameters
    ----------
    path : pathlib.Path
        A file of the series.

    Returns
    -------
    dict
        manufacturer, manufacturer_model, series_description, body_part,
        patient_weight_kg, patient_size_m, patient_sex, patient_age, units,
        decay_correction, corrected_image, series_date, series_time,
        acquisition_date, acquisition_time, rescale_type, and the PET
        radiopharmaceutical facts (radionuclide_total_dose_bq,
        radiopharmaceutical_start_time, radiopharmaceutical_start_datetime,
        radionuclide_half_life_s, radiopharmaceutical). Never name, ID or
        birth date.
    """
    fast = _fast_header_facts(path)
    return fast if fast is not None else _header_facts_pydicom(path)


def _header_facts_pydicom(path: Path) -> dict[str, Any]:
    """:func:`series_header_facts` through a pydicom header parse (every file the raw reader declines)."""
    import pydicom

    ds = bounded_dcmread(path, stop_before_pixels=True, defer_size=4096, force=True)  # no preamble: old exports

    def num(keyword: str) -> float | None:
        v = ds.get(keyword)
        try:
            return None if v in (None, "") else float(v)
        except (TypeError, ValueError):
            return None

    def text(keyword: str, source: Any = ds) -> str | None:
        v = source.get(keyword) if source is not None else None
        if v in (None, ""):
            return None
        return "\\".join(str(x) for x in v) if isinstance(v, (list, tuple, pydicom.multival.MultiValue)) else str(v)

    facts: dict[str, Any] = {
        "manufacturer": text("Manufacturer"),
        "manufacturer_model": text("ManufacturerModelName"),
        "series_description": text("SeriesDescription"),
        "body_part": text("BodyPartExamined"),
        "patient_weight_kg": num("PatientWeight"),
        "patient_size_m": num("PatientSize"),
        "patient_sex": text("PatientSex"),
        "patient_age": text("PatientAge"),
        "units": text("Units"),
        "decay_correction": text("DecayCorrection"),
        "corrected_image": text("CorrectedImage"),
        "series_date": text("SeriesDate"),
        "series_time": text("SeriesTime"),
        "acquisition_date": text("AcquisitionDate"),
        "acquisition_time": text("AcquisitionTime"),
        "rescale_type": text("RescaleType"),
    }
    rp_seq = ds.get("RadiopharmaceuticalInformationSequence")
    rp = rp_seq[0] if rp_seq else None
    if rp is not None:
        try:
            dose = float(rp.get("RadionuclideTotalDose")) if rp.get("RadionuclideTotalDose") else None
            half = float(rp.get("RadionuclideHalfLife")) if rp.get("RadionuclideHalfLife") else None
        except (TypeError, ValueError):
            dose = half = None
        facts.update(
            radionuclide_total_dose_bq=dose,
            radionuclide_half_life_s=half,
            radiopharmaceutical_start_time=text("RadiopharmaceuticalStartTime", rp),
            radiopharmaceutical_start_datetime=text("RadiopharmaceuticalStartDateTime", rp),
            radiopharmaceutical=text("Radiopharmaceutical", rp),
        )
    return facts


#: The text facts of :func:`series_header_facts` (report key, tag, VR) read without pydicom.
_FACT_TEXT_TAGS: tuple[tuple[str, int, bytes], ...] = (
    ("manufacturer", 0x00080070, b"LO"),
    ("manufacturer_model", 0x00081090, b"LO"),
    ("series_description", 0x0008103E, b"LO"),
    ("body_part", 0x00180015, b"CS"),
    ("patient_sex", 0x00100040, b"CS"),
    ("patient_age", 0x00101010, b"AS"),
    ("units", 0x00541001, b"CS"),
    ("decay_correction", 0x00541102, b"CS"),
    ("corrected_image", 0x00280051, b"CS"),
    ("series_date", 0x00080021, b"DA"),
    ("series_time", 0x00080031, b"TM"),
    ("acquisition_date", 0x00080022, b"DA"),
    ("acquisition_time", 0x00080032, b"TM"),
    ("rescale_type", 0x00281054, b"LO"),
)
_FACT_NUMBER_TAGS = (("patient_weight_kg", 0x00101030), ("patient_size_m", 0x00101020))
_RADIOPHARMACEUTICAL_SEQUENCE = 0x00540016
_NUMBER_CHARS = frozenset("0123456789+-.eE")


def _fast_header_facts(path: Path) -> dict[str, Any] | None:
    """:func:`series_header_facts` from the raw header of a plain image file, or ``None`` (use pydicom).

    Declines files with a Radiopharmaceutical Information Sequence (PET: pydicom
    reads its items), multi-valued or non-decimal values, and everything the
    header fast path declines; tests compare it with the pydicom path on every
    real image of shared/data.
    """
    tags = {tag: vr for _key, tag, vr in _FACT_TEXT_TAGS}
    tags.update({tag: b"DS" for _key, tag in _FACT_NUMBER_TAGS})
    tags[_RADIOPHARMACEUTICAL_SEQUENCE] = b"SQ"
    values = fast_text_values(path, tags)
    if values is None or _RADIOPHARMACEUTICAL_SEQUENCE in values:
        return None
    numbers: dict[str, float | None] = {}
    for key, tag in _FACT_NUMBER_TAGS:
        text = values.get(tag, "").strip()
        if not _NUMBER_CHARS.issuperset(text):
            return None  # pydicom decides what an unusual decimal string means
        try:
            numbers[key] = float(text) if text else None
        except ValueError:  # e.g. "7e"
            return None
    text_facts = {key: values.get(tag) or None for key, tag, _vr in _FACT_TEXT_TAGS}
    keys = [key for key, _tag, _vr in _FACT_TEXT_TAGS]
    # the key order of the pydicom path: four text facts, weight and size, the other text facts
    out: dict[str, Any] = {key: text_facts[key] for key in keys[:4]}
    out.update(numbers)
    out.update({key: text_facts[key] for key in keys[4:]})
    return out
