"""SUVbw conversion factors from PET DICOM headers (QIBA vendor-neutral recipe).

Why one module (~1130 lines): the QIBA vendor-neutral recipe is one algorithm (units, decay,
injection and scan times, half-life, weight) whose steps share the header parsing; about
half of the module is this documentation of it.

What this module computes
-------------------------
For every slice (instance) of a PET series, one float64 factor ``f`` such that

``SUVbw = (stored * RescaleSlope + RescaleIntercept) * f``

i.e. ``f`` multiplies the **modality-LUT values** (what
:func:`pydicom.pixels.apply_modality_lut` and the project's DICOM series
reader return). Nothing is ever cast to an integer.

The rules, as implemented (QIBA "SUV vendor-neutral pseudo-code", see
``clinical_rules.md`` section 7.1):

Units (0054,1001)
    ``BQML``: ``f = weight_g / decayed_dose_bq``.
    ``CNTS`` (Philips): the private SUV Scale Factor (7053,1000) of each slice
    is ``f``; if it is absent or zero but the Activity Concentration Scale
    Factor (7053,1009) is present, ``value * (7053,1009)`` is Bq/mL and the
    BQML rule follows (``f = (7053,1009) * weight_g / decayed_dose_bq``). The
    BQML rule on (7053,1009) is also used when a weight is given but Patient's
    Weight (0010,1030) is missing or 0: the weight inside (7053,1000) is then
    unknown, so that factor cannot be rescaled to the given weight.
    Where the header also gives the QIBA factor (BQML, whose Philips
    (7053,1000) is per count, so ``(7053,1000) / (7053,1009)`` per Bq/mL; or
    CNTS with (7053,1009)), the two are compared
    (:mod:`~netlm_imaging.io.pet_scanner_check`): further apart than
    ``pet_plausibility.scanner_suv_disagreement_warn``, a warning names both.
    ``GML``: ``f = 1`` (assumed to be SUVbw already; a warning says so; a
    given weight rescales them, and the Philips SUV Scale Factor, by
    ``weight / Patient's Weight``),
    unless SUV Type (0054,1006) names another SUV (``LBM``, ``BSA``, ``IBW``):
    :class:`~netlm_imaging.errors.UnsupportedError`.
    Anything else: :class:`~netlm_imaging.errors.UnsupportedError`.
Decay Correction (0054,1102)
    ``START``: ``decayed_dose = dose * 2 ** (-(scan - injection) / half_life)``.
    ``ADMIN``: pixels are already decay-corrected to the injection time, so
    ``decayed_dose = dose`` (never decay-corrected again; Horos #653); the
    injection and scan times are then not needed (missing: a warning, the
    uptake time unchecked).
    ``NONE``: refused, unless **every** slice carries Decay Factor
    (0054,1321). Then each slice's values are multiplied by its Decay Factor
    (taken as the factor that corrects that slice to the scan start time)
    and the ``START`` rule follows, with a warning.
Injection date/time
    RadiopharmaceuticalStartDateTime (0018,1078) when present (full date:
    multi-day delays are right); one that holds only a date (day precision)
    gives the date, RadiopharmaceuticalStartTime the time. Otherwise the date
    of the scan (below: the Series Date, or the Acquisition Date of a series
    post-processed on a later day) + RadiopharmaceuticalStartTime (0018,1072);
    when that lies after the scan time the injection is taken to be the day
    before (midnight crossing). With every date removed (de-identification)
    and the times kept, the uptake is the difference of the times of day, for
    a nuclide imaged within a day of injection only (``_undated_uptake_s``).
Time zones
    A DT value with its own offset from UTC (``...090000+0000``: the
    injection DateTime, the acquisition DateTime, the GE private scan
    DateTime) is moved into the instance's local time when TimezoneOffsetFromUTC (0008,0201) gives
    another one (the offset of its DA and TM values, PS3.3 C.12.1.1.8).
Scan date/time
    Series Date/Time (0008,0021/0031), unless it is after the earliest
    Acquisition Date/Time (0008,0022/0032) of the series (by more than
    ``SERIES_AFTER_ACQUISITION_TOLERANCE``, 1 s: post-processed
    series; an AcquisitionTime without its AcquisitionDate is the one within
    12 h of the series time, so a bed acquired after midnight is not read as
    the morning before); then the GE private scan DateTime (0009,100d, creator
    ``GEMS_PETD_01``) if present; else, for a Siemens series, the time its
    slices' Frame Reference Times (0054,1300) count from (back-computed from
    the Acquisition Time, the Actual Frame Duration and the half-life, QIBA),
    when they agree within 2 s: a re-saved part of a whole-body scan stays
    decay-corrected to the scan's start; else the earliest Acquisition Date/Time.
Half-life
    Radionuclide Half Life (0018,1075) from the file is used, checked against
    the nuclide identified from Radionuclide Code Sequence (0054,0300) or the
    radiopharmaceutical name (:mod:`~netlm_imaging.io.pet_half_life`): more
    than ``pet_plausibility.half_life_warn_fraction`` off, a warning; more than
    ``half_life_refuse_fraction`` off (a Ga-68 series with F-18's 6586.2 s),
    or the nuclide's half-life in minutes or hours:
    :class:`~netlm_imaging.errors.DicomError` unless the user states the
    half-life (``half_life_s``, ``--pet-half-life``). Missing
    half-life: the nuclide's reference value with a warning, or
    :class:`~netlm_imaging.errors.DicomError` when the nuclide is unknown.
Weight
    ``weight_kg`` (``--weight``, or the clinical file's ``weight_kg``) overrides
    Patient's Weight (0010,1030). Missing both:
    :class:`~netlm_imaging.errors.InputError`, or with ``require_weight=False``
    no SUV: the factors then give the activity concentration (Bq/mL, decay-corrected as
    the series says) and :attr:`SuvConversion.suv_unavailable` says why. Ratios of
    uptake (the Krenning estimate, liver-relative thresholds) need no weight.
    A missing injected dose, Radionuclide Total Dose (0018,1074), is handled the same way.

References
----------
QIBA PET SUV vendor-neutral pseudo-code; DICOM PS3.3 C.8.9.1 (PET Series
Module), C.8.9.4 (PET Image Module).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..dicom_values import parse_date as _parse_date
from ..dicom_values import parse_datetime as _parse_datetime
from ..dicom_values import parse_float as _float
from ..dicom_values import parse_time as _parse_time
from ..errors import DicomError, InputError, NetlmError, UnsupportedError
from .pet_half_life import NUCLIDE_HALF_LIFE_S, resolve_half_life
from .pet_plausibility import check_conversion, plausibility_limits
from .pet_scanner_check import compare_with_scanner

__all__ = [
    "NUCLIDE_HALF_LIFE_S",
    "SuvConversion",
    "identify_nuclide",
    "suv_conversion",
]

logger = logging.getLogger(__name__)


# SNOMED-RT and SNOMED CT codes of CID 4020 "PET Radionuclide".
_NUCLIDE_CODES = {
    "C-131A3": "Ga-68",
    "35337001": "Ga-68",
    "C-111A1": "F-18",
    "77004003": "F-18",
    "C-127A2": "Cu-64",
    "3932008": "Cu-64",
    "C-105A1": "C-11",
    "40565003": "C-11",
}
_NUCLIDE_PATTERNS = (  # the nuclide named; the somatostatin ligands only after (_LIGAND_PATTERNS)
    ("Lu-177", re.compile(r"(?<![0-9])177\W*lu|lu(tetium)?\W*177", re.IGNORECASE)),
    ("Ga-68", re.compile(r"(?<![0-9])68\W*ga(?!\w*germ)|ga(llium)?\W*68", re.IGNORECASE)),
    ("F-18", re.compile(r"(?<![0-9])18\W*f|f(luorine)?\W*18|fdg|fluoro", re.IGNORECASE)),
    ("Cu-64", re.compile(r"(?<![0-9])64\W*cu|cu(pper)?\W*64", re.IGNORECASE)),
    ("C-11", re.compile(r"(?<![0-9])11\W*c(?!u)|carbon\W*11|\bc\W*11\b", re.IGNORECASE)),
)
#: A ligand name without its nuclide ("DOTATATE") is taken as Ga-68, the PET nuclide it is usually labelled
#: with, only when no text names a nuclide: "64Cu-DOTATATE" (Detectnet) is Cu-64, "177Lu-DOTATATE" Lu-177.
_LIGAND_PATTERNS = (("Ga-68", re.compile(r"dotata|dotatoc|dotanoc", re.IGNORECASE)),)

_GE_CREATOR = "GEMS_PETD_01"
_PHILIPS_CREATOR = "Philips PET Private Group"
_DECAY_TERMS = ("START", "ADMIN", "NONE")


@dataclass(frozen=True)
class SuvConversion:
    """How a PET series' values become SUVbw.

    Attributes
    ----------
    factors : numpy.ndarray
        float64, one per slice in the order the datasets were given:
        ``SUVbw = modality_lut_value * factors[k]``.
    rescale_slopes, rescale_intercepts : numpy.ndarray
        float64 per slice, so ``SUVbw = (stored * slope + intercept) * factor``.
    units : str
        Units (0054,1001) of the series, e.g. ``"BQML"``.
    decay_correction : str
        Decay Correction (0054,1102), e.g. ``"START"``.
    scan_datetime, injection_datetime : datetime or None
        Reference times used (None when not needed and absent).
    half_life_s, injected_dose_bq, decayed_dose_bq, weight_kg : float or None
        The quantities of the QIBA formula (None when not used, e.g. GML).
    decay_time_s : float or None
        ``scan - injection`` in seconds.
    nuclide : str or None
        Identified radionuclide (``"Ga-68"``, ``"F-18"``, ...).
    method : str
        Which branch was used (``"BQML"``, ``"CNTS:7053,1000"``, ...).
    warnings : list of str
        Facts the user must know (half-life mismatch, GML assumption, ...).
    convolution_kernel : str or None
        Convolution Kernel (0018,1210), where vendors name the post-filter
        (``"Gauss5.00"``); the PET resolution is read from it.
    suv_unavailable : str or None
        Why no SUV could be computed (the body weight is unknown): the
        factors then give the activity concentration in Bq/mL, not SUVbw.
    half_life_source, weight_source : str or None
        Where the half-life and the weight came from (``"header (0018,1075)"``,
        ``"user (--pet-half-life)"``, ``"header (0010,1030)"``, ``"user (--weight)"`` ...).
    scanner_check : dict or None
        The Philips SUV Scale Factor (7053,1000) against the factor computed from the header
        (:func:`~netlm_imaging.io.pet_scanner_check.compare_with_scanner`); None when not both known.
    """

    factors: np.ndarray
    rescale_slopes: np.ndarray
    rescale_intercepts: np.ndarray
    units: str
    decay_correction: str
    scan_datetime: datetime | None
    injection_datetime: datetime | None
    half_life_s: float | None
    injected_dose_bq: float | None
    decayed_dose_bq: float | None
    weight_kg: float | None
    decay_time_s: float | None = None
    nuclide: str | None = None
    method: str = ""
    warnings: list[str] = field(default_factory=list)
    convolution_kernel: str | None = None
    suv_unavailable: str | None = None
    half_life_source: str | None = None
    weight_source: str | None = None
    scanner_check: dict[str, Any] | None = None

    @property
    def uniform(self) -> bool:
        """True when every slice has the same factor (to 1e-12 relative)."""
        f = self.factors
        return bool(np.all(np.abs(f - f[0]) <= 1e-12 * max(abs(float(f[0])), 1e-300)))

    def summary(self) -> dict[str, Any]:
        """Non-identifying facts for ``Volume.meta["suv"]`` and the report."""

        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        return {
            "suv_type": "SUVbw",
            "units": self.units,
            "decay_correction": self.decay_correction,
            "method": self.method,
            "nuclide": self.nuclide,
            "half_life_s": self.half_life_s,
            "half_life_source": self.half_life_source,
            "weight_source": self.weight_source,
            "scanner_suv_check": self.scanner_check,
            "injected_dose_bq": self.injected_dose_bq,
            "decayed_dose_bq": self.decayed_dose_bq,
            "weight_kg": self.weight_kg,
            "decay_time_s": self.decay_time_s,
            "scan_datetime": iso(self.scan_datetime),
            "injection_datetime": iso(self.injection_datetime),
            "factor_min": float(np.min(self.factors)),
            "factor_max": float(np.max(self.factors)),
            "convolution_kernel": self.convolution_kernel,
            "suv_unavailable": self.suv_unavailable,
        }


# ---------------------------------------------------------------- small parsers
def _text(ds: Any, keyword: str) -> str | None:
    val = ds.get(keyword)
    if val is None:
        return None
    s = str(val).strip()
    return s or None


def _private(ds: Any, group: int, creator: str, offset: int) -> Any:
    """Value of a private element by creator, falling back to the conventional ``(gggg,10xx)`` tag."""
    try:
        block = ds.private_block(group, creator)
        if offset in block:
            return block[offset].value
    except (KeyError, ValueError):
        pass
    elem = ds.get((group, 0x1000 + offset))
    return None if elem is None else elem.value


# ---------------------------------------------------------------- nuclide
def identify_nuclide(ds: Any) -> str | None:
    """Radionuclide of a PET dataset, from codes first, then names.

    Parameters
    ----------
    ds : pydicom.Dataset
        A PET image dataset.

    Returns
    -------
    str or None
        ``"Ga-68"``, ``"F-18"``, ``"Cu-64"``, ``"C-11"`` or None if unknown.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> info, code = Dataset(), Dataset()
    >>> code.CodeValue, code.CodeMeaning = "C-131A3", "^68^Gallium"
    >>> info.RadionuclideCodeSequence = [code]
    >>> ds = Dataset(); ds.RadiopharmaceuticalInformationSequence = [info]
    >>> identify_nuclide(ds)
    'Ga-68'
    """
    info = _radiopharm(ds)
    texts: list[str] = []
    if info is not None:
        for code in info.get("RadionuclideCodeSequence", []) or []:
            cv = str(code.get("CodeValue", "") or "").strip()
            if cv in _NUCLIDE_CODES:
                return _NUCLIDE_CODES[cv]
            texts.append(str(code.get("CodeMeaning", "") or ""))
        texts.append(str(info.get("Radiopharmaceutical", "") or ""))
        for code in info.get("RadiopharmaceuticalCodeSequence", []) or []:
            texts.append(str(code.get("CodeMeaning", "") or ""))
    for patterns in (_NUCLIDE_PATTERNS, _LIGAND_PATTERNS):
        for text in texts:
            for name, pattern in patterns:
                if text and pattern.search(text):
                    return name
    return None


def _radiopharm(ds: Any) -> Any:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return None
    return seq[0]


# ---------------------------------------------------------------- times
def _scan_datetime(
    datasets: Sequence[Any], source: str, warnings: list[str], half_life: float | None = None
) -> datetime:
    first = datasets[0]
    series_date = _parse_date(_text(first, "SeriesDate"))
    series_time = _parse_time(_text(first, "SeriesTime"))
    series_dt = datetime.combine(series_date, series_time) if series_date and series_time else None
    acq: list[datetime] = []
    frame_refs: list[datetime] = []  # the decay reference each slice's Frame Reference Time gives
    # Siemens only: Philips counts its Frame Reference Time from elsewhere (22 min before a series whose own
    # SUV factor is decayed to its Acquisition Time, calculate-suv's PHILIPS_BQML sample)
    siemens = "SIEMENS" in (_text(first, "Manufacturer") or "").upper()
    for ds in datasets:
        adt = _local_datetime(_text(ds, "AcquisitionDateTime"), ds)
        if adt is None:
            own_date = _parse_date(_text(ds, "AcquisitionDate"))
            d = own_date or series_date
            t = _parse_time(_text(ds, "AcquisitionTime"))
            if d is not None and t is not None:
                adt = datetime.combine(d, t)
                if own_date is None and series_dt is not None:  # a time without its date: the one nearest the series
                    adt = _nearest_day(adt, series_dt)
        if adt is not None:
            acq.append(adt)
            ref = _frame_reference_origin(ds, adt, half_life) if siemens else None
            if ref is not None:
                frame_refs.append(ref)
    earliest_acq = min(acq) if acq else None
    if series_dt is not None and (
        earliest_acq is None or series_dt <= earliest_acq + SERIES_AFTER_ACQUISITION_TOLERANCE
    ):
        return series_dt
    if series_dt is not None:
        # a DT: with its own offset from UTC it is moved into the local time of the DA/TM values
        ge = _local_datetime(_str_value(_private(first, 0x0009, _GE_CREATOR, 0x0D)), first)
        if ge is not None:
            warnings.append(
                "PET Series Date/Time is after the Acquisition Date/Time (post-processed series); "
                "used the GE private scan DateTime (0009,100d) as the decay reference"
            )
            return ge
        assert earliest_acq is not None
        origin = _agreed_frame_origin(frame_refs, earliest_acq, warnings)
        if origin is not None:
            return origin
        warnings.append(
            "PET Series Date/Time is after the earliest Acquisition Date/Time (post-processed series); "
            "used the earliest Acquisition Date/Time as the decay reference"
        )
        return earliest_acq
    if earliest_acq is not None:
        warnings.append("PET Series Date/Time missing; used the earliest Acquisition Date/Time as the decay reference")
        return earliest_acq
    raise DicomError(
        f"{source}: PET scan time unknown: Series Date/Time (0008,0021/0031) and Acquisition Date/Time "
        "(0008,0022/0032) are missing; SUV needs them. Export the series with its original headers."
    )


#: Decay references back-computed from the slices' Frame Reference Times further apart than this (their
#: milliseconds are rounded; a start-corrected series has one reference) are not believed.
FRAME_REFERENCE_AGREEMENT = timedelta(seconds=2)


def _frame_reference_origin(ds: Any, acquisition: datetime, half_life: float | None) -> datetime | None:
    """When a Siemens slice's pixels are decay-corrected to, from its Frame Reference Time (QIBA; PS3.3 C.8.9.4.1.5).

    Frame Reference Time (0054,1300) is the offset (ms) from that time to the moment the frame's average
    count rate occurred, which lies ``ln(l d / (1 - exp(-l d))) / l`` into a frame of duration ``d``
    (Actual Frame Duration, 0018,1242) begun at ``acquisition``, ``l = ln 2 / half_life``. None when
    either element is missing or not positive, or the half-life is unknown.
    """
    frame_ref_ms, duration_ms = _float(ds.get("FrameReferenceTime")), _float(ds.get("ActualFrameDuration"))
    if half_life is None or half_life <= 0 or not frame_ref_ms or not duration_ms:
        return None
    if frame_ref_ms <= 0 or duration_ms <= 0:
        return None
    decay_in_frame = math.log(2.0) / half_life * duration_ms / 1000.0
    average_count_s = math.log(decay_in_frame / -math.expm1(-decay_in_frame)) * half_life / math.log(2.0)
    return acquisition + timedelta(seconds=average_count_s - frame_ref_ms / 1000.0)


def _agreed_frame_origin(refs: Sequence[datetime], earliest_acq: datetime, warnings: list[str]) -> datetime | None:
    """The decay reference the Frame Reference Times agree on (not after the acquisition), else None."""
    if not refs:
        return None
    lo, hi = min(refs), max(refs)
    if hi - lo > FRAME_REFERENCE_AGREEMENT or hi > earliest_acq + SERIES_AFTER_ACQUISITION_TOLERANCE:
        warnings.append(
            f"PET Frame Reference Times (0054,1300) give decay references from {lo.isoformat()} to {hi.isoformat()}, "
            "not one time before the acquisition; they were not used"
        )
        return None
    origin = lo + (hi - lo) / 2
    warnings.append(
        "PET Series Date/Time is after the earliest Acquisition Date/Time (post-processed series); used the time "
        f"the Frame Reference Time (0054,1300) is counted from, {origin.isoformat()}, as the decay reference "
        f"({(earliest_acq - origin).total_seconds():.0f} s before the earliest acquisition)"
    )
    return origin


_UTC_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})\s*$")


def _utc_offset(text: str | None) -> timedelta | None:
    """The ``&ZZXX`` offset from UTC a DT or TimezoneOffsetFromUTC value ends with, or None."""
    m = _UTC_OFFSET.search(text or "")
    if m is None:
        return None
    sign = -1 if m.group(1) == "-" else 1
    return sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))


def _local_datetime(text: str | None, ds: Any, local_offset: timedelta | None = None) -> datetime | None:
    """A DT value in the instance's local time, the time of its DA/TM values (Series Time ...).

    A DT may carry its own offset from UTC (``20240102090000+0000``); TimezoneOffsetFromUTC
    (0008,0201) gives the offset of the instance's DA and TM values (PS3.3 C.12.1.1.8). When both
    are known and differ, the DT is moved into local time; otherwise it is read as written.
    """
    moment = _parse_datetime(text)
    own = _utc_offset(text) if moment is not None and len((text or "").strip()) > 14 else None
    local = local_offset if local_offset is not None else _utc_offset(_text(ds, "TimezoneOffsetFromUTC"))
    if moment is None or own is None or local is None or own == local:
        return moment
    return moment + (local - own)


def _nearest_day(moment: datetime, reference: datetime) -> datetime:
    """``moment`` moved by whole days to within 12 h of ``reference``.

    An AcquisitionTime without its AcquisitionDate (removed by de-identification) takes the
    Series Date; a bed acquired after midnight then reads as the morning before the series
    (00:04 before 23:50 of one day) and would replace the series time as the decay reference.
    """
    half_day = timedelta(hours=12)
    while moment < reference - half_day:
        moment += timedelta(days=1)
    while moment > reference + half_day:
        moment -= timedelta(days=1)
    return moment


def _str_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    return str(value)


#: A Series Time at most this much after the earliest Acquisition Time is the same moment, not a post-processed
#: series: Siemens writes Series Time 12:35:15.000000 beside Acquisition Time 12:35:14.999995.
SERIES_AFTER_ACQUISITION_TOLERANCE = timedelta(seconds=1)

#: RadiopharmaceuticalStartTime and ...StartDateTime further apart than this earn a warning.
INJECTION_TIME_AGREEMENT = timedelta(seconds=60)


def _clock_gap_s(a: Any, b: Any) -> float:
    """Seconds between two times of day, across midnight (23:59 and 00:01 are 120 s apart)."""
    sa = a.hour * 3600 + a.minute * 60 + a.second + a.microsecond / 1e6
    sb = b.hour * 3600 + b.minute * 60 + b.second + b.microsecond / 1e6
    d = abs(sa - sb)
    return min(d, 86400.0 - d)


def _injection_datetime(
    info: Any,
    scan: datetime,
    source: str,
    warnings: list[str],
    local_offset: timedelta | None = None,
) -> datetime:
    full_text = _text(info, "RadiopharmaceuticalStartDateTime")
    full = _local_datetime(full_text, info, local_offset)
    own = _utc_offset(full_text) if full is not None and len((full_text or "").strip()) > 14 else None
    if own is not None and local_offset is None:
        warnings.append(
            f"PET RadiopharmaceuticalStartDateTime (0018,1078) {full_text} gives its offset from UTC but the series "
            "has no TimezoneOffsetFromUTC (0008,0201): read as the local time of the Series Time; if the scanner "
            "clock is not on that offset, the uptake time and every SUV are wrong"
        )
    t = _parse_time(_text(info, "RadiopharmaceuticalStartTime"))
    date_only = re.match(r"\s*\d*", full_text or "")
    if full is not None and t is not None and date_only is not None and len(date_only.group().strip()) <= 8:
        return datetime.combine(full.date(), t)  # a DateTime of day precision: its date, the StartTime's time
    if full is not None:
        if t is not None and _clock_gap_s(t, full.time()) > INJECTION_TIME_AGREEMENT.total_seconds():
            warnings.append(
                f"PET RadiopharmaceuticalStartTime (0018,1072) {t.isoformat()} contradicts "
                f"RadiopharmaceuticalStartDateTime (0018,1078) {full.isoformat()}; the DateTime (the complete "
                "attribute) was believed"
            )
        return full
    if t is None:
        raise DicomError(
            f"{source}: injection time missing: neither RadiopharmaceuticalStartDateTime (0018,1078) nor "
            "RadiopharmaceuticalStartTime (0018,1072) is set in (0054,0016); SUV needs it. "
            "Export the series with its Radiopharmaceutical Information Sequence."
        )
    # the scan's day, not the Series Date: a series reconstructed or re-saved on a later day keeps its
    # Acquisition Date, and the injection was on the day of the scan (or the day before it)
    inj = datetime.combine(scan.date(), t)
    if inj > scan:
        inj -= timedelta(days=1)
        warnings.append(
            "PET injection time (0018,1072) is later in the day than the scan time: injection taken to be "
            "the day before (midnight crossing)"
        )
    return inj


# ---------------------------------------------------------------- main entry
def suv_conversion(
    datasets: Sequence[Any],
    *,
    weight_kg: float | None = None,
    source: str = "",
    plausibility: Mapping[str, Any] | None = None,
    weight_source: str = "--weight",
    require_weight: bool = True,
    half_life_s: float | None = None,
) -> SuvConversion:
    """Per-slice factors turning a PET series' modality-LUT values into SUVbw.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The series' instances (headers suffice), in slice order.
    weight_kg : float or None
        Patient weight overriding Patient's Weight (0010,1030) (``--weight``).
    source : str
        Series or folder named in messages.
    plausibility : mapping, optional
        ``rules["pet_plausibility"]``
        (:func:`~netlm_imaging.io.pet_plausibility.plausibility_limits`);
        None uses the defaults.
    weight_source : str
        Where ``weight_kg`` came from, named in messages (``"--weight"``, or
        ``"the clinical file's weight_kg"``).
    require_weight : bool
        False: a missing weight or injected dose gives activity-concentration factors and
        :attr:`SuvConversion.suv_unavailable` instead of an error.
    half_life_s : float or None
        Radionuclide half-life (s) stated by the user (``--pet-half-life``), used instead of
        Radionuclide Half Life (0018,1075) (:func:`~netlm_imaging.io.pet_half_life.resolve_half_life`).

    Returns
    -------
    SuvConversion
        Factors and the facts used (see the module docstring for the rules).

    Raises
    ------
    InputError
        Missing weight (0010,1030) or dose (0018,1074) with ``require_weight``, a dose of 0 or less,
        invalid ``weight_kg``,
        implausible weight, dose or uptake time (``plausibility``).
    DicomError
        Inconsistent slices, missing times or half-life, injection after scan.
    UnsupportedError
        Units that cannot be converted, DecayCorrection NONE without Decay
        Factor, images without attenuation correction, unknown decay terms.
    """
    src = source or "PET series"
    if not datasets:
        raise InputError(f"{src}: no PET instances given; pass a PET series folder.")
    first = datasets[0]
    warnings: list[str] = []
    modality = _text(first, "Modality")
    if modality not in (None, "PT"):
        raise InputError(f"{src}: Modality is {modality!r}, not PT; pass the PET series to --pet.")
    _check_single_series(datasets, src)
    limits = plausibility_limits(plausibility)
    units = (_text(first, "Units") or "").upper()
    decay = (_text(first, "DecayCorrection") or "").upper()
    _check_corrections(first, decay, src, warnings)
    if units not in ("BQML", "CNTS", "GML"):
        raise UnsupportedError(
            f"{src}: PET Units (0054,1001) is {units or 'missing'!r}; SUV can be computed only from BQML, CNTS "
            "(Philips, with its private scale factors) or GML. Export the series in Bq/mL."
        )
    series = _Series(
        datasets=datasets,
        source=src,
        units=units,
        decay=decay,
        slopes=np.array([_float(ds.get("RescaleSlope")) or 1.0 for ds in datasets], dtype=np.float64),
        intercepts=np.array([_float(ds.get("RescaleIntercept")) or 0.0 for ds in datasets], dtype=np.float64),
        nuclide=identify_nuclide(first),
        header_weight=_float(first.get("PatientWeight")),
        weight_kg=weight_kg,
        limits=limits,
        kernel=_text(first, "ConvolutionKernel"),
        warnings=warnings,
        weight_source=weight_source,
        require_weight=require_weight,
        half_life_s=half_life_s,
    )
    if units == "GML":
        _check_gml_suv_type(first, src)
        warnings.append("PET Units GML: values taken to be SUVbw already")
        return _scanner_weighted(series, np.ones(len(datasets), dtype=np.float64), "the GML (SUVbw) values", "GML")
    if units == "CNTS":
        philips = _philips_suv_scale(series)
        if philips is not None:
            return philips
        to_bqml, method = _philips_concentration_scale(series), "CNTS:7053,1009"
    else:
        to_bqml, method = np.ones(len(datasets), dtype=np.float64), "BQML"
    return _bqml_conversion(series, to_bqml, method)


@dataclass
class _Series:
    """The facts of one PET series every path of :func:`suv_conversion` uses."""

    datasets: Sequence[Any]
    source: str
    units: str
    decay: str
    slopes: np.ndarray
    intercepts: np.ndarray
    nuclide: str | None
    header_weight: float | None
    weight_kg: float | None  # --weight
    limits: Any
    kernel: str | None
    warnings: list[str]
    weight_source: str = "--weight"
    require_weight: bool = True
    half_life_s: float | None = None  # --pet-half-life
    cross_check: bool = True  # compare a computed factor with the Philips SUV Scale Factor (7053,1000)

    def plausible(self, weight: float | None, dose: float | None, uptake_s: float | None) -> list[str]:
        """The plausibility warnings of a weight, dose and uptake time (refusals raise)."""
        return check_conversion(
            weight_kg=weight,
            weight_from_option=self.weight_kg is not None,
            option_name=self.weight_source,
            dose_bq=dose,
            uptake_s=uptake_s,
            nuclide=self.nuclide,
            limits=self.limits,
            source=self.source,
        )

    def scanner_scaled(self, factors: np.ndarray, weight: float | None, method: str) -> SuvConversion:
        """GML or the Philips SUV Scale Factor: the scanner's scale, no decay or dose facts."""
        return SuvConversion(
            factors=factors,
            rescale_slopes=self.slopes,
            rescale_intercepts=self.intercepts,
            units=self.units,
            decay_correction=self.decay,
            scan_datetime=None,
            injection_datetime=None,
            half_life_s=None,
            injected_dose_bq=None,
            decayed_dose_bq=None,
            weight_kg=weight if weight is not None else self.header_weight,
            nuclide=self.nuclide,
            method=method,
            warnings=self.warnings,
            convolution_kernel=self.kernel,
            weight_source=f"user ({self.weight_source})"
            if weight is not None
            else ("header (0010,1030)" if self.header_weight else None),
        )


def _philips_suv_scale(series: _Series) -> SuvConversion | None:
    """CNTS with the Philips private SUV Scale Factor (7053,1000) on every slice (None without it).

    None too when a weight is given, Patient's Weight (0010,1030) is missing or 0 (the weight the factor
    holds is unknown) and every slice has the Activity Concentration Scale Factor (7053,1009): the BQML
    rule on ``value * (7053,1009)`` then uses the given weight.
    """
    weight_kg, header_weight = series.weight_kg, series.header_weight
    suv_scale = [_float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x00)) for ds in series.datasets]
    if not all(v is not None and v != 0.0 for v in suv_scale):
        return None
    factors = np.array(suv_scale, dtype=np.float64)
    if weight_kg is not None and (header_weight is None or header_weight <= 0) and _has_concentration_scale(series):
        # the SUV factor holds an unknown weight; the Bq/mL factor and the given weight give the SUV (QIBA)
        series.warnings.append(
            f"Patient's Weight (0010,1030) is {'missing' if header_weight is None else f'{header_weight:g}'}: the "
            f"Philips SUV Scale Factor (7053,1000) cannot be rescaled to {series.weight_source} "
            f"({float(weight_kg):g} kg); SUV computed from the Activity Concentration Scale Factor (7053,1009) with "
            "that weight"
        )
        return None
    conv = _scanner_weighted(series, factors, "the Philips SUV Scale Factor (7053,1000)", "CNTS:7053,1000")
    if not _has_concentration_scale(series):
        return conv
    # the same series through the QIBA rule on its Bq/mL scale (7053,1009), to see whether the scanner agrees
    trial_series = replace(series, warnings=[], cross_check=False)
    try:
        trial = _bqml_conversion(trial_series, _philips_concentration_scale(trial_series), "CNTS:7053,1009")
    except NetlmError as exc:  # the header cannot give the factor (times, dose ...): nothing to compare
        logger.debug("%s: no computed SUV factor to compare with (7053,1000): %s", series.source, exc)
        return conv
    if trial.suv_unavailable is not None:
        return conv
    check = compare_with_scanner(
        conv.factors,
        trial.factors,
        limit=float(series.limits["scanner_suv_disagreement_warn"]),
        used="the Philips factor",
        facts=_factor_facts(trial),
        warnings=series.warnings,
    )
    return replace(conv, scanner_check=check)


def _factor_facts(conv: SuvConversion) -> str:
    """The inputs of a computed SUV factor, for messages."""
    parts = [
        f"weight {conv.weight_kg:g} kg" if conv.weight_kg is not None else "",
        f"dose {conv.injected_dose_bq:g} Bq" if conv.injected_dose_bq is not None else "",
        f"uptake {conv.decay_time_s:g} s" if conv.decay_time_s is not None else "",
        f"half-life {conv.half_life_s:g} s" if conv.half_life_s is not None else "",
    ]
    return ", ".join(p for p in parts if p)


def _scanner_suv_scale(series: _Series) -> np.ndarray:
    """The Philips SUV factor per modality-LUT value of each slice read in full (NaN for the others, or absent).

    (7053,1000) is SUV per count, the unit (7053,1009) turns into Bq/mL, in BQML series too (calculate-suv's
    PHILIPS_BQML sample: its QIBA factor per Bq/mL is (7053,1000) / (7053,1009)); for Units CNTS the values
    are those counts.
    """
    out = np.full(len(series.datasets), np.nan)
    for k, ds in enumerate(series.datasets):
        if not hasattr(ds, "private_block"):  # the light per-slice headers of pet._series_headers: no private tags
            continue
        value = _float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x00))
        if series.units != "CNTS" and value is not None:
            per_bqml = _float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x09))
            value = value / per_bqml if per_bqml else None
        if value is not None:
            out[k] = value
    return out


def _scanner_weighted(series: _Series, factors: np.ndarray, label: str, method: str) -> SuvConversion:
    """SUVs the scanner scaled with Patient's Weight (0010,1030), rescaled to a given weight (SUVbw is linear in it).

    Without a header weight the scale cannot be moved: a clinical file's weight is then ignored with a
    warning, an explicit ``--weight`` refused.
    """
    src, weight_kg, header_weight = series.source, series.weight_kg, series.header_weight
    if weight_kg is not None and (header_weight is None or header_weight <= 0) and series.weight_source != "--weight":
        series.warnings.append(
            f"{label}: used as written; {series.weight_source} ({float(weight_kg):g} kg) cannot rescale them "
            "because Patient's Weight (0010,1030) is missing"
        )
        weight_kg = None
    if weight_kg is not None:
        if header_weight is None or header_weight <= 0:
            raise UnsupportedError(
                f"{src}: --weight cannot be applied to {label} because Patient's Weight (0010,1030) is "
                f"{'missing' if header_weight is None else f'{header_weight:g}'}; drop --weight."
            )
        _check_weight(weight_kg, src, series.weight_source)
        factors = factors * (float(weight_kg) / header_weight)
        if float(weight_kg) != header_weight:
            series.warnings.append(
                f"{label}: rescaled from the header weight {header_weight:g} kg to {series.weight_source} "
                f"{float(weight_kg):g} kg"
            )
    series.warnings.extend(series.plausible(float(weight_kg) if weight_kg is not None else header_weight, None, None))
    return series.scanner_scaled(factors, float(weight_kg) if weight_kg is not None else None, method)


def _has_concentration_scale(series: _Series) -> bool:
    """Whether every slice carries a non-zero Philips Activity Concentration Scale Factor (7053,1009)."""
    values = [_float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x09)) for ds in series.datasets]
    return all(v is not None and v != 0.0 for v in values)


def _philips_concentration_scale(series: _Series) -> np.ndarray:
    """CNTS without an SUV scale: the Activity Concentration Scale Factor (7053,1009) turns counts into Bq/mL."""
    conc_scale = [_float(_private(ds, 0x7053, _PHILIPS_CREATOR, 0x09)) for ds in series.datasets]
    if not all(v is not None and v != 0.0 for v in conc_scale):
        raise UnsupportedError(
            f"{series.source}: PET Units are CNTS but the Philips private SUV Scale Factor (7053,1000) and Activity "
            "Concentration Scale Factor (7053,1009) are missing (private tags stripped by the export?); "
            "SUV cannot be computed. Re-export with private tags or in Bq/mL (BQML)."
        )
    return np.array(conc_scale, dtype=np.float64)


def _uptake(series: _Series, info: Any, half_life: float) -> tuple[datetime | None, datetime | None, float | None]:
    """(scan, injection, seconds between them): none of them needed, and None, for Decay Correction ADMIN."""
    src, first, warnings = series.source, series.datasets[0], series.warnings
    scan: datetime | None = None
    injection: datetime | None = None
    try:
        scan = _scan_datetime(series.datasets, src, warnings, half_life)
        injection = _injection_datetime(
            info,
            scan,
            src,
            warnings,
            _utc_offset(_text(first, "TimezoneOffsetFromUTC")),
        )
    except DicomError:
        undated = _undated_uptake_s(series, info)
        if undated is not None:
            return None, None, undated
        if series.decay != "ADMIN":
            raise
        scan = injection = None  # ADMIN: values already corrected to the injection; no time is needed
        warnings.append(
            "PET injection or scan time missing; not needed for Decay Correction ADMIN (values already corrected "
            "to the injection), so the uptake time was not checked"
        )
    decay_time = None if scan is None or injection is None else (scan - injection).total_seconds()
    if decay_time is not None and decay_time < 0:
        raise DicomError(
            f"{src}: injection ({injection.isoformat() if injection else ''}) is after the scan "
            f"({scan.isoformat() if scan else ''}); the PET times are inconsistent. Fix "
            "RadiopharmaceuticalStartDateTime (0018,1078)."
        )
    if decay_time is not None and decay_time > 10 * half_life:
        warnings.append(
            f"PET scan is {decay_time / 3600:.1f} h ({decay_time / half_life:.1f} half-lives) after injection; "
            "check the injection date and time"
        )
    return scan, injection, decay_time


_DAY_S = 86400.0


def _undated_uptake_s(series: _Series, info: Any) -> float | None:
    """Uptake time (s) from the times of day alone, when de-identification removed every date but kept the times.

    Series Date, Acquisition Date(Time) and the injection's date missing (HIPAA de-identification removes
    dates, not times): the scan is the Series Time (the earliest Acquisition Time when the Series Time is
    later or missing), the injection the RadiopharmaceuticalStartTime (or the time of a StartDateTime), the
    day before when later in the day. That is unambiguous only for a nuclide imaged within a day of
    injection (its ``uptake_min_range`` below 24 h); for another (Lu-177 is imaged days after) it is refused.
    None when the times are missing too, or a date is present (the dated rules apply).
    """
    datasets, src = series.datasets, series.source
    first = datasets[0]
    dated = _text(first, "SeriesDate") or any(
        _text(ds, "AcquisitionDate") or _text(ds, "AcquisitionDateTime") for ds in datasets
    )
    series_time = _parse_time(_text(first, "SeriesTime"))
    acq_times = [t for ds in datasets if (t := _parse_time(_text(ds, "AcquisitionTime"))) is not None]
    injection = _parse_time(_text(info, "RadiopharmaceuticalStartTime"))
    full = _parse_datetime(_text(info, "RadiopharmaceuticalStartDateTime"))
    if injection is None and full is not None:
        injection = full.time()
    if dated or injection is None or (series_time is None and not acq_times):
        return None

    def seconds(t: Any) -> float:
        return t.hour * 3600.0 + t.minute * 60.0 + t.second + t.microsecond / 1e6

    earliest = min((seconds(t) for t in acq_times), default=None)
    scan = seconds(series_time) if series_time is not None else None
    if scan is None or (earliest is not None and scan > earliest + SERIES_AFTER_ACQUISITION_TOLERANCE.total_seconds()):
        scan = earliest
    assert scan is not None
    uptake = (scan - seconds(injection)) % _DAY_S
    table = series.limits["nuclides"].get(series.nuclide) if series.nuclide else None
    longest_min = float(table["uptake_min_range"][1]) if table and "uptake_min_range" in table else None
    if longest_min is None or longest_min >= _DAY_S / 60.0:
        raise DicomError(
            f"{src}: the PET dates are missing (Series Date, Acquisition Date, RadiopharmaceuticalStartDateTime; "
            f"de-identified?) and {series.nuclide or 'an unidentified radionuclide'} may be imaged days after "
            f"injection, so the uptake time is not known from the times of day ({uptake / 60.0:.1f} min, or that plus "
            "whole days). Restore the dates (date-shifting de-identification keeps the intervals)."
        )
    series.warnings.append(
        f"PET dates missing (de-identified?): uptake time {uptake / 60.0:.1f} min taken from the times of day alone"
        + (" (injection the day before, across midnight)" if seconds(injection) > scan else "")
        + f"; {series.nuclide} is imaged within {longest_min:g} min of injection (pet_plausibility), so no whole "
        "day can be missing"
    )
    return uptake


def _decayed_dose(series: _Series, dose: float, decay_time: float | None, half_life: float) -> tuple[float, np.ndarray]:
    """The dose at the time the pixels are corrected to, and each slice's own Decay Factor (for NONE)."""
    n, src, decay = len(series.datasets), series.source, series.decay
    if decay == "ADMIN":
        return dose, np.ones(n, dtype=np.float64)
    if decay == "START":
        assert decay_time is not None  # only ADMIN reads on without the times
        return dose * 2.0 ** (-decay_time / half_life), np.ones(n, dtype=np.float64)
    if decay == "NONE":
        dfs = [_float(ds.get("DecayFactor")) for ds in series.datasets]
        if not all(v is not None and v > 0 for v in dfs):
            raise UnsupportedError(
                f"{src}: PET Decay Correction (0054,1102) is NONE and Decay Factor (0054,1321) is missing; "
                "the pixel values are not decay-corrected and SUV would be wrong. Export a decay-corrected "
                "(START) series."
            )
        assert decay_time is not None
        series.warnings.append(
            "PET Decay Correction is NONE: each slice was multiplied by its Decay Factor (0054,1321) to correct "
            "it to the scan start, then SUV computed as for START; verify against the scanner's SUV"
        )
        return dose * 2.0 ** (-decay_time / half_life), np.array(dfs, dtype=np.float64)
    raise UnsupportedError(
        f"{src}: PET Decay Correction (0054,1102) is {decay or 'missing'!r}; expected START, ADMIN or NONE. "
        "Export the series with its PET Series module."
    )


def _bqml_conversion(series: _Series, to_bqml: np.ndarray, method: str) -> SuvConversion:
    """The QIBA rule on Bq/mL values: weight / (injected dose decayed to the scan start)."""
    src = series.source
    weight = _weight(series, src)
    info = _radiopharm(series.datasets[0])
    if info is None:
        raise DicomError(
            f"{src}: Radiopharmaceutical Information Sequence (0054,0016) is missing; SUV needs the injected "
            "dose, injection time and half-life. Export the series with its original PET headers."
        )
    dose = _float(info.get("RadionuclideTotalDose"))
    if (dose is None and series.require_weight) or (dose is not None and dose <= 0):
        raise InputError(
            f"{src}: injected dose Radionuclide Total Dose (0018,1074) is {'missing' if dose is None else dose}; "
            "SUV cannot be computed. Fix the header (dose in Bq) or use a series that records it."
        )
    half_life, half_life_source = resolve_half_life(
        info,
        series.nuclide,
        limits=series.limits,
        source=src,
        warnings=series.warnings,
        decay=series.decay,
        user_half_life_s=series.half_life_s,
    )
    scan, injection, decay_time = _uptake(series, info, half_life)
    # each slice's own decay factor does not depend on the dose (1 Bq stands in when it is missing)
    decayed, per_slice_decay = _decayed_dose(series, dose if dose is not None else 1.0, decay_time, half_life)
    series.warnings.extend(series.plausible(weight, dose, decay_time))
    lacking = []
    if weight is None:
        lacking.append(
            f"body weight unknown: Patient's Weight (0010,1030) is "
            f"{'missing' if series.header_weight is None else series.header_weight} and no weight was given "
            "(--weight KG or the clinical file's weight_kg)"
        )
    if dose is None:
        lacking.append(
            "injected dose unknown: Radionuclide Total Dose (0018,1074) is missing (fix the header: dose in Bq)"
        )
    unavailable = "; ".join(lacking) or None
    if unavailable:  # Bq/mL (decay-corrected as the series says): ratios of uptake need no weight or dose
        factors = to_bqml * per_slice_decay
        series.warnings.append(f"no SUV: {unavailable}; SUV values are null")
    else:
        assert weight is not None
        factors = to_bqml * per_slice_decay * (weight * 1000.0 / decayed)
    scanner_check = None
    header_weight = series.header_weight
    if series.cross_check and unavailable is None and header_weight is not None and header_weight > 0:
        assert weight is not None
        scanner = _scanner_suv_scale(series)
        if np.any(np.isfinite(scanner)):  # the scanner's factor holds Patient's Weight: compare at that weight
            scanner_check = compare_with_scanner(
                scanner,
                factors * (header_weight / weight),
                limit=float(series.limits["scanner_suv_disagreement_warn"]),
                used="the computed factor",
                facts=", ".join(
                    f
                    for f in (
                        f"weight {header_weight:g} kg",
                        f"dose {dose:g} Bq" if dose is not None else "",
                        f"uptake {decay_time:g} s" if decay_time is not None else "",
                        f"half-life {half_life:g} s",
                    )
                    if f
                ),
                warnings=series.warnings,
            )
    return SuvConversion(
        factors=factors,
        rescale_slopes=series.slopes,
        rescale_intercepts=series.intercepts,
        units=series.units,
        decay_correction=series.decay,
        scan_datetime=scan,
        injection_datetime=injection,
        half_life_s=half_life,
        half_life_source=half_life_source,
        injected_dose_bq=dose,
        decayed_dose_bq=float(decayed) if dose is not None else None,
        weight_kg=weight,
        decay_time_s=None if decay_time is None else float(decay_time),
        nuclide=series.nuclide,
        method=method,
        warnings=series.warnings,
        convolution_kernel=series.kernel,
        suv_unavailable=unavailable,
        weight_source=None if weight is None else _weight_origin(series),
        scanner_check=scanner_check,
    )


def _weight_origin(series: _Series) -> str:
    """Where the SUV's body weight came from: the user (naming the option) or the header."""
    return f"user ({series.weight_source})" if series.weight_kg is not None else "header (0010,1030)"


def _check_weight(weight_kg: float, src: str, option: str = "--weight") -> None:
    w = _float(weight_kg)
    if w is None or not w > 0:
        raise InputError(f"{src}: {option} {weight_kg!r} kg is not a positive body weight; fix {option}.")


def _weight(series: _Series, src: str) -> float | None:
    header_weight, weight_kg = series.header_weight, series.weight_kg
    if weight_kg is not None:
        _check_weight(weight_kg, src, series.weight_source)
        apart = float(series.limits["weight_disagreement_warn_kg"])
        if header_weight is not None and header_weight > 0 and abs(header_weight - float(weight_kg)) > apart:
            series.warnings.append(
                f"SUV uses the weight {float(weight_kg):g} kg of {series.weight_source}, not Patient's Weight "
                f"(0010,1030) {header_weight:g} kg"
            )
        return float(weight_kg)
    if header_weight is None or header_weight <= 0:
        if not series.require_weight:
            return None
        raise InputError(
            f"{src}: Patient's Weight (0010,1030) is {'missing' if header_weight is None else header_weight}; "
            "SUVbw needs the body weight. Pass it with --weight KG."
        )
    return header_weight


def _check_gml_suv_type(ds: Any, src: str) -> None:
    """Refuse GML values whose SUV Type (0054,1006) says they are not SUVbw (SUVlbm, SUVibw: also g/mL)."""
    suv_type = (_text(ds, "SUVType") or "BW").upper()
    if suv_type != "BW":
        raise UnsupportedError(
            f"{src}: PET Units GML with SUV Type (0054,1006) {suv_type}: the values are SUV{suv_type.lower()}, not "
            "SUVbw, and cannot be turned back into SUVbw. Export the series in Bq/mL (BQML)."
        )


def _check_corrections(ds: Any, decay: str, src: str, warnings: list[str]) -> None:
    corrected = ds.get("CorrectedImage")
    if corrected is None:
        warnings.append("Corrected Image (0028,0051) missing: attenuation and decay correction not confirmed")
        return
    values = [corrected] if isinstance(corrected, str) else list(corrected)
    terms = {str(v).strip().upper() for v in values}
    if "ATTN" not in terms:
        raise UnsupportedError(
            f"{src}: Corrected Image (0028,0051) lacks ATTN: the PET is not attenuation-corrected and its values "
            "are not quantitative. Pass the attenuation-corrected series."
        )
    if decay in ("START", "ADMIN") and "DECY" not in terms:
        warnings.append(f"Decay Correction is {decay} but Corrected Image (0028,0051) lacks DECY; headers disagree")


_SERIES_LEVEL = ("Units", "DecayCorrection", "SeriesInstanceUID", "PatientWeight")


def _check_single_series(datasets: Sequence[Any], src: str) -> None:
    first = datasets[0]
    ref = {k: _text(first, k) for k in _SERIES_LEVEL}
    info0 = _radiopharm(first)
    ref_rp = _rp_key(info0)
    for ds in datasets[1:]:
        for k, v in ref.items():
            if _text(ds, k) != v:
                raise DicomError(
                    f"{src}: PET instances disagree on {k} ({v!r} vs {_text(ds, k)!r}); they are not one series. "
                    "Pass one PET series."
                )
        if _rp_key(_radiopharm(ds)) != ref_rp:
            raise DicomError(
                f"{src}: PET instances disagree on the Radiopharmaceutical Information Sequence (dose, time or "
                "half-life); they are not one acquisition. Pass one PET series."
            )


def _rp_key(info: Any) -> tuple[Any, ...] | None:
    if info is None:
        return None
    return tuple(
        _text(info, k)
        for k in (
            "RadionuclideTotalDose",
            "RadionuclideHalfLife",
            "RadiopharmaceuticalStartTime",
            "RadiopharmaceuticalStartDateTime",
        )
    )
