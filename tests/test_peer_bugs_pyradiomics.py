"""PEERS.md, pyradiomics: the image from dcm2niix (NIfTI) and the mask from Slicer (NRRD) of one series.

pyradiomics #482 / #507 / #390: "Why would geometry mismatch occur when mask and image are derived from
the same DICOM series?": a NIfTI header stores the affine in float32 (srow_x/y/z), a Slicer NRRD in
decimal doubles, so origin and direction differ at float precision and users raise
``geometryTolerance`` blindly. The two grids are the same grid: used as is (not resampled), voxel for
voxel. pyradiomics #455 ("Mesh Volume is in voxels not mm^3"): the report names its volume method, and
its voxel-count volume and voxel-centre diameter are SimpleITK's LabelShapeStatistics ``PhysicalSize``
and ``FeretDiameter`` (the peer, computed here) on the same mask.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import analyze_json, oblique_affine
from tests.phantoms import sitk_image, sphere_mask, write_nifti

SHAPE = (48, 44, 20)
AFFINE = oblique_affine(spacing=(0.7813, 0.7813, 2.5), angles_deg=(3.7, -11.3, 21.9), origin=(-187.34, -61.27, 1042.5))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("radiomics")
    ct = np.random.default_rng(482).normal(50.0, 10.0, SHAPE).round().astype(np.int16)
    image = write_nifti(root / "ct.nii.gz", ct, AFFINE)
    labels = np.zeros(SHAPE, np.uint8)
    labels[6:42, 5:40, 2:18] = 1
    centre = (AFFINE @ [20.0, 18.0, 9.0, 1.0])[:3]
    labels[sphere_mask(SHAPE, AFFINE, centre, 9.0)] = 2
    seg = root / "Segmentation-label.nrrd"
    sitk.WriteImage(sitk_image(labels, AFFINE), str(seg))
    return image, seg, labels


def test_float32_nifti_image_and_double_nrrd_mask_are_one_grid(study):
    image, seg, labels = study
    stored = nib.load(str(image)).header.get_sform()
    assert not np.array_equal(stored, AFFINE)  # float32 round-off: the headers really differ
    rep = analyze_json("--image", str(image), "--seg", str(seg))
    assert rep["study"]["grid"]["resampled"] is False
    assert not any("resampled" in w for w in rep["warnings"])
    assert rep["liver"]["voxel_count"] == int(np.count_nonzero(labels))
    (lesion,) = rep["lesions"]
    assert lesion["voxel_count"] == int((labels == 2).sum())


def test_volume_method_and_values_match_simpleitk_label_shape_statistics(study):
    image, seg, labels = study
    rep = analyze_json("--image", str(image), "--seg", str(seg))
    assert rep["method"]["volume"] == "voxel_count"
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputeFeretDiameterOn()
    stats.Execute(sitk_image((labels == 2).astype(np.uint8), AFFINE))
    (lesion,) = rep["lesions"]
    assert lesion["volume_ml"] == pytest.approx(stats.GetPhysicalSize(1) / 1000.0, abs=1e-5)
    assert lesion["max_3d_diameter_mm"] == pytest.approx(stats.GetFeretDiameter(1), abs=1e-3)
    stats.Execute(sitk_image((labels > 0).astype(np.uint8), AFFINE))
    assert rep["liver"]["volume_ml"] == pytest.approx(stats.GetPhysicalSize(1) / 1000.0, abs=1e-4)
