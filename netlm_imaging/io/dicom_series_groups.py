"""Group the image files of a folder into series: which files make one volume.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`). The files a folder scan
found (:func:`~netlm_imaging.io._dicom_common.scan_dicom_folder`) are grouped by SeriesInstanceUID,
or, when it is empty (anonymised exports), by FrameOfReferenceUID + orientation + matrix + pixel
spacing + modality (:func:`group_image_series`). Within a series, scouts filed with it (ImageType
LOCALIZER, or a lone image of another orientation or matrix beside the one stack of several) are
left out with a note, and the reconstructions filed under one UID (:data:`RECONSTRUCTION_KEYS`:
another kernel, slice thickness, SeriesNumber, echo, b-value ...; the dynamic phases told apart by
TriggerTime or AcquisitionTime, :mod:`._time_stacks`; the stacks of one Enhanced file,
:mod:`.dicom_series_enhanced`) are split into ``UID#1``, ``UID#2`` ... (:func:`split_reconstructions`).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DicomError
from ._dicom_info import IMAGE, DicomFileInfo
from ._time_stacks import (
    split_by_acquisition_time,
    split_by_trigger_time,
    trigger_time_phases,
    trigger_time_reason,
)
from .dicom_series_enhanced import split_enhanced_frames

__all__ = [
    "RECONSTRUCTION_KEYS",
    "STACK_ORIENTATION_TOLERANCE",
    "STRAY_SLICES",
    "SeriesGroup",
    "group_image_series",
    "split_reconstructions",
    "why_not_split",
]

logger = logging.getLogger(__name__)


#: Images whose direction cosines differ by more than this are other stacks (a scout, a coronal reformat).
STACK_ORIENTATION_TOLERANCE = 1e-2


@dataclass(frozen=True)
class SeriesGroup:
    """One image series found in a folder.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID, or a synthetic ``"nouid:..."`` key for files without one.
    files : tuple of DicomFileInfo
        Its files.
    stack : str
        The reconstruction's label when several were split off one SeriesInstanceUID.
    notes : tuple of str
        What was left out of the series (localizers, single scout images), for the reader's warnings.
    refusal : str
        Why the series cannot be read as one volume (several stacks of several images under one UID, or
        topograms of several orientations): raised when it is read, so another series of the folder can be.
    trigger_time_ms : float or None
        The TriggerTime of a dynamic phase told apart from the others of its SeriesInstanceUID by
        TriggerTime while sharing their acquisition time (:func:`._time_stacks.trigger_time_phases`):
        the headers do not give its delay after injection.
    """

    uid: str
    files: tuple[DicomFileInfo, ...]
    stack: str = ""
    notes: tuple[str, ...] = ()
    refusal: str = ""
    trigger_time_ms: float | None = None

    @property
    def series_uid(self) -> str:
        """The SeriesInstanceUID (``uid`` without the ``#n`` of a reconstruction split off it)."""
        return self.uid.split("#", 1)[0]

    @property
    def modality(self) -> str:
        """Modality of the first file."""
        return self.files[0].modality

    @property
    def description(self) -> str:
        """SeriesDescription of the first file."""
        return self.files[0].series_description

    @property
    def frame_of_reference_uid(self) -> str:
        """FrameOfReferenceUID of the first file."""
        return self.files[0].frame_of_reference_uid

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID of the first file."""
        return self.files[0].study_uid

    @property
    def n_slices(self) -> int:
        """Number of frames over all files."""
        return sum(max(len(f.frames), 1) for f in self.files)

    def summary(self) -> str:
        """One-line description for candidate lists (no patient identity)."""
        desc = f" '{self.description}'" if self.description else ""
        stack = f", reconstruction {self.stack}" if self.stack else ""
        return f"{self.uid} ({self.modality or '?'}{desc}{stack}, {self.n_slices} slices)"


def _round_tuple(values: tuple[float, ...] | None, ndigits: int) -> tuple[float, ...] | None:
    return None if values is None else tuple(round(v, ndigits) + 0.0 for v in values)


def _stacks(files: Sequence[DicomFileInfo]) -> list[list[DicomFileInfo]]:
    """The files grouped by matrix and orientation, orientations within :data:`STACK_ORIENTATION_TOLERANCE`
    of a stack's first file together (rounding them to a key split a stack whose cosines straddle a
    rounding boundary: 0.33950 and 0.33949)."""
    stacks: list[list[DicomFileInfo]] = []
    for f in files:
        ori = f.orientation
        for stack in stacks:
            first = stack[0]
            if (first.rows, first.columns) != (f.rows, f.columns) or (first.orientation is None) != (ori is None):
                continue
            # plain floats: a numpy call per file cost more than the rest of the grouping
            if ori is None or first.orientation is None or _within(first.orientation, ori, STACK_ORIENTATION_TOLERANCE):
                stack.append(f)
                break
        else:
            stacks.append([f])
    return stacks


def _within(a: Sequence[float], b: Sequence[float], tolerance: float) -> bool:
    """Is every component of ``a`` within ``tolerance`` of ``b``'s?"""
    return all(abs(float(x) - float(y)) <= tolerance for x, y in zip(a, b, strict=True))


def _nonfinite_geometry(infos: Sequence[DicomFileInfo]) -> dict[int, str]:
    """``id(info)`` -> the refusal of each image file with a NaN or infinite ImageOrientationPatient /
    ImagePositionPatient / PixelSpacing, naming the file.

    Without this a NaN orientation reads as "a stack of another orientation" and an
    infinite position as "a missing slice" (or an overflow when resampling).
    """
    tags = (
        ("orientation", "ImageOrientationPatient (0020,0037)"),
        ("position", "ImagePositionPatient (0020,0032)"),
        ("pixel_spacing", "PixelSpacing (0028,0030)"),
    )
    bad: dict[int, str] = {}
    for info in infos:
        if info.kind != IMAGE:
            continue
        for fr in info.frames:
            for attr, tag in tags:
                values = getattr(fr, attr, None)
                if values is None or id(info) in bad or math.isfinite(sum(values)):
                    continue  # a finite sum: every value is finite (one call instead of one per value)
                if not all(math.isfinite(float(v)) for v in values):
                    frame = f" (frame {fr.frame_index + 1})" if info.is_multiframe else ""
                    bad[id(info)] = (
                        f"{info.path}{frame}: {tag} holds a non-finite value {list(values)}; the header is corrupt. "
                        "Re-export the series, or move this file out of the folder if it is not part of the volume."
                    )
    return bad


def group_image_series(infos: Sequence[DicomFileInfo]) -> list[SeriesGroup]:
    """Group image files into series.

    Files with an empty or absent SeriesInstanceUID are grouped by
    FrameOfReferenceUID + orientation + Rows/Columns + PixelSpacing. Within a
    series, stacks with another orientation or matrix flagged LOCALIZER in
    ImageType are dropped (logged).

    Parameters
    ----------
    infos : sequence of DicomFileInfo
        Scanned files (non-image kinds are ignored).

    Returns
    -------
    list of SeriesGroup
        Sorted by SeriesNumber then UID.

    Raises
    ------
    DicomError
        A series mixing stacks of different orientation or matrix size.
    """
    # a series with a corrupt geometry is refused when it is read, not while the folder is grouped:
    # another series of the study (the one the segmentation references) is still measured
    corrupt = _nonfinite_geometry(infos)
    groups: dict[str, list[DicomFileInfo]] = {}
    anonymous: dict[tuple[Any, ...], list[DicomFileInfo]] = {}
    for info in infos:
        if info.kind != IMAGE:
            continue
        if info.series_uid or id(info) in corrupt:  # an anonymous corrupt file cannot be grouped by its geometry
            groups.setdefault(info.series_uid or f"nouid:{info.path}", []).append(info)
        else:
            spacing = info.frames[0].pixel_spacing if info.frames else None
            facts = (
                info.frame_of_reference_uid or "-",
                info.rows,
                info.columns,
                _round_tuple(spacing, 4),
                info.modality,
            )
            anonymous.setdefault(facts, []).append(info)
    for (for_uid, rows, columns, spacing, modality), files in anonymous.items():
        for stack in _stacks(files):  # by orientation within a tolerance, named by the first file's
            fields = (for_uid, _round_tuple(stack[0].orientation, 3), f"{rows}x{columns}", spacing, modality)
            groups.setdefault("nouid:" + "|".join(str(x) for x in fields), []).extend(stack)
    out = []
    for key, files in groups.items():
        refused = next((corrupt[id(f)] for f in files if id(f) in corrupt), None)
        if refused is not None:
            out.append(SeriesGroup(key, tuple(sorted(files, key=lambda f: str(f.path))), refusal=refused))
            continue
        try:
            files, notes = _without_scouts(key, files)
        except DicomError as exc:  # refused when read, not while grouping: a scout series must not stop a study
            out.append(SeriesGroup(key, tuple(sorted(files, key=lambda f: str(f.path))), refusal=str(exc)))
            continue
        stray = _stray_headers(key, files)
        if stray is not None:
            notes = (*notes, stray)
        stacks_found = [("", list(files))] if stray is not None else split_reconstructions(files)
        if len(stacks_found) == 1:
            out.append(SeriesGroup(key, tuple(sorted(files, key=lambda f: str(f.path))), notes=notes))
            continue
        triggers, count_note = trigger_time_phases([st for _, st in stacks_found])
        if count_note is not None:  # a warning of the volume read from any of the stacks
            notes = (*notes, f"series {key}: {count_note}")
        for n, ((label, stack), trigger) in enumerate(zip(stacks_found, triggers, strict=True), start=1):
            files_sorted = tuple(sorted(stack, key=lambda f: str(f.path)))
            out.append(SeriesGroup(f"{key}#{n}", files_sorted, label, notes, trigger_time_ms=trigger))
        logger.info(
            "series %s holds %d reconstructions: %s", key, len(stacks_found), "; ".join(lb for lb, _ in stacks_found)
        )
    out.sort(key=lambda g: (g.files[0].series_number if g.files[0].series_number is not None else 1 << 30, g.uid))
    return out


def _is_localizer(info: DicomFileInfo) -> bool:
    return "LOCALIZER" in info.image_type


def _without_scouts(key: str, files: list[DicomFileInfo]) -> tuple[list[DicomFileInfo], tuple[str, ...]]:
    """The files of one series without the scouts filed with it, and a note naming what was left out.

    Scanners and PACS file the topogram / scout (ImageType LOCALIZER) or a dose screen under the
    series UID of the axial stack. Images typed LOCALIZER are never part of a volume, whatever their
    orientation or matrix; a lone image of another orientation or matrix beside the one stack of
    several images is a scout too (untyped topograms, screen captures). Several stacks of several
    images each (an axial and a coronal reconstruction under one UID) are ambiguous and refused.
    """
    kept = [f for f in files if not _is_localizer(f)] or files
    left_out: list[DicomFileInfo] = [f for f in files if _is_localizer(f)] if kept is not files else []
    stacks = _stacks(kept)
    if len(stacks) > 1:
        several = [v for v in stacks if len(v) > 1 or any(f.is_multiframe for f in v)]
        if len(several) != 1:
            desc = "; ".join(
                f"{len(v)} files {v[0].rows}x{v[0].columns} orientation {_round_tuple(v[0].orientation, 3)}"
                for v in stacks
            )
            raise DicomError(
                f"{files[0].path.parent}: series {key} mixes image stacks of different orientation or size "
                f"({desc}); export each stack as its own series."
            )
        left_out += [f for v in stacks if v is not several[0] for f in v]
        kept = several[0]
    if not left_out:
        return kept, ()
    names = ", ".join(sorted(f"{f.path.parent.name}/{f.path.name}" for f in left_out)[:5]) + (
        " ..." if len(left_out) > 5 else ""
    )
    note = (
        f"series {key}: {len(left_out)} scout/localizer image(s) filed with the series were left out "
        f"({names}: ImageType LOCALIZER, or a single image of another orientation or matrix)"
    )
    logger.info("%s", note)
    return kept, (note,)


#: What tells two reconstructions of one acquisition apart (DicomFileInfo attribute, label in messages).
#: At most this many slices of one regular stack (or a tenth of it) may state another reconstruction attribute
#: and still be read with the others (:func:`_stray_headers`).
STRAY_SLICES = 2

RECONSTRUCTION_KEYS: tuple[tuple[str, str], ...] = (
    ("series_number", "SeriesNumber"),
    ("convolution_kernel", "kernel"),
    ("slice_thickness", "SliceThickness"),
    ("acquisition_number", "AcquisitionNumber"),
    ("temporal_position", "TemporalPositionIdentifier"),
    ("image_type", "ImageType"),
    ("echo_number", "EchoNumbers"),
    ("echo_time", "EchoTime"),
    ("diffusion_b_value", "b-value"),
)


def _positions_mm(files: Sequence[DicomFileInfo]) -> np.ndarray:
    """Slice positions along the normal of the first file's orientation (single-frame files)."""
    ori = files[0].orientation
    if ori is None or any(f.position is None or f.is_multiframe for f in files):
        return np.zeros(0)
    normal = np.cross(np.asarray(ori[:3]), np.asarray(ori[3:6]))
    return np.array([float(np.dot(np.asarray(f.position), normal)) for f in files])


def _stray_headers(key: str, files: Sequence[DicomFileInfo]) -> str | None:
    """A note when a few slices of one regular stack state another reconstruction attribute, else None.

    One slice with an empty or odd SliceThickness (or ImageType, kernel...) lies in a gap of the
    others: its group "interleaves" them, but the merged positions form one regular stack without a
    repeat, which is no second reconstruction. At most :data:`STRAY_SLICES` slices (or a tenth of the
    stack) may differ; two real reconstructions repeat positions, interleave evenly or leave the merged
    steps irregular, and are still split.
    """
    pos = np.sort(_positions_mm(files))
    if pos.size < 4:
        return None
    steps = np.diff(pos)
    step = float(np.sort(steps)[steps.size // 2])  # np.median would import numpy.ma
    if step <= 0.01 or float(np.max(np.abs(steps - step))) > max(1e-3, 0.01 * step):
        return None  # a repeat or irregular steps: not one regular stack
    for attr, name in RECONSTRUCTION_KEYS:
        groups = _groups_by(files, attr)
        if len(groups) < 2:
            continue
        major_value, major = max(groups.items(), key=lambda kv: len(kv[1]))
        others = [f for v, g in groups.items() if v != major_value for f in g]
        if len(others) > max(STRAY_SLICES, len(files) // 10):
            return None
        inside = _positions_mm(others)
        lo, hi = float(np.min(_positions_mm(major))), float(np.max(_positions_mm(major)))
        if not np.all((inside > lo) & (inside < hi)):
            return None  # slices before or after the others: split_reconstructions keeps such a stack whole
        names = ", ".join(sorted(f.path.name for f in others)[:5])
        values = ", ".join(sorted({_text_of(getattr(f, attr)) for f in others}))
        return (
            f"series {key}: {len(others)} slice(s) ({names}) state {name} {values}, the other {len(major)} "
            f"state {_text_of(major_value)}; the slices form one regular stack (every position once, "
            f"steps {step:g} mm), read as one series with the majority's {name}"
        )
    return None


def _groups_by(files: Sequence[DicomFileInfo], attr: str) -> dict[Any, list[DicomFileInfo]]:
    """The files by their value of ``attr`` (floats to 0.001)."""
    groups: dict[Any, list[DicomFileInfo]] = {}
    for f in files:
        value = getattr(f, attr)
        groups.setdefault(round(value, 3) if isinstance(value, float) else value, []).append(f)
    return groups


def _text_of(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, (tuple, list)):
        return "\\".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def split_reconstructions(files: Sequence[DicomFileInfo]) -> list[tuple[str, list[DicomFileInfo]]]:
    """Split one SeriesInstanceUID into the reconstructions it holds.

    Scanners and PACS sometimes file two reconstructions of one acquisition
    (another kernel, slice thickness, SeriesNumber, AcquisitionNumber or
    ImageType) under one SeriesInstanceUID. Merged, their slices repeat or
    interleave and the stack gets half the true step. The files are split by
    those attributes when the groups they form **repeat or interleave** slice
    positions; groups that follow each other along the patient (two
    acquisitions of one long scan) stay one stack.

    Returns
    -------
    list of (str, list of DicomFileInfo)
        One (label, files) per reconstruction; one item when nothing is split.
    """
    if len(files) == 1 and len(files[0].frames) > 1:
        return split_enhanced_frames(files[0])
    if len(files) < 2 or any("MOSAIC" in f.image_type for f in files):  # mosaics are refused as one series
        return [("", list(files))]
    for attr, _name in RECONSTRUCTION_KEYS:
        groups = _groups_by(files, attr)
        if len(groups) < 2:
            continue
        ranges = []
        for g in groups.values():
            pos = _positions_mm(g)
            if pos.size == 0:
                break
            ranges.append((float(pos.min()), float(pos.max())))
        else:
            ranges.sort()
            overlapping = any(b[0] <= a[1] + 1e-3 for a, b in itertools.pairwise(ranges))
            if not overlapping:
                continue
            stacks = [
                sub
                for _, g in sorted(groups.items(), key=lambda kv: _value_order(kv[0]))
                for _, sub in split_reconstructions(g)
            ]
            return [(_stack_label(st, stacks), st) for st in stacks]
    by_time = _phases_by_time(files)
    return by_time if by_time is not None else [("", list(files))]


def _phases_by_time(files: Sequence[DicomFileInfo]) -> list[tuple[str, list[DicomFileInfo]]] | None:
    """Dynamic phases at repeated positions told apart by TriggerTime, else AcquisitionTime (:mod:`._time_stacks`)."""
    ori = files[0].orientation
    if ori is None or any(f.position is None or f.is_multiframe for f in files):
        return None
    normal = np.cross(np.asarray(ori[:3]), np.asarray(ori[3:6]))
    pos = np.asarray([f.position for f in files], dtype=np.float64) @ normal
    # no position repeats: one stack (a set, as np.unique loads numpy.ma)
    if len({round(float(p), 2) for p in pos}) == len(files):
        return None
    by_trigger = split_by_trigger_time(files, pos)
    return by_trigger if by_trigger is not None else split_by_acquisition_time(files, pos)


def why_not_split(files: Sequence[DicomFileInfo]) -> str | None:
    """What kept the phases of a series with repeated positions together (TriggerTime's gaps), else None."""
    pos = _positions_mm(files)
    return trigger_time_reason(files, pos) if pos.size else None


def _value_order(value: Any) -> tuple[int, float, str]:
    """Sort key of the values that split a series: numbers by value (b 0, 50, 400, 800; SeriesNumber 2 before 10)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _stack_label(stack: list[DicomFileInfo], stacks: list[list[DicomFileInfo]]) -> str:
    """``SeriesNumber 3, kernel B70f``: the attributes that tell this reconstruction from the others."""
    parts = []
    for attr, name in RECONSTRUCTION_KEYS:
        values = [getattr(st[0], attr) for st in stacks]
        if len({str(v) for v in values}) > 1:
            value = getattr(stack[0], attr)
            text = (
                chr(92).join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else value
            )
            parts.append(f"{name} {text}")
    return ", ".join(parts)
