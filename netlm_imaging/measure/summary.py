"""The study-level quantities of a report: the ``liver`` and ``tumor`` blocks, the non-tumorous
liver volume, and where each segmentation layer came from (with its voxel count).

Every number is taken from the :class:`~netlm_imaging.measure.context.MeasurementContext`
that :func:`~netlm_imaging.measure.burden.measure_burden` made (after PET added its lesions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..geometry import nonzero_count
from ..rounding import round_or_none
from ..segmentation import MaskLayer
from .context import MeasurementContext

__all__ = ["liver_border_warning", "liver_facts", "non_tumorous_liver_ml", "segmentation_refs", "tumor_facts"]

_REF_KEYS = ("sop_instance_uid", "series_instance_uid", "segment_number", "segment_label", "roi_number", "roi_name")


def liver_facts(
    ctx: MeasurementContext, extra: Mapping[str, Any], sums: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The report's ``liver`` block: volume, voxel count, border contact and mean intensity.

    Parameters
    ----------
    ctx : MeasurementContext
    extra : mapping
        ``BurdenResult.extra`` (binary volume beside a fractional one, lesions inside the liver mask).
    sums : (int, int), optional
        ``BurdenResult.liver_sums``: the voxel count and exact intensity sum of ``ctx.liver``, when
        the measurement has them (else both are taken on ``ctx.liver``; the same numbers).
    """
    liver: dict[str, Any] = {"volume_ml": round_or_none(ctx.liver_volume_ml, 6)}
    if ctx.liver is None:
        return liver
    # whole-liver reductions on the liver's bounding box: nothing of the liver lies outside it
    box = ctx.liver_bbox if ctx.liver_bbox is not None else (slice(None),) * 3
    in_box = ctx.liver[box]
    liver["voxel_count"] = int(np.count_nonzero(in_box)) if sums is None else sums[0]
    if ctx.liver_bbox is not None:
        liver["touches_image_border"] = any(box[a].start == 0 or box[a].stop == ctx.liver.shape[a] for a in range(3))
    else:
        bb_any = [np.any(ctx.liver, axis=tuple(a for a in range(3) if a != ax)) for ax in range(3)]
        liver["touches_image_border"] = bool(any(b[0] or b[-1] for b in bb_any))
    n_liver = liver["voxel_count"]
    if n_liver and sums is not None:
        # an exact integer sum (the float64 reduction below gives the same integer, hence the same mean)
        liver["mean_intensity"] = round_or_none(float(sums[1]) / n_liver, 3)
    elif n_liver:
        # a masked reduction (any memory order); boolean indexing of F-ordered arrays is ~10x slower
        total = np.add.reduce(ctx.image.array[box], axis=None, where=in_box, dtype=np.float64)
        liver["mean_intensity"] = round_or_none(float(total) / n_liver, 3)
    else:
        liver["mean_intensity"] = None
    for key in ("liver_volume_ml_binary", "liver_mask_included_lesions"):
        if key in extra:
            value = extra[key]
            name = key.replace("liver_", "", 1) if key.startswith("liver_volume") else key
            liver[name] = round_or_none(value, 6) if isinstance(value, float) else value
    return liver


def liver_border_warning(ctx: MeasurementContext) -> list[str]:
    """A warning when the liver mask reaches the edge of the image: the liver may extend beyond it.

    A field of view that cuts off the dome or the inferior tip leaves liver, and perhaps lesions, out of
    every number: the liver volume, the involvement, the lesion count, the FLR and the debulking plan
    (a plan "clearing every lesion" clears the imaged ones). The report said so only in
    ``liver.touches_image_border``, with no warning, beside a Mahuron type and a Cloyd "resectable".

    Returns
    -------
    list of str
        One warning naming the image faces the liver touches, or none.
    """
    if ctx.liver is None or not np.any(ctx.liver):
        return []
    shape = ctx.liver.shape
    if ctx.liver_bbox is not None:
        spans = [
            (int(sl.start or 0), int(shape[a] if sl.stop is None else sl.stop)) for a, sl in enumerate(ctx.liver_bbox)
        ]
    else:
        coords = [np.flatnonzero(np.any(ctx.liver, axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
        spans = [(int(c[0]), int(c[-1]) + 1) for c in coords]
    faces = [
        f"{'ijk'[a]} = {0 if end == 'first' else shape[a] - 1}"
        for a, (lo, hi) in enumerate(spans)
        for end, hit in (("first", lo == 0), ("last", hi == shape[a]))
        if hit
    ]
    if not faces:
        return []
    return [
        f"the liver mask reaches the edge of the image (voxel index {', '.join(faces)}): the liver may extend "
        "beyond the "
        "field of view, so the liver volume, involvement, lesions, FLR and debulking plan may cover only the "
        "imaged part; check that the whole liver was scanned"
    ]


def tumor_facts(ctx: MeasurementContext, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The report's ``tumor`` block: intra- and extrahepatic volumes and lesion counts.

    ``lesions_segmented`` says whether the counts and volumes are measurements: False for a
    liver-only segmentation, whose 0 means "not segmented".
    """
    tumor: dict[str, Any] = {
        "intrahepatic_volume_ml": round_or_none(ctx.intrahepatic_tumor_ml, 6),
        "extrahepatic_volume_ml": round_or_none(ctx.extrahepatic_tumor_ml, 6),
        "lesion_count": sum(les.location == "intrahepatic" for les in ctx.lesions),
        "extrahepatic_lesion_count": sum(les.location == "extrahepatic" for les in ctx.lesions),
        "lesions_segmented": ctx.lesions_segmented,
    }
    if "intrahepatic_volume_ml_binary" in extra:
        tumor["intrahepatic_volume_ml_binary"] = round_or_none(extra["intrahepatic_volume_ml_binary"], 6)
    return tumor


def non_tumorous_liver_ml(ctx: MeasurementContext) -> float | None:
    """Total liver minus intrahepatic tumour, mL (never below 0; None without a liver volume)."""
    liver_ml = ctx.liver_volume_ml
    if liver_ml is None or liver_ml <= 0:
        return None
    return max(0.0, liver_ml - ctx.intrahepatic_tumor_ml)


def segmentation_refs(
    layers: Sequence[MaskLayer], shape: tuple[int, ...], fractional_threshold: float = 0.5
) -> list[dict[str, Any]]:
    """Where every role layer came from (file, SEG segment / ROI), its role and label.

    A DICOM SEG layer on the image grid (``shape``) also carries its voxel count: the SR
    references a segment only when it is the region measured.
    """
    refs = []
    for la in layers:
        voxels = None
        if la.mask.meta.get("sop_instance_uid") and la.mask.shape == shape:
            voxels = nonzero_count(la.binary(fractional_threshold))  # inside the box its reader recorded
        refs.append(
            {k: v for k, v in la.mask.meta.items() if k in _REF_KEYS}
            | {"role": la.role, "label": la.label, "source": la.source, "voxel_count": voxels}
        )
    return refs
