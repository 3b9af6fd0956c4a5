"""Which segment each measurement group of the SR references (TID 1411 Referenced Segment).

One concept: pairing a measured region with a DICOM SEG segment. Viewers (3D
Slicer QuantitativeReporting, OHIF) pair a measurement group with a segment
through its TID 1411 ReferencedSegment. With the derived SEG of
:func:`netlm_imaging.report.dicom_seg_out.write_seg`
(:func:`derived_segment_references`) the total-liver group and every lesion
group reference the segment they were measured on. Without it
(:func:`input_refs`), a group references an input SEG segment only when that
segment is exactly the measured region (same voxel count and, for lesions,
the same name).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .sr_template import LESION_RE

__all__ = ["derived_segment_references", "input_refs"]

logger = logging.getLogger(__name__)


def derived_segment_references(seg: Any, image_series_uid: str) -> dict[Any, dict[str, Any]]:
    """Which segment of a derived SEG holds which measured region.

    Parameters
    ----------
    seg : pydicom.Dataset or path-like
        A SEG written by :func:`netlm_imaging.report.dicom_seg_out.write_seg`
        (segment labels ``Liver``, ``Spleen``, ``Lesion <id> (<location>)``).
    image_series_uid : str
        The measured image series.

    Returns
    -------
    dict
        ``"liver"`` and ``("lesion", id)`` keys to reference dicts
        (``sop_instance_uid``, ``sop_class_uid``, ``segment_number``,
        ``image_series_uid``, ``dataset``).
    """
    if hasattr(seg, "SegmentSequence") and hasattr(seg, "SOPInstanceUID"):
        ds = seg  # a dataset, or the header the SEG writer hands on
    else:
        import pydicom

        ds = pydicom.dcmread(str(seg), stop_before_pixels=True)
    out: dict[Any, dict[str, Any]] = {}
    for item in getattr(ds, "SegmentSequence", []):
        label = str(getattr(item, "SegmentLabel", ""))
        m = LESION_RE.match(label)
        key: Any = ("lesion", int(m.group(1))) if m else label.lower() if label == "Liver" else None
        if key is None:
            continue
        out[key] = {
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "sop_class_uid": str(ds.SOPClassUID),
            "segment_number": int(item.SegmentNumber),
            "image_series_uid": image_series_uid,
            "dataset": ds,
        }
    return out


def input_refs(
    seg_references: Sequence[Mapping[str, Any]] | None, ctx: Any, d: Mapping[str, Any], image_series_uid: str
) -> dict[Any, dict[str, Any]]:
    """Input SEG segments that are exactly a measured region (checked by voxel count and name)."""
    refs = seg_references if seg_references is not None else (ctx.header.get("segmentation_refs") if ctx else None)
    usable = []
    for r in refs or []:
        if not (r.get("sop_instance_uid") and r.get("segment_number") is not None):
            continue
        ref = dict(r)
        ds = ref.get("dataset") or _seg_header(ref.get("source"))
        if ds is None or str(getattr(ds, "SOPInstanceUID", "")) != str(ref["sop_instance_uid"]):
            logger.info(
                "segment %s of %s not referenced: its SEG header is not readable here",
                ref["segment_number"],
                ref.get("source"),
            )
            continue
        ref.update(dataset=ds, sop_class_uid=str(ds.SOPClassUID), image_series_uid=image_series_uid)
        usable.append(ref)
    out: dict[Any, dict[str, Any]] = {}
    explicit = seg_references is not None  # given by the caller: taken as exact
    livers = [r for r in usable if r.get("role") == "liver"]
    liver_count = None
    if ctx is not None and ctx.liver is not None:
        box = getattr(ctx, "liver_bbox", None)
        liver_count = int(np.count_nonzero(ctx.liver[box] if box is not None else ctx.liver))
    if len(livers) == 1 and (explicit or (liver_count is not None and livers[0].get("voxel_count") == liver_count)):
        out["liver"] = livers[0]
    elif livers:
        logger.info(
            "the SR's total liver group references no input segment: the input liver segment is not the total liver"
        )
    lesions = [r for r in usable if r.get("role") == "lesion"]
    report_lesions = d.get("lesions") or []
    for les in report_lesions:
        named = [r for r in lesions if les.get("label") and r.get("label") == les.get("label")]
        if not named and len(lesions) == 1 and len(report_lesions) == 1:
            named = lesions
        if len(named) == 1 and (explicit or named[0].get("voxel_count") == les.get("voxel_count")):
            out[("lesion", int(les["id"]))] = named[0]
    return out


def _seg_header(source: Any) -> Any:
    """Header of the SEG file a layer came from, or None."""
    if not source or not Path(str(source)).is_file():
        return None
    import pydicom

    try:
        return pydicom.dcmread(str(source), stop_before_pixels=True)
    except Exception:  # not readable here: the group is written without a segment reference
        logger.debug("cannot read %s", source, exc_info=True)
        return None
