"""Which image slices the contour planes of an RTSTRUCT ROI fill.

Private helper of :mod:`netlm_imaging.io.rtstruct` (which rasterises each plane in-plane).
A contour plane lies on an image slice (within :data:`SLICE_TOLERANCE` of its step) and
fills that slice; a plane between slices fills the adjacent slice its contours name
(ContourImageSequence), with a warning; other planes between slices are refused unless the
image was resampled (each slice then takes the nearest plane). A plane is a **slab** several image slices thick when
the structure set declares it (ContourSlabThickness (3006,0044), Source Pixel Planes
Characteristics (3006,004A); PS3.3 C.8.8.6.2/.4) or was drawn on a coarser series than the
image (its contour planes :data:`SLAB_RATIO` or more slices apart, another series referenced):
it fills the image slices within half its thickness.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ..errors import DicomError, GeometryError
from ..volume import Volume

__all__ = [
    "SLAB_RATIO",
    "SLICE_TOLERANCE",
    "ContourPlane",
    "declared_slab_mm",
    "image_slices",
    "referenced_images",
    "skipped_slices",
    "skipped_slices_note",
    "slab_assignment",
    "slab_of_other_series",
    "slice_assignment",
]

#: A contour lies on a slice when within this fraction of the slice step of it.
SLICE_TOLERANCE = 0.25


@dataclass
class ContourPlane:
    """The contours of one ROI in one plane (continuous slice index ``k_float``), in voxel units."""

    k_float: float
    polygons: list[np.ndarray] = field(default_factory=list)
    #: per polygon: ContourGeometricType CLOSEDPLANAR_XOR (the exporter declares the XOR combination)
    declared_xor: list[bool] = field(default_factory=list)
    #: the images its contours name (ContourImageSequence ReferencedSOPInstanceUID), where the file names them
    images: set[str] = field(default_factory=set)


def referenced_images(ds: Dataset) -> tuple[set[str], set[str]]:
    """(series UIDs, image SOP instance UIDs) the structure set says it was drawn on."""
    series: set[str] = set()
    images: set[str] = set()
    for ref_for in getattr(ds, "ReferencedFrameOfReferenceSequence", None) or []:
        for study in getattr(ref_for, "RTReferencedStudySequence", None) or []:
            for ser in getattr(study, "RTReferencedSeriesSequence", None) or []:
                if getattr(ser, "SeriesInstanceUID", None):
                    series.add(str(ser.SeriesInstanceUID))
                for img in getattr(ser, "ContourImageSequence", None) or []:
                    if getattr(img, "ReferencedSOPInstanceUID", None):
                        images.add(str(img.ReferencedSOPInstanceUID))
    return series, images


#: Contour planes of a structure set drawn on another series at least this many image slices apart are slabs.
SLAB_RATIO = 1.5


def slab_of_other_series(
    ds: Dataset, reference: Volume, roi_planes: list[list[ContourPlane]], contour_images: set[str] | None = None
) -> float | None:
    """The plane spacing (image slices) of a structure set drawn on a coarser series, or None.

    An RTSTRUCT drawn on the 5 mm reconstruction of an acquisition and read on its 2.5 mm one
    (same frame of reference) has its contour planes on every second image slice (or between
    slices): drawn only there, the slices between stay empty. When the structure set was drawn on
    another series than the image -- its contours' ContourImageSequence names images, none of them
    the image's, or else its RTReferencedSeriesSequence names other series only, none of its images
    the image's -- and the closest contour planes of its ROIs are at least :data:`SLAB_RATIO` slices
    apart, that spacing is the drawing series' slice step, and each contour plane is a slab of it.
    """
    own_images = {str(u) for u in reference.meta.get("sop_instance_uids") or []}
    if contour_images and own_images:  # (an image without its slices' UIDs cannot tell)
        if contour_images & own_images:
            return None
    else:
        own_series = reference.meta.get("series_instance_uid")
        series, images = referenced_images(ds)
        if not own_series or not series or own_series in series or images & own_images:
            return None
    gaps = [
        b.k_float - a.k_float
        for planes in roi_planes
        for a, b in itertools.pairwise(planes)
        if b.k_float - a.k_float > SLICE_TOLERANCE
    ]
    if not gaps or min(gaps) < SLAB_RATIO:
        return None
    step = min(gaps)
    for planes in roi_planes:  # every ROI's planes on that spacing, or it is not one drawing grid
        n = np.array([(p.k_float - planes[0].k_float) / step for p in planes])
        if n.size and float(np.max(np.abs(n - np.round(n)))) > 0.1:
            return None
    return float(step)


#: At most this many empty slices between two contoured slices whose outlines overlap are skipped slices.
MAX_SKIPPED = 3


def skipped_slices(mask: np.ndarray) -> list[int]:
    """The image slices an ROI's contours skip: empty, between two contoured slices whose fills overlap in-plane.

    A structure drawn on every second (or third) slice and not interpolated before export: the
    slices between are empty, as plastimatch, dcmrtstruct2nii and rt-utils leave them, while the
    outlines either side show the structure runs through them. Runs of more than
    :data:`MAX_SKIPPED` empty slices are taken as two structures one above the other.
    """
    ks = np.flatnonzero(mask.any(axis=(0, 1)))
    skipped: list[int] = []
    for a, b in itertools.pairwise(ks.tolist()):
        if 1 < b - a <= MAX_SKIPPED + 1 and bool(np.logical_and(mask[:, :, a], mask[:, :, b]).any()):
            skipped.extend(range(a + 1, b))
    return skipped


def _slice_list(ks: list[int], shown: int = 8) -> str:
    """Slice indices as ``4, 6, 8`` (the first ``shown`` and the count when there are more)."""
    head = ", ".join(str(k) for k in ks[:shown])
    return head if len(ks) <= shown else f"{head} ... ({len(ks)} in all)"


def skipped_slices_note(mask: np.ndarray, roi: str) -> str | None:
    """The warning for an ROI whose contours skip slices (:func:`skipped_slices`), or None."""
    skipped = skipped_slices(mask)
    if not skipped:
        return None
    return (
        f"ROI {roi}: no contour on image slice(s) {_slice_list(skipped)} between contoured slices whose "
        "outlines overlap (drawn on every 2nd or 3rd slice and not interpolated?); they are left empty, as "
        "plastimatch and rt-utils leave them, so the volume counts the contoured slices only and one structure "
        "may count as several lesions: interpolate the ROI in the planning system and export it again"
    )


def declared_slab_mm(rc: Dataset) -> tuple[float, str] | None:
    """The slab thickness (mm) an ROI's contours declare, and the attribute that says so, or None.

    ContourSlabThickness (3006,0044) on every contour (one value), else the SpacingBetweenSlices of the
    Source Pixel Planes Characteristics Sequence (3006,004A): the planes the contours were drawn on
    (PS3.3 C.8.8.6.2, C.8.8.6.4).
    """

    def positive(value: Any) -> float | None:
        try:
            v = abs(float(value))
        except (TypeError, ValueError):
            return None
        return v if np.isfinite(v) and v > 0 else None

    thick = [positive(getattr(c, "ContourSlabThickness", None)) for c in getattr(rc, "ContourSequence", None) or []]
    first = thick[0] if thick else None
    if first is not None and all(t == first for t in thick):
        return first, "ContourSlabThickness (3006,0044)"
    for item in getattr(rc, "SourcePixelPlanesCharacteristicsSequence", None) or []:
        spacing = positive(getattr(item, "SpacingBetweenSlices", None))
        if spacing is not None:
            return spacing, "Source Pixel Planes SpacingBetweenSlices (3006,004A)"
    return None


def slab_assignment(
    planes: list[ContourPlane],
    nk: int,
    slab: float,
    step_mm: float,
    source: str,
    roi: str,
    warnings: list[str],
    declared_by: str | None = None,
) -> list[tuple[int, ContourPlane]]:
    """(slice, plane) pairs when each contour plane is a slab ``slab`` slices thick (:func:`slab_of_other_series`).

    Plane ``p`` fills the image slices ``k`` with ``p - slab / 2 < k <= p + slab / 2``: a slice half-way
    between two planes goes to the lower one, so each plane fills ``slab`` slices on average and the
    volume is the drawing series' (two 2.5 mm slices per 5 mm plane).
    """
    ks = np.array([p.k_float for p in planes])
    half = 0.5 * slab
    if ks.min() + half < -0.5 or ks.max() - half > nk - 0.5:
        raise DicomError(
            f"{source}: ROI {roi} has contours outside the image (slice index {ks.min():.2f}.."
            f"{ks.max():.2f} of 0..{nk - 1}); pass the series the RTSTRUCT references."
        )
    pairs: list[tuple[int, ContourPlane]] = []
    for k in range(nk):
        d = k - ks
        inside = np.flatnonzero((d > -half + 1e-6) & (d <= half + 1e-6))
        if inside.size:
            pairs.append((k, planes[int(inside[np.argmin(np.abs(d[inside]))])]))
    why = (
        f"its contours are {slab * step_mm:.4g} mm slabs ({declared_by})"
        if declared_by
        else f"drawn on another series with contour planes {slab * step_mm:.4g} mm apart"
    )
    warnings.append(
        f"ROI {roi}: {why} (the image's slices {step_mm:.4g} mm); each contour plane fills the image "
        "slices within half that thickness of it (a slice half-way between two planes goes to the lower one)"
    )
    return pairs


def image_slices(reference: Volume) -> dict[str, int]:
    """SOP instance UID -> slice index of a single-frame series (empty for Enhanced or resampled images)."""
    uids = [str(u) for u in reference.meta.get("sop_instance_uids") or []]
    if reference.meta.get("resampled") or len(uids) != reference.shape[2] or len(set(uids)) != len(uids):
        return {}
    return {u: k for k, u in enumerate(uids)}


def _referenced_slices(
    off: list[ContourPlane], planes: list[ContourPlane], slices: dict[str, int]
) -> dict[int, int] | None:
    """id(plane) -> the slice its contours name, when every off-grid plane names one adjacent slice of the image.

    A contour plane between two slices whose contours' ContourImageSequence names one of those two
    images was drawn on that image (rt-utils places contours by this reference alone); two planes
    naming one slice, a plane naming no image, several images or a farther one are not decided.
    """
    if not slices:
        return None
    chosen: dict[int, int] = {}
    for p in off:
        ks = {slices.get(u, -1) for u in p.images}
        if len(ks) != 1:
            return None
        (k,) = ks
        if k < 0 or abs(k - p.k_float) >= 1.0:
            return None
        chosen[id(p)] = k
    on = [round(p.k_float) for p in planes if id(p) not in chosen]
    targets = [*chosen.values(), *on]
    return chosen if len(set(targets)) == len(targets) else None


def slice_assignment(
    planes: list[ContourPlane],
    nk: int,
    mode: str,
    source: str,
    roi: str,
    warnings: list[str],
    slices: dict[str, int] | None = None,
    names_own_series: bool = False,
) -> list[tuple[int, ContourPlane]]:
    """(slice, plane) pairs: on-slice planes directly, off-grid planes on the slice their contours name
    (``slices``: :func:`image_slices`), else nearest plane when allowed.

    ``names_own_series``: the structure set names the image's series (RTReferencedSeriesSequence), so
    contours beyond the image whose images are not among its slices mean an incomplete series.
    """
    off = [p for p in planes if abs(p.k_float - round(p.k_float)) > SLICE_TOLERANCE]
    named = _referenced_slices(off, planes, slices or {}) if off and mode != "nearest" else None
    if named is not None:
        worst = max(abs(named[id(p)] - p.k_float) for p in off)
        warnings.append(
            f"ROI {roi}: {len(off)} contour plane(s) lie between image slices (up to {worst:.2f} slice from the "
            "slice they name); each was filled on the image its ContourImageSequence names"
        )
        return [(named.get(id(p), round(p.k_float)), p) for p in planes]
    if not off:
        pairs: list[tuple[int, ContourPlane]] = [(round(p.k_float), p) for p in planes]
        outside = [k for k, _ in pairs if not 0 <= k < nk]
        absent = {u for k, p in pairs if not 0 <= k < nk for u in p.images if u not in (slices or {})}
        if outside and names_own_series and absent and slices:
            raise DicomError(
                f"{source}: ROI {roi} has contours on slice(s) {sorted(set(outside))[:5]} outside the image's "
                f"0..{nk - 1}; they name {len(absent)} image(s) of this series that are not among its {nk} "
                "slice(s): the series is incomplete. Export the complete series with the RTSTRUCT."
            )
        if outside:
            raise DicomError(
                f"{source}: ROI {roi} has contours on slice(s) {sorted(set(outside))[:5]} outside the "
                f"image's 0..{nk - 1}; the RTSTRUCT was drawn on another series. Pass the series it references."
            )
        return pairs
    if mode != "nearest" and slices and any(u in slices for q in off for u in q.images):
        p = off[0]
        raise GeometryError(
            f"{source}: ROI {roi} has contours between image slices (slice index {p.k_float:.2f}, "
            f"{len(off)} plane(s) off the grid) although they name this series' images, and the images they name "
            "do not give each plane one adjacent slice of its own; the structure set is inconsistent with the "
            "series. Re-export the RTSTRUCT from the planning system on this series."
        )
    if mode != "nearest":
        p = off[0]
        raise GeometryError(
            f"{source}: ROI {roi} has contours between image slices (slice index {p.k_float:.2f}, "
            f"{len(off)} plane(s) off the grid); the RTSTRUCT was drawn on another series or the image was "
            "resampled. Pass the series it references."
        )
    ks = np.array([p.k_float for p in planes])
    if ks.min() < -0.5 or ks.max() > nk - 0.5:
        raise DicomError(
            f"{source}: ROI {roi} has contours outside the image (slice index {ks.min():.2f}.."
            f"{ks.max():.2f} of 0..{nk - 1}); pass the series the RTSTRUCT references."
        )
    gaps = np.diff(ks)
    pairs = []
    for k in range(nk):
        n = int(np.argmin(np.abs(ks - k)))
        d = k - ks[n]
        if d >= 0:
            gap = gaps[n] if n < gaps.size else (gaps[n - 1] if n > 0 else 1.0)
        else:
            gap = gaps[n - 1] if n > 0 else (gaps[n] if gaps.size else 1.0)
        if abs(d) <= 0.5 * max(float(gap), 1.0) + 1e-9:
            pairs.append((k, planes[n]))
    warnings.append(
        f"ROI {roi}: {len(off)} contour plane(s) lie between slices of the (resampled) image; "
        "each slice took the nearest contour plane"
    )
    return pairs
