"""PEERS.md, 3D Slicer Segment Statistics: a segmentation that reaches beyond the image.

Slicer PR #6739: the labelmap plugin counts the whole segment, the scalar-volume plugin "only the part
overlapping the scalar volume", and the two disagree without saying why. A Slicer segmentation keeps
its own geometry (its extent grows with the Segment Editor's reference geometry), so a liver drawn
partly outside the CT's field of view is common. The measurements are of the image grid (the part
inside); what lies outside must be said, with how much, never dropped silently. The part inside is
checked against SimpleITK's nearest-neighbour resampling of the mask onto the image (the peer).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import analyze_json, oblique_affine
from tests.phantoms import sitk_image, write_nifti

SHAPE = (40, 36, 16)
AFFINE = oblique_affine(spacing=(0.9, 0.9, 2.0), angles_deg=(0.0, 6.0, 14.0), origin=(-30.0, 55.0, 210.0))
PAD = (6, 2, 3)  # the segmentation's grid starts this many voxels before the image's (same spacing)
SEG_SHAPE = (SHAPE[0] + 12, SHAPE[1] + 4, SHAPE[2] + 6)


def _seg_affine() -> np.ndarray:
    a = AFFINE.copy()
    a[:3, 3] = AFFINE[:3, :3] @ (-np.asarray(PAD, float)) + AFFINE[:3, 3]
    return a


def test_a_segmentation_beyond_the_image_counts_the_part_inside_and_says_what_is_outside(tmp_path):
    ct = np.full(SHAPE, 55, np.int16)
    image = write_nifti(tmp_path / "ct.nii.gz", ct, AFFINE)
    labels = np.zeros(SEG_SHAPE, np.uint8)
    labels[2:30, 6:36, 5:17] = 1  # seg i 2..5 lie before the image (i < PAD[0] = 6): 4 columns outside
    labels[14:22, 12:20, 8:12] = 2  # the tumour is inside the image
    seg = tmp_path / "Segmentation.seg.nrrd"
    sitk.WriteImage(sitk_image(labels, _seg_affine()), str(seg))
    rep = analyze_json("--image", str(image), "--seg", str(seg))

    on_image = sitk.GetArrayFromImage(
        sitk.Resample(
            sitk_image(labels, _seg_affine()), sitk_image(ct, AFFINE), sitk.Transform(), sitk.sitkNearestNeighbor, 0
        )
    ).transpose(2, 1, 0)
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert rep["liver"]["voxel_count"] == int(np.count_nonzero(on_image))
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(on_image) * voxel_ml, abs=1e-3)
    assert rep["liver"]["touches_image_border"] is True
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx((labels == 2).sum() * voxel_ml, abs=1e-4)

    outside = int(np.count_nonzero(labels[: PAD[0]]))  # independent of the resampling: the columns before i = 0
    assert outside == 4 * 30 * 12
    said = [w for w in rep["warnings"] if "outside the image" in w]
    assert len(said) == 1  # the liver only; the tumour lies inside
    assert f"{outside} of the liver mask's {int((labels == 1).sum())} voxels" in said[0]
    assert f"{outside * voxel_ml:.2f} mL" in said[0]
