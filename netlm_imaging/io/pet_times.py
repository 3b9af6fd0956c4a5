"""When a PET series was scanned and its tracer injected: the decay reference and the uptake time of SUVbw.

The rules (scan date/time, injection date/time, time zones, undated series) are those of the
"Injection date/time", "Time zones" and "Scan date/time" entries of :mod:`netlm_imaging.io.suv`:

- the scan: Series Date/Time, unless after the earliest Acquisition Date/Time (post-processed);
  then the GE private scan DateTime (0009,100d), the time a Siemens series' Frame Reference Times
  (0054,1300) count from, or the earliest Acquisition Date/Time;
- the injection: RadiopharmaceuticalStartDateTime (0018,1078), else the scan's day and
  RadiopharmaceuticalStartTime (0018,1072) (the day before across midnight);
- a DT with its own offset from UTC moved into the instance's local time (TimezoneOffsetFromUTC);
- with every date removed, the uptake from the times of day, for a nuclide imaged within a day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..dicom_values import parse_date as _parse_date
from ..dicom_values import parse_datetime as _parse_datetime
from ..dicom_values import parse_float as _float
from ..dicom_values import parse_time as _parse_time
from ..errors import DicomError
from .pet_tags import GE_CREATOR, private_value, str_value, tag_text
from .suv_result import SuvSeries

__all__ = [
    "FRAME_REFERENCE_AGREEMENT",
    "INJECTION_TIME_AGREEMENT",
    "SERIES_AFTER_ACQUISITION_TOLERANCE",
    "uptake_times",
]


#: A Series Time at most this much after the earliest Acquisition Time is the same moment, not a post-processed
#: series: Siemens writes Series Time 12:35:15.000000 beside Acquisition Time 12:35:14.999995.
SERIES_AFTER_ACQUISITION_TOLERANCE = timedelta(seconds=1)

#: RadiopharmaceuticalStartTime and ...StartDateTime further apart than this earn a warning.
INJECTION_TIME_AGREEMENT = timedelta(seconds=60)


def _scan_datetime(
    datasets: Sequence[Any], source: str, warnings: list[str], half_life: float | None = None
) -> datetime:
    first = datasets[0]
    series_date = _parse_date(tag_text(first, "SeriesDate"))
    series_time = _parse_time(tag_text(first, "SeriesTime"))
    series_dt = datetime.combine(series_date, series_time) if series_date and series_time else None
    acq: list[datetime] = []
    frame_refs: list[datetime] = []  # the decay reference each slice's Frame Reference Time gives
    # Siemens only: Philips counts its Frame Reference Time from elsewhere (22 min before a series whose own
    # SUV factor is decayed to its Acquisition Time, calculate-suv's PHILIPS_BQML sample)
    siemens = "SIEMENS" in (tag_text(first, "Manufacturer") or "").upper()
    for ds in datasets:
        adt = _local_datetime(tag_text(ds, "AcquisitionDateTime"), ds)
        if adt is None:
            own_date = _parse_date(tag_text(ds, "AcquisitionDate"))
            d = own_date or series_date
            t = _parse_time(tag_text(ds, "AcquisitionTime"))
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
        ge = _local_datetime(str_value(private_value(first, 0x0009, GE_CREATOR, 0x0D)), first)
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
    local = local_offset if local_offset is not None else _utc_offset(tag_text(ds, "TimezoneOffsetFromUTC"))
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
    full_text = tag_text(info, "RadiopharmaceuticalStartDateTime")
    full = _local_datetime(full_text, info, local_offset)
    own = _utc_offset(full_text) if full is not None and len((full_text or "").strip()) > 14 else None
    if own is not None and local_offset is None:
        warnings.append(
            f"PET RadiopharmaceuticalStartDateTime (0018,1078) {full_text} gives its offset from UTC but the series "
            "has no TimezoneOffsetFromUTC (0008,0201): read as the local time of the Series Time; if the scanner "
            "clock is not on that offset, the uptake time and every SUV are wrong"
        )
    t = _parse_time(tag_text(info, "RadiopharmaceuticalStartTime"))
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


def uptake_times(
    series: SuvSeries, info: Any, half_life: float
) -> tuple[datetime | None, datetime | None, float | None]:
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
            _utc_offset(tag_text(first, "TimezoneOffsetFromUTC")),
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


def _undated_uptake_s(series: SuvSeries, info: Any) -> float | None:
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
    dated = tag_text(first, "SeriesDate") or any(
        tag_text(ds, "AcquisitionDate") or tag_text(ds, "AcquisitionDateTime") for ds in datasets
    )
    series_time = _parse_time(tag_text(first, "SeriesTime"))
    acq_times = [t for ds in datasets if (t := _parse_time(tag_text(ds, "AcquisitionTime"))) is not None]
    injection = _parse_time(tag_text(info, "RadiopharmaceuticalStartTime"))
    full = _parse_datetime(tag_text(info, "RadiopharmaceuticalStartDateTime"))
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
