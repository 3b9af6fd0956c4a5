"""The values of an integer label map and the role layers they give (:func:`layers_from_label_map`).

A float map's values within :data:`LABEL_ROUNDING_TOLERANCE` of an integer are rounded (with a
note), farther ones refused; every value present must have a role in the :class:`LabelSpec`
(:mod:`netlm_imaging.io.label_spec`) or be ignored by a user mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..errors import LabelError
from ..segmentation import MaskLayer
from ..volume import Volume
from .label_spec import LabelSpec

logger = logging.getLogger(__name__)

__all__ = ["LABEL_ROUNDING_TOLERANCE", "layers_from_label_map", "present_label_values"]


#: Float label values this close to an integer are rounded to it (with a warning); farther ones are refused.
LABEL_ROUNDING_TOLERANCE = 1e-3


def present_label_values(arr: np.ndarray) -> list[int]:
    """Sorted non-zero values of an integer label array (:func:`_present_values`)."""
    return _present_values(arr)


def _present_values(arr: np.ndarray) -> list[int]:
    """Sorted non-zero values of an integer array, without copying it to C order.

    ``np.unique`` sorts a C-ordered copy of the whole map; integer label maps
    are scanned in their own memory order instead (one comparison pass per
    value for small ranges, one scatter into a presence table otherwise).
    """
    flat = arr.ravel(order="K")
    if flat.size == 0:
        return []
    lo, hi = int(flat.min()), int(flat.max())
    if arr.dtype.kind in "iub" and lo >= 0 and hi - lo <= 16:
        return [v for v in range(max(lo, 1), hi + 1) if (flat == v).any()]
    if arr.dtype.kind in "iu" and lo >= 0 and hi < 1 << 16:
        present = np.zeros(hi + 1, dtype=bool)
        present[flat] = True
        return [int(v) for v in np.flatnonzero(present) if v != 0]
    return [int(v) for v in np.unique(flat) if v != 0]


def _shown_values(values: Sequence[int], shown: int = 20) -> str:
    """The values of a label map for a message: the first ``shown``, and how many more.

    Examples
    --------
    >>> _shown_values([1, 5]), _shown_values(list(range(1, 118)), 3)
    ('[1, 5]', '[1, 2, 3] and 114 more')
    """
    more = f" and {len(values) - shown} more" if len(values) > shown else ""
    return f"{list(values[:shown])}{more}"


def layers_from_label_map(label_map: Volume, spec: LabelSpec, *, notes: Sequence[str] = ()) -> list[MaskLayer]:
    """Split an integer label map into role layers.

    Every non-zero value must be mapped (or mapped to ``ignore``); values
    mapped to the same role are merged into one layer.

    Parameters
    ----------
    label_map : Volume
        Integer-valued label image.
    spec : LabelSpec
        Value -> role mapping.
    notes : sequence of str
        Notes of the reading the layers carry (``meta["notes"]``), before this function's own.

    Returns
    -------
    list of MaskLayer

    Raises
    ------
    LabelError
        If the map holds non-integer values or values without a role.
    """
    arr = np.asarray(label_map.array)
    notes = list(notes)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise LabelError(f"{label_map.source}: label map contains NaN or inf; a label map must hold integers.")
        rounded = np.round(arr)
        off = float(np.max(np.abs(arr - rounded))) if arr.size else 0.0
        scaling = label_map.meta.get("scaling")
        if off > LABEL_ROUNDING_TOLERANCE and scaling:
            raise LabelError(
                f"{label_map.source}: label map's header scales its stored values (scl_slope {scaling[0]:g}, "
                f"scl_inter {scaling[1]:g}) to non-integers (up to {off:.3g} from an integer); re-save it with "
                "scl_slope 1 and scl_inter 0 (nibabel: img.header.set_slope_inter(1, 0))."
            )
        if off > LABEL_ROUNDING_TOLERANCE:
            raise LabelError(
                f"{label_map.source}: label map holds non-integer values (up to {off:.3g} from an integer, more than "
                f"the rounding tolerance {LABEL_ROUNDING_TOLERANCE}); pass a label map, not an intensity image."
            )
        if off > 0.0:
            notes.append(
                f"{label_map.source}: float label values up to {off:.3g} from an integer (e.g. 1.0000001 from a "
                f"resampling or a float export) were rounded to the nearest integer (tolerance "
                f"{LABEL_ROUNDING_TOLERANCE})"
            )
            logger.warning(notes[-1])
        arr = rounded.astype(np.int64)
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind not in "iu":
        raise LabelError(f"{label_map.source}: label map has unsupported type {arr.dtype}.")
    from ..volume import nonzero_bbox, sparse_zeros

    # label maps are mostly background: values and masks are taken inside the box of the labelled voxels,
    # and the masks (calloc'ed) are written only there
    box = nonzero_bbox(arr)
    sub = arr[box] if box is not None else arr[:0, :0, :0]
    values = _present_values(sub)
    unmapped = [v for v in values if not spec.roles_of_value(v)]
    if unmapped and not spec.user_given:
        # a TotalSegmentator `total` map saved without its label table (v1, or re-saved) numbers the spleen 1 and
        # the kidney 2: read with the LiTS numbering they would be the liver and a lesion, so the example is its own
        hint = (
            "map each value's role with --labels (values you do not map are then ignored), e.g. --labels "
            "liver=5,spleen=1 for a TotalSegmentator 'total' map saved without its label table, liver=1,lesion=2+3 "
            "for a model with two tumour classes"
        )
        raise LabelError(
            f"{label_map.source}: label values {unmapped[:20]} have no role in the default LiTS mapping "
            f"(1 liver, 2 lesion; values present: {_shown_values(values)}); {hint}."
        )
    if unmapped:
        notes.append(f"{label_map.source}: label values {unmapped[:20]} are not in {spec.origin} and were ignored")
        logger.info(notes[-1])
    by_role: dict[str, list[int]] = {}
    for v in values:
        for role in spec.roles_of_value(v):  # a value of two roles (liver=1+2,lesion=2) is in both layers
            by_role.setdefault(role, []).append(v)
    layers: list[MaskLayer] = []
    for role, vals in by_role.items():
        if role == "ignore":
            continue
        mask = sparse_zeros(arr.shape, bool, "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C")
        if box is not None:
            inside = sub == vals[0]
            for v in vals[1:]:
                inside |= sub == v
            mask[box] = inside
        meta = {**label_map.meta, "notes": notes}
        layers.append(
            MaskLayer(
                role,
                label_map.with_array(mask, meta=meta),
                label="+".join(str(v) for v in vals),
                source=label_map.source,
            )
        )
    mapped = [x for vs in spec.mapping.values() for x in vs if isinstance(x, int)]
    if spec.user_given and spec.origin.startswith("--labels") and mapped and not layers:
        if not values:  # nothing labelled at all: no label number would help
            raise LabelError(
                f"{label_map.source}: the map is empty (every voxel is 0), so none of the labels given in "
                f"{spec.origin} ({sorted(set(mapped))}) occur; pass the segmentation that holds the liver and lesions."
            )
        raise LabelError(
            f"{label_map.source}: none of the labels given in {spec.origin} ({sorted(set(mapped))}) occur in the map "
            f"(values present: {values[:20]}); check the label numbers."
        )
    return layers
