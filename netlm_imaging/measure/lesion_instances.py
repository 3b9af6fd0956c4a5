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

__all__ = ["Box", "Instance", "lesion_instances", "segment_parts"]

#: A lesion instance: its box, mask and weights (fractional) in the box, label, and its components' facts when known.
Instance = tuple[Box, np.ndarray, np.ndarray | None, str | None, ComponentFacts | None]


def _share_voxels(a: tuple[Box, np.ndarray], b: tuple[Box, np.ndarray]) -> bool:
    """Whether two full-grid masks, each with its bounding box, have a voxel in common."""
    inter = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a[0], b[0], strict=True))
    if any(sl.start >= sl.stop for sl in inter):
        return False
    return bool(np.any(a[1][inter] & b[1][inter]))


def segment_parts(masks: list[tuple[Box, np.ndarray]], connectivity: int = 26) -> list[tuple[int, Box, np.ndarray]]:
    """Each lesion segment as one instance, or as its separate parts where it shares voxels with another segment.

    DESIGN.md: one lesion per segment where the input gives one segment per lesion. A segment drawn with a
    gap (a skipped slice) is still one lesion. Segments that share voxels and hold several separate parts
    are not one per lesion: TotalSegmentator's ``liver_tumor`` (``liver_vessels`` task) and
    ``liver_lesions`` masks each hold every tumour of the liver, and with both in a study folder two
    tumours were one lesion spanning them. Such a segment gives one instance per
    ``connectivity``-connected part; the overlap rule then gives each voxel to one of them.

    Parameters
    ----------
    masks : list of (Box, ndarray of bool)
        Each non-empty segment's bounding box and its full-grid mask.
    connectivity : {26, 6}
        Parts of a shared segment.

    Returns
    -------
    list of (int, Box, ndarray of bool)
        The segment's index in ``masks``, the instance's box and its mask inside the box.

    Examples
    --------
    >>> a = np.zeros((9, 3, 3), bool); a[0:2] = True; a[6:8] = True  # two tumours
    >>> gap = np.zeros((9, 3, 3), bool); gap[0:2] = True; gap[3:4] = True  # one drawn with a gap
    >>> box = (slice(0, 8), slice(0, 3), slice(0, 3))
    >>> [i for i, _, _ in segment_parts([(box, a), (box, a.copy())])]
    [0, 0, 1, 1]
    >>> [i for i, _, _ in segment_parts([(box, gap), ((slice(6, 8), slice(0, 3), slice(0, 3)), a & ~gap)])]
    [0, 1]
    """
    shared = [any(_share_voxels(m, o) for j, o in enumerate(masks) if j != i) for i, m in enumerate(masks)]
    out: list[tuple[int, Box, np.ndarray]] = []
    for i, (bb, full) in enumerate(masks):
        cropped, labels_cc, n = label_instances_cropped(full, connectivity, bbox=bb) if shared[i] else (None, None, 1)
        if n < 2 or cropped is None or labels_cc is None:
            out.append((i, bb, full[bb]))
            continue
        boxes, _ = component_boxes_and_centroids(labels_cc, n)
        out += [(i, box_from_frame(b, cropped), labels_cc[b] == k) for k, b in enumerate(boxes, 1) if b is not None]
    return out


def _segment_instances(
    lesion_layers: list[MaskLayer], threshold: float, warnings: list[str], connectivity: int = 26
) -> list[Instance]:
    """One instance per non-empty lesion segment (:func:`segment_parts`), the voxels claimed by several given to one.

    The overlap rule is :data:`~netlm_imaging.measure.lesions.OVERLAP_RULE`.
    """
    layers: list[MaskLayer] = []
    masks: list[tuple[Box, np.ndarray]] = []
    for layer in lesion_layers:
        m = layer.mask.array > 0 if layer.fractional else layer.binary(threshold)
        bb = nonzero_bbox(m)
        if bb is None:
            warnings.append(f"{layer.source}: lesion segment {layer.label!r} is empty and was skipped")
            continue
        layers.append(layer)
        masks.append((bb, m))
    parts = segment_parts(masks, connectivity)
    for i, layer in enumerate(layers):
        n = sum(1 for k, _, _ in parts if k == i)
        if n > 1:
            warnings.append(
                f"{layer.source}: lesion segment {layer.label!r} shares voxels with another lesion segment and holds "
                f"{n} separate parts ({connectivity}-connected components): each is a lesion"
            )
    instances: list[Instance] = []
    for i, bb, m in parts:
        layer = layers[i]
        w = (layer.mask.array[bb] * m).astype(np.float32) if layer.fractional else None
        instances.append((bb, m, w, layer.label, None))
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
