"""Slice order and geometry checks of one DICOM image series, from its headers.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`). The slices (frames) of a
series are sorted along the normal ``row x col`` of ImageOrientationPatient (:func:`sorted_slices`:
copies of a slice read once, other images at one position refused); every file must share the
first one's matrix, orientation and pixel spacing (:func:`check_common_geometry`). The slice step
comes from ImagePositionPatient (:func:`check_steps`: uniform within :data:`STEP_TOLERANCE_MM`,
positions written rounded, a missing slice, non-uniform steps), or for a single slice from
SpacingBetweenSlices / SliceThickness (:func:`single_slice_step`); slice origins drifting off the
normal are a gantry tilt read on a sheared grid (:func:`check_tilt`); slices that contradict the
rest of their series (FrameOfReferenceUID, RescaleSlope 0) are warned of (:func:`consistency`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DicomError, UnsupportedError
from ..volume import MAX_SHEAR_DEG
from ._dicom_guard import guard_malformed
from ._dicom_info import DicomFileInfo, FrameGeometry
from ._inflate import dcmread as bounded_dcmread
from .dicom_series_groups import SeriesGroup, why_not_split

__all__ = [
    "DUPLICATE_TOLERANCE_MM",
    "ORIENTATION_TOLERANCE",
    "STEP_TOLERANCE_MM",
    "TILT_SHEAR_TOLERANCE_PIXELS",
    "SeriesSlice",
    "check_common_geometry",
    "check_steps",
    "check_tilt",
    "consistency",
    "majority_for",
    "single_slice_step",
    "sorted_slices",
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


#: Refuse a stack whose slice origins drift in-plane by more than this many
#: pixels from the first slice's normal line (gantry tilt / sheared grid).
TILT_SHEAR_TOLERANCE_PIXELS = 0.5


_RESAMPLE_OPTION = "--allow-resample"


#: Positions written to a decimal unit up to this fraction of the slice step are taken as a rounding
#: of a regular grid (0.1 mm of a 1.25 mm CT); a coarser unit could hide a missing slice.
_ROUNDING_MAX_STEP_FRACTION = 0.2


@dataclass(frozen=True)
class SeriesSlice:
    """One slice of a series: the file, its frame and its position along the slice normal (mm)."""

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


def check_common_geometry(group: SeriesGroup, where: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
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


def _written_quantum_mm(slices: Sequence[SeriesSlice]) -> float:
    """The decimal unit the slices' ImagePositionPatient values are written to (0.1 for ``-101.3``), at most 1 mm.

    Returns 0 when they carry more than 4 decimals (no rounding worth allowing for).
    """
    values = np.abs(np.array([s.frame.position for s in slices], dtype=np.float64).ravel())
    for decimals in range(5):
        scaled = values * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, scaled)):
            return 10.0**-decimals
    return 0.0


def _rounded_regular_step(slices: Sequence[SeriesSlice], pos: np.ndarray) -> float | None:
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


def check_steps(slices: list[SeriesSlice], where: str, nonuniform: str) -> tuple[float, list[str], bool]:
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


def majority_for(slices: Sequence[SeriesSlice]) -> str:
    """The FrameOfReferenceUID most of the slices carry (``""`` when none carries one)."""
    counts = Counter(s.info.frame_of_reference_uid for s in slices if s.info.frame_of_reference_uid)
    return counts.most_common(1)[0][0] if counts else ""


def consistency(slices: list[SeriesSlice], where: str) -> tuple[list[SeriesSlice], list[str]]:
    """Warnings (each saying which value was believed) for slices that contradict the rest of their series.

    * A slice with another FrameOfReferenceUID than the others: the majority's UID is the volume's; the
      slice is placed by its ImagePositionPatient like every other.
    * RescaleSlope 0 (invalid: it would map every value to the intercept): 1 is used, as dcm2niix does.
    """
    warnings: list[str] = []
    major = majority_for(slices)
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


def check_tilt(
    slices: list[SeriesSlice], normal: np.ndarray, pixel_spacing: tuple[float, float], where: str, irregular: bool
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


def _same_image(a: SeriesSlice, b: SeriesSlice) -> bool:
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


def sorted_slices(group: SeriesGroup, normal: np.ndarray, where: str) -> list[SeriesSlice]:
    """The slices of a series by ascending position along ``normal``, a copy of a slice read once.

    A copy is the same SOPInstanceUID and frame again, or another image with byte-identical pixels at the
    same position; any other images sharing a position (phases, echoes) raise naming two of them.
    """
    slices = [
        SeriesSlice(info=f, frame=fr, position_mm=float(np.dot(fr.position, normal)))  # type: ignore[arg-type]
        for f in group.files
        for fr in f.frames
    ]
    slices.sort(key=lambda s: (s.position_mm, str(s.info.path), s.frame.frame_index))
    out: list[SeriesSlice] = []
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
            why = why_not_split(group.files)
            raise DicomError(
                f"{where}: {n_same} images share the slice position {_fmt(s.position_mm)} mm "
                f"({names[0]}, {names[1]}): several phases, echoes or time points in one "
                f"series{f' ({why})' if why else ''}; export one volume per series."
            )
        out.append(s)
    return out


@guard_malformed("DICOM header")
def single_slice_step(path: Path, frame_index: int = 0) -> tuple[float, str]:
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
