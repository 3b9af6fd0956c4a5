"""MR signal in arbitrary units, its ratios, and hepatocyte function (HUI) per Couinaud segment.

MR signal has no physical unit: every mean is ``*_signal_au`` with its SD, and
what is comparable across scanners are ratios measured in one image:

* **liver-to-spleen contrast** ``LSC = SI_liver / SI_spleen``;
* **lesion-to-liver** signal ratio ``SI_lesion / SI_liver`` and contrast
  ``(SI_liver - SI_lesion) / SI_liver`` (positive for the HBP-hypointense lesions
  typical of NETLM);
* **relative enhancement** ``RE = (SI_post - SI_pre) / SI_pre`` against a
  pre-contrast series resampled onto the same grid;
* **hepatic uptake index** ``HUI = V_liver x (SI_liver / SI_spleen - 1)`` in mL
  (Yamada et al., Radiology 2011, as cited in the rules file).

Reference regions: the healthy-liver reference is the non-tumorous liver (liver
minus every lesion voxel) eroded by ``reference_erosion_mm``, the spleen
reference the spleen eroded likewise (partial volume at organ edges); an
erosion that leaves nothing falls back to the un-eroded region, with a note.

HUI is a volume integral: ``HUI = sum over non-tumorous liver voxels of
v x (SI_voxel / SI_spleen - 1)`` = ``V x (mean SI / SI_spleen - 1)`` with the mean
over the whole (un-eroded) non-tumorous liver, so the per-segment values add up
exactly to the total (plus the share of liver voxels outside every segment,
reported as ``unassigned``). A remnant's functional share is its HUI over the
total HUI.

Every per-lesion number of one lesion comes from one voxel set: the voxels of
``lesion_labels == id``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..rules_data import default_section

__all__ = [
    "MrSignal",
    "RegionSignal",
    "eroded",
    "functional_remnant_percent",
    "measure_mr_signal",
    "region_signal",
]


@dataclass(frozen=True)
class RegionSignal:
    """Mean and SD of the signal (a.u.) over one voxel set.

    Attributes
    ----------
    mean_signal_au, sd_signal_au : float
        Mean and population SD (ddof 0).
    voxel_count : int
        Voxels measured.
    eroded : bool
        Whether the region is the eroded reference (False: fallback to the whole region).
    """

    mean_signal_au: float
    sd_signal_au: float
    voxel_count: int
    eroded: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "mean_signal_au": round(self.mean_signal_au, 4),
            "sd_signal_au": round(self.sd_signal_au, 4),
            "voxel_count": self.voxel_count,
            "eroded": self.eroded,
        }


def region_signal(array: np.ndarray, mask: np.ndarray, *, is_eroded: bool = False) -> RegionSignal | None:
    """Mean and SD of ``array`` over ``mask`` (``None`` for an empty mask)."""
    n = int(np.count_nonzero(mask))
    if n == 0:
        return None
    vals = np.asarray(array[mask], dtype=np.float64)
    return RegionSignal(float(vals.mean()), float(vals.std()), n, is_eroded)


def _bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...] | None:
    """Bounding box of a mask (grown by ``pad`` voxels, clipped to the array), ``None`` when empty."""
    box = []
    for ax in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        if hit.size == 0:
            return None
        box.append(slice(max(0, int(hit[0]) - pad), min(mask.shape[ax], int(hit[-1]) + 1 + pad)))
    return tuple(box)


def eroded(mask: np.ndarray, spacing_mm: Sequence[float], margin_mm: float) -> np.ndarray:
    """Voxels of ``mask`` farther than ``margin_mm`` from its outside (Euclidean, in mm).

    The image border counts as outside, so a mask touching the border is eroded there too.
    The distance transform runs on the mask's bounding box only.
    """
    bb = _bbox(mask)
    if margin_mm <= 0 or bb is None:
        return mask.copy()
    from scipy.ndimage import distance_transform_edt

    padded = np.pad(mask[bb], 1, constant_values=False)
    dist = distance_transform_edt(padded, sampling=tuple(float(s) for s in spacing_mm))
    out = np.zeros(mask.shape, dtype=bool)
    out[bb] = dist[1:-1, 1:-1, 1:-1] > margin_mm
    return out


def _reference(
    array: np.ndarray, mask: np.ndarray, spacing: Sequence[float], margin_mm: float, what: str, notes: list[str]
) -> tuple[RegionSignal | None, np.ndarray]:
    """Signal of ``mask`` eroded by ``margin_mm`` (the whole mask when nothing is left), and that voxel set.

    ``array`` and ``mask`` are the same crop (the organ's bounding box): a tight box leaves the
    erosion unchanged, because every voxel beyond it is outside the mask.
    """
    core = eroded(mask, spacing, margin_mm)
    if core.any():
        return region_signal(array, core, is_eroded=margin_mm > 0), core
    notes.append(f"{what} is thinner than 2 x {margin_mm:g} mm: the un-eroded {what} is the reference")
    return region_signal(array, mask), mask


@dataclass
class MrSignal:
    """What :func:`measure_mr_signal` measured.

    Attributes
    ----------
    liver_reference, spleen_reference : RegionSignal or None
        Eroded healthy-liver and spleen references.
    total_liver : RegionSignal or None
        The total-liver mask (liver UNION intrahepatic lesions), as the report's ``liver`` block.
    liver_parenchyma : RegionSignal or None
        The whole non-tumorous liver (the HUI integral's mean).
    parenchyma_ml : float or None
        Non-tumorous liver volume (mL).
    lsc : float or None
        ``liver_reference / spleen_reference``.
    lesions : dict
        ``{lesion id: {"mean_signal_au", "sd_signal_au", "lesion_to_liver_signal_ratio",
        "lesion_to_liver_contrast", "relative_enhancement"}}``.
    relative_enhancement : dict
        ``{"liver": RE, "spleen": RE}`` when a pre-contrast image was given.
    hui_ml, hui_by_segment_ml, hui_unassigned_ml : float, dict, float or None
        Total HUI, per Couinaud segment, and the share of liver outside every segment.
    nontumorous_ml_by_segment : dict
        Non-tumorous volume per segment (mL) (the charge rate of parenchyma-sparing treatments).
    notes : list of str
        Fallbacks and reasons.
    ratios_withheld : str or None
        Why no ratio (a subtraction, Dixon fat or phase image), or no LSC and HUI (a T2 or diffusion image in the
        hepatobiliary window), was computed on this image.
    """

    liver_reference: RegionSignal | None = None
    spleen_reference: RegionSignal | None = None
    total_liver: RegionSignal | None = None
    liver_parenchyma: RegionSignal | None = None
    parenchyma_ml: float | None = None
    lsc: float | None = None
    lesions: dict[int, dict[str, float | None]] = field(default_factory=dict)
    relative_enhancement: dict[str, float | None] = field(default_factory=dict)
    hui_ml: float | None = None
    hui_by_segment_ml: dict[int, float] = field(default_factory=dict)
    hui_unassigned_ml: float | None = None
    nontumorous_ml_by_segment: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ratios_withheld: str | None = None


def _re(post: float | None, pre: float | None, scale: tuple[float, float, float, float] | None = None) -> float | None:
    """RE of two means, each first mapped ``a x mean + b`` onto comparable values (``scale``)."""
    if post is None or pre is None:
        return None
    if scale is not None:
        post, pre = scale[0] * post + scale[1], scale[2] * pre + scale[3]
    if pre == 0 or not math.isfinite(pre) or not math.isfinite(post):  # NaN: a voxel the pre-contrast misses
        return None
    return (post - pre) / pre


def _lesion_numbers(
    array: np.ndarray,
    pre: np.ndarray | None,
    lesion_labels: np.ndarray,
    lesion_ids: Iterable[int],
    liver_ref: float | None,
    re_scale: tuple[float, float, float, float] | None = None,
) -> dict[int, dict[str, float | None]]:
    import cc3d

    boxes = cc3d.statistics(np.ascontiguousarray(lesion_labels))["bounding_boxes"] if lesion_labels.any() else []
    out: dict[int, dict[str, float | None]] = {}
    for lid in lesion_ids:
        bb = boxes[lid] if 0 < lid < len(boxes) else None
        if bb is None:
            continue
        voxels = lesion_labels[bb] == lid
        sig = region_signal(array[bb], voxels)
        if sig is None:
            continue
        ratio = sig.mean_signal_au / liver_ref if liver_ref else None
        pre_sig = region_signal(pre[bb], voxels) if pre is not None else None
        out[int(lid)] = {
            "mean_signal_au": sig.mean_signal_au,
            "sd_signal_au": sig.sd_signal_au,
            "lesion_to_liver_signal_ratio": ratio,
            "lesion_to_liver_contrast": None if ratio is None else 1.0 - ratio,
            "relative_enhancement": _re(sig.mean_signal_au, pre_sig.mean_signal_au if pre_sig else None, re_scale),
        }
    return out


def measure_mr_signal(
    array: np.ndarray,
    *,
    spacing_mm: Sequence[float],
    voxel_volume_ml: float,
    liver: np.ndarray | None,
    lesion_labels: np.ndarray,
    lesion_ids: Iterable[int],
    spleen: np.ndarray | None,
    segment_labels: np.ndarray | None = None,
    pre_contrast: np.ndarray | None = None,
    reference_erosion_mm: float | None = None,
    functional: bool = False,
    ratios: bool = True,
    re_scale: tuple[float, float, float, float] | None = None,
) -> MrSignal:
    """Signal statistics, ratios and (when ``functional``) the hepatic uptake index.

    Parameters
    ----------
    array : numpy.ndarray
        The MR image (a.u.), already bias-corrected if asked.
    spacing_mm : sequence of float
        Voxel spacing along the array axes (for the erosion).
    voxel_volume_ml : float
        Volume of one voxel.
    liver : numpy.ndarray or None
        Total-liver mask (liver UNION intrahepatic lesions).
    lesion_labels : numpy.ndarray
        Lesion instance map (0 background).
    lesion_ids : iterable of int
        The lesions to measure.
    spleen : numpy.ndarray or None
        Spleen mask.
    segment_labels : numpy.ndarray, optional
        Couinaud map (1..8).
    pre_contrast : numpy.ndarray, optional
        Pre-contrast image on the same grid (for relative enhancement).
    reference_erosion_mm : float, optional
        Erosion of the healthy-liver and spleen references; default the shipped
        rules key ``mri.reference_erosion_mm``.
    functional : bool
        Compute LSC and HUI (the image is a hepatobiliary phase).
    ratios : bool
        Compute the ratios (lesion-to-liver, RE, and with ``functional`` LSC and HUI); False for an
        image whose values are not a signal magnitude (a subtraction, Dixon fat or phase image):
        then only the means and SDs are measured.
    re_scale : tuple of float, optional
        ``(a, b, a_pre, b_pre)``: RE compares ``a x mean + b`` of the image with ``a_pre x mean_pre +
        b_pre`` (two series on different Philips scales, for instance); default the values as they are.

    Returns
    -------
    MrSignal
    """
    if reference_erosion_mm is None:
        reference_erosion_mm = float(default_section("mri")["reference_erosion_mm"])
    res = MrSignal()
    notes = res.notes
    # every organ is measured on its own bounding box: no full-volume temporaries
    liver_box = _bbox(liver) if liver is not None else None
    spleen_box = _bbox(spleen) if spleen is not None else None
    par = core_l = None
    if liver_box is not None and liver is not None:
        arr_l = array[liver_box]
        liv = liver[liver_box]
        par = liv & (lesion_labels[liver_box] == 0)
        res.total_liver = region_signal(arr_l, liv)
        res.liver_parenchyma = region_signal(arr_l, par)
        res.parenchyma_ml = float(np.count_nonzero(par)) * voxel_volume_ml
        if par.any():
            res.liver_reference, core_l = _reference(
                arr_l, par, spacing_mm, reference_erosion_mm, "healthy liver", notes
            )
    core_s = None
    if spleen_box is not None and spleen is not None:
        res.spleen_reference, core_s = _reference(
            array[spleen_box], spleen[spleen_box], spacing_mm, reference_erosion_mm, "spleen", notes
        )
    liver_ref = res.liver_reference.mean_signal_au if res.liver_reference and ratios else None
    res.lesions = _lesion_numbers(
        array, pre_contrast if ratios else None, lesion_labels, lesion_ids, liver_ref, re_scale
    )
    if pre_contrast is not None and ratios:
        for name, box, core in (("liver", liver_box, core_l), ("spleen", spleen_box, core_s)):
            if box is None or core is None:
                continue
            post = region_signal(array[box], core)
            pre = region_signal(pre_contrast[box], core)
            res.relative_enhancement[name] = _re(
                post.mean_signal_au if post else None, pre.mean_signal_au if pre else None, re_scale
            )
    spleen_ref = res.spleen_reference.mean_signal_au if res.spleen_reference else None
    if not functional or not ratios or spleen_ref is None or par is None or liver_ref is None or liver_box is None:
        return res
    if spleen_ref <= 0:
        notes.append("spleen signal is not positive: LSC and HUI undefined")
        return res
    res.lsc = liver_ref / spleen_ref
    # HUI = sum_voxels v (SI / S - 1) over the non-tumorous liver: additive over any partition
    per_voxel = (np.asarray(array[liver_box][par], dtype=np.float64) / spleen_ref - 1.0) * voxel_volume_ml
    res.hui_ml = float(per_voxel.sum())
    if segment_labels is not None:
        seg_of = np.clip(np.asarray(segment_labels[liver_box][par]), 0, 9).astype(np.intp)
        sums = np.bincount(seg_of, weights=per_voxel, minlength=10)
        counts = np.bincount(seg_of, minlength=10)
        for seg in range(1, 9):
            res.hui_by_segment_ml[seg] = float(sums[seg])
            res.nontumorous_ml_by_segment[seg] = float(counts[seg]) * voxel_volume_ml
        res.hui_unassigned_ml = float(sums[0] + sums[9])
    return res


def functional_remnant_percent(
    hui_by_segment_ml: Mapping[int, float],
    hui_total_ml: float,
    removed_segments: Iterable[int],
    *,
    nontumorous_ml_by_segment: Mapping[int, float] | None = None,
    parenchyma_costs: Iterable[tuple[int | None, float]] = (),
) -> tuple[float | None, str | None]:
    """Functional share of a remnant: remnant HUI / total HUI, in percent.

    Parameters
    ----------
    hui_by_segment_ml : mapping
        HUI per Couinaud segment (mL).
    hui_total_ml : float
        Total HUI (segments plus unassigned liver).
    removed_segments : iterable of int
        Segments the plan resects.
    nontumorous_ml_by_segment : mapping, optional
        Non-tumorous volume per segment, to charge parenchyma-sparing treatments.
    parenchyma_costs : iterable of (segment, mL)
        Parenchyma removed or ablated outside the resected segments, each charged at its
        segment's HUI per mL.

    Returns
    -------
    (float or None, str or None)
        The percentage, or ``None`` and the reason.

    Examples
    --------
    >>> functional_remnant_percent({1: 10.0, 2: 30.0, 3: 60.0}, 100.0, [3])
    (40.0, None)
    >>> functional_remnant_percent({1: 10.0, 2: 30.0}, 40.0, [], nontumorous_ml_by_segment={2: 60.0},
    ...                            parenchyma_costs=[(2, 20.0)])
    (75.0, None)
    """
    if hui_total_ml <= 0:
        return None, "total HUI is not positive (liver not brighter than spleen): no measurable hepatocyte uptake"
    removed = {int(s) for s in removed_segments}
    remnant = sum(v for s, v in hui_by_segment_ml.items() if int(s) not in removed)
    unassigned = hui_total_ml - sum(hui_by_segment_ml.values())
    remnant += unassigned  # liver outside every segment stays (it is not part of a segment resection)
    for seg, ml in parenchyma_costs:
        if seg is None or int(seg) in removed or not nontumorous_ml_by_segment:
            continue
        vol = nontumorous_ml_by_segment.get(int(seg), 0.0)
        if vol > 0:
            remnant -= hui_by_segment_ml.get(int(seg), 0.0) * min(1.0, ml / vol)
    return 100.0 * max(0.0, remnant) / hui_total_ml, None
