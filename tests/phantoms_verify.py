"""Analytic phantoms for the verification tests (check, compare-seg, compare, HTML).

Everything is defined in patient space (LPS, mm) and voxelised by testing voxel
centres, so a test knows the truth independently of the code under test:
sphere volumes 4/3 pi r^3, centres, diameters 2 r.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netlm_imaging.volume import Volume


def rotation(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix Rz @ Ry @ Rx for angles in degrees."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def grid_affine(shape, spacing, angles_deg=(0.0, 0.0, 0.0), centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Index -> LPS affine whose grid centre lies at ``centre``."""
    a = np.eye(4)
    a[:3, :3] = rotation(angles_deg) @ np.diag(spacing)
    half = (np.asarray(shape, dtype=float) - 1) / 2.0
    a[:3, 3] = np.asarray(centre, dtype=float) - a[:3, :3] @ half
    return a


def voxel_centres(shape, affine) -> np.ndarray:
    """LPS coordinates of all voxel centres, shape (*shape, 3)."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    return idx @ affine[:3, :3].T + affine[:3, 3]


@dataclass
class Sphere:
    """A spherical lesion in patient space."""

    centre_lps_mm: tuple[float, float, float]
    radius_mm: float

    @property
    def volume_ml(self) -> float:
        return 4.0 / 3.0 * np.pi * self.radius_mm**3 / 1000.0


@dataclass
class LiverPhantom:
    """An asymmetric liver (two overlapping ellipsoids) with spherical lesions, in its own patient space.

    ``motion`` (R, t) maps the phantom's own coordinates to the scanner's
    patient coordinates: x_patient = R x + t (used to simulate repositioning).
    """

    lesions: list[Sphere] = field(default_factory=list)
    motion_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    motion_translation_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def to_patient(self, p) -> np.ndarray:
        return np.asarray(p, dtype=float) @ self.motion_rotation.T + self.motion_translation_mm

    def _own_coords(self, pts: np.ndarray) -> np.ndarray:
        # inverse motion: x_own = R^T (x - t)
        return (pts - self.motion_translation_mm) @ self.motion_rotation

    def liver_mask(self, pts: np.ndarray) -> np.ndarray:
        q = self._own_coords(pts)
        right = ((q[..., 0] + 20) / 70) ** 2 + ((q[..., 1]) / 50) ** 2 + ((q[..., 2]) / 45) ** 2 <= 1
        left = ((q[..., 0] - 45) / 35) ** 2 + ((q[..., 1] + 10) / 30) ** 2 + ((q[..., 2] - 15) / 25) ** 2 <= 1
        return right | left

    def lesion_masks(self, pts: np.ndarray) -> list[np.ndarray]:
        q = self._own_coords(pts)
        return [np.linalg.norm(q - np.asarray(s.centre_lps_mm), axis=-1) <= s.radius_mm for s in self.lesions]

    def label_map(self, shape, affine) -> np.ndarray:
        """LiTS label map: 1 liver, 2 lesion (lesions inside the liver)."""
        pts = voxel_centres(shape, affine)
        lab = np.zeros(shape, dtype=np.uint8)
        lab[self.liver_mask(pts)] = 1
        for m in self.lesion_masks(pts):
            lab[m] = 2
        return lab

    def ct_image(self, shape, affine, seed: int = 0) -> np.ndarray:
        """CT-like HU image: liver 60 HU, lesions 120 HU, background -100 HU, seeded noise."""
        lab = self.label_map(shape, affine)
        img = np.full(shape, -100.0, dtype=np.float32)
        img[lab == 1] = 60.0
        img[lab == 2] = 120.0
        rng = np.random.default_rng(seed)
        return img + rng.normal(0, 8, size=shape).astype(np.float32)


def volume_of(array: np.ndarray, affine: np.ndarray, **kw) -> Volume:
    return Volume(array, affine, **kw)


def write_nifti(path, array: np.ndarray, affine_lps: np.ndarray) -> None:
    """Write a NIfTI file (converting the LPS affine to NIfTI RAS)."""
    import nibabel as nib

    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    img = nib.Nifti1Image(array, ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    nib.save(img, str(path))


def make_context(
    phantom: LiverPhantom, shape, affine, *, frame_of_reference_uid=None, seed: int = 0, modality: str = "CT"
):
    """A MeasurementContext built directly from the phantom (no netlm_imaging measurement code).

    Lesion fields are the analytic truths: centre (in scanner patient space),
    diameters 2 r; volumes are the voxel counts times the voxel volume.
    """
    from netlm_imaging.measure.context import Lesion, MeasurementContext

    pts = voxel_centres(shape, affine)
    vox_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    liver = phantom.liver_mask(pts)
    labels = np.zeros(shape, dtype=np.int32)
    lesions = []
    for n, (sph, m) in enumerate(zip(phantom.lesions, phantom.lesion_masks(pts)), start=1):
        labels[m] = n
        liver |= m
        lesions.append(
            Lesion(
                id=n,
                location="intrahepatic",
                volume_ml=float(m.sum()) * vox_ml,
                voxel_count=int(m.sum()),
                centroid_lps_mm=[float(v) for v in phantom.to_patient(sph.centre_lps_mm)],
                longest_axial_diameter_mm=2 * sph.radius_mm,
                short_axis_diameter_mm=2 * sph.radius_mm,
                max_3d_diameter_mm=2 * sph.radius_mm,
                recist_measurable=2 * sph.radius_mm >= 10,
                touches_image_border=False,
                mean_intensity=None,
            )
        )
    image = Volume(
        phantom.ct_image(shape, affine, seed),
        affine,
        frame_of_reference_uid=frame_of_reference_uid,
        source="phantom",
        meta={"modality": modality},
    )
    tumour_ml = float((labels > 0).sum()) * vox_ml
    return MeasurementContext(
        image=image,
        liver=liver,
        lesion_labels=labels,
        lesions=lesions,
        liver_volume_ml=float(liver.sum()) * vox_ml,
        intrahepatic_tumor_ml=tumour_ml,
        header={"modality": modality},
    )
