"""The mask layers of a decoded SEG: one MaskLayer per wanted segment, with the segment's metadata and role.

Part of the DICOM SEG reader (:mod:`netlm_imaging.io.dicom_seg`). :func:`mask_layers` turns the
decoded per-segment arrays into :class:`~netlm_imaging.segmentation.MaskLayer` objects in
SegmentNumber order, each with its role, the SEG's identity (:class:`SegIdentity`: SOP instance,
series, type, referenced series, frame count) and the segment's number, label and code in
``mask.meta``. FRACTIONAL stored values become fractions in [0, 1] (a binary mask written as
FRACTIONAL with the wrong scale is read as binary, with a warning); empty segments are warned of.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..segmentation import MaskLayer
from ..volume import Volume
from .dicom_seg_decode import mask_order
from .dicom_seg_header import SegmentInfo

__all__ = ["SegIdentity", "mask_layers"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegIdentity:
    """What a SEG's mask layers carry in their meta, whichever reader decoded it."""

    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    seg_type: str
    referenced_series: str
    n_frames: int
    max_fractional: float = 255.0
    fractional_type: str = ""


def mask_layers(
    ident: SegIdentity,
    segments: list[SegmentInfo],
    roles: dict[int, str],
    wanted: set[int],
    arrays: dict[int, np.ndarray],
    grid: Volume,
    reference: Volume,
    warnings: list[str],
    fractional_threshold: float,
    source: str,
    written: set[int] | None = None,
) -> list[MaskLayer]:
    """One MaskLayer per wanted segment, in SegmentNumber order.

    ``written``: the segments whose arrays :func:`~._seg_fast.decode_binary` wrote pixels
    into (each holds at least one); then no full-grid scan is needed to find the empty ones.
    """
    layers: list[MaskLayer] = []
    by_number = {s.number: s for s in segments}
    fractional = ident.seg_type == "FRACTIONAL"
    for num in sorted(wanted):
        info = by_number[num]
        arr = arrays.get(num)
        if arr is None:
            dtype: type = np.float32 if fractional else bool
            arr = np.zeros(grid.shape, dtype=dtype, order=mask_order(reference))
        warns = list(warnings)
        if fractional:
            arr = _fractions(arr, ident.max_fractional, info.describe(), source, warns)
        if (num not in written) if written is not None else not np.any(arr):
            warns.append(f"segment {info.describe()} is empty")
            logger.warning("%s: segment %s is empty", source, info.describe())
        meta: dict[str, Any] = {
            "sop_instance_uid": ident.sop_instance_uid,
            "series_instance_uid": ident.series_instance_uid,
            "sop_class_uid": ident.sop_class_uid,
            "segment_number": num,
            "segment_label": info.label,
            "segment_code": list(info.code) if info.code else None,
            "segmentation_type": ident.seg_type,
            "referenced_series_instance_uid": ident.referenced_series or None,
            "n_frames": ident.n_frames,
            "warnings": warns,
        }
        if fractional:
            meta["fractional_threshold"] = float(fractional_threshold)
            meta["fractional_type"] = ident.fractional_type or None
            meta["volume_rule"] = "sum of fractions; MaskLayer.binary(fractional_threshold) for the mask"
        mask = grid.with_array(arr, source=source, meta=meta)
        layers.append(MaskLayer(roles[num], mask, label=info.label, source=source, fractional=fractional))
    return layers


def _fractions(stored: np.ndarray, max_fractional: float, segment: str, source: str, warns: list[str]) -> np.ndarray:
    """Fractions ``stored / MaximumFractionalValue`` in [0, 1] of one FRACTIONAL segment.

    A segment that stores only 0 and 1 under a MaximumFractionalValue above 1 is a binary mask
    written as FRACTIONAL with the wrong scale (OHIF #1346, dcmjs PR #309: the declared maximum is
    not reliable). Read literally, every voxel would be 1/255 inside: the sum of fractions would be
    255 times too small and the thresholded mask empty. It is read as binary (1 = inside), with a warning.
    """
    if max_fractional > 1 and stored.size and int(stored.max()) == 1:
        msg = (
            f"segment {segment}: FRACTIONAL with MaximumFractionalValue {max_fractional:g} but no stored value "
            "above 1; read as a binary mask (1 = inside), as written by exporters that store binary masks as "
            "FRACTIONAL"
        )
        warns.append(msg)
        logger.warning("%s: %s", source, msg)
        return (stored > 0).astype(np.float32)
    return (stored.astype(np.float32) / np.float32(max_fractional)).clip(0.0, 1.0)
