"""Phantom builders for core tests. Truths are computed in the tests, not here."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from netlm_imaging.volume import lps_to_ras


def write_nifti(path: Path, array: np.ndarray, affine_lps: np.ndarray, *, geometry: bool = True) -> Path:
    """Write ``array`` with an index->LPS affine as NIfTI (stored as RAS, as NIfTI requires)."""
    ras = lps_to_ras(affine_lps)
    img = nib.Nifti1Image(np.asarray(array), ras)
    if geometry:
        img.set_sform(ras, code=1)
        img.set_qform(ras, code=1)
    else:
        img.set_sform(None, code=0)
        img.set_qform(None, code=0)
    nib.save(img, str(path))
    return path


def physical_grid(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """LPS coordinates (i, j, k, 3) of every voxel centre, computed directly from the affine."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def sphere_mask(shape, affine, centre, radius) -> np.ndarray:
    """Voxels whose centre lies within ``radius`` mm of ``centre`` (LPS)."""
    p = physical_grid(shape, affine)
    return ((p - np.asarray(centre)) ** 2).sum(-1) <= radius**2


def grid_affine(spacing, origin, rotation: np.ndarray | None = None) -> np.ndarray:
    """Index->LPS affine from spacing, origin and an optional rotation."""
    a = np.eye(4)
    r = np.eye(3) if rotation is None else rotation
    a[:3, :3] = r @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def sitk_image(array: np.ndarray, affine_lps: np.ndarray):
    """``array[i, j, k]`` as a SimpleITK image on the index->LPS affine (as Slicer / ITK write NRRD)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    a3 = np.asarray(affine_lps, float)[:3, :3]
    spacing = np.linalg.norm(a3, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(np.asarray(affine_lps, float)[:3, 3].tolist())
    img.SetDirection((a3 / spacing).flatten().tolist())
    return img
