"""Write real DICOM image series with pydicom, for tests.

Array / DICOM mapping (the same one :mod:`netlm_imaging.io.dicom_series` reads)
--------------------------------------------------------------------------------
A test volume is a numpy array ``array[i, j, k]`` plus a 4x4 affine from voxel
index to DICOM patient LPS (mm):

* ``i`` is the DICOM **column** index (moves along a row, ImageOrientationPatient
  ``[0:3]``), ``j`` is the DICOM **row** index (moves down a column,
  ImageOrientationPatient ``[3:6]``), ``k`` is the slice (one file per ``k``).
* So ``pixel_array[r, c] == array[c, r, k]``, i.e. each slice is stored as
  ``array[:, :, k].T``; ``Columns = ni`` and ``Rows = nj``.
* ``PixelSpacing = [row spacing, column spacing] = [|affine[:, 1]|, |affine[:, 0]|]``.
* ``ImagePositionPatient`` of slice ``k`` is ``affine @ (0, 0, k, 1)``.

The reader sorts slices by position along the normal ``row_cosine x col_cosine``;
a round trip returns the written affine when ``affine[:3, 2]`` points along that
normal (right-handed affines such as ``conftest.oblique_affine``). With a
left-handed affine the reader returns the same voxels with ``k`` reversed.

SliceThickness is deliberately written as ``1.25 x`` the real slice step so a
reader that uses it instead of ImagePositionPatient gets wrong volumes.

Identifying tags (PatientName, PatientID, PatientBirthDate, ...) are filled so
privacy tests can look for them in outputs.

UIDs are deterministic: derived from ``seed`` (and the slice index) with
:func:`pydicom.uid.generate_uid` and ``entropy_srcs``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

__all__ = [
    "SOP_CLASS",
    "affine_to_dicom_geometry",
    "deterministic_uid",
    "write_enhanced_series",
    "write_image_series",
]

#: Single-frame and Enhanced (multi-frame) image storage SOP classes.
SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "ENHANCED_CT": "1.2.840.10008.5.1.4.1.1.2.1",
    "ENHANCED_MR": "1.2.840.10008.5.1.4.1.1.4.1",
}

#: SliceThickness written = this factor x the true slice step (a trap for readers).
SLICE_THICKNESS_FACTOR = 1.25

_UNCOMPRESSED = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


def deterministic_uid(*parts: object) -> str:
    """A reproducible DICOM UID derived from ``parts``.

    Parameters
    ----------
    *parts : object
        Anything with a stable ``str()``; the same parts give the same UID.

    Returns
    -------
    str
        A UID under pydicom's root.
    """
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def affine_to_dicom_geometry(affine_lps: np.ndarray) -> tuple[list[float], list[float], np.ndarray]:
    """ImageOrientationPatient, PixelSpacing and per-slice step from an affine.

    Parameters
    ----------
    affine_lps : numpy.ndarray
        4x4 index->LPS affine (mapping documented in the module docstring).

    Returns
    -------
    iop : list of float
        Row cosine (direction of increasing column index ``i``) then column cosine.
    pixel_spacing : list of float
        ``[row spacing, column spacing]`` in mm.
    slice_vector : numpy.ndarray
        LPS displacement (mm) from one slice to the next.
    """
    a = np.asarray(affine_lps, dtype=np.float64)
    col_i = a[:3, 0]
    col_j = a[:3, 1]
    di = float(np.linalg.norm(col_i))
    dj = float(np.linalg.norm(col_j))
    iop = [float(x) for x in (*(col_i / di), *(col_j / dj))]
    return iop, [dj, di], a[:3, 2].copy()


def _base_dataset(
    modality: str,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    patient_name: str,
    patient_id: str,
    birth_date: str,
    series_description: str,
    series_number: int,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = "F"
    ds.OtherPatientIDs = patient_id + "-OTHER"
    ds.InstitutionName = "Synthetic Hospital"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.AccessionNumber = "ACC-SECRET-42"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.StudyID = "1"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.SeriesDate = "20240102"
    ds.SeriesTime = "101500"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.Manufacturer = "NETLM test factory"
    ds.BodyPartExamined = "ABDOMEN"
    ds.PositionReferenceIndicator = ""
    return ds


def _stored_dtype(stored: np.ndarray) -> tuple[np.dtype, int]:
    """int16 when values fit (PixelRepresentation 1), else uint16 (0)."""
    lo, hi = (int(stored.min()), int(stored.max())) if stored.size else (0, 0)
    if -32768 <= lo and hi <= 32767:
        return np.dtype(np.int16), 1
    if 0 <= lo and hi <= 65535:
        return np.dtype(np.uint16), 0
    raise ValueError(f"stored values {lo}..{hi} do not fit 16 bits; choose another slope/intercept")


def _set_pixels(ds: Dataset, frames: np.ndarray, transfer_syntax: str) -> None:
    """Attach ``frames`` (n, rows, cols) or (rows, cols) integer pixels."""
    dtype, rep = _stored_dtype(frames)
    data = np.ascontiguousarray(frames.astype(dtype))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(data.shape[-2])
    ds.Columns = int(data.shape[-1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = rep
    if transfer_syntax in _UNCOMPRESSED:
        ds.PixelData = data.tobytes()
    else:
        ds.PixelData = data.tobytes()
        ds.compress(transfer_syntax, data)


def _save(ds: Dataset, path: Path) -> Path:
    implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def _default_rescale(modality: str) -> tuple[float, float]:
    return (1.0, -1024.0) if modality == "CT" else (1.0, 0.0)


def write_image_series(
    folder: str | Path,
    array: np.ndarray,
    affine_lps: np.ndarray,
    *,
    modality: str = "CT",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    rescale_slope: float | None = None,
    rescale_intercept: float | None = None,
    per_slice_rescale: Sequence[tuple[float, float]] | None = None,
    shuffle_names: bool = False,
    seed: int = 0,
    patient_name: str = "Doe^Jane",
    patient_id: str = "SECRET-ID-123",
    birth_date: str = "19700101",
    extra_tags: dict[str, Any] | None = None,
    series_description: str = "",
    series_number: int = 1,
    transfer_syntax: str = ExplicitVRLittleEndian,
    slice_indices: Sequence[int] | None = None,
) -> list[Path]:
    """Write one single-frame DICOM file per slice ``k`` of ``array``.

    Parameters
    ----------
    folder : str or pathlib.Path
        Output folder (created).
    array : numpy.ndarray
        Real-valued image ``[i, j, k]`` (e.g. HU); stored as
        ``round((value - intercept) / slope)`` in int16 (or uint16 if needed).
    affine_lps : numpy.ndarray
        4x4 index->LPS affine (see module docstring).
    modality : {"CT", "MR", "PT"}
        Chooses the SOP class (CT / MR / PET Image Storage).
    study_uid, series_uid, frame_of_reference_uid : str, optional
        Deterministic from ``seed`` when omitted. ``series_uid=""`` writes an
        empty SeriesInstanceUID (anonymised-export case).
    rescale_slope, rescale_intercept : float, optional
        Default 1 and -1024 for CT, 1 and 0 otherwise.
    per_slice_rescale : sequence of (slope, intercept), optional
        One pair per slice; overrides the two above.
    shuffle_names : bool
        Random (seeded) hex file names instead of ``slice_0000.dcm``.
    seed : int
        Seed of UIDs and names.
    patient_name, patient_id, birth_date : str
        Identifying tags (filled on purpose).
    extra_tags : dict, optional
        Keyword -> value set on every file last (e.g. ``{"Units": "BQML"}``);
        a value of ``None`` deletes the element.
    series_description : str
        SeriesDescription.
    series_number : int
        SeriesNumber.
    transfer_syntax : str
        Transfer syntax UID; compressed syntaxes go through ``Dataset.compress``
        (pydicom encodes RLE Lossless itself).
    slice_indices : sequence of int, optional
        Only write these ``k`` (to make a series with a missing slice).

    Returns
    -------
    list of pathlib.Path
        Written files, in ``k`` order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"array must be 3-D, got {arr.shape}")
    modality = modality.upper()
    if modality not in ("CT", "MR", "PT"):
        raise ValueError(f"modality {modality!r} not supported by the factory")
    nk = arr.shape[2]
    default_slope, default_intercept = _default_rescale(modality)
    slope = default_slope if rescale_slope is None else float(rescale_slope)
    intercept = default_intercept if rescale_intercept is None else float(rescale_intercept)
    if per_slice_rescale is not None and len(per_slice_rescale) != nk:
        raise ValueError(f"per_slice_rescale needs {nk} pairs, got {len(per_slice_rescale)}")
    study_uid = deterministic_uid("study", seed) if study_uid is None else study_uid
    series_uid = deterministic_uid("series", seed, modality) if series_uid is None else series_uid
    if frame_of_reference_uid is None:
        frame_of_reference_uid = deterministic_uid("for", seed)
    iop, pixel_spacing, step_vec = affine_to_dicom_geometry(affine_lps)
    step_mm = float(np.linalg.norm(step_vec))
    aff = np.asarray(affine_lps, dtype=np.float64)
    rng = random.Random(seed)
    ks = list(range(nk)) if slice_indices is None else [int(k) for k in slice_indices]
    paths: list[Path] = []
    for k in ks:
        s, b = (slope, intercept) if per_slice_rescale is None else map(float, per_slice_rescale[k])
        sop_uid = deterministic_uid("sop", seed, modality, series_uid, k)
        ds = _base_dataset(
            modality,
            SOP_CLASS[modality],
            sop_uid,
            transfer_syntax,
            study_uid=study_uid,
            series_uid=series_uid,
            frame_of_reference_uid=frame_of_reference_uid,
            patient_name=patient_name,
            patient_id=patient_id,
            birth_date=birth_date,
            series_description=series_description,
            series_number=series_number,
        )
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(x) for x in (aff @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = pixel_spacing
        ds.SliceThickness = round(SLICE_THICKNESS_FACTOR * step_mm, 4)
        ds.RescaleSlope = s
        ds.RescaleIntercept = b
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = 120
        if modality == "PT":
            ds.Units = "BQML"
            ds.DecayCorrection = "START"
            ds.PatientWeight = 70.0
        stored = np.rint((arr[:, :, k].T - b) / s)
        _set_pixels(ds, stored, transfer_syntax)
        for key, value in (extra_tags or {}).items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        name = f"{rng.getrandbits(64):016x}" if shuffle_names else f"slice_{k:04d}.dcm"
        paths.append(_save(ds, folder / name))
    return paths


def write_enhanced_series(
    path: str | Path,
    array: np.ndarray,
    affine_lps: np.ndarray,
    *,
    modality: str = "CT",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    per_frame_rescale: Sequence[tuple[float, float]] | None = None,
    seed: int = 0,
    patient_name: str = "Doe^Jane",
    patient_id: str = "SECRET-ID-123",
    birth_date: str = "19700101",
    series_description: str = "",
    frame_order: Sequence[int] | None = None,
) -> Path:
    """Write an Enhanced CT or MR multi-frame file, one frame per slice ``k``.

    Geometry goes into the functional groups: shared PixelMeasuresSequence
    (PixelSpacing, SliceThickness = 1.25 x step) and PlaneOrientationSequence;
    per-frame PlanePositionSequence and PixelValueTransformationSequence.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file.
    array : numpy.ndarray
        Real-valued image ``[i, j, k]``.
    affine_lps : numpy.ndarray
        4x4 index->LPS affine.
    modality : {"CT", "MR"}
        Enhanced CT or Enhanced MR Image Storage.
    study_uid, series_uid, frame_of_reference_uid : str, optional
        Deterministic from ``seed`` when omitted.
    per_frame_rescale : sequence of (slope, intercept), optional
        Per slice ``k``; default (1, -1024) for CT and (1, 0) for MR.
    seed : int
        Seed of the UIDs.
    patient_name, patient_id, birth_date : str
        Identifying tags (filled on purpose).
    series_description : str
        SeriesDescription.
    frame_order : sequence of int, optional
        Slice index ``k`` stored in each frame (default ``0..nk-1``), to check
        that readers sort frames by position rather than frame number.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(array, dtype=np.float64)
    modality = modality.upper()
    if modality not in ("CT", "MR"):
        raise ValueError("enhanced series: modality must be CT or MR")
    nk = arr.shape[2]
    order = list(range(nk)) if frame_order is None else [int(k) for k in frame_order]
    default = _default_rescale(modality)
    rescale = [default] * nk if per_frame_rescale is None else [tuple(map(float, p)) for p in per_frame_rescale]
    study_uid = deterministic_uid("study", seed) if study_uid is None else study_uid
    series_uid = deterministic_uid("series-enh", seed, modality) if series_uid is None else series_uid
    if frame_of_reference_uid is None:
        frame_of_reference_uid = deterministic_uid("for", seed)
    sop_class = SOP_CLASS["ENHANCED_" + modality]
    ds = _base_dataset(
        modality,
        sop_class,
        deterministic_uid("sop-enh", seed, modality),
        ExplicitVRLittleEndian,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=frame_of_reference_uid,
        patient_name=patient_name,
        patient_id=patient_id,
        birth_date=birth_date,
        series_description=series_description,
        series_number=1,
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(order)
    iop, pixel_spacing, step_vec = affine_to_dicom_geometry(affine_lps)
    aff = np.asarray(affine_lps, dtype=np.float64)
    measures = Dataset()
    measures.PixelSpacing = pixel_spacing
    measures.SliceThickness = round(SLICE_THICKNESS_FACTOR * float(np.linalg.norm(step_vec)), 4)
    orient = Dataset()
    orient.ImageOrientationPatient = iop
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orient])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    stored_frames = []
    for k in order:
        slope, intercept = rescale[k]
        pos = Dataset()
        pos.ImagePositionPatient = [float(x) for x in (aff @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        pvt = Dataset()
        pvt.RescaleSlope = slope
        pvt.RescaleIntercept = intercept
        pvt.RescaleType = "HU" if modality == "CT" else "US"
        item = Dataset()
        item.PlanePositionSequence = DicomSequence([pos])
        item.PixelValueTransformationSequence = DicomSequence([pvt])
        per_frame.append(item)
        stored_frames.append(np.rint((arr[:, :, k].T - intercept) / slope))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _set_pixels(ds, np.stack(stored_frames), ExplicitVRLittleEndian)
    return _save(ds, path)
