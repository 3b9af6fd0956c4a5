"""Where a SEG frame lies on the reference grid: the per-frame geometry and the frame-to-slice mapping with its checks.

Part of the DICOM SEG reader (:mod:`netlm_imaging.io.dicom_seg`). :func:`frame_geometry` gives each
stored frame its slice ``k``, in-plane start and axes on the reference grid (:class:`SegFrameGeometry`):
by its plane position within :data:`GRID_TOLERANCE_VOXELS`, otherwise by its source image
(:class:`SourceSlices`: (SOPInstanceUID, frame number) -> slice). A frame off the grid raises
:class:`OffGrid`, which the reader catches to build the SEG on its own grid (:func:`grid_finding`
says what was off). :class:`SourceRefCheck` collects the frames whose source-image references
contradict their positions; :func:`check_frame_of_reference` refuses a SEG of another frame of
reference and :func:`series_warning` notes one that references another series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DicomError, GeometryError
from ..volume import Volume
from ._dicom_resampled import grid_slice_of_original
from .dicom_seg_header import plane_of, source_ref

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "GRID_TOLERANCE_VOXELS",
    "OffGrid",
    "SegFrameGeometry",
    "SourceRefCheck",
    "SourceSlices",
    "check_frame_of_reference",
    "frame_geometry",
    "grid_finding",
    "series_warning",
]


#: A SEG frame must sit on the reference grid within this many voxels (position and drift across the frame).
GRID_TOLERANCE_VOXELS = 0.2


@dataclass
class SegFrameGeometry:
    """Where one stored frame goes on the reference grid: its slice ``k``, in-plane start, axes and size."""

    k: int
    start_ij: tuple[int, int]
    # Frame (r, c) -> plane (i, j): transpose when columns run along j, flips per axis.
    transpose: bool
    flip_r: bool
    flip_c: bool
    size_ij: tuple[int, int]


class OffGrid(GeometryError):
    """A SEG's frames off the image grid (``finding``: what is off, without the file name), caught by the reader.

    It never reaches the user: :func:`~.dicom_seg.read_dicom_seg` then builds the SEG on its own grid and
    resamples it by position, its warning giving the finding; when that fails too,
    :func:`~.dicom_seg_own_grid._own_grid_error` gives the finding and the advice once.
    """

    def __init__(self, source: str, finding: str) -> None:
        super().__init__(f"{source}: {finding}")
        self.finding = finding


def grid_finding(exc: GeometryError) -> str:
    """What a grid error found, without its file name and advice (another GeometryError: its text after the file)."""
    return exc.finding if isinstance(exc, OffGrid) else str(exc).split(": ", 1)[-1].rstrip(" .")


class SourceSlices:
    """Reference slice of each source image frame: (SOPInstanceUID, frame number) -> ``k``.

    Frames of one Enhanced (multi-frame) image share its UID and differ by frame number, so the
    UID alone does not name a slice. On a resampled reference, original slice ``s`` lies on grid
    slice ``g[s]`` (:func:`~._dicom_resampled.grid_slice_of_original`).
    """

    def __init__(self, reference: Volume) -> None:
        uids = [str(u) for u in reference.meta.get("sop_instance_uids") or []]
        numbers = reference.meta.get("frame_numbers") or [1] * len(uids)
        g = grid_slice_of_original(reference)
        self.k: dict[tuple[str, int], int] = {}
        self.frames: dict[str, int] = {}
        for s, (uid, number) in enumerate(zip(uids, numbers)):
            self.k[(uid, int(number))] = s if g is None or s >= g.size else int(g[s])
            self.frames[uid] = self.frames.get(uid, 0) + 1

    def known(self, uid: str) -> bool:
        """Whether the reference holds the image ``uid``."""
        return uid in self.frames

    def k_of(self, uid: str | None, number: int | None) -> int | None:
        """The slice of frame ``number`` of ``uid`` (the image itself when it has one frame); None if unknown."""
        if uid is None:
            return None
        if number is None:
            return self.k.get((uid, 1)) if self.frames.get(uid) == 1 else None
        return self.k.get((uid, number))


class SourceRefCheck:
    """Frames whose references contradict their position; one warning per kind, saying what was believed."""

    def __init__(self, reference: Volume) -> None:
        self.frames_per_sop: dict[str, int] = {}
        uids = reference.meta.get("sop_instance_uids") or []
        for u, n in zip(uids, reference.meta.get("frame_numbers") or [1] * len(uids)):
            self.frames_per_sop[str(u)] = max(self.frames_per_sop.get(str(u), 0), int(n))
        self.unknown: list[int] = []
        self.shuffled: list[tuple[int, int, int]] = []
        self.bad_frame: list[tuple[int, int]] = []
        self.planes: dict[tuple[int, int], int] = {}
        self.conflicts: list[tuple[int, int, int, int]] = []

    def frame(self, ds: Dataset, f: int, k: int, slices: SourceSlices, by_position: bool) -> None:
        uid, number = source_ref(ds, f)
        if uid is None or not slices.frames:  # a NIfTI / NRRD image names no source images to check against
            return
        k_src = slices.k_of(uid, number)
        if not slices.known(uid):
            self.unknown.append(f)
        elif by_position and k_src is not None and k_src != k:
            self.shuffled.append((f, k_src, k))
        if number is not None and uid in self.frames_per_sop and not 1 <= number <= self.frames_per_sop[uid]:
            self.bad_frame.append((f, number))

    def plane(self, f: int, seg_no: int, g: SegFrameGeometry, plane: np.ndarray, target: np.ndarray) -> None:
        """Before placing: a second frame of one segment on one slice must repeat what the first placed."""
        first = self.planes.setdefault((seg_no, g.k), f)
        if first == f or not 0 <= g.k < target.shape[2]:
            return
        i0, j0 = g.start_ij
        li, lj = max(i0, 0), max(j0, 0)
        hi, hj = min(i0 + plane.shape[0], target.shape[0]), min(j0 + plane.shape[1], target.shape[1])
        if li >= hi or lj >= hj:
            return
        before = target[li:hi, lj:hj, g.k]
        if not np.array_equal(before.astype(bool), plane[li - i0 : hi - i0, lj - j0 : hj - j0].astype(bool)):
            self.conflicts.append((first, f, seg_no, g.k))

    def warnings(self) -> list[str]:
        out = []
        if self.unknown:
            out.append(
                f"{len(self.unknown)} frame(s) (first: frame {self.unknown[0] + 1}) reference source images that "
                "are not in the image series; their plane positions were believed"
            )
        if self.shuffled:
            f, k_uid, k = self.shuffled[0]
            out.append(
                f"{len(self.shuffled)} frame(s) reference a source image on another slice than their position "
                f"(first: frame {f + 1}, source image on slice {k_uid}, position on slice {k}); the plane "
                "positions were believed"
            )
        if self.bad_frame:
            f, number = self.bad_frame[0]
            out.append(
                f"{len(self.bad_frame)} frame(s) give a ReferencedFrameNumber the source image does not have "
                f"(first: frame {f + 1} references frame {number}); ignored, the plane positions were believed"
            )
        if self.conflicts:
            a, b, seg_no, k = self.conflicts[0]
            out.append(
                f"{len(self.conflicts)} pair(s) of frames give different masks for one segment on one slice "
                f"(first: frames {a + 1} and {b + 1}, segment {seg_no}, slice {k}); their union was used"
            )
        return out


def _axis_map(step: np.ndarray, n: int, what: str, f: int, source: str) -> tuple[int, int]:
    """(axis 0/1, sign) of an in-plane SEG pixel step expressed in reference index units."""
    target = np.round(step)
    ok = (
        abs(target[2]) == 0
        and np.count_nonzero(target) == 1
        and np.max(np.abs(target)) == 1
        and float(np.linalg.norm(step - target)) * max(n - 1, 1) <= GRID_TOLERANCE_VOXELS
    )
    if not ok:
        raise OffGrid(
            source,
            f"frame {f + 1}: the SEG pixel grid ({what} step = {np.round(step, 4).tolist()} reference voxels) is "
            "not the reference image grid (different orientation or pixel spacing)",
        )
    axis = int(np.flatnonzero(target)[0])
    return axis, int(target[axis])


def frame_geometry(
    ds: Dataset, f: int, reference: Volume, slices: SourceSlices, source: str, warnings: list[str]
) -> SegFrameGeometry:
    rows, cols = int(ds.Rows), int(ds.Columns)
    ipp, iop, spacing = plane_of(ds, f)
    k_uid: int | None = None
    if ipp is None or iop is None or spacing is None:
        k_uid = slices.k_of(*source_ref(ds, f))
        if k_uid is None:
            raise DicomError(
                f"{source}: frame {f + 1} has no plane position/orientation/spacing and its source image "
                "is not in the reference series; it cannot be placed. Pass the image series the SEG was made on."
            )
        ni, nj = reference.shape[0], reference.shape[1]
        if (cols, rows) != (ni, nj):
            raise DicomError(
                f"{source}: frame {f + 1} has no plane position and its size {rows}x{cols} differs from the "
                f"reference slice {nj}x{ni}; it cannot be placed."
            )
        return SegFrameGeometry(k_uid, (0, 0), False, False, False, (ni, nj))
    ipp_a = np.asarray([float(x) for x in ipp], dtype=np.float64)
    iop_a = np.asarray([float(x) for x in iop], dtype=np.float64)
    dr, dc = float(spacing[0]), float(spacing[1])
    inv = np.linalg.inv(reference.affine[:3, :3])
    step_c = inv @ (iop_a[:3] * dc)  # moving one column (c + 1)
    step_r = inv @ (iop_a[3:6] * dr)  # moving one row (r + 1)
    ax_c, sg_c = _axis_map(step_c, cols, "column", f, source)
    ax_r, sg_r = _axis_map(step_r, rows, "row", f, source)
    if ax_c == ax_r:
        raise GeometryError(f"{source}: frame {f + 1}: SEG row and column directions are parallel; invalid header.")
    p0 = reference.lps_to_index(ipp_a)[0]
    r0 = np.round(p0)
    if float(np.max(np.abs(p0[:2] - r0[:2]))) > GRID_TOLERANCE_VOXELS:
        raise OffGrid(
            source,
            f"frame {f + 1} starts at reference index {np.round(p0, 3).tolist()}, off the voxel grid by more than "
            f"{GRID_TOLERANCE_VOXELS} voxel; the SEG is on another grid",
        )
    k = int(r0[2])
    on_slice = abs(float(p0[2] - r0[2])) <= GRID_TOLERANCE_VOXELS
    if not on_slice:
        k_uid = slices.k_of(*source_ref(ds, f))
        if k_uid is None:
            raise OffGrid(
                source,
                f"frame {f + 1} lies between reference slices (index {p0[2]:.3f}); the SEG was made on another series",
            )
        if abs(k_uid - float(p0[2])) > 1.0:  # not a rounded position: the reference contradicts the position
            raise OffGrid(
                source,
                f"frame {f + 1} lies between reference slices (index {p0[2]:.2f}) while its source image is slice "
                f"{k_uid}, more than a slice away: its position and its source image disagree, the positions "
                "were believed",
            )
        k = k_uid
        msg = (
            "frames between the slices of the resampled image were placed on the slice nearest their source image"
            if reference.meta.get("resampled")
            else f"frame {f + 1}: position lies at slice {p0[2]:.2f}, between slices; placed on slice {k_uid} "
            "by its source image UID"
        )
        if msg not in warnings:
            warnings.append(msg)
    size = [0, 0]
    size[ax_c] = cols
    size[ax_r] = rows
    start = [int(r0[0]), int(r0[1])]
    if sg_c < 0:
        start[ax_c] -= cols - 1
    if sg_r < 0:
        start[ax_r] -= rows - 1
    return SegFrameGeometry(k, (start[0], start[1]), ax_c == 1, sg_r < 0, sg_c < 0, (size[0], size[1]))


def check_frame_of_reference(seg_for: str, reference: Volume, source: str) -> None:
    ref_for = reference.frame_of_reference_uid
    if seg_for and ref_for and seg_for != ref_for:
        raise DicomError(
            f"{source}: FrameOfReferenceUID {seg_for} differs from the image's {ref_for}; the SEG belongs to "
            "another image. Pass the series the SEG references."
        )


def series_warning(ref_series: str, reference: Volume) -> list[str]:
    own_series = reference.meta.get("series_instance_uid")
    if ref_series and own_series and ref_series != own_series:
        return [f"the SEG references series {ref_series}, the image is series {own_series}; frames placed by position"]
    return []
