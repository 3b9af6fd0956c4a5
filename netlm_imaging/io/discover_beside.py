"""Discovery of a DICOM image series with a NIfTI / NRRD / MHA segmentation beside it.

A segmentation tool run on a DICOM CT (nnU-Net's or MONAI's prediction ``ct_seg.nii.gz``,
TotalSegmentator's ``segmentations/`` folder, 3D Slicer's ``Segmentation.seg.nrrd`` saved into the
study folder) writes its volumes beside the series. They carry no DICOM reference, so the series they
belong to is the one whose grid they lie on: their voxels are the series' voxels, one for one
(:func:`~netlm_imaging.placement.voxels_box`: the same shape and affine within the tolerances of
:meth:`netlm_imaging.volume.Volume.same_grid`, or a crop of that grid as Slicer writes it, or either
with its axes in another order or direction as dcm2niix writes them), both from their headers
alone, by the code that gives the grids of the readers the analysis uses
(:func:`~netlm_imaging.io.dicom_series_plan.series_grid`, :func:`~netlm_imaging.io.loader.volume_grid`), so
both are in patient LPS and no pixel is read twice. A volume on no series'
grid is refused, naming both and how the grids differ: a file named like a segmentation and not
on the image's grid was drawn on another image. DICOM SEG / RTSTRUCT objects in the folder are
candidates beside the volumes (chosen with ``--seg-choice``, several refused, listing all). A one-hot
label map (MONAI's ``(x, y, z, C)``) lies on the grid of its 3 spatial axes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DicomError, InputError
from ..placement import voxels_box
from ..volume import DIRECTION_TOLERANCE, SPACING_TOLERANCE_MM, Volume
from ._dicom_info import RTSTRUCT, SEG, DicomFileInfo
from .dicom_series_groups import SeriesGroup, group_image_series
from .dicom_series_plan import series_grid
from .discover_choice import SEG_OPTION, SERIES_OPTION, DiscoveredStudy, SegmentationCandidate, choose_segmentations
from .discover_dicom import dicom_candidates, dicom_study, from_dicom, is_scout
from .loader import volume_grid

__all__ = ["from_dicom_and_files", "grid_difference"]

_DICOM_KINDS = (SEG, RTSTRUCT)


def grid_difference(vol: Volume, grid: Volume) -> str:
    """How ``vol``'s grid differs from ``grid``'s, in words (shape, spacing, direction, origin)."""
    if vol.shape != grid.shape:
        return f"shape {vol.shape} vs {grid.shape}"
    spacing = np.abs(vol.spacing - grid.spacing)
    if float(np.max(spacing)) > SPACING_TOLERANCE_MM:
        fmt = ", ".join(f"{v:g}" for v in np.round(vol.spacing, 4))
        return f"voxel spacing ({fmt}) mm vs ({', '.join(f'{v:g}' for v in np.round(grid.spacing, 4))}) mm"
    if float(np.max(np.abs(vol.direction - grid.direction))) > DIRECTION_TOLERANCE:
        cosines = np.clip(np.einsum("ik,ik->k", vol.direction, grid.direction), -1.0, 1.0)
        return f"axes apart by up to {float(np.degrees(np.max(np.arccos(cosines)))):.3g} degrees"
    shift = float(np.linalg.norm(vol.origin - grid.origin))
    return f"first voxel {shift:.3g} mm apart"


def _files_shown(group: SeriesGroup, folder: Path) -> str:
    """``18 files in ct/``: where a series' files are, relative to the study folder."""
    parents = {f.path.parent for f in group.files}
    where = parents.pop() if len(parents) == 1 else folder
    shown = (
        where.relative_to(folder).as_posix() + "/" if where != folder and where.is_relative_to(folder) else str(where)
    )
    return f"{len(group.files)} files in {shown}"


def _on_grid(
    files: list[SegmentationCandidate], series: list[SeriesGroup], index: list[DicomFileInfo], folder: Path
) -> SeriesGroup:
    """The one series all ``files`` lie on; refused naming the difference when none or several.

    Headers alone decide (:func:`~netlm_imaging.io.loader.volume_grid`,
    :func:`~netlm_imaging.io.dicom_series_plan.series_grid`): the pixels are read once, by the analysis.
    """
    vols = [(c, volume_grid(c.path)) for c in files]
    grids = [(g, series_grid(index, series_uid=g.uid, nonuniform="resample", where=str(folder))) for g in series]
    hits = [g for g, grid in grids if all(voxels_box(v, grid) is not None for _, v in vols)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise DicomError(
            f"{folder}: {', '.join(c.name for c in files)} lie on the grid of {len(hits)} image series "
            f"({'; '.join(g.summary() for g in hits)}); choose one with {SERIES_OPTION}."
        )
    diffs = []
    for g, grid in grids:
        off = next((c, v) for c, v in vols if voxels_box(v, grid) is None)
        diffs.append(
            f"{off[0].name} is not on the grid of DICOM series {g.uid} ({_files_shown(g, folder)}): "
            f"{grid_difference(off[1], grid)}"
        )
    raise InputError(
        f"{folder}: {'; '.join(diffs)}; a segmentation found beside a DICOM series must be on its grid or a crop "
        "of it: pass the "
        "image it was drawn on with --image PATH --seg PATH (masks on another grid are then resampled)."
    )


def from_dicom_and_files(
    folder: Path,
    index: list[DicomFileInfo],
    label_maps: list[SegmentationCandidate],
    masks: list[SegmentationCandidate],
    file_notes: list[str],
    seg_choice: str | None,
    image_series: str | None,
) -> DiscoveredStudy:
    """A DICOM folder's image and segmentation when NIfTI / NRRD / MHA segmentations lie beside its files.

    Parameters
    ----------
    folder : pathlib.Path
        The study folder.
    index : list of DicomFileInfo
        Its DICOM header index.
    label_maps, masks : list of SegmentationCandidate
        The volumes found by name (:func:`~netlm_imaging.io.discover_names.segmentation_files`): label
        maps, each a candidate, and role masks, one segmentation together.
    file_notes : list of str
        Notes of that search (volumes not used).
    seg_choice, image_series : str or None
        ``--seg-choice`` and ``--image-series``.

    Returns
    -------
    DiscoveredStudy
        ``source`` ``"dicom"``; the segmentations are the volumes, or the DICOM object chosen.

    Raises
    ------
    InputError
        A volume on the grid of no image series of the folder; several candidates without a choice.
    """
    notes: list[str] = []
    dicom, _own = dicom_candidates(index, notes)
    pool = dicom + label_maps
    if masks and pool and seg_choice is None:
        listing = "; ".join(c.summary(i) for i, c in enumerate(pool, 1))
        raise DicomError(
            f"{folder}: candidate segmentations: {listing}; and the masks named after their structure "
            f"{', '.join(m.name for m in masks)}; choose one with {SEG_OPTION}, or pass the masks with --seg FOLDER."
        )
    chosen = choose_segmentations(pool, seg_choice, folder) if pool else list(masks)
    unused = [c for c in [*pool, *masks] if c not in chosen]
    if unused:
        notes.append("segmentation(s) not used: " + ", ".join(c.name for c in unused))
    kinds = {c.kind in _DICOM_KINDS for c in chosen}
    if kinds == {True}:
        return from_dicom(folder, index, None, image_series, chosen=chosen, found_notes=notes)
    if len(kinds) > 1:
        raise InputError(
            f"{folder}: --seg-choice {seg_choice} names DICOM objects and volume files together "
            f"({', '.join(c.name for c in chosen)}); choose one kind."
        )
    groups = group_image_series(index)
    if image_series:
        series = [g for g in groups if g.uid == image_series]
        if not series:
            listing = "; ".join(g.summary() for g in groups)
            raise DicomError(f"{folder}: --image-series {image_series} is not in the folder; available: {listing}.")
    else:
        volumetric = [g for g in groups if not is_scout(g)]
        series = [g for g in volumetric if g.modality not in ("PT", "NM")] or volumetric
    if not series:
        raise DicomError(f"{folder}: no image series to measure {', '.join(c.name for c in chosen)} on.")
    image = _on_grid(chosen, series, index, folder)
    notes.append(
        f"{', '.join(c.name for c in chosen)} found by name beside DICOM series {image.uid}, on its grid "
        "(its voxels are the series' voxels: the same grid, or a crop of it)."
    )
    notes.extend(file_notes)
    return dicom_study(folder, image, chosen, groups, notes, index)
