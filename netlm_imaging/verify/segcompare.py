"""Compare two segmentations of one study: overlap, surface distance, lesion detection, burden.

Definitions
-----------
Common grid
    Segmentation B is resampled onto segmentation A's grid **by physical
    (LPS) position**, nearest neighbour (never index by index); a mask whose
    voxels are the common grid's (a crop of it, as Slicer saves a ``.seg.nrrd``,
    or its axes re-indexed) is copied into place, not resampled. Volumes are
    taken on each segmentation's own grid; Dice, distances and detection on
    the common grid. A mask partly outside the common grid gets a warning
    with the fraction of its voxels left out; a mask wholly outside it is
    refused (it segments another image, or its geometry is wrong).
Dice
    ``2 |A ∩ B| / (|A| + |B|)``; 1.0 when both are empty (LiTS convention).
Surface
    Voxels of the mask with at least one 6-neighbour outside it (MedPy's
    ``binary_erosion`` with connectivity 1, XOR), taken as the LPS positions
    of their centres.
HD95 (``hd95_mm``)
    **MedPy / LiTS style**: the 95th percentile (numpy linear interpolation)
    of the *pooled* directed surface distances A->B and B->A, computed with
    KD-trees on the physical points. ``hd95_max_directed_mm`` (the maximum
    of the two directed 95th percentiles, the other convention in use) and
    the full Hausdorff distance ``hd_mm`` and the average symmetric surface
    distance ``assd_mm`` are reported too. ``None`` when either mask is empty.
Lesion detection (LiTS, :mod:`netlm_imaging.verify.detection`)
    Lesions are one per segment when a segmentation gives one segment per
    lesion (as ``analyze`` counts them: touching lesions stay two), otherwise
    26-connected components. A reference lesion (A) is detected
    when a predicted lesion (B) has IoU > 0.5 with it. Such a match is
    necessarily one-to-one (IoU > 0.5 means each holds more than half of the
    other), so TP = matched reference lesions, FN = unmatched reference
    lesions, FP = unmatched predicted lesions. Split predictions are not
    merged before matching [D].
Burden
    LiTS tumour burden as a percentage: ``100 x intrahepatic lesion voxels /
    (liver ∪ intrahepatic lesion) voxels`` of each segmentation on its own
    grid; the total liver is liver ∪ intrahepatic lesions too. A lesion is
    intrahepatic when it touches the liver dilated by 2 mm (DESIGN.md), by
    ``analyze``'s own test (:mod:`netlm_imaging.measure.intrahepatic`);
    extrahepatic lesions are compared in ``lesion`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import GeometryError, LabelError
from ..geometry import Box, nonzero_bbox
from ..measure.intrahepatic import intrahepatic_voxels
from ..placement import place_exactly
from ..segmentation import MaskLayer
from ..volume import Volume
from .detection import DETECTION_IOU, DetectionResult, LesionMatch, detect_lesions
from .registration import dice_coefficient, resample_nearest

__all__ = [
    "DETECTION_IOU",
    "DetectionResult",
    "LesionMatch",
    "SegComparison",
    "StructureComparison",
    "compare_masks",
    "compare_segmentation_files",
    "compare_segmentations",
    "detect_lesions",
    "lesion_instances",
    "masks_by_role",
    "outside_fraction",
    "surface_distances_mm",
    "surface_points_lps",
]

logger = logging.getLogger(__name__)

_STRUCT_6 = ndimage.generate_binary_structure(3, 1)


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def surface_points_lps(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """LPS positions (N x 3, mm) of the centres of a mask's surface voxels.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean 3-D mask.
    affine : numpy.ndarray
        4x4 index -> LPS affine of the mask's grid.

    Returns
    -------
    numpy.ndarray
        Points of the voxels with at least one 6-neighbour outside the mask
        (voxels on the array border count as surface).
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros((0, 3))
    eroded = ndimage.binary_erosion(m, structure=_STRUCT_6, border_value=0)
    idx = np.argwhere(m & ~eroded).astype(np.float64)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def surface_distances_mm(points_a: np.ndarray, points_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed distances A->B and B->A between two surface point sets (KD-trees).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        For each point of A the distance to the nearest point of B, and vice versa.
    """
    from scipy.spatial import cKDTree

    d_ab, _ = cKDTree(points_b).query(points_a, k=1)
    d_ba, _ = cKDTree(points_a).query(points_b, k=1)
    return np.asarray(d_ab, dtype=np.float64), np.asarray(d_ba, dtype=np.float64)


@dataclass
class StructureComparison:
    """One structure of segmentation A vs the same structure of B (units in names)."""

    structure: str
    volume_a_ml: float
    volume_b_ml: float
    volume_difference_ml: float
    volume_difference_percent: float | None
    dice: float
    hd95_mm: float | None
    hd95_max_directed_mm: float | None
    hd_mm: float | None
    assd_mm: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded)."""
        return {k: (_r(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compare_masks(
    structure: str,
    mask_a: np.ndarray,
    mask_b_on_a: np.ndarray,
    affine: np.ndarray,
    *,
    volume_a_ml: float | None = None,
    volume_b_ml: float | None = None,
) -> StructureComparison:
    """Dice, volume difference and surface distances of two masks on one grid.

    Parameters
    ----------
    structure : str
        Name for the report (``liver``, ``lesion``, ...).
    mask_a, mask_b_on_a : numpy.ndarray
        Boolean masks on the same grid.
    affine : numpy.ndarray
        4x4 index -> LPS affine of that grid.
    volume_a_ml, volume_b_ml : float, optional
        Volumes measured on each mask's native grid; default: voxel counts here.

    Returns
    -------
    StructureComparison
        ``volume_difference_* = B - A``; the percentage is relative to A
        (``None`` when A is empty).
    """
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b_on_a, dtype=bool)
    if a.shape != b.shape:
        raise GeometryError(f"{structure}: masks on different grids {a.shape} vs {b.shape}; resample B onto A first.")
    vox_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    va = float(a.sum()) * vox_ml if volume_a_ml is None else float(volume_a_ml)
    vb = float(b.sum()) * vox_ml if volume_b_ml is None else float(volume_b_ml)
    hd95 = hd95_dir = hd = assd = None
    if a.any() and b.any():
        d_ab, d_ba = surface_distances_mm(surface_points_lps(a, affine), surface_points_lps(b, affine))
        pooled = np.concatenate([d_ab, d_ba])
        hd95 = float(np.percentile(pooled, 95))
        hd95_dir = float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)))
        hd = float(max(d_ab.max(), d_ba.max()))
        assd = float(pooled.mean())
    return StructureComparison(
        structure=structure,
        volume_a_ml=va,
        volume_b_ml=vb,
        volume_difference_ml=vb - va,
        volume_difference_percent=(100.0 * (vb - va) / va) if va > 0 else None,
        dice=dice_coefficient(a, b),
        hd95_mm=hd95,
        hd95_max_directed_mm=hd95_dir,
        hd_mm=hd,
        assd_mm=assd,
    )


@dataclass
class SegComparison:
    """Result of :func:`compare_segmentations`."""

    structures: list[StructureComparison]
    detection: DetectionResult | None
    burden_a_percent: float | None
    burden_b_percent: float | None
    grid: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def burden_difference_percent_points(self) -> float | None:
        """Burden B - A in percentage points (``None`` when either is undefined)."""
        if self.burden_a_percent is None or self.burden_b_percent is None:
            return None
        return self.burden_b_percent - self.burden_a_percent

    def structure(self, name: str) -> StructureComparison:
        """The comparison of one structure by name (KeyError if absent)."""
        for s in self.structures:
            if s.structure == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "definitions": {
                "hd95_mm": "95th percentile of pooled directed surface distances A->B and B->A (MedPy/LiTS), mm",
                "hd95_max_directed_mm": "max of the two directed 95th percentiles, mm",
                "volume": "voxel count x voxel volume of each mask on its own grid (FRACTIONAL SEG: voxels >= 0.5)",
                "volume_difference": "B - A; percent relative to A",
                "detection": (
                    f"LiTS: reference (A) lesion detected when IoU > "
                    f"{DETECTION_IOU if self.detection is None else self.detection.iou_threshold:g} with a B lesion "
                    "(one lesion per segment when a segmentation gives one per lesion, else 26-connected "
                    "components; rules compare_seg.detection_iou)"
                ),
                "burden_percent": "100 x intrahepatic lesion / (liver UNION intrahepatic lesion) voxels "
                "(intrahepatic: a lesion touching the liver dilated by 2 mm)",
            },
            "grid": self.grid,
            "structures": [s.to_dict() for s in self.structures],
            "detection": None if self.detection is None else self.detection.to_dict(),
            "burden_a_percent": _r(self.burden_a_percent),
            "burden_b_percent": _r(self.burden_b_percent),
            "burden_difference_percent_points": _r(self.burden_difference_percent_points),
            "warnings": list(self.warnings),
        }


def outside_fraction(mask: Volume, grid: Volume) -> float:
    """Fraction of a mask's voxels whose centres lie outside ``grid`` (0.0 for an empty mask).

    A voxel centre is inside when its continuous index on ``grid`` is within half a voxel of
    the array, as nearest-neighbour resampling onto ``grid`` would keep it.
    """
    if mask.same_grid(grid):
        return 0.0
    idx = np.argwhere(np.asarray(mask.array) != 0)
    if not len(idx):
        return 0.0
    ijk = grid.lps_to_index(mask.index_to_lps(idx))
    inside = np.all((ijk >= -0.5) & (ijk < np.asarray(grid.shape, dtype=np.float64) - 0.5), axis=1)
    return 1.0 - float(np.count_nonzero(inside)) / len(idx)


def _liver_and_intrahepatic(masks: Mapping[str, Volume]) -> tuple[Volume, np.ndarray] | None:
    """The liver mask and the intrahepatic lesion voxels on the liver's grid (None without a liver)."""
    liv = masks.get("liver")
    if liv is None:
        return None
    liver = np.asarray(liv.array, dtype=bool)
    les = masks.get("lesion")
    if les is None:
        return liv, np.zeros(liver.shape, dtype=bool)
    lesion = np.asarray(les.array, dtype=bool)
    if not les.same_grid(liv):  # same shape is not the same grid: never index by index across files
        lesion = resample_nearest(les.with_array(lesion), liv)
    return liv, intrahepatic_voxels(liver, lesion, liv)


def _burden(masks: Mapping[str, Volume], found: tuple[Volume, np.ndarray] | None) -> float | None:
    """LiTS burden from :func:`_liver_and_intrahepatic`'s ``found`` (None without a liver or lesion)."""
    if found is None or "lesion" not in masks:
        return None
    liv, intra = found
    total = int((np.asarray(liv.array, dtype=bool) | intra).sum())
    return 100.0 * int(intra.sum()) / total if total else None


def compare_segmentations(
    masks_a: Mapping[str, Volume],
    masks_b: Mapping[str, Volume],
    *,
    reference_grid: Volume | None = None,
    detection_iou: float = DETECTION_IOU,
    instances_a: Volume | None = None,
    instances_b: Volume | None = None,
) -> SegComparison:
    """Compare two segmentations structure by structure.

    Parameters
    ----------
    masks_a, masks_b : mapping of str to Volume
        Boolean masks by structure name (``liver``, ``lesion``, ``spleen``,
        ``segment1``...). The ``liver`` structure is compared as the total
        liver (liver ∪ lesion), as everywhere in netlm-imaging. A is the
        reference for detection and percentages.
    reference_grid : Volume, optional
        The common grid; default the grid of A's first mask. A mask on a crop of it or with its
        axes in another order or direction is copied into place voxel for voxel; other masks are
        resampled by physical position (a warning says so, and ``grid["resampled"]``).
    detection_iou : float
        Lesion detection threshold (rules ``compare_seg.detection_iou``; :func:`detect_lesions`).
    instances_a, instances_b : Volume, optional
        Lesion instance maps (:func:`lesion_instances`: one value per lesion segment) for the
        detection; without one a segmentation's lesions are its 26-connected components.

    Returns
    -------
    SegComparison
    """
    if not masks_a or not masks_b:
        raise GeometryError("compare_segmentations: both segmentations need at least one structure.")
    ref = reference_grid if reference_grid is not None else next(iter(masks_a.values()))
    warnings: list[str] = []
    resampled = False
    # the liver and its intrahepatic lesions of each side, once: the total liver and the burden use them
    parts = {"A": _liver_and_intrahepatic(masks_a), "B": _liver_and_intrahepatic(masks_b)}

    def on_ref(vol: Volume, which: str, name: str) -> np.ndarray:
        nonlocal resampled
        if vol.same_grid(ref):
            return np.asarray(vol.array, dtype=bool)
        lost = outside_fraction(vol, ref)
        source = f" ({vol.source})" if vol.source else ""
        if lost >= 1.0:
            raise GeometryError(
                f"{which} {name}{source}: none of its voxels lies inside the reference grid "
                f"({ref.source or 'the image'}); it segments another image or carries a wrong geometry: "
                "give the segmentation drawn on this image."
            )
        if lost > 0.0:
            warnings.append(
                f"{which} {name}{source}: {100.0 * lost:.1f}% of its voxels lie outside the reference grid; "
                "Dice, distances and detection count only the part inside, its volume is the whole mask"
            )
        if (
            ref.frame_of_reference_uid
            and vol.frame_of_reference_uid
            and ref.frame_of_reference_uid != vol.frame_of_reference_uid
        ):
            warnings.append(
                f"{which} {name}: FrameOfReferenceUID differs from the reference grid's; compared in LPS anyway"
            )
        mask = vol.with_array(np.asarray(vol.array, dtype=bool))
        exact = place_exactly(mask, ref)
        if exact is not None:  # a crop of the grid (Slicer's .seg.nrrd) or its axes re-indexed: copied, not resampled
            return exact[0]
        resampled = True
        return resample_nearest(mask, ref)

    def total_liver(masks: Mapping[str, Volume], which: str) -> tuple[np.ndarray, float] | None:
        found = parts[which]
        if found is None:
            return None
        liv, intra = found
        if "lesion" in masks:
            les = masks["lesion"]
            n_all = int(np.count_nonzero(les.array))
            n_out = n_all - int(np.count_nonzero(intra)) if les.same_grid(liv) else None
            if n_out:
                warnings.append(
                    f"{which}: {n_out} lesion voxel(s) lie in lesions outside the liver (2 mm rule): extrahepatic, "
                    "no part of the total liver or the burden (compared in 'lesion')"
                )
        native = np.asarray(liv.array, dtype=bool) | intra
        vol_ml = float(native.sum()) * liv.voxel_volume_ml
        return on_ref(liv.with_array(native), which, "liver"), vol_ml

    names = [n for n in masks_a if n in masks_b]
    only = sorted(set(masks_a) ^ set(masks_b))
    if only:
        warnings.append(f"structures present in only one segmentation, not compared: {', '.join(only)}")
    structures: list[StructureComparison] = []
    detection = None
    for name in names:
        if name == "liver":
            ta, tb = total_liver(masks_a, "A"), total_liver(masks_b, "B")
            if ta is None or tb is None:  # pragma: no cover - "liver" is in both by construction
                continue
            structures.append(compare_masks("liver", ta[0], tb[0], ref.affine, volume_a_ml=ta[1], volume_b_ml=tb[1]))
            continue
        va, vb = masks_a[name], masks_b[name]
        a = on_ref(va, "A", name)
        b = on_ref(vb, "B", name)
        structures.append(
            compare_masks(
                name,
                a,
                b,
                ref.affine,
                volume_a_ml=float(np.count_nonzero(va.array)) * va.voxel_volume_ml,
                volume_b_ml=float(np.count_nonzero(vb.array)) * vb.voxel_volume_ml,
            )
        )
        if name == "lesion":
            inst = [
                None if v is None else (v.array if v.same_grid(ref) else resample_nearest(v, ref))
                for v in (instances_a, instances_b)
            ]
            detection = detect_lesions(
                a if inst[0] is None else inst[0],
                b if inst[1] is None else inst[1],
                ref.affine,
                iou_threshold=detection_iou,
                reference_instances=inst[0] is not None,
                predicted_instances=inst[1] is not None,
            )
    if resampled:
        warnings.append(
            "segmentation masks were resampled onto the reference grid by physical position (nearest "
            "neighbour); Dice, distances and detection are on that grid, volumes on each native grid"
        )
    grid = {**ref.geometry_summary(), "resampled": resampled}
    return SegComparison(
        structures=structures,
        detection=detection,
        burden_a_percent=_burden(masks_a, parts["A"]),
        burden_b_percent=_burden(masks_b, parts["B"]),
        grid=grid,
        warnings=warnings,
    )


def masks_by_role(layers: Sequence[MaskLayer]) -> dict[str, Volume]:
    """Union of the binary masks of each role (``ignore`` dropped), each on its own grid.

    Layers of one role on different grids are put on the first layer's grid
    (physical position, nearest neighbour).
    """
    out: dict[str, Volume] = {}
    for la in layers:
        if la.role == "ignore":
            continue
        arr = la.binary()
        if la.role not in out:
            out[la.role] = la.mask.with_array(arr)
            continue
        prev = out[la.role]
        if not la.mask.same_grid(prev):
            arr = resample_nearest(la.mask.with_array(arr), prev)
        out[la.role] = prev.with_array(np.asarray(prev.array, dtype=bool) | arr)
    return out


def lesion_instances(layers: Sequence[MaskLayer]) -> Volume | None:
    """Instance map of the lesion segments (values 1..n in input order), or None with fewer than two.

    A segmentation that gives one segment per lesion keeps two touching lesions two, as ``analyze``
    counts them; a voxel in several segments belongs to the smallest of them (ties: the first in
    input order), the rule of ``analyze``'s ``method.lesion_overlap``. Empty segments get no value; a
    segment of several separate parts (26-connected components) that shares voxels with another segment
    gives each part a value, as ``analyze`` counts them (``measure.lesion_instances.segment_parts``).
    Layers on other grids are put on the first lesion layer's grid (physical position).
    """
    lesion = [la for la in layers if la.role == "lesion"]
    if len(lesion) < 2:
        return None
    from ..measure.lesion_instances import segment_parts
    from ..measure.lesions import attribute_overlaps

    grid = lesion[0].mask
    full: list[tuple[Box, np.ndarray]] = []  # (box, full-grid mask) of each non-empty segment
    for la in lesion:
        arr = la.binary()
        if not la.mask.same_grid(grid):
            arr = resample_nearest(la.mask.with_array(arr), grid)
        bb = nonzero_bbox(arr)
        if bb is not None:
            full.append((bb, arr))
    boxed = [(bb, m) for _, bb, m in segment_parts(full)]
    owned, _ = attribute_overlaps(boxed)
    out = np.zeros(grid.shape, dtype=np.int32)
    for n, ((bb, _), m) in enumerate(zip(boxed, owned)):
        out[bb][m] = n + 1
    return grid.with_array(out)


def compare_segmentation_files(
    image: str | Path,
    seg_a: Sequence[str | Path] | str | Path,
    seg_b: Sequence[str | Path] | str | Path,
    *,
    labels: str | None = None,
    labels_b: str | None = None,
    max_voxels: int | None = None,
    rules: Any = None,
    image_series: str | None = None,
    allow_resample: bool = False,
) -> SegComparison:
    """Load an image and two segmentations of it and compare them on the image grid.

    Parameters
    ----------
    image : str or Path
        The image (NIfTI/NRRD/MHA or DICOM series folder); its grid is the common grid.
    seg_a, seg_b : path or sequence of paths
        Segmentation A (reference) and B: label maps, DICOM SEG, RTSTRUCT or ``ROLE=PATH`` masks.
    labels, labels_b : str, optional
        ``--labels`` mappings for A and B (B defaults to A's). Without them, a side's label maps are
        read with the numbering of an nnU-Net ``dataset.json`` beside them, as ``analyze`` reads them.
    max_voxels : int, optional
        Declared-size limit.
    rules : path or Rules, optional
        Rules file (``--rules``) whose ``compare_seg.detection_iou`` decides lesion detection.
    image_series : str, optional
        DICOM: the SeriesInstanceUID of the image when the folder holds several.
    allow_resample : bool
        DICOM: resample a series with a missing slice or irregular steps onto a regular grid.

    Returns
    -------
    SegComparison
    """
    from ..classify.rules import Rules, load_rules
    from ..io.label_spec import parse_label_spec
    from ..io.nnunet import labels_or_dataset_json

    detection_iou = float((rules if isinstance(rules, Rules) else load_rules(rules))["compare_seg"]["detection_iou"])
    from ..io.loader import load_image
    from ..io.study import read_study_segmentations

    img = load_image(
        image, max_voxels=max_voxels, series_uid=image_series, nonuniform="resample" if allow_resample else "error"
    )
    masks = []
    instances: list[Volume | None] = []
    notes: list[str] = []
    for which, segs, lab in (("A", seg_a, labels), ("B", seg_b, labels_b if labels_b is not None else labels)):
        items = [str(segs)] if isinstance(segs, str | Path) else [str(x) for x in segs]
        found: list[str] = []  # as analyze: else the numbering of an nnU-Net dataset.json beside a label map
        option = "--labels-b" if which == "B" and labels_b is not None else "--labels"
        spec = parse_label_spec(labels_or_dataset_json(lab, items, found), option=option)
        notes.extend(f"{which}: {n}" for n in found)
        study = read_study_segmentations(items, img, spec, max_voxels=max_voxels)
        notes.extend(f"{which}: {w}" for w in study.warnings)  # roles given, values ignored
        m = masks_by_role(study.layers)
        if not m:
            raise LabelError(f"{items[0]}: no liver, lesion or other structure found; map labels with --labels.")
        if "lesion" not in m and study.lesions_declared:
            # lesions segmented and none found (a LiTS map without a 2, an empty lesion segment): 0 lesions,
            # compared as such (all of the other's lesions missed), not left out
            m["lesion"] = img.with_array(np.zeros(img.shape, dtype=bool))
            notes.append(f"{which}: the lesion segmentation holds no lesion (compared as 0 lesions)")
        masks.append(m)
        instances.append(lesion_instances(study.layers))
    result = compare_segmentations(
        masks[0],
        masks[1],
        reference_grid=img,
        detection_iou=detection_iou,
        instances_a=instances[0],
        instances_b=instances[1],
    )
    result.warnings.extend(notes)
    return result
