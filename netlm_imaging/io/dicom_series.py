"""Read a DICOM image series (CT, MR, PET; single-frame or Enhanced) into a Volume.

The public entry of the DICOM series reader: :func:`read_dicom_series` (a folder, files or one
file) and :func:`read_series_from_index` (an already scanned folder). The reader's parts live in
modules of their own, each one concept:

* :mod:`.dicom_series_groups`: which files of a folder make one series (scouts, reconstructions
  and time stacks under one SeriesInstanceUID), with :mod:`.dicom_series_enhanced` for the stacks
  of one Enhanced file;
* :mod:`.dicom_series_geometry`: slice order and the geometry checks (steps, missing slices,
  gantry tilt, slices that contradict their series);
* :mod:`.dicom_series_plan`: the plan of a read from headers alone, and its grid
  (:func:`~.dicom_series_plan.series_grid`);
* :mod:`.dicom_series_pixels`: the pixel read into the smallest exact dtype ("Array dtype" there),
  and the resampling of irregular steps;
* :mod:`.dicom_series_header`: the series' non-identifying header facts (``meta["header"]``).

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
* Steps are uniform when every step is within :data:`~.dicom_series_geometry.STEP_TOLERANCE_MM` of
  the median step, or when positions written rounded (to 0.1 mm, say) lie within
  that unit of a least-squares regular grid, whose slope is then the step (warned).
  A step close to a multiple of the median is a missing slice; any other deviation is a non-uniform series. Both raise
  :class:`~netlm_imaging.errors.DicomError` naming the gap, unless
  ``nonuniform="resample"``: then the series is linearly interpolated onto a
  regular grid by physical position and ``meta["resampled"]`` is True.
* Gantry tilt (slice origins moving off the normal by more than
  :data:`~.dicom_series_geometry.TILT_SHEAR_TOLERANCE_PIXELS` of a pixel across the stack, in proportion to the
  slice position) gives a sheared grid: the affine's slice column is the step from one
  slice origin to the next, so every voxel lies where the scanner put it and nothing is
  resampled (``meta["gantry_tilt_deg"]``). Drift that is not a tilt, tilt with irregular
  steps, or more than :data:`~netlm_imaging.volume.MAX_SHEAR_DEG` is refused.
* RescaleSlope/RescaleIntercept are applied per slice (per frame for Enhanced
  images); ``meta["rescale"]`` keeps each slice's ``[slope, intercept]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume
from ._dicom_common import scan_dicom_folder
from ._dicom_info import IMAGE, DicomFileInfo
from .dicom_series_header import series_header_facts
from .dicom_series_pixels import output_dtype, read_pixels, resample_linear
from .dicom_series_plan import plan_series

__all__ = ["read_dicom_series", "read_series_from_index"]

logger = logging.getLogger(__name__)


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
    plan = plan_series(infos, series_uid, nonuniform, max_voxels, where)
    slices, first = plan.slices, plan.slices[0].info
    dtype, check_range = output_dtype(plan.group.modality, slices)
    buf = read_pixels(slices, dtype, check_range, (len(slices), first.rows, first.columns))
    array = buf.transpose(2, 1, 0)
    positions = np.array([s.position_mm for s in slices])
    if plan.irregular:
        array, _ = resample_linear(array, positions, plan.shape[2], plan.step)
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
        PET, fractional rescale or resampled series ("Array dtype" in
        :mod:`.dicom_series_pixels`); affine index ->
        LPS mm. ``meta`` holds format ("dicom"), modality, study_instance_uid,
        series_instance_uid, frame_of_reference_uid, sop_class_uid,
        sop_instance_uids / frame_numbers / files / rescale (slice order),
        slice_positions_mm (original positions along the normal), resampled,
        warnings and header (non-identifying facts, see
        :func:`~.dicom_series_header.series_header_facts`).

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
