"""Load a PET DICOM series as an SUVbw Volume.

The pixels are read by :func:`netlm_imaging.io.dicom_series.read_dicom_series`
(per-slice modality LUT, slices placed by ImagePositionPatient). PET series
with non-uniform slice steps are common (multi-bed whole-body scans; the
real FDG PET in the shared data has 3.19 to 3.29 mm steps) so they are
resampled linearly onto a regular grid by position rather than rejected,
and the report says so through the propagated warnings.

The SUVbw factors come from :func:`netlm_imaging.io.suv.suv_conversion`
on the headers of the files in slice order. When every slice has the same
factor (always for BQML and GML) the factor multiplies the read volume.
When factors differ per slice (Philips CNTS with per-slice private scale
factors) and the series was resampled, the slices are converted to SUV
first and then interpolated with the same linear rule, so no slice's factor
leaks into its neighbour.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DicomError, InputError, UnsupportedError
from ..volume import Volume
from ._dicom_header import with_transfer_syntax
from ._inflate import dcmread as bounded_dcmread
from .formats import volume_base_name
from .suv_inputs import SuvInputs, suv_inputs_from

__all__ = [
    "attenuation_corrected",
    "load_suv_volume",
    "read_study_pet",
    "suv_from_image_values",
    "suv_from_modality_volume",
]

logger = logging.getLogger(__name__)


def load_suv_volume(
    source: str | Path | Sequence[str | Path],
    *,
    weight_kg: float | None = None,
    series_uid: str | None = None,
    max_voxels: int | None = None,
    plausibility: Mapping[str, Any] | None = None,
    weight_source: str = "--weight",
    require_weight: bool = True,
    half_life_s: float | None = None,
    half_life_source: str = "--pet-half-life",
    suv_inputs: SuvInputs | None = None,
) -> Volume:
    """Read a PET series and convert it to SUVbw.

    Parameters
    ----------
    source : str, Path or sequence
        PET series folder, one of its files, or a list of files (as for
        :func:`~netlm_imaging.io.dicom_series.read_dicom_series`).
    weight_kg : float or None
        Body weight overriding Patient's Weight (0010,1030) (``--weight``).
    series_uid : str or None
        SeriesInstanceUID when the folder holds several series.
    max_voxels : int or None
        Voxel budget.
    plausibility : mapping, optional
        ``rules["pet_plausibility"]`` (weight, dose, uptake time, SUVmax
        limits); None uses the defaults.
    weight_source, require_weight, half_life_s, half_life_source
        As :func:`suv_from_modality_volume`.
    suv_inputs : SuvInputs, optional
        ``weight_kg``, ``plausibility``, ``weight_source``, ``require_weight``, ``half_life_s`` and
        ``half_life_source`` as one object (:class:`~netlm_imaging.io.suv_inputs.SuvInputs`), instead
        of those keywords.

    Returns
    -------
    Volume
        float32 SUVbw on the PET grid. ``meta`` keeps the reader's keys and
        adds ``meta["suv"]`` (conversion facts, see
        :meth:`~netlm_imaging.io.suv.SuvConversion.summary`; no
        identifiers) and ``meta["units"] = "SUVbw"``; ``meta["warnings"]``
        holds the reader's and the conversion's warnings.

    Raises
    ------
    InputError
        Not a PET series, missing weight or dose (see
        :func:`~netlm_imaging.io.suv.suv_conversion`), a weight or half-life not above 0 (before the
        series is read), or an SUVmax above the limit.
    UnsupportedError
        Units that cannot be converted, DecayCorrection NONE without Decay
        Factor, multi-frame (Enhanced) PET.
    TypeError
        ``suv_inputs`` and one of the keywords it replaces both given.
    """
    from .dicom_series import read_dicom_series

    inputs = suv_inputs_from(
        suv_inputs,
        _source_name(source),
        weight_kg=weight_kg,
        plausibility=plausibility,
        weight_source=weight_source,
        require_weight=require_weight,
        half_life_s=half_life_s,
        half_life_source=half_life_source,
    )
    vol = read_dicom_series(source, series_uid=series_uid, nonuniform="resample", max_voxels=max_voxels)
    return suv_from_modality_volume(vol, suv_inputs=inputs)


def suv_from_modality_volume(
    vol: Volume,
    *,
    weight_kg: float | None = None,
    plausibility: Mapping[str, Any] | None = None,
    weight_source: str = "--weight",
    require_weight: bool = True,
    half_life_s: float | None = None,
    half_life_source: str = "--pet-half-life",
    suv_inputs: SuvInputs | None = None,
) -> Volume:
    """Convert a PET Volume returned by the DICOM series reader to SUVbw.

    Parameters
    ----------
    vol : Volume
        Output of :func:`~netlm_imaging.io.dicom_series.read_dicom_series`
        on a PET series (modality-LUT values, ``meta["files"]`` in slice
        order). Use this when the PET was already read as the main image.
    weight_kg : float or None
        Body weight override (``--weight``).
    plausibility : mapping, optional
        ``rules["pet_plausibility"]``; None uses the defaults.
    weight_source : str
        Where ``weight_kg`` came from, named in messages (``"--weight"``,
        ``"the clinical file's weight_kg"``).
    require_weight : bool
        False: without any body weight the volume is the activity
        concentration (Bq/mL, ``meta["units"] = "BQML"``) and
        ``meta["suv"]["suv_unavailable"]`` says why, instead of an error
        (the study's other measurements and the uptake ratios still stand).
    half_life_s : float or None
        Radionuclide half-life (s) stated by the user (``--pet-half-life``), used instead of
        Radionuclide Half Life (0018,1075).
    half_life_source : str
        Where ``half_life_s`` came from, named in messages and the SUV facts (``"--pet-half-life"``, or
        ``"the clinical file's pet_half_life_s"``).
    suv_inputs : SuvInputs, optional
        All of the keywords above as one object (:class:`~netlm_imaging.io.suv_inputs.SuvInputs`),
        instead of those keywords.

    Returns
    -------
    Volume
        float32 SUVbw on the same grid (see :func:`load_suv_volume`); Bq/mL
        when the weight is unknown and ``require_weight`` is False.

    Raises
    ------
    InputError
        ``vol`` is not a DICOM PET series read by the project's reader; an
        implausible weight, dose or uptake time, or an SUVmax above
        ``suv_max_limit`` (the SUV scale is wrong:
        :func:`~netlm_imaging.io.pet_plausibility.check_suv_max`), exit 3 with the fix; a weight or
        half-life not above 0.
    TypeError
        ``suv_inputs`` and one of the keywords it replaces both given.
    """

    from .suv import suv_conversion

    meta = dict(vol.meta)
    if meta.get("modality") != "PT":
        raise InputError(
            f"{vol.source}: modality is {meta.get('modality')!r}, not PT; SUV needs a PET DICOM series "
            "(pass the PET series folder to --pet)."
        )
    files = list(meta.get("files") or [])
    if not files:
        raise InputError(f"{vol.source}: PET volume has no DICOM file list; SUV needs the DICOM headers.")
    if len(set(files)) != len(files):
        raise UnsupportedError(
            f"{vol.source}: multi-frame (Enhanced) PET is not supported for SUV; export one file per slice."
        )
    where = _series_location(vol.source, files)
    inputs = suv_inputs_from(
        suv_inputs,
        where,
        weight_kg=weight_kg,
        plausibility=plausibility,
        weight_source=weight_source,
        require_weight=require_weight,
        half_life_s=half_life_s,
        half_life_source=half_life_source,
    )
    headers = _series_headers(meta, files, where)
    conv = suv_conversion(headers, source=where, suv_inputs=inputs)
    if conv.uniform:
        suv = np.asarray(vol.array, dtype=np.float64) * float(conv.factors[0])
    elif not meta.get("resampled"):
        if len(files) != vol.shape[2]:
            raise DicomError(f"{vol.source}: {len(files)} files for {vol.shape[2]} slices; cannot map SUV factors.")
        suv = np.asarray(vol.array, dtype=np.float64) * conv.factors[np.newaxis, np.newaxis, :]
    else:
        suv = _resampled_per_slice(vol, files, conv.factors)
    for w in conv.warnings:
        logger.warning("%s: %s", where, w)
    meta["suv"] = conv.summary()
    meta["units"] = "SUVbw" if conv.suv_unavailable is None else "BQML"
    meta["warnings"] = [*list(meta.get("warnings") or []), *conv.warnings]
    suv32 = suv.astype(np.float32)
    if conv.suv_unavailable is None:
        _check_suv_scale(suv32, meta["suv"], inputs.plausibility, vol.source)
    return vol.with_array(suv32, meta=meta)


def read_study_pet(
    pet: str | Path | Sequence[str | Path],
    *,
    dicom_index: Sequence[Any] = (),
    weight_kg: float | None = None,
    max_voxels: int | None = None,
    plausibility: Mapping[str, Any] | None = None,
    weight_source: str = "--weight",
    require_weight: bool = True,
    half_life_s: float | None = None,
    half_life_source: str = "--pet-half-life",
    suv_inputs: SuvInputs | None = None,
) -> Volume:
    """The ``--pet`` series of a study in SUVbw, with its SUVmax checked.

    When the study folder's scan (``dicom_index``) indexed every PET file, the series is read
    from it (no second scan); otherwise as :func:`load_suv_volume`. ``weight_source``,
    ``require_weight``, ``half_life_s`` and ``half_life_source`` are those of :func:`suv_from_modality_volume`;
    ``suv_inputs`` gives them, ``weight_kg`` and ``plausibility`` as one
    :class:`~netlm_imaging.io.suv_inputs.SuvInputs` instead. A NIfTI / NRRD / MHA PET uses only the
    plausibility limits (:func:`suv_from_image_values`).

    Raises
    ------
    InputError
        As :func:`load_suv_volume`; or SUVmax above the limit.
    TypeError
        ``suv_inputs`` and one of the keywords it replaces both given.
    """
    inputs = suv_inputs_from(
        suv_inputs,
        _source_name(pet),
        weight_kg=weight_kg,
        plausibility=plausibility,
        weight_source=weight_source,
        require_weight=require_weight,
        half_life_s=half_life_s,
        half_life_source=half_life_source,
    )
    volume_file = _volume_file(pet)
    if volume_file is not None:
        from .loader import load_image

        return suv_from_image_values(load_image(volume_file, max_voxels=max_voxels), plausibility=inputs.plausibility)
    scanned = _scanned_files(pet, dicom_index)
    if scanned:
        from .dicom_series import read_series_from_index

        vol = read_series_from_index(
            scanned, nonuniform="resample", max_voxels=max_voxels, where=str(scanned[0].path.parent)
        )
        return suv_from_modality_volume(vol, suv_inputs=inputs)
    return load_suv_volume(pet, max_voxels=max_voxels, suv_inputs=inputs)


def suv_from_image_values(
    vol: Volume, *, plausibility: Mapping[str, Any] | None = None, required: bool = True
) -> Volume:
    """A NIfTI / NRRD / MHA PET taken as SUVbw: such files carry no PET units, dose, weight or times.

    Public PET/CT collections publish SUV volumes (AutoPET's ``SUV.nii.gz``); a converted series
    without its headers (dcm2niix) holds Bq/mL, thousands per mL where SUVs stay below
    ``pet_plausibility.suv_max_limit``. So the values are taken as SUVbw, with a warning, when their
    maximum is within that limit, and refused when it is above (they cannot be converted without
    the DICOM headers).

    Parameters
    ----------
    vol : Volume
        The PET read from a NIfTI / NRRD / MHA file.
    plausibility : mapping, optional
        ``rules["pet_plausibility"]``; None uses the defaults.
    required : bool
        False (the PET is the image measured, not a ``--pet`` for uptake): values that are not
        SUVs leave the image as it is, with a warning that no uptake is measured.

    Returns
    -------
    Volume
        The same values as float32 SUVbw (``meta["units"] = "SUVbw"``, ``meta["suv"]`` says they
        were assumed).

    Raises
    ------
    InputError
        ``required`` and values above the SUV limit (activity concentration), or no finite value.
    """
    from .pet_plausibility import plausibility_limits

    arr = np.asarray(vol.array, dtype=np.float32)
    finite = arr[np.isfinite(arr)]
    limit = float(plausibility_limits(plausibility)["suv_max_limit"])
    top = float(finite.max()) if finite.size else math.nan
    if not finite.size or top > limit:
        why = (
            f"{vol.source}: PET values reach {top:.6g}, above SUV {limit:g}: activity concentration (Bq/mL) or "
            "counts, which a NIfTI/NRRD file gives no dose, weight or times to convert"
        )
        if not required:
            warning = f"{why}; no PET uptake was measured (give the PET DICOM series for SUV)"
            logger.warning("%s", warning)
            return vol.with_array(vol.array, meta={**vol.meta, "warnings": [*vol.meta.get("warnings", []), warning]})
        raise InputError(f"{why}. Pass the PET DICOM series folder instead, or an SUV image.")
    note = (
        f"PET {Path(vol.source).name}: a NIfTI/NRRD/MHA file carries no PET units; its values (maximum "
        f"{top:.4g}) were taken as SUVbw"
    )
    meta = dict(vol.meta)
    meta["modality"] = "PT"
    meta["units"] = "SUVbw"
    meta["suv"] = {"suv_type": "SUVbw", "units": "SUVbw (assumed)", "decay_correction": "unknown", "method": "file"}
    meta["warnings"] = [*list(meta.get("warnings") or []), note]
    logger.warning("%s", note)
    return vol.with_array(arr, meta=meta)


def attenuation_corrected(path: str | Path) -> bool | None:
    """Whether one PET file's Corrected Image (0028,0051) holds ATTN (None: not stated, or unreadable).

    PET/CT exports hold the attenuation-corrected series beside the non-corrected one (NAC, not
    quantitative), both in the CT's frame of reference; this tells them apart.

    Parameters
    ----------
    path : str or Path
        A file of the series.

    Returns
    -------
    bool or None
    """
    import pydicom

    try:
        ds = bounded_dcmread(path, stop_before_pixels=True, force=True, specific_tags=["CorrectedImage"])
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    value = ds.get("CorrectedImage")
    if value is None:
        return None
    terms = [value] if isinstance(value, str) else list(value)
    return "ATTN" in {str(t).strip().upper() for t in terms}


def _volume_file(pet: str | Path | Sequence[str | Path]) -> Path | None:
    """The NIfTI / NRRD / MHA file ``pet`` names (a path, or a list of that one path), else None."""
    one = pet[0] if isinstance(pet, list | tuple) and len(pet) == 1 else pet
    if isinstance(one, str | Path) and Path(one).is_file() and volume_base_name(one) is not None:
        return Path(one)
    return None


def _source_name(source: str | Path | Sequence[str | Path]) -> str:
    """The PET series given, as a refusal of its SUV inputs names it before the series is read.

    >>> _source_name("/s/pet")
    '/s/pet'
    >>> _source_name(["/s/pet/a.dcm", "/s/pet/b.dcm"])
    '/s/pet [2 PET files]'
    """
    if isinstance(source, str | Path):
        return str(source)
    files = list(source)
    return _series_location(f"{len(files)} PET file{'' if len(files) == 1 else 's'}", files)


def _scanned_files(pet: str | Path | Sequence[str | Path], dicom_index: Sequence[Any]) -> list[Any]:
    """The folder scan's entries of the PET files (empty unless every PET file was scanned)."""
    if not dicom_index or not isinstance(pet, list) or not pet:
        return []
    wanted = {Path(p) for p in pet}
    infos = [f for f in dicom_index if Path(f.path) in wanted]
    return infos if len({Path(f.path) for f in infos}) == len(wanted) else []


def _check_suv_scale(
    suv: np.ndarray, summary: dict[str, Any], plausibility: Mapping[str, Any] | None, source: str
) -> None:
    """Exit 3 when the SUV image's maximum is above ``pet_plausibility.suv_max_limit`` (wrong weight/dose/units)."""
    from .pet_plausibility import check_suv_max, plausibility_limits

    finite = suv[np.isfinite(suv)]
    if finite.size:
        check_suv_max(float(finite.max()), summary, plausibility_limits(plausibility), source)


#: Series-level elements of the first header that every slice shares (checked on the last header too).
_SHARED = (
    "Modality",
    "Units",
    "DecayCorrection",
    "SeriesInstanceUID",
    "PatientWeight",
    "SeriesDate",
    "SeriesTime",
    "TimezoneOffsetFromUTC",
)


def _series_headers(meta: Mapping[str, Any], files: Sequence[str], where: str) -> list[Any]:
    """Per-slice headers for :func:`~netlm_imaging.io.suv.suv_conversion`, from the scan where possible.

    The folder scan already holds each slice's rescale, acquisition date/time
    and Decay Factor (``meta["rescale"]``, ``meta["slice_acquisition"]``), so
    only the first and last files are parsed again (series-level and
    radiopharmaceutical facts, and the check that the series is one
    acquisition); the other slices are light mappings of their scanned facts
    plus the first header's series-level values. Philips CNTS series (per-slice
    private scale factors) and volumes read without a scan get every header
    re-read.
    """
    import pydicom

    def read(path: str) -> Any:
        try:
            return bounded_dcmread(path, stop_before_pixels=True, force=True)  # files the scan took for images
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise DicomError(f"{where}: cannot re-read PET headers ({exc}); check the series files.") from exc

    raw_slices, raw_rescale = meta.get("slice_acquisition"), meta.get("rescale")
    per_slice: list[Any] = raw_slices if isinstance(raw_slices, list) else []
    rescale: list[Any] = raw_rescale if isinstance(raw_rescale, list) else []
    first = read(files[0])
    usable = len(per_slice) == len(files) == len(rescale) and str(first.get("Units", "")).strip().upper() != "CNTS"
    if not usable:
        return [first, *(read(f) for f in files[1:])]
    last = read(files[-1]) if len(files) > 1 else None
    shared = {kw: first.get(kw) for kw in _SHARED if kw in first}
    shared["RadiopharmaceuticalInformationSequence"] = first.get("RadiopharmaceuticalInformationSequence")
    headers: list[Any] = [first]
    for k in range(1, len(files) - 1):
        date, tm, dt, decay = per_slice[k]
        h: dict[str, Any] = dict(shared)
        h["RescaleSlope"], h["RescaleIntercept"] = rescale[k]
        h.update(AcquisitionDate=date or None, AcquisitionTime=tm or None, AcquisitionDateTime=dt or None)
        h["DecayFactor"] = decay
        headers.append(h)
    if last is not None:
        headers.append(last)
    return headers


def _series_location(source: str, files: Sequence[str | Path]) -> str:
    """``source`` with the series folder in front when it names no path (a file list from discovery).

    >>> _series_location("3 DICOM files (series 1.2.3)", ["/s/pet/a.dcm", "/s/pet/b.dcm"])
    '/s/pet [3 DICOM files (series 1.2.3)]'
    >>> _series_location("/s/pet (series 1.2.3)", ["/s/pet/a.dcm"])
    '/s/pet (series 1.2.3)'
    """
    import os

    try:
        folder = os.path.commonpath([str(Path(f).parent) for f in files])
    except ValueError:  # mixed absolute and relative paths, or no files
        return source
    return source if folder in source else f"{folder} [{source}]"


def _resampled_per_slice(vol: Volume, files: list[str], factors: np.ndarray) -> np.ndarray:
    """SUV on the resampled grid when factors differ per slice: convert, then interpolate."""
    from pydicom.pixels import apply_modality_lut

    positions = np.asarray(vol.meta["slice_positions_mm"], dtype=np.float64)
    ni, nj, nk = vol.shape
    step = float(vol.spacing[2])
    target = positions[0] + step * np.arange(nk)
    target[-1] = min(target[-1], positions[-1])
    idx = np.clip(np.searchsorted(positions, target, side="right") - 1, 0, len(positions) - 2)
    w = (target - positions[idx]) / (positions[idx + 1] - positions[idx])
    cache: dict[int, np.ndarray] = {}

    def slice_suv(k: int) -> np.ndarray:
        if k not in cache:
            ds = with_transfer_syntax(bounded_dcmread(files[k], force=True))
            arr = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64).T
            if arr.shape != (ni, nj):
                raise DicomError(f"{files[k]}: slice shape {arr.shape} differs from the series ({ni}, {nj}).")
            cache[k] = arr * factors[k]
        return cache[k]

    out = np.empty((ni, nj, nk), dtype=np.float64)
    for t in range(nk):
        a, b = slice_suv(int(idx[t])), slice_suv(int(idx[t]) + 1)
        out[:, :, t] = a + (b - a) * w[t]
        for key in [key for key in cache if key < idx[t]]:
            del cache[key]
    return out
