"""Lesion instances of one study: one per lesion segment, or one per connected component.

A study's lesions are either named segments (several lesion layers: a DICOM SEG or RTSTRUCT
with one segment per lesion), each an instance, with the voxels several of them claim given to
one (:data:`~netlm_imaging.measure.lesions.OVERLAP_RULE`); or the connected components of one
lesion mask. :func:`lesion_instances` returns either as (box, mask, weights, label, facts).
"""

from __future__ import annotations

import numpy as np

from ..geometry import Box, box_from_frame, nonzero_bbox
from ..segmentation import MaskLayer
from .lesions import (
    OVERLAP_RULE,
    ComponentFacts,
    attribute_overlaps,
    component_boxes_and_centroids,
    label_instances_cropped,
)

__all__ = ["Box", "Instance", "lesion_instances"]

#: A lesion instance: its box, mask and weights (fractional) in the box, label, and its components' facts when known.
Instance = tuple[Box, np.ndarray, np.ndarray | None, str | None, ComponentFacts | None]


def _segment_instances(
    lesion_layers: list[MaskLayer], threshold: float, warnings: list[str], connectivity: int = 26
) -> list[Instance]:
    """One instance per non-empty lesion segment, the voxels claimed by several given to one (OVERLAP_RULE).

    A segment of several separate parts (``connectivity``-connected components) holds several lesions, each an
    instance: TotalSegmentator's ``liver_tumor`` (``liver_vessels`` task) and ``liver_lesions`` masks hold every
    tumour of the liver, and with both in a study folder their two tumours were one lesion spanning them.
    """
    instances: list[Instance] = []
    for layer in lesion_layers:
        m = layer.mask.array > 0 if layer.fractional else layer.binary(threshold)
        bb = nonzero_bbox(m)
        if bb is None:
            warnings.append(f"{layer.source}: lesion segment {layer.label!r} is empty and was skipped")
            continue
        cropped, labels_cc, n = label_instances_cropped(m, connectivity, bbox=bb)
        if n > 1 and cropped is not None:
            warnings.append(
                f"{layer.source}: lesion segment {layer.label!r} holds {n} separate parts ({connectivity}-connected "
                "components): each is a lesion"
            )
            boxes, _ = component_boxes_and_centroids(labels_cc, n)
            for i, local in enumerate(boxes, start=1):
                if local is None:
                    continue
                part_bb = box_from_frame(local, cropped)
                part = labels_cc[local] == i
                w = (layer.mask.array[part_bb] * part).astype(np.float32) if layer.fractional else None
                instances.append((part_bb, part, w, layer.label, None))
            continue
        w = layer.mask.array[bb].astype(np.float32) if layer.fractional else None
        instances.append((bb, m[bb], w, layer.label, None))
    owned, n_shared = attribute_overlaps([(bb, m) for bb, m, _, _, _ in instances])
    if not n_shared:
        return instances
    warnings.append(
        f"lesion segments overlap ({n_shared} voxels claimed by more than one); {OVERLAP_RULE} (method.lesion_overlap)"
    )
    kept: list[Instance] = []
    for (bb, _, w, name, _), m in zip(instances, owned, strict=True):
        if not m.any():
            warnings.append(f"lesion segment {name!r} lies inside smaller lesion segments and has no voxel left")
            continue
        kept.append((bb, m, None if w is None else w * m, name, None))
    return kept


def _component_instances(
    union: np.ndarray,
    box: Box | None,
    fractions: np.ndarray | None,
    connectivity: int,
    name: str | None,
) -> list[Instance]:
    """One instance per connected component of the lesion mask (its label only when it is the only one)."""
    cropped, labels_cc, n = label_instances_cropped(union, connectivity, bbox=box)
    if not n or cropped is None:
        return []
    instances: list[Instance] = []
    boxes, stats = component_boxes_and_centroids(labels_cc, n)
    for i, local in enumerate(boxes, start=1):
        if local is None:
            continue
        bb = box_from_frame(local, cropped)
        m = labels_cc[local] == i
        w = fractions[bb] if fractions is not None else None
        instances.append((bb, m, w, name if n == 1 else None, stats[i - 1]))
    return instances


def lesion_instances(
    lesion_layers: list[MaskLayer],
    union: np.ndarray,
    box: Box | None,
    fractions: np.ndarray | None,
    *,
    connectivity: int,
    threshold: float,
    warnings: list[str],
) -> tuple[list[Instance], str]:
    """The lesion instances of a study and how they were found (the report's ``method.lesion_instances``).

    Parameters
    ----------
    lesion_layers : list of MaskLayer
        The lesion role's layers, on the image grid.
    union : ndarray of bool
        Their union.
    box : Box or None
        The union's bounding box (None when it is empty).
    fractions : ndarray or None
        The union's max-fraction map when a layer is fractional.
    connectivity : {26, 6}
        Connected components of a single lesion mask.
    threshold : float
        The binary view's threshold of a fractional layer.
    warnings : list of str
        Appended to: empty and overlapping segments.

    Returns
    -------
    (list of Instance, str)
        The instances, and ``"segments"`` or ``"connected_components_<connectivity>"``.
    """
    if len(lesion_layers) > 1:
        return _segment_instances(lesion_layers, threshold, warnings, connectivity), "segments"
    name = lesion_layers[0].label if lesion_layers else None
    return _component_instances(union, box, fractions, connectivity, name), f"connected_components_{connectivity}"
