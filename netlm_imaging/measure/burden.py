"""Hepatic tumour burden: total liver, intra/extrahepatic tumour, involvement, remnant.

Definitions (shared/DESIGN.md): total liver = liver mask UNION intrahepatic
lesion voxels; a lesion instance is intrahepatic when it overlaps the liver
mask dilated by 2 mm; involvement = 100 x intrahepatic tumour / total liver;
non-tumorous remnant = total liver - intrahepatic tumour.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..geometry import Box, box_from_frame, box_in_frame, box_union, nonzero_bbox
from ..segmentation import MaskLayer, segment_number
from ..threads import Pending, in_background
from ..volume import Volume, sparse_zeros
from .context import Lesion, MeasurementContext
from .intrahepatic import DEFAULT_MARGIN_MM, margin_ball, touches_liver
from .lesion_instances import Instance, lesion_instances
from .lesions import OVERLAP_RULE, InstanceGeometry, LesionGrid, measure_instance

__all__ = [
    "DEFAULT_LESION_THREADS",
    "DEFAULT_MARGIN_MM",
    "BurdenResult",
    "lesion_threads",
    "measure_burden",
    "set_lesion_threads",
]

logger = logging.getLogger(__name__)

#: Lesion counts from which the per-lesion measurements run on a thread pool (when threads > 1).
_THREADS_FROM = 8
#: Threads that measure the lesions of one study by default: one. The per-lesion work is many small
#: numpy calls that hold the GIL; two threads on two cores measured 5 % slower than one at load
#: average 1 and 20 % slower under load (40 lesions, 200 slices; benchmarks/README.md).
DEFAULT_LESION_THREADS = 1
_LESION_THREADS: int | None = None


def set_lesion_threads(n: int | None) -> None:
    """Set how many threads measure the lesions of one study (``None``: :data:`DEFAULT_LESION_THREADS`).

    A worker of a pool of ``k`` processes (``netlm batch -j k``) caps it at
    ``cores // k``: the cores are already shared by the processes.
    """
    global _LESION_THREADS
    _LESION_THREADS = None if n is None else max(1, int(n))


def lesion_threads() -> int:
    """The number of threads :func:`measure_burden` uses for many lesions."""
    return _LESION_THREADS if _LESION_THREADS is not None else DEFAULT_LESION_THREADS


@dataclass
class BurdenResult:
    """Context plus the method facts and warnings of the burden measurement."""

    ctx: MeasurementContext
    method: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: (voxel count, exact integer intensity sum) of the total liver for binary masks on an integer
    #: image of at most 16 bits (None otherwise): its mean intensity without another pass over its box
    liver_sums: tuple[int, int] | None = None


#: Integer sums are exact in float64 below this magnitude (so either gives the same mean).
_EXACT_FLOAT = 2**53


def _exact_integer_sums(values: np.ndarray) -> bool:
    """Are masked sums of ``values`` exact integers (an integer image of at most 16 bits)?"""
    return values.dtype.kind in "iu" and values.dtype.itemsize <= 2 and values.size * 2**16 < _EXACT_FLOAT


def _liver_pass(
    liver_mask: np.ndarray, work: tuple[slice, slice, slice], values: np.ndarray, total_liver: np.ndarray
) -> tuple[int, int | None]:
    """Copy the liver mask's box into the (fresh) total-liver mask; its voxel count and intensity sum.

    Large array passes that release the GIL: :func:`measure_burden` runs this beside the lesions.
    """
    liver_w = liver_mask[work]
    total_liver[work] = liver_w
    n_liver = int(np.count_nonzero(liver_w))
    if not _exact_integer_sums(values):
        return n_liver, None
    return n_liver, int(np.add.reduce(values[work], axis=None, where=liver_w, dtype=np.int64))


def _union(layers: list[MaskLayer], shape: tuple[int, ...], threshold: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Boolean union and (if any layer is fractional) the max-fraction map.

    A single binary layer is returned as is (read-only, no copy); new arrays
    follow the memory order of the layers, so no strided copies are made.
    """
    if len(layers) == 1 and not layers[0].fractional:
        return layers[0].binary(threshold), None
    order: Literal["C", "F"] = "F" if layers and layers[0].mask.array.flags.f_contiguous else "C"
    mask = sparse_zeros(shape, bool, order)  # calloc: pages stay untouched until written
    frac: np.ndarray | None = None
    for layer in layers:
        if layer.fractional:
            if frac is None:
                frac = np.zeros(shape, dtype=np.float32, order=order)
            np.maximum(frac, layer.mask.array.astype(np.float32), out=frac)
            mask |= layer.mask.array > 0
        else:
            mask |= layer.binary(threshold)
    if frac is not None:
        frac = np.where(mask & (frac == 0), 1.0, frac).astype(np.float32)
    return mask, frac


def _role_layers(image: Volume, layers: list[MaskLayer]) -> tuple[list[MaskLayer], list[MaskLayer]]:
    """The liver and lesion layers, after checking every layer is on the image grid and one of them is given."""
    for layer in layers:
        if layer.mask.shape != image.shape:
            raise InputError(f"{layer.source}: mask is not on the image grid; reconcile grids first.")
    liver_layers = [la for la in layers if la.role == "liver"]
    lesion_layers = [la for la in layers if la.role == "lesion"]
    if not liver_layers and not lesion_layers:
        roles = sorted({la.role for la in layers}) or ["none"]
        raise InputError(
            f"{image.source}: the segmentation has no liver and no lesion mask (roles found: {', '.join(roles)}); "
            "map labels with --labels liver=N,lesion=M."
        )
    return liver_layers, lesion_layers


#: A measured instance: box, mask, weights, label, intrahepatic?, its geometry, its voxels inside the liver mask.
_Measured = tuple[Box, np.ndarray, np.ndarray | None, str | None, bool, InstanceGeometry, int]


def _measure_instances(
    image: Volume, instances: list[Instance], liver_mask: np.ndarray, has_liver: bool, margin_mm: float
) -> list[_Measured]:
    """Each instance's geometry and whether it is intrahepatic (on a thread pool for many lesions)."""
    ball = margin_ball(image, margin_mm)
    grid = LesionGrid.of(image)

    def _one(inst: Instance) -> _Measured:
        bb, m, w, name, stat = inst
        # lesion voxels inside the liver mask: any of them makes it intrahepatic without the 2 mm dilation
        in_liver = int(np.count_nonzero(m & liver_mask[bb])) if has_liver else 0
        inside = True if not has_liver else in_liver > 0 or touches_liver(liver_mask, bb, m, ball)
        geom = measure_instance(image, bb, m, weights=w, grid=grid, known=stat)
        return bb, m, w, name, inside, geom, in_liver

    threads = lesion_threads()
    if len(instances) < _THREADS_FROM or threads <= 1:
        return [_one(inst) for inst in instances]
    # lesions are independent and numpy releases the GIL in its larger loops
    from concurrent.futures import ThreadPoolExecutor

    # the largest boxes first (their numpy work runs without the GIL), so that the threads end on small ones
    big_first = sorted(range(len(instances)), key=lambda i: -instances[i][1].size)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {i: pool.submit(_one, instances[i]) for i in big_first}
        return [futures[i].result() for i in range(len(instances))]


def _lesion(lid: int, name: str | None, inside: bool, geom: InstanceGeometry) -> Lesion:
    return Lesion(
        id=lid,
        location="intrahepatic" if inside else "extrahepatic",
        volume_ml=geom.volume_ml,
        voxel_count=geom.voxel_count,
        centroid_lps_mm=list(geom.centroid_lps_mm),
        longest_axial_diameter_mm=geom.longest_axial_diameter_mm,
        short_axis_diameter_mm=geom.short_axis_diameter_mm,
        max_3d_diameter_mm=geom.max_3d_diameter_mm,
        # decided by classify.recist from the rules file's [recist] table (analyze and compare)
        recist_measurable=None,
        touches_image_border=geom.touches_image_border,
        mean_intensity=geom.mean_intensity,
        label=name,
        longest_axial_diameter_edge_mm=geom.longest_axial_diameter_edge_mm,
        short_axis_diameter_edge_mm=geom.short_axis_diameter_edge_mm,
        max_3d_diameter_edge_mm=geom.max_3d_diameter_edge_mm,
    )


@dataclass
class _Placed:
    """The numbered lesions, their label map and boxes, and the parts the totals need."""

    lesions: list[Lesion]
    labels: np.ndarray
    boxes: dict[int, Box]
    #: intrahepatic lesions: (box, mask, voxels outside the liver mask)
    intrahepatic: list[tuple[Box, np.ndarray, int]]
    extrahepatic: list[tuple[Box, np.ndarray]]
    #: intensity sum of the intrahepatic lesion voxels outside the liver mask (exact integers; None: unknown)
    outside_sum: int | None


def _place_lesions(image: Volume, measured: list[_Measured], liver_mask: np.ndarray) -> _Placed:
    """Number the measured lesions (in the order given) and write them into one label map."""
    # the narrowest type that holds every id: a uint8 map touches half the pages of a uint16 one
    label_dtype = np.uint8 if len(measured) < 255 else np.uint16 if len(measured) < 65535 else np.int32
    # calloc'ed, written only inside lesion boxes: untouched pages never become resident
    labels = sparse_zeros(image.shape, label_dtype, "F" if image.array.flags.f_contiguous else "C")
    placed = _Placed([], labels, {}, [], [], 0)
    for lid, (bb, m, _w, name, inside, geom, in_liver) in enumerate(measured, start=1):
        placed.boxes[lid] = bb
        np.copyto(labels[bb], lid, where=m)  # lesion masks are disjoint (components; OVERLAP_RULE)
        if not inside:
            placed.extrahepatic.append((bb, m))
        else:
            outside = geom.voxel_count - in_liver
            placed.intrahepatic.append((bb, m, outside))
            if placed.outside_sum is None or not outside:
                pass
            elif geom.intensity_sum is None:
                placed.outside_sum = None
            elif not in_liver:
                placed.outside_sum += geom.intensity_sum
            else:
                placed.outside_sum += int(image.array[bb][m & ~liver_mask[bb]].sum(dtype=np.int64))
        placed.lesions.append(_lesion(lid, name, inside, geom))
    return placed


@dataclass
class _Totals:
    """Liver and tumour totals: the total-liver mask, its box and sums, the volumes, and the extra facts."""

    total_liver: np.ndarray | None = None
    liver_bbox: Box | None = None
    liver_sums: tuple[int, int] | None = None
    liver_ml: float | None = None
    intra_ml: float = 0.0
    extra_ml: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _binary_totals(
    placed: _Placed,
    voxel_ml: float,
    liver_box: Box | None,
    liver_pass: Pending[tuple[int, int | None]] | None,
    total_liver: np.ndarray | None,
) -> _Totals:
    """Voxel-count totals: the total liver is the liver mask (filled beside the lesions) and the lesions inside."""
    # voxel counts: the lesion masks are disjoint and cover the lesion union (components; OVERLAP_RULE)
    n_union = sum(les.voxel_count for les in placed.lesions)
    n_intra = sum(les.voxel_count for les in placed.lesions if les.location == "intrahepatic")
    out = _Totals(intra_ml=n_intra * voxel_ml, extra_ml=(n_union - n_intra) * voxel_ml)
    if liver_pass is None or total_liver is None:
        return out
    n_liver, liver_only_sum = liver_pass.result()
    for bb, m, _outside in placed.intrahepatic:
        total_liver[bb] |= m
    n_total = n_liver + sum(outside for _bb, _m, outside in placed.intrahepatic)
    if liver_only_sum is not None and placed.outside_sum is not None:
        out.liver_sums = (n_total, liver_only_sum + placed.outside_sum)
    out.total_liver = total_liver
    out.liver_bbox = box_union(liver_box, *(bb for bb, _m, outside in placed.intrahepatic if outside))
    out.liver_ml = float(n_total) * voxel_ml
    out.extra["liver_mask_included_lesions"] = n_total == n_liver
    return out


def _fractional_totals(
    image: Volume,
    placed: _Placed,
    work: Box,
    liver: tuple[np.ndarray, np.ndarray | None] | None,
    lesion_union: np.ndarray,
    lesion_frac: np.ndarray | None,
    threshold: float,
) -> _Totals:
    """Fraction sums over the lesion union, the liver and the intrahepatic part, and their binary views."""
    voxel_ml = image.voxel_volume_ml
    union_w = lesion_union[work]
    intra_w = union_w
    if placed.extrahepatic:
        intra_w = union_w.copy()
        for bb, m in placed.extrahepatic:
            intra_w[box_in_frame(bb, work)] &= ~m
    lesion_frac_w = lesion_frac[work] if lesion_frac is not None else None
    lf = lesion_frac_w if lesion_frac_w is not None else union_w.astype(np.float32)
    extra_w = union_w & ~intra_w
    out = _Totals(
        intra_ml=float(lf[intra_w].sum(dtype=np.float64)) * voxel_ml,
        extra_ml=float(lf[extra_w].sum(dtype=np.float64)) * voxel_ml,
    )
    out.extra["intrahepatic_volume_ml_binary"] = float(np.count_nonzero(intra_w & (lf >= threshold))) * voxel_ml
    if liver is None:
        return out
    liver_mask, liver_frac = liver
    liver_w = liver_mask[work]
    total_w = liver_w | intra_w
    order: Literal["C", "F"] = "F" if image.array.flags.f_contiguous else "C"
    out.total_liver = sparse_zeros(image.shape, bool, order)  # calloc: only the box is ever written
    out.total_liver[work] = total_w
    total_box = nonzero_bbox(total_w)
    out.liver_bbox = box_from_frame(total_box, work) if total_box is not None else None
    n_total = int(np.count_nonzero(total_w))
    lvf = liver_frac[work] if liver_frac is not None else liver_w.astype(np.float32)
    combined = np.maximum(np.where(liver_w, lvf, 0.0), np.where(intra_w, lf, 0.0))
    out.liver_ml = float(combined.sum(dtype=np.float64)) * voxel_ml
    bin_liver = (np.where(liver_w, lvf, 0) >= threshold) | (intra_w & (lf >= threshold))
    out.extra["liver_volume_ml_binary"] = float(np.count_nonzero(bin_liver)) * voxel_ml
    out.extra["liver_mask_included_lesions"] = n_total == int(np.count_nonzero(liver_w))
    return out


def _segment_map(image: Volume, layers: list[MaskLayer], threshold: float, warnings: list[str]) -> np.ndarray | None:
    """The Couinaud segment label map (0 outside; overlaps go to the lowest segment number), None without one."""
    seg_layers = [la for la in layers if segment_number(la.role) is not None]
    if not seg_layers:
        return None
    segment_labels = np.zeros(image.shape, dtype=np.uint8, order="F" if image.array.flags.f_contiguous else "C")
    clash = False
    for layer in sorted(seg_layers, key=lambda la: segment_number(la.role) or 0):
        m = layer.binary(threshold)
        clash = clash or bool(np.any(segment_labels[m] != 0))
        segment_labels[m & (segment_labels == 0)] = segment_number(layer.role) or 0
    if clash:
        warnings.append("Couinaud segment masks overlap; each voxel was given the lowest segment number")
    return segment_labels


def _method(fractional: bool, instances: str, margin_mm: float, threshold: float) -> dict[str, Any]:
    """The report's ``method`` facts of the burden measurement."""
    method: dict[str, Any] = {
        "volume": "fractional_sum" if fractional else "voxel_count",
        "lesion_instances": instances,
        "lesion_overlap": OVERLAP_RULE if instances == "segments" else "none (connected components)",
        "intrahepatic_margin_mm": float(margin_mm),
        "distances": "between voxel centres, patient space (LPS mm)",
        "max_3d_diameter": "farthest pair of voxel centres, found on their convex hull",
        "axial_plane": "patient transverse plane",
    }
    if fractional:
        method["fractional_threshold"] = float(threshold)
    return method


def measure_burden(
    image: Volume,
    layers: list[MaskLayer],
    *,
    margin_mm: float = DEFAULT_MARGIN_MM,
    connectivity: int = 26,
    fractional_threshold: float = 0.5,
) -> BurdenResult:
    """Measure liver, tumour and lesions on the image grid.

    Parameters
    ----------
    image : Volume
        The image; every layer must already be on its grid.
    layers : list of MaskLayer
        Role layers (liver, lesion, spleen, segment1..8).
    margin_mm : float
        Intrahepatic margin (2 mm rule).
    connectivity : {26, 6}
        Lesion instances when one mask holds all lesions.
    fractional_threshold : float
        Threshold of the binary view of fractional masks.

    Returns
    -------
    BurdenResult

    Raises
    ------
    InputError
        If a liver mask is given but empty, or no liver and no lesion mask is given.
    """
    shape = image.shape
    warnings: list[str] = []
    liver_layers, lesion_layers = _role_layers(image, layers)
    fractional = any(la.fractional for la in (*liver_layers, *lesion_layers))
    liver_mask, liver_frac = _union(liver_layers, shape, fractional_threshold)
    liver_box = nonzero_bbox(liver_mask) if liver_layers else None
    if liver_layers and liver_box is None:
        srcs = ", ".join(sorted({la.source for la in liver_layers}))
        raise InputError(f"{srcs}: the liver mask is empty; check the label mapping (--labels liver=N) or the file.")
    has_liver = bool(liver_layers)
    if not has_liver:
        warnings.append(
            "no liver mask: lesion volumes are reported but liver volume and involvement are not computed; "
            "lesions are assumed to be hepatic"
        )
    lesion_union, lesion_frac = _union(lesion_layers, shape, fractional_threshold)
    lesion_box = nonzero_bbox(lesion_union) if lesion_layers else None
    # totals, inside the box holding the liver and every lesion (nothing outside it is set)
    work = box_union(liver_box, lesion_box)
    total_liver: np.ndarray | None = None
    liver_pass: Pending[tuple[int, int | None]] | None = None
    if work is not None and not fractional and has_liver:
        # total liver = liver mask UNION the intrahepatic lesions: the liver's part, beside the lesions
        order: Literal["C", "F"] = "F" if image.array.flags.f_contiguous else "C"
        total_liver = sparse_zeros(shape, bool, order)  # calloc: only the box is ever written
        liver_pass = in_background(functools.partial(_liver_pass, liver_mask, work, image.array, total_liver))
    instances, method_instances = lesion_instances(
        lesion_layers,
        lesion_union,
        lesion_box,
        lesion_frac,
        connectivity=connectivity,
        threshold=fractional_threshold,
        warnings=warnings,
    )
    measured = _measure_instances(image, instances, liver_mask, has_liver, margin_mm)
    if method_instances != "segments":
        # components are numbered by decreasing volume, then position (LPS): the same ids whatever the
        # array's axis order or memory layout; named segments keep the input's order
        measured.sort(key=lambda t: (-t[5].volume_ml, tuple(round(c, 3) for c in t[5].centroid_lps_mm)))
    placed = _place_lesions(image, measured, liver_mask)
    if work is None:
        totals = _Totals()
    elif not fractional:
        totals = _binary_totals(placed, image.voxel_volume_ml, liver_box, liver_pass, total_liver)
    else:
        liver = (liver_mask, liver_frac) if has_liver else None
        totals = _fractional_totals(image, placed, work, liver, lesion_union, lesion_frac, fractional_threshold)
    spleen_layers = [la for la in layers if la.role == "spleen"]
    ctx = MeasurementContext(
        image=image,
        liver=totals.total_liver,
        lesion_labels=placed.labels,
        lesions=placed.lesions,
        segment_labels=_segment_map(image, layers, fractional_threshold, warnings),
        spleen=_union(spleen_layers, shape, fractional_threshold)[0] if spleen_layers else None,
        liver_volume_ml=totals.liver_ml,
        intrahepatic_tumor_ml=totals.intra_ml,
        extrahepatic_tumor_ml=totals.extra_ml,
        header=dict(image.meta.get("header", {})),
        liver_bbox=totals.liver_bbox,
        lesion_boxes=placed.boxes,
    )
    method = _method(fractional, method_instances, margin_mm, fractional_threshold)
    return BurdenResult(ctx=ctx, method=method, warnings=warnings, extra=totals.extra, liver_sums=totals.liver_sums)
