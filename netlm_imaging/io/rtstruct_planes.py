"""The in-plane reading of one RTSTRUCT contour plane: fill, XOR, and the checks on the way (private).

:func:`fill_plane` fills the contours of one plane (voxel centres, :mod:`._polygon`) and combines them
by XOR, reading a repeated twin once and warning about crossing outlines; :func:`fill_planes` does so
for every plane of an ROI and, for an ROI traced through voxel centres, adds the voxels on the outlines
(:data:`TRACED_RULE`). The rules are listed in :mod:`netlm_imaging.io.rtstruct`.
"""

from __future__ import annotations

import numpy as np

from ._polygon import add_outline_centres, fill_polygon, on_centres, shoelace_area
from .rtstruct_slices import ContourPlane

__all__ = ["TRACED_RULE", "fill_plane", "fill_planes"]


#: Added to the rule for an ROI whose every vertex lies on a voxel centre (see :func:`~._polygon.add_outline_centres`).
TRACED_RULE = "; outlines traced through voxel centres also take the centres on them"


def fill_planes(
    planes: list[ContourPlane], shape: tuple[int, int], pixel_mm2: float, roi: str, warnings: list[str]
) -> tuple[dict[int, np.ndarray], bool]:
    """The in-plane mask of every plane of one ROI (keyed by ``id(plane)``), and whether it was traced.

    An ROI whose every vertex lies on a voxel centre was traced from a mask through its edge voxels'
    centres (rt-utils, cv2.findContours): the voxels on its outlines are added
    (:func:`~._polygon.add_outline_centres`), with one warning saying how many. ``roi`` names the
    ROI in the warnings (:meth:`netlm_imaging.io.rtstruct.RoiInfo.describe`, e.g. ``3 'GTV'``).
    """
    traced = bool(planes) and all(on_centres(poly) for pl in planes for poly in pl.polygons)
    filled: dict[int, np.ndarray] = {}
    on_outline = 0
    for plane in planes:
        fill = fill_plane(plane, shape, pixel_mm2, roi, warnings)
        if traced:
            on_outline += add_outline_centres(fill, plane.polygons)
        filled[id(plane)] = fill
    if traced:
        warnings.append(
            f"ROI {roi}: every contour vertex lies on a voxel centre, as in outlines traced through "
            f"the edge voxels of a mask (rt-utils, OpenCV); the {on_outline} voxel(s) whose centres lie on the "
            "outlines are counted, as in the mask they were traced from (rt-utils PR #141)"
        )
    return filled, traced


def fill_plane(
    plane: ContourPlane, shape: tuple[int, int], pixel_mm2: float, roi: str, warnings: list[str]
) -> np.ndarray:
    """The in-plane mask of one contour plane: its contours filled (voxel centres) and combined by XOR.

    A CLOSED_PLANAR contour repeating another point for point is read once, and crossing outlines get a
    warning (:func:`_warn_partial_overlap`); CLOSEDPLANAR_XOR contours are combined as the exporter declares.
    """
    acc = np.zeros(shape, dtype=bool)
    outlines: list[frozenset[tuple[float, float]]] = []
    for poly, declared_xor in zip(plane.polygons, plane.declared_xor):
        outline = _outline_key(poly)
        if outline in outlines and not declared_xor:  # XOR with its twin would erase the region on this slice
            warnings.append(
                f"ROI {roi}: a contour on slice index {plane.k_float:.2f} repeats another contour "
                "of the slice point for point; the copy was ignored (combined by XOR it would erase the region)"
            )
            continue
        outlines.append(outline)
        fill = fill_polygon(poly, shape)
        if not fill.any():
            warnings.append(
                f"ROI {roi}: a contour on slice index {plane.k_float:.2f} encloses no voxel "
                f"centre (area {shoelace_area(poly) * pixel_mm2:.3g} mm^2); it changes nothing"
            )
            continue
        n_fill = int(np.count_nonzero(fill))
        if n_fill >= 4 and shoelace_area(poly) < 0.5 * n_fill:  # lobes winding opposite ways cancel
            warnings.append(
                f"ROI {roi}: a contour on slice index {plane.k_float:.2f} crosses itself "
                "(figure-eight); filled by the even-odd rule, every lobe once, as plastimatch and "
                "dcmrtstruct2nii do"
            )
        if not declared_xor:
            _warn_partial_overlap(acc, fill, roi, plane.k_float, warnings)
        np.logical_xor(acc, fill, out=acc)
    return acc


def _outline_key(poly: np.ndarray) -> frozenset[tuple[float, float]]:
    """The contour's points (voxel units, to 1e-3 voxel) whatever its start point and direction."""
    return frozenset(map(tuple, np.round(poly, 3).tolist()))


def _warn_partial_overlap(acc: np.ndarray, fill: np.ndarray, roi: str, k: float, warnings: list[str]) -> None:
    """Warn when a contour overlaps the slice's earlier ones without being nested (XOR then cuts the overlap out).

    A hole lies inside the region (``fill`` within ``acc``), an outline around it (``acc`` within
    ``fill``), an island apart from it: XOR gives what they mean. Two outlines that cross each other
    are neither; XOR (the DICOM reading, as platipy and dcmrtstruct2nii combine) removes their
    overlap, where a union would keep it, so the report says how many voxels that is.
    """
    inter = np.logical_and(acc, fill)
    n = int(np.count_nonzero(inter))
    if n == 0 or n == int(np.count_nonzero(fill)) or n == int(np.count_nonzero(acc)):
        return
    warnings.append(
        f"ROI {roi}: contours on slice index {k:.2f} overlap without one lying inside the other; "
        f"combined by XOR (the DICOM even-odd reading), their {n} shared voxel(s) are left out"
    )
