"""The one geometry object: :class:`Volume`.

Convention
----------
A ``Volume`` holds a 3-D numpy array indexed ``array[i, j, k]`` and a 4x4
affine mapping the voxel index ``(i, j, k, 1)`` to **DICOM patient
coordinates (LPS, millimetres)**, the convention highdicom uses. NIfTI (RAS)
is converted at the loader boundary (``netlm_imaging.io``) and nowhere else.

Spacing and voxel volume are derived from the affine only, never from header
fields such as NIfTI pixdim or DICOM SliceThickness.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import geometry
from .errors import GeometryError, InputError

# their home is geometry; kept here for callers
from .geometry import nonzero_bbox, nonzero_count, remember_nonzero_bbox

__all__ = [
    "DIRECTION_TOLERANCE",
    "ORIGIN_TOLERANCE_MM",
    "SPACING_TOLERANCE_MM",
    "Volume",
    "lps_to_ras",
    "nonzero_bbox",
    "nonzero_count",
    "ras_to_lps",
    "remember_nonzero_bbox",
]

#: Grids whose origins differ by less than this are the same grid (mm).
ORIGIN_TOLERANCE_MM = 1e-3 * 10  # 0.01 mm
#: Grids whose spacings differ by less than this are the same grid (mm).
SPACING_TOLERANCE_MM = 1e-3
#: Direction cosines that differ by less than this are the same direction.
DIRECTION_TOLERANCE = 1e-4
#: Orthogonality tolerance of the direction cosines when building a Volume.
ORTHOGONALITY_TOLERANCE = 1e-3
#: A sheared grid (gantry tilt) is a Volume when its slice axis leans off the normal of the plane of the
#: other two (which must be orthogonal) by at most this angle (CT gantries tilt up to about 30 degrees).
MAX_SHEAR_DEG = 45.0

_RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ras_to_lps(affine_ras: np.ndarray) -> np.ndarray:
    """Convert an index->RAS affine to index->LPS.

    Parameters
    ----------
    affine_ras : numpy.ndarray
        4x4 affine to RAS+ (NIfTI world) coordinates.

    Returns
    -------
    numpy.ndarray
        4x4 affine to LPS coordinates.
    """
    return _RAS_LPS @ np.asarray(affine_ras, dtype=np.float64)


def lps_to_ras(affine_lps: np.ndarray) -> np.ndarray:
    """Convert an index->LPS affine to index->RAS (the inverse of :func:`ras_to_lps`)."""
    return _RAS_LPS @ np.asarray(affine_lps, dtype=np.float64)


def _shear_axis(affine: np.ndarray) -> int | None:
    """2 on a gantry-tilt shear, else None (an orthogonal grid, or a shear of another kind).

    A gantry-tilted CT series has orthogonal row and column directions (array axes 0 and 1); its
    slices step along the table, off the slice normal. So the third axis leans off the normal of
    the plane of the other two by more than the orthogonality tolerance and at most
    :data:`MAX_SHEAR_DEG`, and those two are orthogonal. (Readers put the slices on the third axis,
    as DICOM series and dcm2niix's sheared NIfTI do.)
    """
    cols = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(cols, axis=0)
    if np.any(norms < 1e-6):
        return None
    unit = cols / norms
    gram = unit.T @ unit
    if np.allclose(gram, np.eye(3), atol=ORTHOGONALITY_TOLERANCE) or abs(float(gram[0, 1])) > ORTHOGONALITY_TOLERANCE:
        return None
    n = np.cross(unit[:, 0], unit[:, 1])
    cos = abs(float(n @ unit[:, 2])) / float(np.linalg.norm(n))
    return 2 if cos >= math.cos(math.radians(MAX_SHEAR_DEG)) else None


def sparse_zeros(shape: tuple[int, ...], dtype: Any, order: str = "C") -> np.ndarray:
    """``np.zeros`` for a full-grid array of which only a box will be written (masks, label maps).

    Large zero arrays are calloc'ed pages that become resident only when
    written, but numpy asks Linux for transparent huge pages on them, and one
    written byte then commits 2 MiB (8 slices of a 512 x 512 mask): masks
    written inside the liver's box would cost their whole slab. This array is
    allocated without that advice, so only the written 4 KiB pages count
    (the values are the same zeros either way).
    """
    setter = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
    if setter is None:  # another numpy: plain zeros
        return np.zeros(shape, dtype=dtype, order="F" if order == "F" else "C")
    previous = setter(False)
    try:
        return np.zeros(shape, dtype=dtype, order="F" if order == "F" else "C")
    finally:
        setter(previous)


@dataclass(frozen=True, eq=False)
class Volume:
    """An immutable 3-D array on a patient grid.

    Parameters
    ----------
    array : numpy.ndarray
        3-D array indexed ``[i, j, k]``. It is made read-only.
    affine : numpy.ndarray
        4x4 matrix, voxel index -> patient LPS (mm). Must be finite, have last
        row ``[0, 0, 0, 1]`` and orthogonal, non-degenerate columns.
    frame_of_reference_uid : str or None
        DICOM FrameOfReferenceUID when known.
    source : str
        File or series the data came from (used in messages).
    meta : dict
        Loader-specific facts (modality, series UID, ...). Never patient identity.

    Raises
    ------
    GeometryError
        If the array is not 3-D or the affine is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> aff = np.diag([0.5, 0.5, 2.0, 1.0])
    >>> v = Volume(np.zeros((4, 4, 2)), aff)
    >>> [float(s) for s in v.spacing], float(v.voxel_volume_mm3)
    ([0.5, 0.5, 2.0], 0.5)
    """

    array: np.ndarray
    affine: np.ndarray
    frame_of_reference_uid: str | None = None
    source: str = "<array>"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise GeometryError(f"{self.source}: expected a 3-D image, got {arr.ndim}-D shape {arr.shape}.")
        if min(arr.shape) < 1:
            raise GeometryError(f"{self.source}: image has an empty dimension {arr.shape}.")
        aff = np.array(self.affine, dtype=np.float64, copy=True)
        self._check_affine(aff)
        if arr.flags.writeable:
            arr = arr.view()
            arr.flags.writeable = False
        aff.flags.writeable = False
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", aff)

    def _check_affine(self, aff: np.ndarray) -> None:
        if aff.shape != (4, 4):
            raise GeometryError(f"{self.source}: affine must be 4x4, got {aff.shape}.")
        if not np.all(np.isfinite(aff)):
            raise GeometryError(f"{self.source}: affine contains NaN or inf; the header geometry is corrupt.")
        if not np.allclose(aff[3], [0, 0, 0, 1]):
            raise GeometryError(f"{self.source}: affine last row must be [0, 0, 0, 1], got {aff[3].tolist()}.")
        cols = aff[:3, :3]
        norms = np.linalg.norm(cols, axis=0)
        if np.any(norms < 1e-6):
            raise GeometryError(
                f"{self.source}: affine is singular (a voxel spacing is zero); fix the header's spacing/direction."
            )
        unit = cols / norms
        gram = unit.T @ unit
        if not np.allclose(gram, np.eye(3), atol=ORTHOGONALITY_TOLERANCE) and _shear_axis(aff) is None:
            raise GeometryError(
                f"{self.source}: affine axes are not orthogonal and not a gantry-tilt shear (orthogonal first "
                f"two axes, the third within {MAX_SHEAR_DEG:g} degrees of their normal); resample the image onto an "
                "orthogonal grid first."
            )

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(ni, nj, nk)``."""
        s = self.array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> np.ndarray:
        """Voxel spacing (mm) along i, j, k, from the affine's column norms."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix of unit direction cosines (columns: i, j, k) in LPS."""
        return self.affine[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        """LPS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3 (absolute determinant of the affine)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL."""
        return self.voxel_volume_mm3 / 1000.0

    @functools.cached_property
    def _shear(self) -> int | None:
        """The sheared axis (:func:`_shear_axis`), found once: the affine never changes."""
        return _shear_axis(self.affine)

    @property
    def slice_axis(self) -> int:
        """Array axis most aligned with the patient superior-inferior (S) axis (the sheared axis of a sheared grid)."""
        return int(np.argmax(np.abs(self.direction[2, :]))) if self._shear is None else self._shear

    @property
    def sheared(self) -> bool:
        """True on a sheared grid: the slice axis leans off the slice planes' normal (gantry tilt)."""
        return self._shear is not None

    @property
    def slice_normal(self) -> np.ndarray:
        """Unit normal of the planes of constant :attr:`slice_axis` index (the slice planes), pointing along it."""
        k = self.slice_axis
        a, b = (x for x in range(3) if x != k)
        n = np.cross(self.affine[:3, a], self.affine[:3, b])
        n = n / np.linalg.norm(n)
        return n if float(n @ self.affine[:3, k]) >= 0 else -n

    @property
    def slice_separation_mm(self) -> float:
        """Distance between neighbouring slice planes (mm): the slice spacing, on a sheared grid along the normal."""
        if not self.sheared:
            return float(self.spacing[self.slice_axis])
        return float(abs(self.slice_normal @ self.affine[:3, self.slice_axis]))

    @property
    def shear_deg(self) -> float:
        """Angle (degrees) between the slice axis and the slice planes' normal: 0 unless :attr:`sheared`."""
        if not self.sheared:
            return 0.0
        k = self.slice_axis
        c = self.affine[:3, k] / np.linalg.norm(self.affine[:3, k])
        return float(np.degrees(np.arccos(min(1.0, abs(float(c @ self.slice_normal))))))

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices (N x 3) to LPS positions (N x 3, mm)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map LPS positions (N x 3, mm) to continuous voxel indices (N x 3)."""
        xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def same_grid(
        self,
        other: Volume,
        *,
        origin_tol_mm: float = ORIGIN_TOLERANCE_MM,
        spacing_tol_mm: float = SPACING_TOLERANCE_MM,
        direction_tol: float = DIRECTION_TOLERANCE,
    ) -> bool:
        """Whether ``other`` lies on this grid within the named tolerances.

        Compares shape, origin, spacing, direction and (when both are known)
        FrameOfReferenceUID.
        """
        if self.shape != other.shape or not self._same_axes(other, spacing_tol_mm, direction_tol):
            return False
        return bool(np.max(np.abs(self.origin - other.origin)) <= origin_tol_mm)

    def _same_axes(self, other: Volume, spacing_tol_mm: float, direction_tol: float) -> bool:
        """Same frame of reference (when both are known), spacing and direction within the tolerances."""
        if (
            self.frame_of_reference_uid
            and other.frame_of_reference_uid
            and self.frame_of_reference_uid != other.frame_of_reference_uid
        ):
            return False
        if np.max(np.abs(self.spacing - other.spacing)) > spacing_tol_mm:
            return False
        return bool(np.max(np.abs(self.direction - other.direction)) <= direction_tol)

    def box_in(
        self,
        other: Volume,
        *,
        origin_tol_mm: float = ORIGIN_TOLERANCE_MM,
        spacing_tol_mm: float = SPACING_TOLERANCE_MM,
        direction_tol: float = DIRECTION_TOLERANCE,
    ) -> tuple[slice, slice, slice] | None:
        """Where this grid lies in ``other``'s as an index box: a crop of it (None when it is not one).

        This grid is a crop of ``other`` when both have the same spacing and direction (within the
        tolerances of :meth:`same_grid`), its first voxel centre is a voxel centre of ``other`` and it
        fits inside ``other``; its voxels are then ``other``'s voxels of the box, one for one, and a
        mask on it is placed on ``other`` by copying, not resampling (Slicer crops a ``.seg.nrrd`` to
        its segments' extent).

        Examples
        --------
        >>> big = Volume(np.zeros((10, 8, 6)), np.diag([0.8, 0.8, 2.5, 1.0]))
        >>> aff = np.diag([0.8, 0.8, 2.5, 1.0]); aff[:3, 3] = [1.6, 0.8, 5.0]
        >>> Volume(np.zeros((4, 3, 2)), aff).box_in(big)
        (slice(2, 6, None), slice(1, 4, None), slice(2, 4, None))
        """
        if not self._same_axes(other, spacing_tol_mm, direction_tol):
            return None
        offset = other.lps_to_index(self.origin[None, :])[0]
        start = np.rint(offset)
        if np.max(np.abs(other.index_to_lps(start[None, :])[0] - self.origin)) > origin_tol_mm:
            return None
        lo = [int(v) for v in start]
        hi = [a + n for a, n in zip(lo, self.shape)]
        if min(lo) < 0 or any(h > n for h, n in zip(hi, other.shape)):
            return None
        return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """Return a new Volume on the same grid with another array."""
        arr = np.asarray(array)
        if arr.shape != self.shape:
            raise GeometryError(f"{self.source}: new array shape {arr.shape} differs from grid {self.shape}.")
        kw: dict[str, Any] = {
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "source": self.source,
            "meta": dict(self.meta),
        }
        kw.update(changes)
        return Volume(arr, self.affine, **kw)

    def with_grid(self, array: np.ndarray, affine: np.ndarray, **changes: Any) -> Volume:
        """Return a new Volume with another array on another grid (frame of reference, source, meta kept)."""
        kw: dict[str, Any] = {
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "source": self.source,
            "meta": dict(self.meta),
        }
        kw.update(changes)
        return Volume(np.asarray(array), affine, **kw)

    # ------------------------------------------------------------------ operations (netlm_imaging.geometry)
    def crop(self, index: tuple[slice, slice, slice]) -> Volume:
        """The sub-volume ``self.array[index]`` with its affine moved to the new first voxel (steps of 1)."""
        starts = []
        for ax, s in enumerate(index):
            start, _, step = s.indices(self.shape[ax])
            if step != 1:
                raise ValueError("crop takes slices with step 1")
            starts.append(start)
        return self.with_grid(self.array[index], geometry.crop_affine(self.affine, starts))

    def resample_to(
        self, other: Volume, interpolation: Literal["nearest", "linear"] = "nearest", *, transform: Any = None
    ) -> Volume:
        """This volume resampled onto ``other``'s grid by physical (LPS) position (0 outside).

        Parameters
        ----------
        other : Volume
            The target grid (its frame of reference is kept).
        interpolation : {"nearest", "linear"}
            Nearest neighbour for masks and labels, linear for images and fractions.
        transform : SimpleITK.Transform, optional
            Maps ``other``'s points to this volume's points (identity when omitted).
        """
        arr = geometry.resample_array(
            self.array, self.affine, other.shape, other.affine, interpolation=interpolation, transform=transform
        )
        return other.with_array(arr, source=self.source, meta=dict(self.meta))

    def to_sitk(self, array: np.ndarray | None = None) -> Any:
        """This volume (or another array on its grid) as a SimpleITK image."""
        return geometry.array_to_sitk(self.array if array is None else array, self.affine)

    @classmethod
    def header_grid(
        cls,
        shape: tuple[int, ...],
        affine: np.ndarray,
        *,
        frame_of_reference_uid: str | None = None,
        source: str = "<grid>",
    ) -> Volume:
        """A Volume of a grid alone, read from a header: no pixel data behind it.

        Its array is one zero broadcast to ``shape`` (read-only, no memory): the grid methods
        (:meth:`same_grid`, :attr:`spacing`, ...) work on it as on the read Volume; its values mean nothing.

        Examples
        --------
        >>> g = Volume.header_grid((64, 48, 30), np.diag([0.7, 0.7, 2.5, 1.0]))
        >>> g.shape, g.array.strides, g.same_grid(Volume(np.zeros((64, 48, 30), bool), g.affine))
        ((64, 48, 30), (0, 0, 0), True)
        """
        dims = tuple(int(s) for s in shape)
        return cls(np.broadcast_to(np.zeros((), np.uint8), dims), affine, frame_of_reference_uid, source)

    @classmethod
    def from_sitk(cls, img: Any, *, source: str = "<sitk>", meta: dict[str, Any] | None = None) -> Volume:
        """A Volume from a 3-D scalar SimpleITK image."""
        arr = geometry.array_from_sitk(img)
        if arr.ndim != 3:
            raise InputError(f"{source}: expected a 3-D scalar image, got array shape {arr.shape}.")
        return cls(np.ascontiguousarray(arr), geometry.sitk_affine(img), source=source, meta=meta or {})

    def dilate_mm(self, radius_mm: float) -> Volume:
        """This boolean mask dilated by a physical radius (voxel centres within ``radius_mm``)."""
        return self.with_array(geometry.dilate_mm_affine(np.asarray(self.array, dtype=bool), self.affine, radius_mm))

    def geometry_summary(self) -> dict[str, Any]:
        """Shape and spacing for the report's ``study.grid`` block (and, on a sheared grid, ``shear_deg`` and
        ``slice_separation_mm``)."""
        out: dict[str, Any] = {
            "shape": list(self.shape),
            "spacing_mm": [round(float(s), 6) for s in self.spacing],
        }
        if self.sheared:  # gantry tilt: the slice axis leans off the slices' normal (spacing_mm is along it)
            out["shear_deg"] = round(self.shear_deg, 3)
            out["slice_separation_mm"] = round(self.slice_separation_mm, 6)
        return out
