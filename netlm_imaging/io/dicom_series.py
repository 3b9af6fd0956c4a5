"""Read a DICOM image series (CT, MR, PET; single-frame or Enhanced) into a Volume.

Why one module (~1610 lines): slice ordering, geometry checks (spacing from positions, missing
slices, resampling) and the pixel read of single-frame and Enhanced series are one reader;
the decoders live in _dicom_pixels.py.

Array / DICOM mapping
---------------------
The returned :class:`~netlm_imaging.volume.Volume` is indexed ``array[i, j, k]``
with ``i`` the DICOM **column** index (along ImageOrientationPatient's row
cosine), ``j`` the DICOM **row** index (along the column cosine) and ``k`` the
slice, sorted by ascending position along the normal ``n = row x col``.
Hence ``array[:, :, k] == pixel_array.T`` and the affine columns are
``row_cosine * PixelSpacing[1]``, ``col_cosine * PixelSpacing[0]``,
``n * slice_step``; the origin is the ImagePositionPatient of the first sorted
slice. (``tests/dicom_factory.py`` writes files with the same mapping.)

Rules
-----
* Slices are grouped by SeriesInstanceUID; when it is empty (anonymised
  exports) by FrameOfReferenceUID + orientation + matrix + pixel spacing.
  Scouts filed with the series (ImageType LOCALIZER, or a lone image of another
  orientation or matrix beside the one stack of several) are left out with a warning.
* The slice step comes from ImagePositionPatient projected on the normal,
  never from SliceThickness or SpacingBetweenSlices -- except for a
  **single-slice** series, where positions cannot give one: then
  SpacingBetweenSlices, else SliceThickness (as SimpleITK and highdicom do),
  with a warning naming which.
* Steps are uniform when every step is within :data:`STEP_TOLERANCE_MM` of
  the median step, or when positions written rounded (to 0.1 mm, say) lie within
  that unit of a least-squares regular grid, whose slope is then the step (warned).
  A step close to a multiple of the median is a missing slice; any other deviation is a non-uniform series. Both raise
  :class:`~netlm_imaging.errors.DicomError` naming the gap, unless
  ``nonuniform="resample"``: then the series is linearly interpolated onto a
  regular grid by physical position and ``meta["resampled"]`` is True.
* Gantry tilt (slice origins moving off the normal by more than
  :data:`TILT_SHEAR_TOLERANCE_PIXELS` of a pixel across the stack, in proportion to the
  slice position) gives a sheared grid: the affine's slice column is the step from one
  slice origin to the next, so every voxel lies where the scanner put it and nothing is
  resampled (``meta["gantry_tilt_deg"]``). Drift that is not a tilt, tilt with irregular
  steps, or more than :data:`~netlm_imaging.volume.MAX_SHEAR_DEG` is refused.
* RescaleSlope/RescaleIntercept are applied per slice (per frame for Enhanced
  images); ``meta["rescale"]`` keeps each slice's ``[slope, intercept]``.

Array dtype (the smallest exact one)
------------------------------------
Modality values are integers whenever every slice's RescaleSlope and
RescaleIntercept are integers (CT: slope 1, intercept -1024), so they are kept
exactly in an integer array, half the memory of float32:

* **int16** when every value fits: either the range the headers declare
  (BitsStored, PixelRepresentation, slope, intercept) fits, or, when it does
  not (e.g. BitsStored 16 with intercept -1024), every slice's actual values
  are checked while reading;
* **int32** when some slice's values do not fit int16 but fit int32 (the
  buffer is widened once, while reading);
* **float32** (``stored * slope + intercept`` in float32, as before) for PET
  (``Modality`` PT; SUV conversion multiplies anyway), for any fractional or
  non-finite slope or intercept, for a Modality LUT Sequence, and when the
  declared range exceeds int32.

A series resampled onto a regular grid (``nonuniform="resample"``) is float32
(linear interpolation). Consumers that need floats cast themselves
(``np.asarray(vol.array, dtype=np.float32)``); sums and means should
accumulate in float64 (``arr.mean(dtype=np.float64)``), which the measurement
code does.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DicomError, UnsupportedError, UsageError
from ..threads import PendingTasks, analysis_threads
from ..volume import MAX_SHEAR_DEG, Volume
from ._dicom_common import read_header, scan_dicom_folder
from ._dicom_fast import fast_text_values
from ._dicom_guard import guard_malformed
from ._dicom_info import IMAGE, DicomFileInfo, FrameGeometry
from ._dicom_pixels import (
    decode_frames,
    native_into_applies,
    plain_intercept,
    read_native_into,
    read_plain_into,
    stored_value_range,
    write_modality_frame,
)
from ._inflate import dcmread as bounded_dcmread
from ._pixel_buffers import pixel_buffer
from ._time_stacks import (
    split_by_acquisition_time,
    split_by_trigger_time,
    trigger_time_phases,
    trigger_time_reason,
)
from .budget import check_voxel_budget

__all__ = [
    "DUPLICATE_TOLERANCE_MM",
    "ORIENTATION_TOLERANCE",
    "STEP_TOLERANCE_MM",
    "TILT_SHEAR_TOLERANCE_PIXELS",
    "SeriesGroup",
    "group_image_series",
    "read_dicom_series",
    "read_series_from_index",
    "series_grid",
    "series_header_facts",
]

logger = logging.getLogger(__name__)

#: Two slice steps are "equal" when they differ by at most this (mm). Positions
#: are written with >= 5 decimals by scanners (jitter ~1e-5 mm), so 0.01 mm is
#: far above rounding noise yet catches the real 3.27 / 3.29 / 3.19 mm PET steps;
#: 1 % of a 5 mm step (0.05 mm) would let 0.6 % irregular steps pass unnoticed.
STEP_TOLERANCE_MM = 0.01
#: Two slices closer than this along the normal share a position (mm).
DUPLICATE_TOLERANCE_MM = 1e-3
#: Slices of one series whose direction cosines differ by more than this are refused (1e-3: 0.06 degrees, a
#: quarter millimetre 250 mm from the origin; exporters jitter the cosines' last written digits).
ORIENTATION_TOLERANCE = 1e-3
#: Images whose direction cosines differ by more than this are other stacks (a scout, a coronal reformat).
STACK_ORIENTATION_TOLERANCE = 1e-2
#: Refuse a stack whose slice origins drift in-plane by more than this many
#: pixels from the first slice's normal line (gantry tilt / sheared grid).
TILT_SHEAR_TOLERANCE_PIXELS = 0.5

_NONUNIFORM_CHOICES = ("error", "resample")
_CHOOSE_OPTION = "--image-series UID"
_RESAMPLE_OPTION = "--allow-resample"


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


# ------------------------------------------------------------------- grouping
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
        return _split_frames(files[0])
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


def _why_not_split(files: Sequence[DicomFileInfo]) -> str | None:
    """What kept the phases of a series with repeated positions together (TriggerTime's gaps), else None."""
    pos = _positions_mm(files)
    return trigger_time_reason(files, pos) if pos.size else None


def _value_order(value: Any) -> tuple[int, float, str]:
    """Sort key of the values that split a series: numbers by value (b 0, 50, 400, 800; SeriesNumber 2 before 10)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


#: What tells the stacks of one Enhanced file apart (FrameGeometry attribute, label in messages).
FRAME_STACK_KEYS: tuple[tuple[str, str], ...] = (
    ("temporal_position", "TemporalPositionIndex"),
    ("frame_type", "FrameType"),
)


#: Positions written to a decimal unit up to this fraction of the slice step are taken as a rounding
#: of a regular grid (0.1 mm of a 1.25 mm CT); a coarser unit could hide a missing slice.
_ROUNDING_MAX_STEP_FRACTION = 0.2

#: Frame positions closer than this (mm, each coordinate) are one position.
_SAME_POSITION_MM = 0.01


def _share_a_position(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two (n, 3) position lists hold a common position (within :data:`_SAME_POSITION_MM` per coordinate)?

    A tolerance, not rounding: 10.004999 and 10.005001 mm are one position, though they round apart.
    """
    if a.size == 0 or b.size == 0:
        return False
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(b).query(a, k=1, p=np.inf, distance_upper_bound=_SAME_POSITION_MM * (1 + 1e-9))
    return bool(np.isfinite(dist).any())


def _split_frames(info: DicomFileInfo) -> list[tuple[str, list[DicomFileInfo]]]:
    """Split one Enhanced file into the stacks its frames hold at the same positions.

    A Philips or Siemens Enhanced MR file can hold every dynamic phase (TemporalPositionIndex) or
    every Dixon image (FrameType) of an acquisition. Frames are grouped by those attributes when
    the groups **repeat** positions; each stack is the file with only its frames.
    """
    for attr, name in FRAME_STACK_KEYS:
        groups: dict[Any, list[FrameGeometry]] = {}
        for fr in info.frames:
            groups.setdefault(getattr(fr, attr), []).append(fr)
        if len(groups) < 2:
            continue
        seen = [np.array([fr.position for fr in g], dtype=np.float64) for g in groups.values()]
        if not any(_share_a_position(a, b) for a, b in itertools.combinations(seen, 2)):
            continue
        out = []
        for value, frames in sorted(groups.items(), key=lambda kv: str(kv[0])):
            text = chr(92).join(value) if isinstance(value, tuple) else str(value)
            out.append((f"{name} {text}", [replace(info, frames=tuple(frames))]))
        return out
    return [("", [info])]


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


def series_referenced_by(infos: Sequence[DicomFileInfo], seg_args: Sequence[str | Path]) -> str | None:
    """The reconstruction a ``--seg`` DICOM SEG / RTSTRUCT references, when a folder's series holds several.

    Only decides between reconstructions split off one SeriesInstanceUID
    (:func:`split_reconstructions`); in every other case ``None`` (the usual
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


def _choose_series(groups: list[SeriesGroup], series_uid: str | None, where: str) -> SeriesGroup:
    if series_uid:
        for g in groups:
            if g.uid == series_uid:
                return g
        stacks = [g for g in groups if g.series_uid == series_uid]
        if len(stacks) == 1:
            return stacks[0]
        if stacks:
            listing = "; ".join(g.summary() for g in stacks)
            raise DicomError(
                f"{where}: series {series_uid} holds {len(stacks)} reconstructions ({listing}); choose one with "
                f"--image-series {stacks[0].uid} (or #2 ...)."
            )
        listing = "; ".join(g.summary() for g in groups) or "none"
        raise DicomError(f"{where}: no image series with SeriesInstanceUID {series_uid}; available: {listing}.")
    if len(groups) == 1:
        return groups[0]
    listing = "; ".join(g.summary() for g in groups)
    raise DicomError(f"{where}: {len(groups)} image series found: {listing}; choose one with {_CHOOSE_OPTION}.")


# ------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Slice:
    info: DicomFileInfo
    frame: FrameGeometry
    position_mm: float


def _same_grid_everywhere(
    files: Sequence[DicomFileInfo], frames: Sequence[FrameGeometry], iop0: np.ndarray, sp0: Any
) -> bool:
    """Whether every file has the first one's matrix and every frame its orientation and pixel spacing.

    The tests of :func:`_refuse_other_grids`, on all frames at once (the same element-wise differences).
    """
    first = files[0]
    if any((f.rows, f.columns) != (first.rows, first.columns) for f in files):
        return False
    try:
        ori = np.array([fr.orientation for fr in frames], dtype=np.float64)
        spacing = np.array([fr.pixel_spacing for fr in frames], dtype=np.float64)
    except ValueError:  # ragged values: the frame-by-frame tests say which
        return False
    if ori.shape != (len(frames), iop0.size) or spacing.shape != (len(frames), len(sp0)):
        return False
    return bool(
        (np.abs(ori - iop0).max(axis=1) <= ORIENTATION_TOLERANCE).all()
        and (np.abs(spacing - np.array(sp0)).max(axis=1) <= 1e-4).all()
    )


def _refuse_other_grids(group: SeriesGroup, iop0: np.ndarray, sp0: Any) -> None:
    """Raise for the first file (in order) whose matrix, or frame whose orientation or pixel spacing, differs."""
    first = group.files[0]
    for f in group.files:
        if (f.rows, f.columns) != (first.rows, first.columns):
            raise DicomError(
                f"{f.path}: matrix {f.rows}x{f.columns} differs from {first.rows}x{first.columns} "
                f"in the same series {group.uid}; export one image stack per series."
            )
        for fr in f.frames:
            if np.max(np.abs(np.array(fr.orientation) - iop0)) > ORIENTATION_TOLERANCE:
                raise DicomError(
                    f"{f.path}: ImageOrientationPatient {list(fr.orientation or ())} differs from "
                    f"{iop0.tolist()} in the same series; slices of one volume must share an orientation."
                )
            if np.max(np.abs(np.array(fr.pixel_spacing) - np.array(sp0))) > 1e-4:
                raise DicomError(
                    f"{f.path}: PixelSpacing {list(fr.pixel_spacing or ())} differs from {list(sp0 or ())} "
                    "in the same series; slices of one volume must share a pixel spacing."
                )


def _check_common_geometry(group: SeriesGroup, where: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Shared orientation (row, col cosines) and pixel spacing of a series."""
    first = group.files[0]
    if any("MOSAIC" in f.image_type for f in group.files):
        raise UnsupportedError(
            f"{first.path}: Siemens mosaic image (several slices tiled in one frame); "
            "convert the series with dcm2niix and pass the NIfTI with --image."
        )
    frames = [fr for f in group.files for fr in f.frames]
    if any(fr.position is None or fr.orientation is None or fr.pixel_spacing is None for fr in frames):
        bad = next(
            f.path for f in group.files for fr in f.frames if None in (fr.position, fr.orientation, fr.pixel_spacing)
        )
        raise DicomError(
            f"{bad}: image lacks ImagePositionPatient, ImageOrientationPatient or PixelSpacing; "
            "it cannot be placed in patient space (re-export with geometry, or convert with dcm2niix)."
        )
    iop0 = np.array(frames[0].orientation, dtype=np.float64)
    sp0 = frames[0].pixel_spacing
    if not _same_grid_everywhere(group.files, frames, iop0, sp0):
        _refuse_other_grids(group, iop0, sp0)
    row, col = iop0[:3], iop0[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        raise DicomError(
            f"{first.path}: ImageOrientationPatient {iop0.tolist()} is not two orthogonal unit vectors; "
            "the header is corrupt."
        )
    row = row / np.linalg.norm(row)
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    assert sp0 is not None
    if min(sp0) <= 0:
        raise DicomError(f"{first.path}: PixelSpacing {list(sp0)} must be positive; the header is corrupt.")
    return row, col, (float(sp0[0]), float(sp0[1]))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _step_summary(steps: np.ndarray) -> str:
    """'3.27 mm x261, 3.29 mm x4, 3.19 mm x1' (steps rounded to 0.01 mm)."""
    vals, counts = np.unique(np.round(steps, 2), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return ", ".join(f"{vals[i]:.2f} mm x{counts[i]}" for i in order)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array without importing numpy.ma (np.median does: ~10 ms of a fresh process)."""
    s = np.sort(values)
    n = len(s)
    return float(s[n // 2]) if n % 2 else float(np.mean(s[n // 2 - 1 : n // 2 + 1]))


def _written_quantum_mm(slices: Sequence[_Slice]) -> float:
    """The decimal unit the slices' ImagePositionPatient values are written to (0.1 for ``-101.3``), at most 1 mm.

    Returns 0 when they carry more than 4 decimals (no rounding worth allowing for).
    """
    values = np.abs(np.array([s.frame.position for s in slices], dtype=np.float64).ravel())
    for decimals in range(5):
        scaled = values * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, scaled)):
            return 10.0**-decimals
    return 0.0


def _rounded_regular_step(slices: Sequence[_Slice], pos: np.ndarray) -> float | None:
    """The step of a regular series whose positions were written rounded (steps 1.2 / 1.3 mm of a 1.25 mm CT).

    Positions written to a decimal unit ``q`` deviate from the regular grid by up to ``q / 2`` each, so
    steps alternate by up to ``q``; a least-squares line through them then leaves residuals within
    ``q``. Allowed when ``q`` is under a fifth of the step (a missing slice leaves residuals near half
    a step, an irregular bed overlap of 2-decimal positions more than ``q``): the fitted slope is the
    step. None when the positions are not such a rounding of a regular grid.
    """
    q = _written_quantum_mm(slices)
    n = pos.size
    if q <= STEP_TOLERANCE_MM or n < 3:
        return None
    k = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(k, pos, 1)
    if abs(slope) <= 0 or q > _ROUNDING_MAX_STEP_FRACTION * abs(slope):
        return None
    residual = float(np.max(np.abs(pos - (intercept + slope * k))))
    return float(slope) if residual <= q else None


def _check_steps(slices: list[_Slice], where: str, nonuniform: str) -> tuple[float, list[str], bool]:
    """(step, warnings, irregular): the median step, or raise naming the gap; irregular when resampling is
    allowed (the warnings say so); a rounded regular series is not irregular."""
    pos = np.array([s.position_mm for s in slices])
    steps = np.diff(pos)
    step = _median(steps)
    bad = np.flatnonzero(np.abs(steps - step) > STEP_TOLERANCE_MM)
    if bad.size == 0:
        return step, [], False
    rounded = _rounded_regular_step(slices, pos)
    if rounded is not None:
        return (
            rounded,
            [
                f"{where}: slice positions are written to {_written_quantum_mm(slices):g} mm, so the steps read "
                f"{_step_summary(steps)}; they are a regular {rounded:.4f} mm step rounded (least-squares fit "
                "through the positions), used as the slice step"
            ],
            False,
        )
    q = _written_quantum_mm(slices)
    tol = (
        1.01 * q if STEP_TOLERANCE_MM < q <= _ROUNDING_MAX_STEP_FRACTION * step else STEP_TOLERANCE_MM
    )  # steps of rounded positions
    beyond_rounding = np.flatnonzero(np.abs(steps - step) > tol)
    if beyond_rounding.size:
        bad = beyond_rounding
    i = int(bad[0])
    ratio = steps[i] / step
    missing = abs(ratio - round(ratio)) * step <= tol and round(ratio) >= 2
    pair = (
        f"between slices {i} and {i + 1} at {_fmt(pos[i])} and {_fmt(pos[i + 1])} mm along the normal "
        f"({slices[i].info.path.name}, {slices[i + 1].info.path.name})"
    )
    if missing:
        what = (
            f"missing slice: a gap of {_fmt(steps[i])} mm {pair}, where the series step is {_fmt(step)} mm "
            f"({round(ratio) - 1} slice(s) absent)"
        )
    else:
        what = (
            f"non-uniform slice steps ({_step_summary(steps)}); first irregular step {_fmt(steps[i])} mm {pair}, "
            f"median {_fmt(step)} mm"
        )
    if bad.size > 1:
        what += f"; {bad.size} irregular steps in all"
    if nonuniform == "error":
        raise DicomError(
            f"{where}: {what}; re-export the complete series, or rerun with {_RESAMPLE_OPTION} to resample "
            "onto a regular grid (stated in the report)."
        )
    return step, [f"{where}: {what}; resampled onto a regular grid by linear interpolation."], True


def _majority_for(slices: Sequence[_Slice]) -> str:
    counts = Counter(s.info.frame_of_reference_uid for s in slices if s.info.frame_of_reference_uid)
    return counts.most_common(1)[0][0] if counts else ""


def _consistency(slices: list[_Slice], where: str) -> tuple[list[_Slice], list[str]]:
    """Warnings (each saying which value was believed) for slices that contradict the rest of their series.

    * A slice with another FrameOfReferenceUID than the others: the majority's UID is the volume's; the
      slice is placed by its ImagePositionPatient like every other.
    * RescaleSlope 0 (invalid: it would map every value to the intercept): 1 is used, as dcm2niix does.
    """
    warnings: list[str] = []
    major = _majority_for(slices)
    odd = [s for s in slices if s.info.frame_of_reference_uid and s.info.frame_of_reference_uid != major]
    if odd:
        names = ", ".join(sorted({s.info.path.name for s in odd})[:5])
        warnings.append(
            f"{where}: {len(odd)} slice(s) ({names}) carry FrameOfReferenceUID "
            f"{odd[0].info.frame_of_reference_uid}, the other {len(slices) - len(odd)} carry {major}; "
            f"the majority's {major} was believed and every slice placed by its ImagePositionPatient"
        )
    zero = [s for s in slices if s.frame.slope == 0.0]
    if zero:
        names = ", ".join(sorted({s.info.path.name for s in zero})[:5])
        warnings.append(
            f"{where}: RescaleSlope (0028,1053) is 0 in {len(zero)} slice(s) ({names}), which would erase every "
            "value; a slope of 1 was used (RescaleIntercept kept). Check the intensities, or fix the header."
        )

        def one(fr: FrameGeometry) -> FrameGeometry:
            return replace(fr, slope=1.0) if fr.slope == 0.0 else fr

        slices = [
            replace(s, info=replace(s.info, frames=tuple(one(f) for f in s.info.frames)), frame=one(s.frame))
            for s in slices
        ]
    return slices, warnings


def _check_tilt(
    slices: list[_Slice], normal: np.ndarray, pixel_spacing: tuple[float, float], where: str, irregular: bool
) -> tuple[np.ndarray | None, list[str]]:
    """(in-plane drift of the slice origins per mm along the normal, or None; warnings).

    A gantry-tilted series moves its origins off the slice normal in proportion to the slice position
    (the table moves, the gantry leans): the series is read on that sheared grid, whose slice axis is
    the step from one origin to the next. Drift that is not proportional to the position, or tilt
    together with irregular steps, has no single grid and is refused.
    """
    if len(slices) < 2:
        return None, []
    ipp = np.array([s.frame.position for s in slices], dtype=np.float64)
    rel = ipp - ipp[0]
    t = rel @ normal
    inplane = rel - np.outer(t, normal)
    shear_mm = float(np.max(np.linalg.norm(inplane, axis=1)))
    span = rel[-1]
    tilt_deg = math.degrees(math.acos(min(1.0, abs(float(span @ normal)) / max(float(np.linalg.norm(span)), 1e-12))))
    tolerance_mm = TILT_SHEAR_TOLERANCE_PIXELS * min(pixel_spacing)
    if shear_mm <= tolerance_mm:
        if shear_mm > 0.01:
            return None, [f"{where}: slice origins drift {shear_mm:.3f} mm in-plane (below half a pixel; ignored)."]
        return None, []
    fix = (
        "resample the series onto an orthogonal grid first, e.g. dcm2niix (writes a tilt-corrected *_Tilt_1.nii) "
        "and pass that NIfTI and a segmentation on its grid with --image/--seg."
    )
    drift = (inplane.T @ t) / float(t @ t)  # in-plane mm per mm along the normal (least squares)
    residual = float(np.max(np.linalg.norm(inplane - np.outer(t, drift), axis=1)))
    if residual > tolerance_mm:
        raise DicomError(
            f"{where}: slice origins drift {shear_mm:.2f} mm off the slice normal, not in proportion to the slice "
            f"position (up to {residual:.2f} mm off a gantry tilt); {fix}"
        )
    if irregular or tilt_deg > MAX_SHEAR_DEG:
        why = "irregular slice steps" if irregular else f"more than {MAX_SHEAR_DEG:g} degrees"
        raise DicomError(f"{where}: gantry tilt of {tilt_deg:.1f} degrees with {why}; {fix}")
    return drift, [
        f"{where}: gantry tilt of {tilt_deg:.1f} degrees: measured on the acquired, sheared grid (slices "
        f"{float(np.median(np.diff(t))):.4g} mm apart along their normal; voxel volume and distances in patient "
        "space, nothing resampled)."
    ]


def _same_image(a: _Slice, b: _Slice) -> bool:
    """Whether two single-frame slices hold the same image: same rescale and byte-identical native pixel data.

    A PACS that re-sends or re-archives an instance under a new SOPInstanceUID leaves two copies of one
    slice in the series; different pixels at one position are several phases or echoes instead.
    """
    if (
        a.info.is_multiframe
        or b.info.is_multiframe
        or (a.frame.slope, a.frame.intercept) != (b.frame.slope, b.frame.intercept)
    ):
        return False
    data = []
    for s in (a, b):
        off, length = s.info.pixel_data_offset, s.info.pixel_data_length
        if off is None or length is None:
            return False
        try:
            with open(s.info.path, "rb") as fh:
                fh.seek(off)
                data.append(fh.read(length))
        except OSError:
            return False
    return data[0] == data[1] and len(data[0]) == b.info.pixel_data_length


def _sorted_slices(group: SeriesGroup, normal: np.ndarray, where: str) -> list[_Slice]:
    slices = [
        _Slice(info=f, frame=fr, position_mm=float(np.dot(fr.position, normal)))  # type: ignore[arg-type]
        for f in group.files
        for fr in f.frames
    ]
    slices.sort(key=lambda s: (s.position_mm, str(s.info.path), s.frame.frame_index))
    out: list[_Slice] = []
    for s in slices:
        if out and abs(s.position_mm - out[-1].position_mm) <= DUPLICATE_TOLERANCE_MM:
            prev = out[-1]
            if (
                s.info.sop_instance_uid
                and s.info.sop_instance_uid == prev.info.sop_instance_uid
                and s.frame.frame_index == prev.frame.frame_index
            ):
                logger.info("%s duplicates %s (same SOPInstanceUID); ignored", s.info.path, prev.info.path)
                continue
            if _same_image(prev, s):
                logger.info(
                    "%s repeats the image of %s (same position and pixels); ignored", s.info.path, prev.info.path
                )
                continue
            n_same = sum(1 for t in slices if abs(t.position_mm - s.position_mm) <= DUPLICATE_TOLERANCE_MM)
            a, b = prev.info.path, s.info.path
            names = (a.name, b.name) if a.name != b.name else (f"{a.parent.name}/{a.name}", f"{b.parent.name}/{b.name}")
            why = _why_not_split(group.files)
            raise DicomError(
                f"{where}: {n_same} images share the slice position {_fmt(s.position_mm)} mm "
                f"({names[0]}, {names[1]}): several phases, echoes or time points in one "
                f"series{f' ({why})' if why else ''}; export one volume per series."
            )
        out.append(s)
    return out


# ------------------------------------------------------------------- resample
def _resample_linear(
    array: np.ndarray, positions: np.ndarray, n_out: int, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along k onto ``positions[0] + step * arange(n_out)``."""
    target = positions[0] + step * np.arange(n_out)
    target[-1] = min(target[-1], positions[-1])
    idx = np.clip(np.searchsorted(positions, target, side="right") - 1, 0, len(positions) - 2)
    w = ((target - positions[idx]) / (positions[idx + 1] - positions[idx])).astype(np.float32)
    out = np.empty((*array.shape[:2], n_out), dtype=np.float32, order="F")
    for t in range(n_out):
        a = array[:, :, idx[t]].astype(np.float32)  # integer input: no wrap-around in b - a
        b = array[:, :, idx[t] + 1].astype(np.float32)
        out[:, :, t] = a + (b - a) * w[t]
    return out, target


# ------------------------------------------------------------------- reading
@guard_malformed("DICOM header")
def _single_slice_step(path: Path, frame_index: int = 0) -> tuple[float, str]:
    """Slice step of a one-slice series: SpacingBetweenSlices, else SliceThickness (what SimpleITK / highdicom use).

    Positions cannot give a step with one slice. Enhanced objects carry both in the
    Pixel Measures functional group (per-frame first, then shared).

    Returns
    -------
    (float, str)
        The step in mm and the phrase the warning uses (which attribute gave it).
    """

    ds = bounded_dcmread(path, stop_before_pixels=True, defer_size=4096, force=True)  # no preamble: old exports
    sources: list[Any] = [ds]
    for seq_name in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(seq_name)
        if seq:
            item = seq[min(frame_index, len(seq) - 1)] if seq_name.startswith("PerFrame") else seq[0]
            pm = item.get("PixelMeasuresSequence")
            if pm:
                sources.insert(0, pm[0])
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        for src in sources:
            try:
                value = float(src.get(keyword)) if src.get(keyword) not in (None, "") else 0.0
            except (TypeError, ValueError):
                value = 0.0
            if math.isfinite(value) and value > 0:
                return value, f"slice step {value:g} mm taken from {keyword} (a position step needs two slices)"
    return 1.0, "slice step unknown (no SpacingBetweenSlices or SliceThickness): 1.0 mm assumed for the affine"


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


def _is_integer(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


def _files_of(slices: Sequence[_Slice]) -> list[DicomFileInfo]:
    """The files of the slices, once each, in slice order (by identity: a frozen DicomFileInfo hashes every field)."""
    return list({id(s.info): s.info for s in slices}.values())


def _output_dtype(modality: str, slices: Sequence[_Slice]) -> tuple[np.dtype, bool]:
    """(array dtype, values must be checked per slice); see "Array dtype" in the module docstring."""
    files = _files_of(slices)
    if (
        modality == "PT"
        or any(f.has_modality_lut_sequence for f in files)
        or not all(_is_integer(s.frame.slope) and _is_integer(s.frame.intercept) for s in slices)
    ):
        return np.dtype(np.float32), False
    ranges = {id(f): stored_value_range(f) for f in files}
    ends = [v * int(s.frame.slope) + int(s.frame.intercept) for s in slices for v in ranges[id(s.info)]]
    lo, hi = min(ends), max(ends)
    if lo >= np.iinfo(np.int16).min and hi <= np.iinfo(np.int16).max:
        return np.dtype(np.int16), False
    if lo >= np.iinfo(np.int32).min and hi <= np.iinfo(np.int32).max:
        return np.dtype(np.int16), True
    return np.dtype(np.float32), False


class _Widen(Exception):
    """An integer buffer cannot hold a slice's values exactly."""


@guard_malformed("DICOM pixel data")
def _fill_slices(
    path: Path, info: DicomFileInfo, buf: np.ndarray, k_of: dict[tuple[Path, int], int], check_range: bool
) -> None:
    """Decode one file's frames into their slices of ``buf`` (``path`` names the file in errors).

    Raises :class:`_Widen` when ``buf`` is an integer array too narrow for this file's values.
    """
    if len(info.frames) == 1 and info.number_of_frames == 1:  # a plain single-frame native file: its slice
        k = k_of.get((path, info.frames[0].frame_index))
        if k is None:
            return
        fr = info.frames[0]
        done = read_native_into(info, fr.slope, fr.intercept, buf[k], check_range=check_range)
        if done is False:
            raise _Widen
        if done:
            return
    frames, ds = decode_frames(info)
    for fr in info.frames:
        k = k_of.get((path, fr.frame_index))
        if k is None:
            continue
        ok = write_modality_frame(
            frames[fr.frame_index],
            fr.slope,
            fr.intercept,
            buf[k],
            ds,
            use_lut_sequence=info.has_modality_lut_sequence,
            check_range=check_range or ds is not None,  # pydicom-decoded values are not masked to BitsStored
        )
        if not ok:
            raise _Widen


def _read_pixels(
    slices: Sequence[_Slice], dtype: np.dtype, check_range: bool, shape: tuple[int, int, int]
) -> np.ndarray:
    """Pixel buffer ``(k, row, col)`` of the sorted slices, widened int16 -> int32 -> float32 if needed."""
    k_of: dict[tuple[Path, int], int] = {(s.info.path, s.frame.frame_index): k for k, s in enumerate(slices)}
    pending = start_native_read(slices, dtype, check_range, shape, k_of)
    if pending is not None:
        buf = pending.finish()  # this thread reads slices too until every task is done
        if buf is not None:
            return buf
    return _read_pixels_in_order(slices, dtype, check_range, shape, k_of)


#: Slices per task of a threaded read (4 MiB of a 512 x 512 int16 series).
_SLICES_PER_TASK = 8


class PendingRead:
    """A series' native pixels being read by :func:`start_native_read`'s threads; :meth:`finish` waits for them."""

    def __init__(self, buf: np.ndarray, tasks: PendingTasks) -> None:
        self.buf = buf
        self._tasks = tasks

    def finish(self) -> np.ndarray | None:
        """The filled buffer, or ``None`` when a slice needs the one-thread reader (wider values, an error)."""
        if self._tasks.finish() is not None:
            return None  # read again in order: it widens the buffer, or raises what the first bad file warrants
        return self.buf


def start_native_read(
    slices: Sequence[_Slice],
    dtype: np.dtype,
    check_range: bool,
    shape: tuple[int, int, int],
    k_of: dict[tuple[Path, int], int],
) -> PendingRead | None:
    """Start reading a single-frame native series into a fresh buffer with the analysis' threads.

    ``None`` when it does not apply (multi-frame or encoded files, a float
    buffer; one thread unless every file is plain, see
    :func:`~._dicom_pixels.plain_intercept`): the caller reads in order. Each task reads whole
    slices into their own rows of the buffer, so the bytes do not depend on the
    threads; any slice that does not fit ``dtype``, or any error, makes
    :meth:`PendingRead.finish` return ``None`` (the in-order reader then widens
    the buffer or raises the first file's error, as without threads).
    """
    threads = analysis_threads()  # netlm_imaging.threads: min(2, cores), a batch worker's share
    if len(slices) < 2 * _SLICES_PER_TASK:
        threads = 1
    if not all(
        len(s.info.frames) == 1 and native_into_applies(s.info, s.frame.slope, s.frame.intercept, dtype) for s in slices
    ):
        return None
    intercepts = [plain_intercept(s.info, s.frame.slope, s.frame.intercept, dtype) for s in slices]
    plain = all(c is not None for c in intercepts)
    if threads < 2 and not plain:
        return None
    # (k, row, col): F-order view as (i, j, k). Every slice is read whole into its own rows, or the
    # buffer is dropped: the memory an earlier series left can be reused without zeroing it first
    buf = pixel_buffer(shape, dtype)
    if plain:  # a CT's usual encoding: the lean per-slice loop (on this thread alone when threads is 1)
        items = [(s.info.path, s.info.pixel_data_offset, k, c) for k, (s, c) in enumerate(zip(slices, intercepts))]

        def plain_task(part: list[Any]) -> None:
            if not read_plain_into(part, buf, check_range):
                raise _Widen

        parts: list[Any] = [items[i : i + _SLICES_PER_TASK] for i in range(0, len(items), _SLICES_PER_TASK)]
        return PendingRead(buf, PendingTasks([functools.partial(plain_task, p) for p in parts], threads - 1))
    infos = _files_of(slices)

    def task(part: list[DicomFileInfo]) -> None:
        for info in part:
            _fill_slices(info.path, info, buf, k_of, check_range)

    parts = [infos[i : i + _SLICES_PER_TASK] for i in range(0, len(infos), _SLICES_PER_TASK)]
    return PendingRead(buf, PendingTasks([functools.partial(task, p) for p in parts], threads - 1))


def _read_pixels_in_order(
    slices: Sequence[_Slice],
    dtype: np.dtype,
    check_range: bool,
    shape: tuple[int, int, int],
    k_of: dict[tuple[Path, int], int],
) -> np.ndarray:
    """The pixel buffer ``(k, row, col)`` of the sorted slices in one thread, widened int16 -> int32 -> float32."""
    buf = np.empty(shape, dtype=dtype)  # (k, row, col): F-order view as (i, j, k)
    done: list[DicomFileInfo] = []
    for info in _files_of(slices):
        while True:
            try:
                _fill_slices(info.path, info, buf, k_of, check_range)
                break
            except _Widen:
                wider = np.int32 if buf.dtype == np.int16 else np.float32
                logger.debug("%s: values exceed %s; widening the image to %s", info.path, buf.dtype, np.dtype(wider))
                new = np.empty(shape, dtype=wider)
                for f in done:  # only slices already written are copied
                    for fr in f.frames:
                        k = k_of.get((f.path, fr.frame_index))
                        if k is not None:
                            new[k] = buf[k]
                buf = new
        done.append(info)
    return buf


@dataclass(frozen=True)
class _SeriesPlan:
    """What a series' headers say its read gives: the slices in order and the grid of the result."""

    group: SeriesGroup
    slices: list[_Slice]
    warnings: list[str]
    where: str
    step: float
    irregular: bool
    drift: np.ndarray | None
    shape: tuple[int, int, int]
    affine: np.ndarray
    for_uid: str


def _plan_series(
    infos: Sequence[DicomFileInfo], series_uid: str | None, nonuniform: str, max_voxels: int | None, where: str
) -> _SeriesPlan:
    """The checks of :func:`read_series_from_index` that need headers alone, and the grid they give."""
    if nonuniform not in _NONUNIFORM_CHOICES:
        raise UsageError(f"nonuniform must be one of {_NONUNIFORM_CHOICES}, got {nonuniform!r}.")
    groups = group_image_series(infos)
    if not groups:
        kinds = sorted({i.kind for i in infos})
        raise DicomError(
            f"{where}: no DICOM image series found ({len(infos)} DICOM file(s) of kind {', '.join(kinds) or 'none'}); "
            "point to the folder holding the CT, MR or PET slices."
        )
    group = _choose_series(groups, series_uid, where)
    if group.refusal:
        raise DicomError(group.refusal)
    row, col, pixel_spacing = _check_common_geometry(group, where)
    normal = np.cross(row, col)
    where_series = f"{where} (series {group.uid})"
    slices = _sorted_slices(group, normal, where_series)
    slices, warnings = _consistency(slices, where_series)
    warnings = [*group.notes, *warnings]
    step = 0.0
    irregular = False
    if len(slices) > 1:
        step, step_warnings, irregular = _check_steps(slices, where_series, nonuniform)
        warnings += step_warnings
    drift, tilt_warnings = _check_tilt(slices, normal, pixel_spacing, where_series, irregular)
    warnings += tilt_warnings
    first = slices[0].info
    n_i, n_j, n_k = first.columns, first.rows, len(slices)
    check_voxel_budget((n_i, n_j, n_k), max_voxels, where_series)
    for s in slices:
        if s.info.truncated:
            raise DicomError(
                f"{s.info.path}: pixel data is truncated (the file is shorter than declared); re-export the series."
            )
    if irregular:
        positions = np.array([s.position_mm for s in slices])
        n_k = round(float(positions[-1] - positions[0]) / step) + 1
        check_voxel_budget((n_i, n_j, n_k), max_voxels, where_series)
        step = float((positions[-1] - positions[0]) / (n_k - 1))
    if len(slices) == 1:
        step, said = _single_slice_step(first.path, slices[0].frame.frame_index)
        warnings.append(f"{where_series}: single slice; {said}.")
    affine = np.eye(4)
    affine[:3, 0] = row * pixel_spacing[1]
    affine[:3, 1] = col * pixel_spacing[0]
    affine[:3, 2] = normal * step if drift is None else (normal + drift) * step  # a tilted gantry: sheared
    affine[:3, 3] = slices[0].frame.position
    return _SeriesPlan(
        group=group,
        slices=slices,
        warnings=warnings,
        where=where_series,
        step=step,
        irregular=irregular,
        drift=drift,
        shape=(n_i, n_j, n_k),
        affine=affine,
        for_uid=_majority_for(slices) or first.frame_of_reference_uid,
    )


def series_grid(
    infos: Sequence[DicomFileInfo],
    *,
    series_uid: str | None = None,
    nonuniform: str = "error",
    max_voxels: int | None = None,
    where: str = "DICOM input",
) -> Volume:
    """The grid :func:`read_series_from_index` reads a series onto, from its headers alone (no pixel data).

    The same checks and refusals as the read, up to the pixel data; the grid is that of the read's Volume
    (shape, affine, FrameOfReferenceUID), computed by the same code.

    Parameters
    ----------
    infos, series_uid, nonuniform, max_voxels, where
        As for :func:`read_series_from_index`.

    Returns
    -------
    Volume
        A pixel-less Volume (:meth:`~netlm_imaging.volume.Volume.header_grid`) of the series' grid.
    """
    plan = _plan_series(infos, series_uid, nonuniform, max_voxels, where)
    return Volume.header_grid(plan.shape, plan.affine, frame_of_reference_uid=plan.for_uid or None, source=plan.where)


def read_series_from_index(
    infos: Sequence[DicomFileInfo],
    *,
    series_uid: str | None = None,
    nonuniform: str = "error",
    max_voxels: int | None = None,
    where: str = "DICOM input",
) -> Volume:
    """Read one image series from an already scanned file index.

    Same rules and result as :func:`read_dicom_series`; study discovery uses it
    to avoid scanning a folder twice.

    Parameters
    ----------
    infos : sequence of DicomFileInfo
        From :func:`~netlm_imaging.io._dicom_common.scan_dicom_folder`.
    series_uid : str, optional
        SeriesInstanceUID (or ``nouid:`` key) to read when there are several.
    nonuniform : {"error", "resample"}
        What to do with a missing slice or non-uniform steps.
    max_voxels : int, optional
        Voxel budget checked before allocating.
    where : str
        Folder or file named in messages.

    Returns
    -------
    Volume
        See :func:`read_dicom_series`.
    """
    plan = _plan_series(infos, series_uid, nonuniform, max_voxels, where)
    slices, first = plan.slices, plan.slices[0].info
    dtype, check_range = _output_dtype(plan.group.modality, slices)
    buf = _read_pixels(slices, dtype, check_range, (len(slices), first.rows, first.columns))
    array = buf.transpose(2, 1, 0)
    positions = np.array([s.position_mm for s in slices])
    if plan.irregular:
        array, _ = _resample_linear(array, positions, plan.shape[2], plan.step)
    for w in plan.warnings:
        logger.info("%s", w)  # they go into the report; the CLI prints the report's warnings on stderr
    meta: dict[str, Any] = {
        "format": "dicom",
        "modality": plan.group.modality,
        "study_instance_uid": first.study_uid,
        "series_instance_uid": first.series_uid,
        "frame_of_reference_uid": plan.for_uid,
        "sop_class_uid": first.sop_class_uid,
        "sop_instance_uids": [s.info.sop_instance_uid for s in slices],
        "frame_numbers": [s.frame.frame_index + 1 for s in slices],
        "files": [str(s.info.path) for s in slices],
        "slice_positions_mm": [float(p) for p in positions],
        "rescale": [[s.frame.slope, s.frame.intercept] for s in slices],
        # per-slice acquisition facts from the scan (PET SUV uses them instead of re-reading headers)
        "slice_acquisition": [
            [s.info.acquisition_date, s.info.acquisition_time, s.info.acquisition_datetime, s.info.decay_factor]
            for s in slices
        ],
        "resampled": plan.irregular,
        "gantry_tilt_deg": (
            None if plan.drift is None else round(math.degrees(math.atan(float(np.linalg.norm(plan.drift)))), 3)
        ),
        "warnings": plan.warnings,
        "header": series_header_facts(first.path),
        # a dynamic phase told apart by TriggerTime alone, sharing the series' acquisition time
        "phase_trigger_time_ms": plan.group.trigger_time_ms,
    }
    return Volume(
        array,
        plan.affine,
        frame_of_reference_uid=plan.for_uid or None,
        source=plan.where,
        meta=meta,
    )


def read_dicom_series(
    source: str | Path | Sequence[str | Path],
    *,
    series_uid: str | None = None,
    nonuniform: str = "error",
    max_voxels: int | None = None,
) -> Volume:
    """Read a CT, MR or PET image series into a Volume of modality values (LPS affine).

    Parameters
    ----------
    source : str, pathlib.Path or sequence of them
        A folder (walked recursively; non-DICOM files skipped with a logged
        note), a list of files, or one file. One single-frame file stands for
        its whole series in the same folder tree.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several image series
        (CLI ``--image-series UID``).
    nonuniform : {"error", "resample"}
        A missing slice or non-uniform steps raise (default) or are resampled
        linearly onto a regular grid (``meta["resampled"] = True`` and a
        warning in ``meta["warnings"]``).
    max_voxels : int, optional
        Voxel budget checked on the declared Rows x Columns x slices before
        any pixel data is read (default :data:`~netlm_imaging.io.budget.DEFAULT_MAX_VOXELS`).

    Returns
    -------
    Volume
        ``array[i, j, k]`` modality values (HU for CT) in the smallest exact
        dtype: int16 / int32 for integer slopes and intercepts, float32 for
        PET, fractional rescale or resampled series (module docstring); affine index ->
        LPS mm. ``meta`` holds format ("dicom"), modality, study_instance_uid,
        series_instance_uid, frame_of_reference_uid, sop_class_uid,
        sop_instance_uids / frame_numbers / files / rescale (slice order),
        slice_positions_mm (original positions along the normal), resampled,
        warnings and header (non-identifying facts, see
        :func:`series_header_facts`).

    Raises
    ------
    DicomError
        No image series; several series and none chosen; zero-byte, truncated
        or corrupt file; missing slice; non-uniform steps; duplicate
        positions; gantry tilt; inconsistent geometry.
    UnsupportedError
        Undecodable transfer syntax, Siemens mosaic, colour images.
    ResourceLimitError
        Declared size above ``max_voxels``.

    References
    ----------
    DICOM PS3.3 C.7.6.2 Image Plane Module; C.7.6.16 Multi-frame Functional Groups.

    Examples
    --------
    >>> vol = read_dicom_series("study/CT")  # doctest: +SKIP
    >>> vol.spacing, vol.meta["series_instance_uid"]  # doctest: +SKIP
    """
    where = str(source) if isinstance(source, (str, Path)) else f"{len(source)} DICOM files"
    if isinstance(source, (str, Path)) and Path(source).is_file():
        infos = scan_dicom_folder(source)
        if len(infos) == 1 and infos[0].kind == IMAGE and not infos[0].is_multiframe:
            single = infos[0]
            logger.info("%s is one slice: reading its series from %s", single.path, single.path.parent)
            infos = scan_dicom_folder(single.path.parent)
            if series_uid is None:
                series_uid = single.series_uid or None
            where = str(single.path.parent)
    else:
        infos = scan_dicom_folder(source)
    return read_series_from_index(
        infos, series_uid=series_uid, nonuniform=nonuniform, max_voxels=max_voxels, where=where
    )
