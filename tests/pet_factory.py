"""Write synthetic PET DICOM series (pydicom) with chosen SUV-relevant headers.

The factory writes what it is told and computes nothing about SUV: the tests
compute the expected SUVs themselves from the QIBA formula.

Geometry and pixel storage follow ``tests/dicom_factory.py`` (one file per
slice ``k``; ``pixel_array[r, c] == values[c, r, k]``); this module adds the
PET Series / Image module attributes, the Radiopharmaceutical Information
Sequence and the vendor private tags on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from dicom_factory import write_image_series
from pydicom.dataset import Dataset
from pydicom.valuerep import DSfloat

__all__ = ["NUCLIDE_CODES", "write_pet_series"]

#: (CodeValue, CodingSchemeDesignator, CodeMeaning) of CID 4020 radionuclides.
NUCLIDE_CODES = {
    "Ga-68": ("C-131A3", "SRT", "^68^Gallium"),
    "F-18": ("C-111A1", "SRT", "^18^Fluorine"),
}


def write_pet_series(
    folder: str | Path,
    values: np.ndarray,
    affine_lps: np.ndarray,
    *,
    slopes: Sequence[float] | None = None,
    units: str | None = "BQML",
    decay_correction: str | None = "START",
    weight_kg: float | None = 70.0,
    dose_bq: float | None = 150e6,
    half_life_s: float | None = 4069.8,
    nuclide: str | None = "Ga-68",
    radiopharmaceutical: str = "Ga68-DOTATATE",
    series_date: str = "20240102",
    series_time: str = "110000",
    acquisition_date: str | None = None,
    acquisition_times: Sequence[str] | None = None,
    injection_time: str | None = "100000",
    injection_datetime: str | None = None,
    ge_scan_datetime: str | None = None,
    philips_suv_scale: Sequence[float] | None = None,
    philips_conc_scale: Sequence[float] | None = None,
    decay_factors: Sequence[float] | None = None,
    corrected_image: Sequence[str] | None = ("ATTN", "DECY", "SCAT"),
    frame_of_reference_uid: str | None = None,
    seed: int = 0,
    patient_size_m: float | None = None,
    patient_sex: str | None = None,
    convolution_kernel: str | None = None,
) -> list[Path]:
    """Write a PET series whose modality-LUT values are ``values``.

    Parameters
    ----------
    folder : str or Path
        Output folder.
    values : numpy.ndarray
        ``[i, j, k]`` values after the modality LUT (Bq/mL for BQML, counts
        for CNTS). Stored as ``round(values / slope)``.
    affine_lps : numpy.ndarray
        4x4 index -> LPS affine.
    slopes : sequence of float, optional
        RescaleSlope per slice (intercept 0); default 1.
    units, decay_correction : str or None
        Units (0054,1001), DecayCorrection (0054,1102); None omits them.
    weight_kg, dose_bq, half_life_s : float or None
        PatientWeight, RadionuclideTotalDose, RadionuclideHalfLife; None omits.
    nuclide : str or None
        ``"Ga-68"`` or ``"F-18"`` for the Radionuclide Code Sequence; None omits it.
    radiopharmaceutical : str
        Radiopharmaceutical (0018,0031).
    series_date, series_time : str
        SeriesDate / SeriesTime.
    acquisition_date, acquisition_times : optional
        AcquisitionDate (default: series date) and per-slice AcquisitionTime
        (default: the series time).
    injection_time, injection_datetime : str or None
        RadiopharmaceuticalStartTime / RadiopharmaceuticalStartDateTime.
    ge_scan_datetime : str or None
        GE private (0009,100d) scan DateTime (creator GEMS_PETD_01).
    philips_suv_scale, philips_conc_scale : sequence of float, optional
        Philips private (7053,1000) and (7053,1009) per slice.
    decay_factors : sequence of float, optional
        DecayFactor (0054,1321) per slice.
    corrected_image : sequence of str or None
        CorrectedImage (0028,0051).
    frame_of_reference_uid : str, optional
        FrameOfReferenceUID.
    seed : int
        Seed of the UIDs.
    patient_size_m, patient_sex, convolution_kernel : optional
        PatientSize (0010,1020), PatientSex (0010,0040), ConvolutionKernel (0018,1210).

    Returns
    -------
    list of Path
        Files in slice order.
    """
    vals = np.asarray(values, dtype=np.float64)
    nk = vals.shape[2]
    sl = [1.0] * nk if slopes is None else [float(s) for s in slopes]
    paths = write_image_series(
        folder,
        vals,
        affine_lps,
        modality="PT",
        per_slice_rescale=[(s, 0.0) for s in sl],
        frame_of_reference_uid=frame_of_reference_uid,
        seed=seed,
    )
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        for kw in ("Units", "DecayCorrection", "PatientWeight"):
            if kw in ds:
                delattr(ds, kw)
        if units is not None:
            ds.Units = units
        if decay_correction is not None:
            ds.DecayCorrection = decay_correction
        if weight_kg is not None:
            ds.PatientWeight = float(weight_kg)
        if corrected_image is not None:
            ds.CorrectedImage = list(corrected_image)
        if patient_size_m is not None:
            ds.PatientSize = DSfloat(float(patient_size_m), auto_format=True)
        if patient_sex is not None:
            ds.PatientSex = patient_sex
        if convolution_kernel is not None:
            ds.ConvolutionKernel = convolution_kernel
        ds.SeriesDate = series_date
        ds.SeriesTime = series_time
        ds.AcquisitionDate = acquisition_date or series_date
        ds.AcquisitionTime = acquisition_times[k] if acquisition_times is not None else series_time
        info = Dataset()
        info.Radiopharmaceutical = radiopharmaceutical
        if injection_time is not None:
            info.RadiopharmaceuticalStartTime = injection_time
        if injection_datetime is not None:
            info.RadiopharmaceuticalStartDateTime = injection_datetime
        if dose_bq is not None:
            info.RadionuclideTotalDose = DSfloat(float(dose_bq), auto_format=True)
        if half_life_s is not None:
            info.RadionuclideHalfLife = DSfloat(float(half_life_s), auto_format=True)
        if nuclide is not None:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = NUCLIDE_CODES[nuclide]
            info.RadionuclideCodeSequence = [code]
        ds.RadiopharmaceuticalInformationSequence = [info]
        if decay_factors is not None:
            ds.DecayFactor = DSfloat(float(decay_factors[k]), auto_format=True)
        if ge_scan_datetime is not None:
            block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
            block.add_new(0x0D, "DT", ge_scan_datetime)
        if philips_suv_scale is not None or philips_conc_scale is not None:
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            if philips_suv_scale is not None:
                block.add_new(0x00, "DS", DSfloat(float(philips_suv_scale[k]), auto_format=True))
            if philips_conc_scale is not None:
                block.add_new(0x09, "DS", DSfloat(float(philips_conc_scale[k]), auto_format=True))
        ds.save_as(path, enforce_file_format=True)
    return paths
