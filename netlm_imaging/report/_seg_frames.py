"""Which source image frame each frame of a derived DICOM SEG is cut from.

Single-frame slices are paired with SEG frames in order; one Enhanced
(multi-frame) file is paired frame by frame in its stored order (its frames
need not be in slice order). When only one stack of a multi-frame file was
measured (a dynamic phase, a Dixon component), the SEG frames are placed at
that stack's plane positions and name that stack's frames as their sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import GeometryError

__all__ = ["frame_count", "frame_plan", "reference_measured_frames"]


def frame_count(ds: Any) -> int:
    """NumberOfFrames (1 when absent)."""
    return int(getattr(ds, "NumberOfFrames", 1) or 1)


def _source_positions(dss: Sequence[Any]) -> list[tuple[str, list[float]]]:
    """(where, ImagePositionPatient) of every source frame, in the order highdicom takes the frames."""
    if len(dss) == 1 and frame_count(dss[0]) > 1:  # Enhanced: per-frame Plane Position, else shared
        ds = dss[0]
        shared = (getattr(ds, "SharedFunctionalGroupsSequence", None) or [None])[0]
        out = []
        for f, item in enumerate(getattr(ds, "PerFrameFunctionalGroupsSequence", None) or []):
            planes = getattr(item, "PlanePositionSequence", None) or getattr(shared, "PlanePositionSequence", None)
            if not planes:
                raise GeometryError(
                    f"{getattr(ds, 'filename', 'source image')}: frame {f + 1} has no Plane Position; "
                    "a DICOM SEG cannot be placed on it"
                )
            out.append((f"{getattr(ds, 'filename', 'source image')} frame {f + 1}", planes[0].ImagePositionPatient))
        if len(out) != frame_count(ds):
            raise GeometryError(
                f"{getattr(ds, 'filename', 'source image')}: {len(out)} per-frame functional groups for "
                f"{frame_count(ds)} frames; a DICOM SEG cannot be placed on it"
            )
        return out
    return [(str(getattr(ds, "filename", "source image")), ds.ImagePositionPatient) for ds in dss]


def _slice_of(ctx: Any, position: Any, where: str) -> int:
    """The slice ``k`` of the measured grid whose origin is ``position`` (GeometryError when none is)."""
    ijk = np.asarray(ctx.image.lps_to_index(np.asarray(position, float)[None, :]), float).reshape(3)
    k = round(float(ijk[2]))
    if abs(ijk[2] - k) > 0.05 or not 0 <= k < ctx.image.shape[2] or np.abs(ijk[:2]).max() > 0.05:
        raise GeometryError(
            f"{where}: its position is not slice origin of the measured grid "
            f"(index {np.round(ijk, 3).tolist()}); pass the series the masks were measured on"
        )
    return k


def frame_plan(dss: Sequence[Any], ctx: Any) -> tuple[list[int], list[Any] | None, dict[int, int] | None]:
    """Which slice each SEG frame is cut from: ``(ks, plane_positions, frame_of_k)``.

    Single-frame slices, or a multi-frame file measured whole: one frame per source frame, ``ks[n]`` the
    slice of source frame ``n`` (highdicom pairs them in order). A multi-frame file of which one stack
    was measured (a dynamic phase, a Dixon component: ``meta["frame_numbers"]``, frame number of each
    slice): one frame per slice at that frame's plane position, and ``frame_of_k`` to name those frames
    as the sources (highdicom would name the first frame at each position, maybe another stack's).
    """
    positions = _source_positions(dss)
    numbers = ctx.image.meta.get("frame_numbers") if len(dss) == 1 and frame_count(dss[0]) > 1 else None
    if not numbers or sorted(int(n) for n in numbers) == list(range(1, len(positions) + 1)):
        return [_slice_of(ctx, p, where) for where, p in positions], None, None
    from highdicom import PlanePositionSequence
    from highdicom.enum import CoordinateSystemNames

    if len(numbers) != ctx.image.shape[2]:
        raise GeometryError(
            f"{positions[0][0]}: {len(numbers)} measured frames for {ctx.image.shape[2]} slices; "
            "pass the series the masks were measured on"
        )
    planes = []
    for k, number in enumerate(int(n) for n in numbers):
        where, position = positions[number - 1]
        if _slice_of(ctx, position, where) != k:
            raise GeometryError(f"{where}: not at slice {k} of the measured grid; pass the series it was measured on")
        planes.append(PlanePositionSequence(CoordinateSystemNames.PATIENT, [float(x) for x in position]))
    return list(range(len(numbers))), planes, {k: int(n) for k, n in enumerate(numbers)}


def reference_measured_frames(seg: Any, ctx: Any, frame_of_k: Mapping[int, int]) -> None:
    """Name, for each SEG frame, the one source frame of the measured stack at its position (in place;
    highdicom names every frame at that position, of every stack)."""
    from pydicom.sequence import Sequence as DicomSequence

    for n, item in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1):
        k = _slice_of(ctx, item.PlanePositionSequence[0].ImagePositionPatient, f"SEG frame {n}")
        for derivation in getattr(item, "DerivationImageSequence", None) or []:
            sources = list(getattr(derivation, "SourceImageSequence", None) or [])
            if sources:
                sources[0].ReferencedFrameNumber = frame_of_k[k]
                derivation.SourceImageSequence = DicomSequence(sources[:1])
