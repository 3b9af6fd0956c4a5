"""Label maps on the image's voxels in another index order: rows flipped, slices reversed, axes swapped.

dcm2niix and dicom2nifti flip a DICOM CT's rows (and may reverse its slices) when they write the
NIfTI that TotalSegmentator or nnU-Net segment; the mask then has the DICOM image's voxel centres
in another order. Its numbers were right (nearest neighbour onto the same centres), but the report
said ``grid.resampled: true`` with a "resampled ... nearest neighbour" warning for every mask. Such
a mask is now re-indexed and placed voxel for voxel, with a note; a mask that is really on another
grid is still resampled with the warning.

Truths: the boxes' voxel counts and the mean of an image whose every voxel holds its own value,
computed here on the unflipped arrays (a voxel placed one off changes the mean).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import analyze_json, oblique_affine
from dicom_factory import write_image_series

from netlm_imaging.volume import lps_to_ras

AFF = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -3.0, 12.0), origin=(-40.0, 20.0, 300.0))
SHAPE = (30, 26, 12)
LIVER = (slice(4, 26), slice(3, 22), slice(2, 10))
TUMOUR = (slice(10, 15), slice(8, 12), slice(4, 7))


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("axes")
    i, j, k = np.indices(SHAPE)
    image = (i + 40 * j + 1200 * k).astype(np.float64) - 1000.0  # every voxel its own HU
    write_image_series(root / "ct", image, AFF, seed=83)
    lab = np.zeros(SHAPE, np.uint8)
    lab[LIVER] = 1
    lab[TUMOUR] = 2
    return root, image, lab


def _reindexed(lab, flips, order):
    """``lab`` and AFF with the axes in ``flips`` reversed, then transposed to ``order`` (same voxel centres)."""
    arr, aff = lab, AFF.copy()
    for ax in flips:
        arr = np.flip(arr, axis=ax)
        aff[:3, 3] += aff[:3, ax] * (lab.shape[ax] - 1)
        aff[:3, ax] *= -1
    arr = np.transpose(arr, order)
    out = np.eye(4)
    out[:3, :3] = aff[:3, :3][:, list(order)]
    out[:3, 3] = aff[:3, 3]
    return np.ascontiguousarray(arr), out


@pytest.mark.parametrize(
    ("flips", "order"),
    [((1,), (0, 1, 2)), ((1, 2), (0, 1, 2)), ((0,), (1, 0, 2)), ((0, 1, 2), (2, 0, 1))],
    ids=["rows-flipped", "rows-and-slices", "swapped-in-plane", "all-reversed-permuted"],
)
def test_a_reindexed_label_map_is_placed_voxel_for_voxel(ct, tmp_path, flips, order):
    root, image, lab = ct
    arr, aff = _reindexed(lab, flips, order)
    nib.save(nib.Nifti1Image(arr, lps_to_ras(aff)), tmp_path / "seg.nii.gz")
    rep = analyze_json("--image", str(root / "ct"), "--seg", str(tmp_path / "seg.nii.gz"))
    liver = lab > 0
    assert rep["liver"]["voxel_count"] == int(liver.sum())
    assert rep["liver"]["mean_intensity"] == pytest.approx(float(image[liver].mean()), abs=1e-3)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(
        int((lab == 2).sum()) * abs(np.linalg.det(AFF[:3, :3])) / 1000, abs=1e-5
    )
    assert rep["study"]["grid"]["resampled"] is False
    assert not any("resampled" in w for w in rep["warnings"])
    assert any("its axes in another order or direction (re-indexed)" in n for n in rep["notes"])


def test_a_reindexed_crop_and_a_mask_on_another_grid(ct, tmp_path):
    root, image, lab = ct
    arr, aff = _reindexed(lab[2:28, 1:25, 1:11], (1,), (0, 1, 2))  # cropped, then rows flipped
    aff[:3, 3] += AFF[:3, :3] @ np.array([2.0, 1.0, 1.0])  # the crop's first voxel is the CT's (2, 1, 1)
    nib.save(nib.Nifti1Image(arr, lps_to_ras(aff)), tmp_path / "crop.nii.gz")
    rep = analyze_json("--image", str(root / "ct"), "--seg", str(tmp_path / "crop.nii.gz"))
    assert rep["liver"]["mean_intensity"] == pytest.approx(float(image[lab > 0].mean()), abs=1e-3)
    assert any("a crop of the image grid with its axes" in n for n in rep["notes"])
    arr, aff = _reindexed(lab, (1,), (0, 1, 2))
    aff[:3, 3] += 0.5 * AFF[:3, 0]  # half a voxel off: another grid
    nib.save(nib.Nifti1Image(arr, lps_to_ras(aff)), tmp_path / "off.nii.gz")
    rep = analyze_json("--image", str(root / "ct"), "--seg", str(tmp_path / "off.nii.gz"))
    assert rep["study"]["grid"]["resampled"] is True
    assert any("resampled onto the image grid by physical coordinates" in w for w in rep["warnings"])
