"""LiTS lesion detection between two lesion masks (or lesion instance maps) on one grid.

A reference lesion (A) is detected when a predicted lesion (B) has IoU > 0.5 (the rules key
``compare_seg.detection_iou``) with it. Such a match is necessarily one-to-one (IoU > 0.5 means
each holds more than half of the other), so TP = matched reference lesions, FN = unmatched
reference lesions, FP = unmatched predicted lesions. Lesions are the instances a segmentation
gives (one per segment, as ``analyze`` counts them) or else 26-connected components; split
predictions are not merged before matching [D].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..rules_data import default_section

__all__ = ["DETECTION_IOU", "DetectionResult", "LesionMatch", "detect_lesions"]

#: LiTS: a reference lesion is detected when IoU with a predicted lesion exceeds this.
DETECTION_IOU = float(default_section("compare_seg")["detection_iou"])
_STRUCT_26 = ndimage.generate_binary_structure(3, 3)


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


@dataclass
class LesionMatch:
    """A reference lesion detected by a predicted lesion (IoU > 0.5)."""

    reference_id: int
    predicted_id: int
    iou: float
    dice: float
    volume_reference_ml: float
    volume_predicted_ml: float
    volume_difference_ml: float
    volume_difference_percent: float
    centroid_reference_lps_mm: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded)."""
        d = asdict(self)
        d["centroid_reference_lps_mm"] = [round(float(v), 2) for v in self.centroid_reference_lps_mm]
        return {k: (_r(v) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass
class DetectionResult:
    """LiTS-style lesion detection counts and matched-lesion agreement."""

    true_positives: int
    false_positives: int
    false_negatives: int
    matches: list[LesionMatch]
    missed_reference_ids: list[int]
    false_positive_ids: list[int]
    iou_threshold: float = DETECTION_IOU

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), ``None`` without predictions."""
        n = self.true_positives + self.false_positives
        return self.true_positives / n if n else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), ``None`` without reference lesions."""
        n = self.true_positives + self.false_negatives
        return self.true_positives / n if n else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "iou_threshold": self.iou_threshold,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "precision": _r(self.precision),
            "recall": _r(self.recall),
            "missed_reference_ids": self.missed_reference_ids,
            "false_positive_ids": self.false_positive_ids,
            "matches": [m.to_dict() for m in self.matches],
        }


def _lesion_labels(array: np.ndarray, instances: bool) -> tuple[np.ndarray, int]:
    """Lesion label map and the largest label: the instance values as given, or 26-connected components."""
    a = np.asarray(array)
    if instances:
        lab = np.asarray(a, dtype=np.int32)  # no copy of an int32 instance map
        return lab, int(lab.max()) if lab.size else 0
    lab, n = ndimage.label(a != 0, structure=_STRUCT_26)
    return lab, int(n)


def detect_lesions(
    reference: np.ndarray,
    predicted: np.ndarray,
    affine: np.ndarray,
    *,
    iou_threshold: float = DETECTION_IOU,
    reference_instances: bool = False,
    predicted_instances: bool = False,
) -> DetectionResult:
    """LiTS lesion detection between two lesion masks on one grid.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Boolean lesion masks (non-zero is lesion), or lesion instance maps (see below) on one grid.
    affine : numpy.ndarray
        4x4 index -> LPS affine of the grid (volumes, centroids).
    iou_threshold : float
        Detected when IoU > this (0.5 in LiTS; must be >= 0.5 for one-to-one matching).
    reference_instances, predicted_instances : bool
        The array is an instance map whose values 1..n are the lesions (one per segment, so two
        touching lesions stay two); otherwise the lesions are its 26-connected components.

    Returns
    -------
    DetectionResult
        Lesion ids are the instance values, or the connected-component numbers (1..n, scan order);
        an instance with no voxel on the grid is neither missed nor a false positive.
    """
    if iou_threshold < 0.5:
        raise ValueError("iou_threshold must be >= 0.5 (below it matches are not one-to-one)")
    ref_lab, n_ref = _lesion_labels(reference, reference_instances)
    pred_lab, n_pred = _lesion_labels(predicted, predicted_instances)
    vox_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    ref_sizes = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)
    pred_sizes = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)
    both = (ref_lab > 0) & (pred_lab > 0)
    pairs = ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both]
    uniq, counts = np.unique(pairs, return_counts=True)
    matches: list[LesionMatch] = []
    matched_pred: set[int] = set()
    matched_ref: set[int] = set()
    centroids = ndimage.center_of_mass(ref_lab > 0, ref_lab, range(1, n_ref + 1)) if n_ref else []
    for key, inter in zip(uniq.tolist(), counts.tolist()):
        r, p = divmod(int(key), n_pred + 1)
        union = int(ref_sizes[r]) + int(pred_sizes[p]) - int(inter)
        iou = inter / union
        if iou > iou_threshold:
            vr, vp = float(ref_sizes[r]) * vox_ml, float(pred_sizes[p]) * vox_ml
            c = np.asarray(centroids[r - 1], dtype=np.float64) @ affine[:3, :3].T + affine[:3, 3]
            matches.append(
                LesionMatch(
                    reference_id=r,
                    predicted_id=p,
                    iou=float(iou),
                    dice=2.0 * inter / (int(ref_sizes[r]) + int(pred_sizes[p])),
                    volume_reference_ml=vr,
                    volume_predicted_ml=vp,
                    volume_difference_ml=vp - vr,
                    volume_difference_percent=100.0 * (vp - vr) / vr,
                    centroid_reference_lps_mm=[float(v) for v in c],
                )
            )
            matched_ref.add(r)
            matched_pred.add(p)
    matches.sort(key=lambda m: m.reference_id)
    missed = [i for i in range(1, n_ref + 1) if i not in matched_ref and ref_sizes[i]]
    fps = [i for i in range(1, n_pred + 1) if i not in matched_pred and pred_sizes[i]]
    return DetectionResult(
        true_positives=len(matches),
        false_positives=len(fps),
        false_negatives=len(missed),
        matches=matches,
        missed_reference_ids=missed,
        false_positive_ids=fps,
        iou_threshold=iou_threshold,
    )
