"""The plan of a DICOM series read, from headers alone: which slices, in which order, on which grid.

Part of the DICOM series reader (:mod:`netlm_imaging.io.dicom_series`). :func:`plan_series` chooses
the series of a folder's scan, runs every check of the read that needs headers alone (geometry,
slice steps, gantry tilt, voxel budget, truncated files: :mod:`.dicom_series_geometry`) and gives
the sorted slices and the grid (shape, affine, FrameOfReferenceUID) of the Volume the read returns.
:func:`series_grid` is that grid as a pixel-less Volume, for checks that must not read pixel data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DicomError, UsageError
from ..volume import Volume
from ._dicom_info import DicomFileInfo
from .budget import check_voxel_budget
from .dicom_series_geometry import (
    SeriesSlice,
    check_common_geometry,
    check_steps,
    check_tilt,
    consistency,
    majority_for,
    single_slice_step,
    sorted_slices,
)
from .dicom_series_groups import SeriesGroup, group_image_series

__all__ = ["SeriesPlan", "plan_series", "series_grid"]


_NONUNIFORM_CHOICES = ("error", "resample")
_CHOOSE_OPTION = "--image-series UID"


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


@dataclass(frozen=True)
class SeriesPlan:
    """What a series' headers say its read gives: the slices in order and the grid of the result."""

    group: SeriesGroup
    slices: list[SeriesSlice]
    warnings: list[str]
    where: str
    step: float
    irregular: bool
    drift: np.ndarray | None
    shape: tuple[int, int, int]
    affine: np.ndarray
    for_uid: str


def plan_series(
    infos: Sequence[DicomFileInfo], series_uid: str | None, nonuniform: str, max_voxels: int | None, where: str
) -> SeriesPlan:
    """The checks of :func:`~.dicom_series.read_series_from_index` that need headers alone, and the grid they give."""
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
    row, col, pixel_spacing = check_common_geometry(group, where)
    normal = np.cross(row, col)
    where_series = f"{where} (series {group.uid})"
    slices = sorted_slices(group, normal, where_series)
    slices, warnings = consistency(slices, where_series)
    warnings = [*group.notes, *warnings]
    step = 0.0
    irregular = False
    if len(slices) > 1:
        step, step_warnings, irregular = check_steps(slices, where_series, nonuniform)
        warnings += step_warnings
    drift, tilt_warnings = check_tilt(slices, normal, pixel_spacing, where_series, irregular)
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
        step, said = single_slice_step(first.path, slices[0].frame.frame_index)
        warnings.append(f"{where_series}: single slice; {said}.")
    affine = np.eye(4)
    affine[:3, 0] = row * pixel_spacing[1]
    affine[:3, 1] = col * pixel_spacing[0]
    affine[:3, 2] = normal * step if drift is None else (normal + drift) * step  # a tilted gantry: sheared
    affine[:3, 3] = slices[0].frame.position
    return SeriesPlan(
        group=group,
        slices=slices,
        warnings=warnings,
        where=where_series,
        step=step,
        irregular=irregular,
        drift=drift,
        shape=(n_i, n_j, n_k),
        affine=affine,
        for_uid=majority_for(slices) or first.frame_of_reference_uid,
    )


def series_grid(
    infos: Sequence[DicomFileInfo],
    *,
    series_uid: str | None = None,
    nonuniform: str = "error",
    max_voxels: int | None = None,
    where: str = "DICOM input",
) -> Volume:
    """The grid :func:`~.dicom_series.read_series_from_index` reads a series onto, from headers alone (no pixel data).

    The same checks and refusals as the read, up to the pixel data; the grid is that of the read's Volume
    (shape, affine, FrameOfReferenceUID), computed by the same code.

    Parameters
    ----------
    infos, series_uid, nonuniform, max_voxels, where
        As for :func:`~.dicom_series.read_series_from_index`.

    Returns
    -------
    Volume
        A pixel-less Volume (:meth:`~netlm_imaging.volume.Volume.header_grid`) of the series' grid.
    """
    plan = plan_series(infos, series_uid, nonuniform, max_voxels, where)
    return Volume.header_grid(plan.shape, plan.affine, frame_of_reference_uid=plan.for_uid or None, source=plan.where)
