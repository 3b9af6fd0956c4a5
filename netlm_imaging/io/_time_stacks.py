"""Dynamic phases filed under one SeriesInstanceUID that only their trigger or acquisition time tells apart.

A GE multiphase dynamic (LAVA, DISCO) can file every phase under one SeriesInstanceUID with one
AcquisitionTime and tell the phases apart only by TriggerTime (0018,1060, ms). Such a series is
split by TriggerTime (:func:`split_by_trigger_time`) only when every TriggerTime value holds every
slice position of the series exactly once (a complete stack at the same positions); otherwise
the acquisition-time reading below is tried, and when that fails too the series reader's refusal
says what TriggerTime left ambiguous (:func:`trigger_time_reason`). TemporalPositionIdentifier,
where a scanner writes it, splits the series before either (``dicom_series_groups.RECONSTRUCTION_KEYS``).

What TriggerTime means in such a series is not documented: DICOM defines it for cardiac gating (R wave
to echo, PS3.3 C.8.3.1), GE's fMRI ``epi`` multiphase writes slice timing in it (dcm2niix, GE/README.md)
and GE's conformance statements only say it is always sent. So phases told apart by TriggerTime that
share one acquisition time have no known delay after injection (:func:`trigger_time_phases`): the
shared time is the delay of one phase at most, and which one is not stated. NumberOfTemporalPositions
(0020,0105), where written, is checked against the number of TriggerTime stacks.

A Siemens VIBE or GE LAVA dynamic series can hold every phase of the contrast study (pre-contrast,
arterial, portal venous, ...) at the same slice positions with no attribute but AcquisitionTime
(or AcquisitionDateTime) telling them apart: no TemporalPositionIdentifier, one AcquisitionNumber.
The phases were acquired one after the other, so at every position the n-th image in time belongs
to the n-th phase. They are split only when that reading is unambiguous:

* every slice position holds the same number ``n >= 2`` of images;
* the images of one position have distinct acquisition times;
* every image of phase ``k`` was acquired before every image of phase ``k + 1`` (a 2-D acquisition
  gives each slice its own time within a phase; the phases still follow each other).

Anything else (a missing time, phases whose times interleave) is left to the duplicate-position
refusal of the series reader.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from ..dicom_values import parse_datetime, parse_time, seconds_of_day
from ._dicom_info import DicomFileInfo

__all__ = ["split_by_acquisition_time", "split_by_trigger_time", "trigger_time_phases", "trigger_time_reason"]

#: Slice positions closer than this (mm, along the normal) are one position.
_SAME_POSITION_MM = 0.01


def _seconds(info: DicomFileInfo) -> float | None:
    """The file's acquisition instant in seconds (AcquisitionDateTime, else AcquisitionDate + Time)."""
    dt = parse_datetime(info.acquisition_datetime)
    if dt is None and info.acquisition_time:
        tm = parse_time(info.acquisition_time)
        if tm is None:
            return None
        day = parse_datetime(info.acquisition_date) if info.acquisition_date else None
        if day is None:
            return seconds_of_day(tm)
        dt = datetime.combine(day.date(), tm)
    return None if dt is None else dt.timestamp()


def _label(times: Sequence[float], files: Sequence[DicomFileInfo]) -> str:
    first = files[int(np.argmin(times))]
    written = first.acquisition_datetime or first.acquisition_time
    return f"AcquisitionTime {written}"


def split_by_acquisition_time(
    files: Sequence[DicomFileInfo], positions_mm: np.ndarray
) -> list[tuple[str, list[DicomFileInfo]]] | None:
    """The phases of a series whose slice positions repeat, by acquisition time, or ``None``.

    Parameters
    ----------
    files : sequence of DicomFileInfo
        Single-frame image files of one SeriesInstanceUID.
    positions_mm : numpy.ndarray
        Their slice positions along the normal (as :func:`.dicom_series_groups._positions_mm` gives them).

    Returns
    -------
    list of (str, list of DicomFileInfo) or None
        One ``("AcquisitionTime 101530", files)`` per phase in time order, or ``None`` when the
        positions do not repeat or the times do not tell the phases apart unambiguously.
    """
    if len(files) < 2 or positions_mm.size != len(files):
        return None
    seconds = [_seconds(f) for f in files]
    if any(s is None for s in seconds):
        return None
    times = np.asarray(seconds, dtype=np.float64)
    order = np.argsort(positions_mm, kind="stable")
    breaks = np.flatnonzero(np.diff(positions_mm[order]) > _SAME_POSITION_MM) + 1
    clusters = np.split(order, breaks)
    n = len(clusters[0])
    if n < 2 or any(len(c) != n for c in clusters):
        return None
    ranked = []
    for c in clusters:
        by_time = c[np.argsort(times[c], kind="stable")]
        if np.any(np.diff(times[by_time]) <= 0):  # two images of one position at one time: no phase order
            return None
        ranked.append(by_time)
    phases = np.stack(ranked, axis=1)  # (n phases, positions)
    for earlier, later in itertools.pairwise(phases):
        if times[earlier].max() >= times[later].min():  # the phases' times interleave
            return None
    out = []
    for idx in phases:
        stack = [files[i] for i in idx]
        out.append((_label([float(times[i]) for i in idx], stack), stack))
    return out


def _position_slots(positions_mm: np.ndarray) -> np.ndarray:
    """Index of each file's slice position among the series' distinct positions (closer than 0.01 mm: one)."""
    order = np.argsort(positions_mm, kind="stable")
    slot_sorted = np.concatenate([[0], np.cumsum(np.diff(positions_mm[order]) > _SAME_POSITION_MM)])
    slots = np.empty(len(order), dtype=np.int64)
    slots[order] = slot_sorted
    return slots


def _by_trigger_time(
    files: Sequence[DicomFileInfo], positions_mm: np.ndarray
) -> tuple[list[tuple[str, list[DicomFileInfo]]] | None, str | None]:
    """(phases, None), or (None, why TriggerTime does not split the series; None: it states no phases)."""
    if len(files) < 2 or positions_mm.size != len(files):
        return None, None
    values = [f.trigger_time for f in files]
    stated = {round(v, 3) for v in values if v is not None}
    if len(stated) < 2:
        return None, None
    missing = sum(v is None for v in values)
    if missing:
        return None, f"TriggerTime states {len(stated)} values but is missing in {missing} of {len(files)} images"
    slots = _position_slots(positions_mm)
    n_slots = int(slots.max()) + 1
    groups: dict[float, list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(round(float(v), 3), []).append(i)  # type: ignore[arg-type]
    for value, idx in sorted(groups.items()):
        held = slots[idx]
        if len(set(held.tolist())) != len(idx):
            return None, (
                f"TriggerTime tells {len(groups)} groups apart, but TriggerTime {value:g} ms holds "
                f"{len(idx)} images at {len(set(held.tolist()))} positions (one position twice)"
            )
        if len(idx) != n_slots:
            return None, (
                f"TriggerTime tells {len(groups)} groups apart, but TriggerTime {value:g} ms holds "
                f"{len(idx)} of the series' {n_slots} slice positions"
            )
    return [(f"TriggerTime {value:g} ms", [files[i] for i in idx]) for value, idx in sorted(groups.items())], None


def split_by_trigger_time(
    files: Sequence[DicomFileInfo], positions_mm: np.ndarray
) -> list[tuple[str, list[DicomFileInfo]]] | None:
    """The phases of a series by TriggerTime, or ``None`` (see the module).

    Parameters
    ----------
    files : sequence of DicomFileInfo
        Single-frame image files of one SeriesInstanceUID.
    positions_mm : numpy.ndarray
        Their slice positions along the normal.

    Returns
    -------
    list of (str, list of DicomFileInfo) or None
        One ``("TriggerTime 20000 ms", files)`` per phase in TriggerTime order, when at least two
        TriggerTime values each hold every slice position of the series once; else ``None``.
    """
    return _by_trigger_time(files, positions_mm)[0]


def trigger_time_reason(files: Sequence[DicomFileInfo], positions_mm: np.ndarray) -> str | None:
    """Why TriggerTime, stating two or more values, does not split ``files`` into complete stacks, else ``None``."""
    return _by_trigger_time(files, positions_mm)[1]


def _temporal_positions_note(files: Sequence[DicomFileInfo], n_stacks: int) -> str | None:
    """A note when NumberOfTemporalPositions (0020,0105) disagrees with the number of TriggerTime stacks."""
    stated = sorted({f.temporal_positions for f in files if f.temporal_positions is not None})
    if not stated or stated == [n_stacks]:
        return None
    said = " and ".join(str(n) for n in stated)
    if len(stated) == 1 and stated[0] > n_stacks:
        why = f"{stated[0] - n_stacks} phase(s) may be missing from the export"
    elif len(stated) == 1:
        why = "some TriggerTime stacks are not phases of the dynamic"
    else:
        why = "the images disagree on it"
    return (
        f"NumberOfTemporalPositions (0020,0105) states {said} phases but TriggerTime tells {n_stacks} stacks "
        f"apart: {why}; check the series"
    )


def trigger_time_phases(
    stacks: Sequence[Sequence[DicomFileInfo]],
) -> tuple[list[float | None], str | None]:
    """The TriggerTime of each stack whose delay after injection the headers do not give, and a count note.

    Parameters
    ----------
    stacks : sequence of sequence of DicomFileInfo
        The stacks split off one SeriesInstanceUID (``dicom_series_groups.split_reconstructions``).

    Returns
    -------
    (list of float or None, str or None)
        Per stack, its TriggerTime (ms) when the stacks are told apart by TriggerTime (one value per
        stack, a different one in each) and do not each have an acquisition time of their own (one
        AcquisitionTime shared by all phases, as GE LAVA / DISCO multiphase exports write it, or a time
        missing): the shared time is no phase's known acquisition; else ``None``. The note says when
        NumberOfTemporalPositions disagrees with the number of TriggerTime stacks (else ``None``).

    Examples
    --------
    >>> from pathlib import Path
    >>> phase = lambda t: [DicomFileInfo(Path(f"{t}-{k}"), "IMAGE", acquisition_time="101400",
    ...                                  trigger_time=t, temporal_positions=3) for k in range(2)]
    >>> triggers, note = trigger_time_phases([phase(0.0), phase(18000.0)])
    >>> triggers
    [0.0, 18000.0]
    >>> note.split(":")[0]
    'NumberOfTemporalPositions (0020,0105) states 3 phases but TriggerTime tells 2 stacks apart'
    """
    none: list[float | None] = [None] * len(stacks)
    values = [{f.trigger_time for f in st} for st in stacks]
    if len(stacks) < 2 or any(len(v) != 1 or None in v for v in values):
        return none, None
    triggers = [float(next(iter(v))) for v in values]  # type: ignore[arg-type]
    if len({round(t, 3) for t in triggers}) != len(triggers):
        return none, None
    note = _temporal_positions_note([f for st in stacks for f in st], len(stacks))
    starts: list[float] = []
    for st in stacks:
        seconds = [_seconds(f) for f in st]
        known = [s for s in seconds if s is not None]
        if len(known) == len(seconds):
            starts.append(round(min(known), 3))
    if len(starts) == len(stacks) and len(set(starts)) == len(starts):
        return none, note  # each phase has its own acquisition time: its delay is its own
    shared: list[float | None] = list(triggers)
    return shared, note
