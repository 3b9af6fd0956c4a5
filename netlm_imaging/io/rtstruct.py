"""Rasterise DICOM RT Structure Sets (RTSTRUCT) onto a reference image grid.

The reading rules below decide together which voxels an ROI fills; which image slices a
contour plane fills (slices, slabs) lives in rtstruct_slices.py, the fill of one plane (XOR, twins, traced
outlines) in rtstruct_planes.py, the polygon fill in _polygon.py.

:func:`read_rtstruct` returns one :class:`~netlm_imaging.segmentation.MaskLayer`
per ROI, each a boolean mask on the grid of the reference image.

Rasterisation rule
------------------
1. Every CLOSED_PLANAR (and CLOSEDPLANAR_XOR) contour's points (patient LPS mm) are mapped into
   continuous voxel indices with :meth:`Volume.lps_to_index`, so oblique
   series are handled exactly like axial ones.
2. The contour must be planar in the reference slice plane: all its points
   within :data:`SLICE_TOLERANCE` slices of their mean ``k``; otherwise a
   :class:`~netlm_imaging.errors.GeometryError`.
3. Contours are matched to slices **by position**; ContourImageSequence (an optional
   attribute that exports drop) decides only a plane between slices. A contour plane
   within :data:`SLICE_TOLERANCE` of slice ``k`` is drawn on slice ``k``. A plane between
   slices whose contours name one of the two image slices beside it fills that slice, with
   a warning (a structure set drawn on this series, its positions offset or rounded by the
   exporter); any other plane between slices is an error, unless the reference was
   resampled (``reference.meta["resampled"]``, e.g. a non-uniform PET made
   regular) or ``off_slice="nearest"``: then each reference slice takes the
   contours of the nearest contour plane within half the plane spacing
   (nearest-neighbour along the slice normal) and a warning says so. A
   structure set drawn on **another series** (RTReferencedSeriesSequence names
   none of the image's) whose contour planes are at least :data:`SLAB_RATIO`
   slices apart was drawn on a coarser reconstruction: each plane is a slab of
   that spacing and fills the image slices within half of it (on or between
   image slices), with a warning. So does a contour whose slab the structure
   set declares, at least :data:`SLAB_RATIO` image slices thick:
   ContourSlabThickness (3006,0044), or the SpacingBetweenSlices of the Source
   Pixel Planes Characteristics Sequence (3006,004A) (PS3.3 C.8.8.6.2/.4).
   A slab extends along the slice planes' normal: its thickness is counted in
   plane separations (:attr:`Volume.slice_separation_mm`), and on a gantry-tilted
   grid, whose slices step off the normal, a slab's contours are moved by that
   step's in-plane drift onto each slice they fill (their footprint, not their
   index position, is kept).
4. In-plane, a voxel belongs to a contour when its **centre** is inside the
   polygon (even-odd rule, half-open on edges; :mod:`netlm_imaging.io._polygon`).
   Coordinates within :data:`SNAP_TOLERANCE` voxel of a centre are snapped to
   it first, so decimal round-off in ContourData cannot flip edge voxels.
   An ROI whose **every** vertex lies on a voxel centre was traced from a mask
   through its edge voxels' centres (rt-utils, cv2.findContours, for outer
   borders and holes alike): the voxels whose centres lie on its outlines are
   counted too (:data:`TRACED_RULE`, with a warning), so the mask comes back
   voxel for voxel instead of losing half its edge (rt-utils PR #141).
5. Contours on the same slice combine by **XOR**, so holes (a ring's inner
   contour) and islands inside holes come out right. Contours typed
   CLOSEDPLANAR_XOR (PS3.3 C.8.8.6.3, the exporter declaring the XOR) are
   combined exactly so, without the two checks below.
6. Contours exported with the same outline traversed twice (or more) keep one
   traversal, with a warning: filled even-odd per contour -- what plastimatch
   (``rasterize_slice``) and dcmrtstruct2nii (skimage ``draw.polygon``) do --
   the repeated outline would enclose nothing. A self-crossing (figure-eight)
   contour is filled by the same even-odd rule, every lobe once, as those
   tools do, with a warning; its zero *signed* area does not make it degenerate.
   A contour repeating another of its slice point for point is read once (XOR would
   erase the slice); outlines that cross without nesting are XOR-ed with a warning.
7. Guards: a contour without ContourGeometricType (Type 1, left out by some scripts) is
   read as CLOSED_PLANAR, as rt-utils, plastimatch and dcmrtstruct2nii read every contour,
   with a warning; an OPEN_PLANAR contour whose last point repeats its first is the closed outline
   it draws (read as CLOSED_PLANAR, with a warning); contours with fewer than 3 points (also 0: an
   emptied contour), zero area, other OPEN_PLANAR / OPEN_NONPLANAR / POINT contours are skipped with
   a warning; a contour that encloses no voxel centre (sub-pixel) changes nothing, so it can never erase
   a slice (vv PR #117).

Volumes from this rule differ from a TPS's planimetric numbers by a few per
cent for small structures (PEERS.md, platipy #218); the rule is recorded in
each mask's ``meta["rasterisation"]``.

References
----------
DICOM PS3.3 A.19 (RT Structure Set IOD), C.8.8.5 (Structure Set Module),
C.8.8.6 (ROI Contour Module).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ..errors import DicomError, GeometryError, ResourceLimitError
from ..segmentation import MaskLayer
from ..volume import Volume
from ._dicom_extent import cut_short
from ._dicom_files import without_preamble
from ._dicom_guard import guard_malformed
from ._dicom_resampled import nearest_original_slices, resampled_note
from ._inflate import dcmread as bounded_dcmread
from ._polygon import collapse_repeated_traversal, ends_on_its_start, fill_polygon, shoelace_area
from .budget import check_voxel_budget
from .formats import RTSTRUCT_SOP_CLASS
from .label_spec import LabelSpec
from .role_checks import flag_for
from .role_decision import RoleDecision
from .role_precedence import assign_roles
from .rtstruct_planes import TRACED_RULE, fill_plane, fill_planes
from .rtstruct_slices import (
    SLAB_RATIO,
    SLICE_TOLERANCE,
    ContourPlane,
    declared_slab_mm,
    image_slices,
    referenced_images,
    skipped_slices_note,
    slab_assignment,
    slab_of_other_series,
    slice_assignment,
)

__all__ = [
    "RASTERISATION_RULE",
    "RTSTRUCT_SOP_CLASS",
    "SLICE_TOLERANCE",
    "TRACED_RULE",
    "RoiInfo",
    "read_rt_rois",
    "read_rtstruct",
]

logger = logging.getLogger(__name__)

#: RT Structure Set Storage SOP class.
#: Contour coordinates within this many voxels of a voxel centre are snapped onto it, so that the
#: rounding of stored decimal strings does not decide the half-open edge rule.
SNAP_TOLERANCE = 1e-4
#: Area below which a contour is degenerate (mm^2).
MIN_AREA_MM2 = 1e-6
#: ContourGeometricType values that enclose a region (PS3.3 C.8.8.6.1; CLOSEDPLANAR_XOR: combined by XOR, C.8.8.6.3).
REGION_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")
#: The rule, as recorded in every mask's meta.
RASTERISATION_RULE = "voxel centre inside polygon (even-odd, half-open edges); contours on a slice combined by XOR"


@dataclass(frozen=True)
class RoiInfo:
    """One ROI of a structure set."""

    number: int
    name: str
    code: tuple[str, str] | None
    frame_of_reference_uid: str | None
    interpreted_type: str | None = None
    meaning: str = ""

    def describe(self) -> str:
        """``3 'BODY'`` for messages."""
        return f"{self.number} {self.name!r}"


def _read(path: Path) -> Dataset:
    source = str(path)
    if not path.is_file():
        raise DicomError(f"{source}: file not found; check the --seg path.")
    if path.stat().st_size == 0:
        raise DicomError(f"{source}: file is empty (0 bytes); export the RTSTRUCT again.")
    try:
        ds = bounded_dcmread(str(path), force=without_preamble(path))  # no preamble: old planning-system exports
    except ResourceLimitError:  # a deflate bomb or an oversized header: say so
        raise
    except Exception as exc:  # InvalidDicomError, EOFError, ... on broken files
        raise DicomError(
            f"{source}: not a readable DICOM file ({type(exc).__name__}: {exc}); export it again."
        ) from exc
    if cut_short(path):
        raise DicomError(
            f"{source}: the RTSTRUCT file is truncated (it ends before the lengths its elements declare: an "
            "interrupted copy or export), so its last ROIs or contours are missing; export it again."
        )
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop != RTSTRUCT_SOP_CLASS:
        raise DicomError(
            f"{source}: SOPClassUID {sop or '(missing)'} is not an RT Structure Set ({RTSTRUCT_SOP_CLASS}); "
            "pass an RTSTRUCT, a DICOM SEG or a label map to --seg."
        )
    if "StructureSetROISequence" not in ds:
        raise DicomError(f"{source}: the RTSTRUCT has no StructureSetROISequence; the file is incomplete or truncated.")
    return ds


def _rois(ds: Dataset, source: str) -> list[RoiInfo]:
    codes: dict[int, tuple[str, str]] = {}
    meanings: dict[int, str] = {}
    types: dict[int, str] = {}
    for obs in getattr(ds, "RTROIObservationsSequence", None) or []:
        if "ReferencedROINumber" not in obs:
            continue
        ref = int(obs.ReferencedROINumber)
        itype = str(getattr(obs, "RTROIInterpretedType", "") or "").strip()
        if itype:
            types[ref] = itype
        seq = getattr(obs, "RTROIIdentificationCodeSequence", None)
        if seq:
            c = seq[0]
            codes[ref] = (str(getattr(c, "CodingSchemeDesignator", "")), str(getattr(c, "CodeValue", "")))
            meanings[ref] = str(getattr(c, "CodeMeaning", "") or "")
    out: list[RoiInfo] = []
    for item in ds.StructureSetROISequence:
        if "ROINumber" not in item:
            raise DicomError(f"{source}: a StructureSetROISequence item has no ROINumber; the RTSTRUCT is invalid.")
        num = int(item.ROINumber)
        name = str(getattr(item, "ROIName", "") or f"ROI {num}")
        for_uid = str(getattr(item, "ReferencedFrameOfReferenceUID", "") or "") or None
        out.append(RoiInfo(num, name, codes.get(num), for_uid, types.get(num), meanings.get(num, "")))
    return out


def read_rt_rois(path: str | Path) -> list[RoiInfo]:
    """List the ROIs of an RTSTRUCT (number, name, identification code, frame of reference).

    Raises
    ------
    DicomError
        If the file is not a readable RTSTRUCT.
    """
    p = Path(path)
    return _rois(_read(p), str(p))


def _structure_set_for(ds: Dataset) -> set[str]:
    return {
        str(item.FrameOfReferenceUID)
        for item in getattr(ds, "ReferencedFrameOfReferenceSequence", None) or []
        if getattr(item, "FrameOfReferenceUID", None)
    }


def _check_frames_of_reference(
    ds: Dataset, rois: list[RoiInfo], roles: dict[int, str], ref_for: str, source: str
) -> None:
    """Refuse an ROI that is used (has a role) and lies in another frame of reference than the image.

    A structure set may cover several frames of reference (ReferencedFrameOfReferenceSequence lists
    each; planning systems put ROIs drawn on a registered MR or an earlier CT beside the planning
    CT's, OHIF #3537, rt-utils #76): ROIs of another frame of reference that get no role (or
    ``ignore``) are left out with a note; one that is used is an error, as contours cannot be placed
    on an image of another frame of reference. An ROI without its own ReferencedFrameOfReferenceUID
    is in the structure set's frame of reference when it lists exactly one.
    """
    listed = _structure_set_for(ds)
    default = next(iter(listed)) if len(listed) == 1 else None
    frames = {roi.number: roi.frame_of_reference_uid or default for roi in rois}
    for roi in rois:
        for_uid = frames[roi.number]
        if for_uid in (None, ref_for):
            continue
        if roles.get(roi.number) in (None, "ignore"):
            logger.info(
                "%s: ROI %s is in frame of reference %s, not the image's; unused", source, roi.describe(), for_uid
            )
            continue
        other = ""
        keep = [r for r in rois if frames[r.number] in (None, ref_for) and roles.get(r.number) not in (None, "ignore")]
        items = [f'{roles[r.number]}="{r.name}"' for r in keep] + [f'ignore="{roi.name}"']
        if keep and all(flag_for(r.name).startswith("--labels ") for r in [*keep, roi]):  # names --labels can carry
            other = f"; or read the {len(keep)} ROI(s) on the image with --labels {','.join(items)}"
        raise DicomError(
            f"{source}: ROI {roi.describe()}: its FrameOfReferenceUID {for_uid} differs from the image's {ref_for}; "
            f"it belongs to another image. Pass the series it references{other}."
        )


def _normal_drift(reference: Volume) -> np.ndarray | None:
    """In-plane index offset (i, j) per slice of a point moving along the slice normal; None on an orthogonal grid.

    On a gantry-tilted grid the slices' origins move off the normal, so a contour's footprint on a
    neighbouring slice (a slab's, or a contour plane's between slices) lies this far from its own
    index position: ``A^-1`` of the normal step of one slice separation is ``(di, dj, 1)``.
    """
    if not reference.sheared:
        return None
    a3 = reference.affine[:3, :3]
    step = np.linalg.solve(a3, reference.slice_normal * reference.slice_separation_mm)
    return np.asarray(step[:2], dtype=np.float64)


def _fill_off_plane(
    plane: ContourPlane, k: int, drift: np.ndarray | None, fill: np.ndarray, shape: tuple[int, int], roi: RoiInfo
) -> np.ndarray:
    """The in-plane mask of ``plane`` on slice ``k``: its fill moved along the slice normal onto that slice.

    ``fill`` (the plane rasterised at its own index position) serves on an orthogonal grid and whenever
    the move is below :data:`SNAP_TOLERANCE`; on a sheared grid the contours are shifted by the normal's
    in-plane drift (:func:`_normal_drift`) and filled again (their warnings were given for ``fill``).
    """
    if drift is None:
        return fill
    off = (k - plane.k_float) * drift
    if float(np.max(np.abs(off))) < SNAP_TOLERANCE:
        return fill
    moved = []
    for poly in plane.polygons:
        ij = poly + off
        snapped = np.round(ij)
        moved.append(np.where(np.abs(ij - snapped) < SNAP_TOLERANCE, snapped, ij))
    return fill_plane(ContourPlane(float(k), moved, list(plane.declared_xor)), shape, 1.0, roi.describe(), [])


def _planes_of_roi(
    contours: list[Dataset], reference: Volume, roi: RoiInfo, source: str, warnings: list[str]
) -> list[ContourPlane]:
    """Map an ROI's closed planar contours to index space and group them by plane."""
    sp = reference.spacing
    planes: list[ContourPlane] = []
    ni, nj, _ = reference.shape
    for n, c in enumerate(contours, start=1):
        gtype = str(getattr(c, "ContourGeometricType", "") or "").upper()
        raw = getattr(c, "ContourData", None)
        npts = 0 if raw is None else len(raw) // 3
        where = f"ROI {roi.describe()} contour {n}"
        if not gtype and npts >= 3:  # Type 1, yet left out by some exporters: peers fill every contour as a polygon
            warnings.append(
                f"{where}: no ContourGeometricType; read as CLOSED_PLANAR (as rt-utils, plastimatch and "
                "dcmrtstruct2nii read every contour)"
            )
            gtype = "CLOSED_PLANAR"
        if gtype == "OPEN_PLANAR" and ends_on_its_start(raw, npts):
            warnings.append(
                f"{where}: OPEN_PLANAR contour whose last point repeats its first; read as the closed outline it "
                "draws (CLOSED_PLANAR), as rt-utils, plastimatch and dcmrtstruct2nii fill every contour"
            )
            gtype = "CLOSED_PLANAR"
        if gtype not in REGION_TYPES:
            warnings.append(
                f"{where}: {gtype or 'untyped'} contour ignored (only CLOSED_PLANAR and CLOSEDPLANAR_XOR are regions)"
            )
            continue
        if raw is not None and len(raw) % 3 != 0:
            raise DicomError(f"{source}: {where}: ContourData does not hold x,y,z triplets; the RTSTRUCT is corrupt.")
        if raw is None or npts < 3:  # NumberOfContourPoints 0 is an emptied contour, not a damaged file
            warnings.append(f"{where}: contour with {npts} point(s) ignored (a region needs 3)")
            continue
        pts = np.asarray([float(v) for v in raw], dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(pts)):
            raise DicomError(f"{source}: {where}: ContourData holds NaN or inf; the RTSTRUCT is corrupt.")
        idx = reference.lps_to_index(pts)
        idx, turns = collapse_repeated_traversal(idx, tol=SNAP_TOLERANCE)
        if turns > 1:
            warnings.append(
                f"{where}: the contour goes round the same outline {turns} times; one traversal kept (filled "
                "even-odd per contour, as plastimatch and dcmrtstruct2nii fill, the repeated outline would enclose "
                "nothing)"
            )
        k_mean = float(idx[:, 2].mean())
        spread = float(np.max(np.abs(idx[:, 2] - k_mean)))
        if spread > SLICE_TOLERANCE:
            raise GeometryError(
                f"{source}: {where} is not in a slice plane of the image (points spread over "
                f"{2 * spread:.2f} slices); the RTSTRUCT was drawn on a differently oriented series. "
                "Pass the image series it references."
            )
        ij = idx[:, :2]
        snapped = np.round(ij)
        ij = np.where(np.abs(ij - snapped) < SNAP_TOLERANCE, snapped, ij)
        area_px = shoelace_area(ij)
        if area_px * float(sp[0] * sp[1]) < MIN_AREA_MM2:
            # zero *signed* area: a degenerate contour, or a figure-eight whose lobes wind opposite ways
            if not fill_polygon(ij, (ni, nj)).any():
                warnings.append(f"{where}: zero-area contour ignored")
                continue

        if ij[:, 0].min() < -0.5 or ij[:, 1].min() < -0.5 or ij[:, 0].max() > ni - 0.5 or ij[:, 1].max() > nj - 0.5:
            warnings.append(f"{where}: contour extends beyond the image field of view; the part outside is lost")
        images = {
            str(img.ReferencedSOPInstanceUID)
            for img in getattr(c, "ContourImageSequence", None) or []
            if getattr(img, "ReferencedSOPInstanceUID", None)
        }
        for plane in planes:
            if abs(plane.k_float - k_mean) <= SLICE_TOLERANCE:
                plane.polygons.append(ij)
                plane.declared_xor.append(gtype == "CLOSEDPLANAR_XOR")
                plane.images |= images
                break
        else:
            planes.append(ContourPlane(k_mean, [ij], [gtype == "CLOSEDPLANAR_XOR"], images))
    planes.sort(key=lambda p: p.k_float)
    return planes


@guard_malformed("RTSTRUCT")
def read_rtstruct(
    path: str | Path,
    reference: Volume,
    spec: LabelSpec,
    *,
    max_voxels: int | None = None,
    off_slice: str = "auto",
    role_log: list[RoleDecision] | None = None,
) -> list[MaskLayer]:
    """Rasterise the ROIs of an RTSTRUCT on a reference image grid.

    Parameters
    ----------
    path : str or Path
        The RTSTRUCT file.
    reference : Volume
        The image whose grid the masks are drawn on (normally the series the
        structure set references).
    spec : LabelSpec
        ROI name -> role mapping (:func:`~netlm_imaging.io.role_precedence.role_for_segment`
        with the ROIName and the RTROIIdentificationCodeSequence code, if any).
    max_voxels : int, optional
        Voxel budget for the reference grid.
    off_slice : {"auto", "error", "nearest"}
        What to do with contour planes between slices: ``"error"`` refuses,
        ``"nearest"`` gives every slice the nearest contour plane within half
        the plane spacing, ``"auto"`` is ``"nearest"`` when
        ``reference.meta["resampled"]`` is true, else ``"error"``.

    Returns
    -------
    list of MaskLayer
        One per ROI not mapped to ``ignore``, in StructureSetROISequence order.
        ``mask.meta`` holds ``sop_instance_uid``, ``series_instance_uid``,
        ``roi_number``, ``roi_name``, ``n_contours``, ``n_contours_used``,
        ``rasterisation`` and ``warnings``.

    Raises
    ------
    DicomError
        Unreadable file, not an RTSTRUCT, frame of reference mismatch, contours outside the image.
    GeometryError
        Contours not in the slice planes, or between slices (see ``off_slice``).
    LabelError
        No ROI is a liver or a lesion (without ``role_log``), or a ``--labels`` name matches no ROI.
    ResourceLimitError
        Reference grid above ``max_voxels``.
    """
    if off_slice not in ("auto", "error", "nearest"):
        raise ValueError(f"off_slice must be 'auto', 'error' or 'nearest', got {off_slice!r}")
    p = Path(path)
    source = str(p)
    check_voxel_budget(reference.shape, max_voxels, f"{source} (reference grid)")
    ds = _read(p)
    rois = _rois(ds, source)
    ref_for = reference.frame_of_reference_uid
    listed = _structure_set_for(ds) | {r.frame_of_reference_uid for r in rois if r.frame_of_reference_uid}
    if ref_for and listed and ref_for not in listed:
        raise DicomError(
            f"{source}: the structure set's FrameOfReferenceUID {sorted(listed)[0]} differs from the image's "
            f"{ref_for}; the RTSTRUCT belongs to another image. Pass the series it references."
        )
    roles = assign_roles(rois, spec, source, noun="ROIs", log=role_log)
    if ref_for:
        _check_frames_of_reference(ds, rois, roles, ref_for, source)
    mode = off_slice
    if mode == "auto":
        mode = "nearest" if reference.meta.get("resampled") else "error"
    contours_by_roi: dict[int, list[Dataset]] = {}
    declared_slabs: dict[int, tuple[float, str]] = {}
    for rc in getattr(ds, "ROIContourSequence", None) or []:
        if "ReferencedROINumber" in rc:
            contours_by_roi.setdefault(int(rc.ReferencedROINumber), []).extend(
                list(getattr(rc, "ContourSequence", None) or [])
            )
            declared = declared_slab_mm(rc)
            if declared is not None:
                declared_slabs[int(rc.ReferencedROINumber)] = declared
    ni, nj, nk = reference.shape
    drift = _normal_drift(reference)
    kmap = nearest_original_slices(reference)  # a resampled reference: fill its slices from the original ones
    fill_note = None if kmap is None else resampled_note(kmap)
    layers: list[MaskLayer] = []
    used = [roi for roi in rois if roles.get(roi.number) not in (None, "ignore")]
    roi_warnings: dict[int, list[str]] = {roi.number: [] for roi in used}
    roi_planes = {
        roi.number: _planes_of_roi(
            contours_by_roi.get(roi.number, []), reference, roi, source, roi_warnings[roi.number]
        )
        for roi in used
    }
    contour_images = {  # the images the used ROIs' contours were drawn on, where the file names them
        str(img.ReferencedSOPInstanceUID)
        for roi in used
        for c in contours_by_roi.get(roi.number, [])
        for img in getattr(c, "ContourImageSequence", None) or []
        if getattr(img, "ReferencedSOPInstanceUID", None)
    }
    slab = slab_of_other_series(ds, reference, list(roi_planes.values()), contour_images)
    own_slices = image_slices(reference)
    names_own = reference.meta.get("series_instance_uid") in referenced_images(ds)[0]
    for roi in used:
        role = roles[roi.number]
        warnings = roi_warnings[roi.number]
        contours = contours_by_roi.get(roi.number, [])
        planes = roi_planes[roi.number]
        step_mm = reference.slice_separation_mm  # a slab's thickness is across the planes (a tilt's step is longer)
        declared = declared_slabs.get(roi.number)
        along = drift  # slabs extend along the normal; a contour on a slice plane is filled where it lies
        if not planes:
            pairs = []
        elif declared is not None and declared[0] >= SLAB_RATIO * step_mm:  # the exporter says how thick
            pairs = slab_assignment(
                planes, nk, declared[0] / step_mm, step_mm, source, roi.describe(), warnings, declared[1]
            )
        elif slab is not None:
            pairs = slab_assignment(planes, nk, slab, step_mm, source, roi.describe(), warnings)
        else:
            pairs = slice_assignment(planes, nk, mode, source, roi.describe(), warnings, own_slices, names_own)
            along = None
        mask = np.zeros(reference.shape, dtype=bool)
        filled, traced = fill_planes(
            planes, (ni, nj), float(reference.spacing[0] * reference.spacing[1]), roi.describe(), warnings
        )
        for k, plane in pairs:
            mask[:, :, k] |= _fill_off_plane(plane, k, along, filled[id(plane)], (ni, nj), roi)
        skipped = skipped_slices_note(mask, roi.describe()) if along is None else None
        if skipped:
            warnings.append(skipped)
        if kmap is not None and fill_note is not None and mask.any():
            mask = np.ascontiguousarray(mask[:, :, kmap])
            warnings.append(f"ROI {roi.describe()}: {fill_note}")
        n_used = sum(len(pl.polygons) for pl in planes)
        if not contours:
            warnings.append(f"ROI {roi.describe()} has no contours")
        if not mask.any():
            logger.warning("%s: ROI %s rasterises to an empty mask", source, roi.describe())
            warnings.append(f"ROI {roi.describe()} is empty on this grid")
        meta: dict[str, Any] = {
            "sop_instance_uid": str(getattr(ds, "SOPInstanceUID", "")),
            "series_instance_uid": str(getattr(ds, "SeriesInstanceUID", "")),
            "sop_class_uid": RTSTRUCT_SOP_CLASS,
            "roi_number": roi.number,
            "roi_name": roi.name,
            "n_contours": len(contours),
            "n_contours_used": n_used,
            "rasterisation": RASTERISATION_RULE + (TRACED_RULE if traced else ""),
            "warnings": warnings,
        }
        for w in warnings:
            logger.info("%s: %s", source, w)
        layers.append(
            MaskLayer(role, reference.with_array(mask, source=source, meta=meta), label=roi.name, source=source)
        )
    return layers
