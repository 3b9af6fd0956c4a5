"""DICOM SEG output: derived masks (liver, lesions, e.g. PET-delineated lesions) on the source image series.

Written with highdicom as a BINARY Segmentation whose frames are aligned with
the source single-frame images. Each source image is placed on the image grid
by its ImagePositionPatient (``ctx.image.lps_to_index``), so the slice order
of the files does not matter. Frame ``k`` of the SEG is ``mask[:, :, k].T``
(DICOM rows are the ``j`` axis, columns the ``i`` axis, as in
:mod:`netlm_imaging.io.dicom_series`).

Segments (the numbering the SR references, see
:func:`netlm_imaging.report.dicom_sr.derived_segment_references`): 1 ``Liver``
(the total liver: liver mask UNION intrahepatic lesions, the region of the
report's ``liver.volume_ml``), then ``Spleen`` when present, then one segment
``Lesion <id> (<location>)`` per lesion instance in report order.

Identity: de-identified (PS3.15 Basic Profile, Retain UIDs Option) unless
``include_identifiers=True`` (the copy pushed back to the PACS keeps the
source Patient and Study modules); UIDs derived from the measured content, so
a re-run gives the same SOP Instance UID.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import GeometryError, InputError, UnsupportedError

__all__ = ["masks_from_context", "write_seg"]

logger = logging.getLogger(__name__)

_ROLE_CODES = {
    # role -> (segmented property category, segmented property type), SNOMED CT
    "liver": (("91772007", "SCT", "Organ"), ("10200004", "SCT", "Liver")),
    "spleen": (("91772007", "SCT", "Organ"), ("78961009", "SCT", "Spleen")),
    "lesion": (("49755003", "SCT", "Morphologically Abnormal Structure"), ("108369006", "SCT", "Neoplasm")),
}


def masks_from_context(ctx: Any) -> list[tuple[str, str, np.ndarray]]:
    """The derived masks of a measurement: total liver, spleen, and one mask per lesion instance.

    Parameters
    ----------
    ctx : MeasurementContext
        From :func:`netlm_imaging.api.analyze_with_context`.

    Returns
    -------
    list of (label, role, mask)
        Boolean masks on ``ctx.image``'s grid; empty masks are left out.
    """
    out: list[tuple[str, str, np.ndarray]] = []
    if ctx.liver is not None and ctx.liver.any():
        out.append(("Liver", "liver", ctx.liver.astype(bool)))
    if ctx.spleen is not None and ctx.spleen.any():
        out.append(("Spleen", "spleen", ctx.spleen.astype(bool)))
    for les in ctx.lesions:
        m = ctx.lesion_labels == les.id
        if m.any():
            out.append((f"Lesion {les.id} ({les.location})", "lesion", m))
    return out


def _normalise(masks: Mapping[str, np.ndarray] | Sequence[tuple[str, str, np.ndarray]]) -> list[tuple[str, str, Any]]:
    if isinstance(masks, Mapping):
        return [(str(k), "lesion" if "lesion" in str(k).lower() else str(k).lower(), v) for k, v in masks.items()]
    return [(str(label), str(role), m) for label, role, m in masks]


def _source_datasets(image_datasets: Sequence[Any] | None, ctx: Any, path: Path) -> list[Any]:
    import pydicom

    sources = image_datasets if image_datasets is not None else ctx.image.meta.get("files")
    if not sources:
        raise UnsupportedError(
            f"{path}: a DICOM SEG must be aligned with DICOM source images, and this study's image is not a DICOM "
            "series; analyse the DICOM series to write a SEG"
        )
    dss = [s if isinstance(s, pydicom.Dataset) else pydicom.dcmread(str(s), stop_before_pixels=True) for s in sources]
    if len(dss) == 1 and int(getattr(dss[0], "NumberOfFrames", 1) or 1) > 1:
        raise UnsupportedError(
            f"{path}: writing a SEG on a multi-frame (Enhanced) image is not supported; convert the series to "
            "single-frame images or use the JSON report"
        )
    return dss


def write_seg(
    ctx: Any,
    path: str | os.PathLike[str],
    *,
    masks: Mapping[str, np.ndarray] | Sequence[tuple[str, str, np.ndarray]] | None = None,
    image_datasets: Sequence[Any] | None = None,
    include_identifiers: bool = False,
    series_number: int = 9902,
) -> Path:
    """Write masks as a BINARY DICOM SEG on the source image series (atomically).

    Parameters
    ----------
    ctx : MeasurementContext
        Its ``image`` gives the grid (and the source files in ``image.meta["files"]``).
    path : path-like
        Output file.
    masks : dict of label to array, or sequence of (label, role, array), optional
        Boolean masks on the image grid; roles liver, spleen or lesion choose
        the SNOMED CT codes. Default: :func:`masks_from_context`.
    image_datasets : sequence of pydicom.Dataset or path-like, optional
        Source images (headers suffice); default ``ctx.image.meta["files"]``.
    include_identifiers : bool
        Keep the patient module of the source images (off by default).
    series_number : int
        Series Number of the SEG.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    UnsupportedError
        No DICOM source images, or a multi-frame source.
    InputError
        No non-empty mask, or a mask whose shape is not the image grid's.
    GeometryError
        A source image that does not lie on a slice of the image grid.
    """
    import highdicom as hd

    from .._version import __version__
    from ..creator import CREATOR
    from .identity import deidentify, result_uid

    out = Path(path)
    items = [
        (label, role, np.asarray(m, bool))
        for label, role, m in _normalise(masks if masks is not None else masks_from_context(ctx))
    ]
    items = [it for it in items if it[2].any()]
    if not items:
        raise InputError(f"{out}: no non-empty mask to write as a DICOM SEG; check the segmentation")
    shape = ctx.image.shape
    for label, _, m in items:
        if m.shape != shape:
            raise InputError(f"{out}: mask {label!r} has shape {m.shape}, the image grid {shape}; resample it first")
    dss = _source_datasets(image_datasets, ctx, out)
    ks = []
    for ds in dss:
        ijk = np.asarray(ctx.image.lps_to_index(np.asarray(ds.ImagePositionPatient, float)[None, :]), float).reshape(3)
        k = round(float(ijk[2]))
        if abs(ijk[2] - k) > 0.05 or not 0 <= k < shape[2] or np.abs(ijk[:2]).max() > 0.05:
            raise GeometryError(
                f"{getattr(ds, 'filename', 'source image')}: its position is not slice origin of the measured grid "
                f"(index {np.round(ijk, 3).tolist()}); pass the series the masks were measured on"
            )
        ks.append(k)
    stack = np.stack([np.stack([m[:, :, k].T for _, _, m in items], axis=-1) for k in ks]).astype(np.uint8)
    descriptions = []
    for n, (label, role, _) in enumerate(items, start=1):
        category, prop = _ROLE_CODES.get(role, _ROLE_CODES["lesion"])
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=label[:64],
                segmented_property_category=hd.sr.CodedConcept(*category),
                segmented_property_type=hd.sr.CodedConcept(*prop),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name=CREATOR,
                    version=__version__,
                    family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"),
                ),
            )
        )
    uid_parts = (
        str(getattr(dss[0], "StudyInstanceUID", "")),
        str(getattr(dss[0], "SeriesInstanceUID", "")),
        "seg",
        __version__,
        [label for label, _, _ in items],
        # what was measured: the masks' content without another pass over them (explicit masks: their sizes)
        [(les.id, les.location, les.voxel_count) for les in ctx.lesions] + [ctx.liver_volume_ml]
        if masks is None
        else [int(m.sum()) for _, _, m in items],
    )
    seg = hd.seg.Segmentation(
        source_images=dss,
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=result_uid(*uid_parts, "series"),
        series_number=series_number,
        sop_instance_uid=result_uid(*uid_parts, "instance"),
        instance_number=1,
        manufacturer=CREATOR,
        manufacturer_model_name=CREATOR,
        software_versions=__version__,
        device_serial_number="0",
        series_description="netlm derived masks",
    )
    if not include_identifiers:
        deidentify(seg)
    buf = io.BytesIO()
    seg.save_as(buf)
    atomic_write_bytes(out, buf.getvalue())
    logger.info("wrote DICOM SEG %s (%d segments)", out, len(items))
    return out
