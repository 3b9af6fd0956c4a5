"""NIfTI label maps as converters and toolkits write them: trailing singleton axes and header scaling.

ITK writes a 3-D image with extra singleton dimensions as (x, y, z, 1, 1) (dim[0] = 5); some
exporters keep scl_slope / scl_inter on a label map. nibabel and SimpleITK read the scaled values;
so does netlm, with a warning that the header scaled the labels. A scaling that makes the labels
non-integers is refused with one line naming the header fields and the fix.

Truths: voxel counts of the boxes written here times |det| of the affine, and the values nibabel
itself returns for the scaled file (a peer reader).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import analyze_json
from tests.test_faults_messages import netlm, one_line

SHAPE = (30, 28, 12)
C, S = np.cos(0.2), np.sin(0.2)
AFFINE_RAS = np.eye(4)
AFFINE_RAS[:3, :3] = np.array([[C, -S, 0], [S, C, 0], [0, 0, 1]]) @ np.diag([-0.8, -0.9, 2.5])
AFFINE_RAS[:3, 3] = [50.0, 40.0, -100.0]
VOXEL_ML = abs(np.linalg.det(AFFINE_RAS[:3, :3])) / 1000.0


def _labels() -> np.ndarray:
    lab = np.zeros(SHAPE, np.int16)
    lab[5:25, 5:22, 2:10] = 1
    lab[10:14, 10:14, 4:7] = 2
    return lab


def _ct(tmp_path):
    ct = np.random.default_rng(3).integers(-100, 100, SHAPE).astype(np.int16)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(ct, AFFINE_RAS), path)
    return path


LIVER_ML = 20 * 17 * 8 * VOXEL_ML  # the liver box includes the tumour box
TUMOUR_ML = 4 * 4 * 3 * VOXEL_ML


def test_label_map_with_trailing_singleton_axes_like_itk_writes(tmp_path):
    seg = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(_labels()[:, :, :, None, None], AFFINE_RAS), seg)
    assert nib.load(seg).header["dim"][0] == 5
    report = analyze_json("--image", str(_ct(tmp_path)), "--seg", str(seg))
    assert report["liver"]["volume_ml"] == pytest.approx(LIVER_ML, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, abs=1e-4)


def test_label_map_scaled_by_its_header_reads_the_scaled_values_with_a_warning(tmp_path):
    seg = tmp_path / "seg.nii.gz"
    img = nib.Nifti1Image(_labels() * 2, AFFINE_RAS)  # stored 0, 2, 4; scl_slope 0.5 makes them 0, 1, 2
    img.header.set_slope_inter(0.5, 0.0)
    nib.save(img, seg)
    peer = np.asarray(nib.load(seg).get_fdata())
    assert set(np.unique(peer)) == {0.0, 1.0, 2.0}
    report = analyze_json("--image", str(_ct(tmp_path)), "--seg", str(seg))
    assert report["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(peer) * VOXEL_ML, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.sum(peer == 2) * VOXEL_ML, abs=1e-4)
    assert any("scl_slope 0.5, scl_inter 0" in w for w in report["warnings"])


def test_label_map_scaled_to_non_integers_is_refused_naming_the_scaling(tmp_path):
    seg = tmp_path / "seg.nii.gz"
    img = nib.Nifti1Image(_labels(), AFFINE_RAS)  # stored 0, 1, 2 read as 0, 0.5, 1
    img.header.set_slope_inter(0.5, 0.0)
    nib.save(img, seg)
    line = one_line(netlm("analyze", "--image", _ct(tmp_path), "--seg", seg, "--out", tmp_path / "out"))
    assert line.startswith(f"netlm: error: {seg}: label map's header scales its stored values (scl_slope 0.5")
    assert "re-save it with scl_slope 1 and scl_inter 0" in line


def test_masks_saved_as_0_255_named_after_their_structure(tmp_path):
    """Image tools save binary masks as 0/255. A --seg liver.nii.gz of 0/255 was refused ('label values [255]
    have no role in the LiTS mapping'), although a study folder reads the same file as the liver mask."""
    lab = _labels()
    liver, tumour = tmp_path / "liver.nii.gz", tmp_path / "liver_tumor.nii.gz"
    nib.save(nib.Nifti1Image(((lab > 0) * 255).astype(np.uint8), AFFINE_RAS), liver)
    nib.save(nib.Nifti1Image(((lab == 2) * 255).astype(np.uint8), AFFINE_RAS), tumour)
    report = analyze_json("--image", str(_ct(tmp_path)), "--seg", str(liver), "--seg", str(tumour))
    assert report["liver"]["volume_ml"] == pytest.approx(LIVER_ML, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TUMOUR_ML, abs=1e-4)
    assert any(
        "liver.nii.gz: read as the liver mask its file name says (its only value is 255)" in w
        for w in report["warnings"]
    )
