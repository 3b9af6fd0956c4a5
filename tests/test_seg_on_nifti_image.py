"""A DICOM SEG measured on the NIfTI its CT was converted to (dcm2niix / SimpleITK), as researchers do.

The NIfTI names no source images, so a SEG's references to them cannot be checked: the frames are
placed by their plane positions, without a warning. On a dcm2niix-style NIfTI (rows flipped, so the
frames go through the general, re-indexing path) every frame was reported as 'referencing source
images that are not in the image series'.

Truths: the ellipsoids' voxel counts x the voxel volume of the oblique CT chosen here; the NIfTI is
written by SimpleITK's DICOM series reader, not by the package.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from netlm_imaging.api import analyze
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SPACING = (0.9, 0.8, 2.0)
SHAPE = (40, 36, 14)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
VOXEL_ML = float(np.prod(SPACING)) / 1000.0


@pytest.mark.parametrize("flip_rows", [False, True])
def test_seg_on_the_nifti_of_its_ct(tmp_path, flip_rows):
    i, j, k = np.indices(SHAPE)
    liver = ((i - 20) / 16) ** 2 + ((j - 18) / 14) ** 2 + ((k - 7) / 4.5) ** 2 <= 1
    tumour = ((i - 22) / 5) ** 2 + ((j - 18) / 5) ** 2 + ((k - 7) / 2.5) ** 2 <= 1
    paths = write_image_series(tmp_path / "ct", np.where(liver, 60.0, -100.0), AFFINE, seed=12)
    seg = write_seg(
        tmp_path / "seg.dcm",
        paths,
        [SegmentSpec("Liver", liver), SegmentSpec("Tumor", tumour, property_type=codes.SCT.Neoplasm)],
    )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "ct.nii.gz"))
    image = tmp_path / "ct.nii.gz"
    if flip_rows:  # dcm2niix stores the rows bottom-up: the j axis reversed, the affine moved to match
        img = nib.load(image)
        data = np.asarray(img.dataobj)
        aff = img.affine.copy()
        aff[:3, 3] += aff[:3, 1] * (data.shape[1] - 1)
        aff[:3, 1] *= -1
        image = tmp_path / "ct_dcm2niix.nii.gz"
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data[:, ::-1, :]), aff), image)
    rep = analyze(image=image, segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(liver.sum() * VOXEL_ML, rel=1e-5)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(tumour.sum() * VOXEL_ML, rel=1e-5)
    assert rep.study["grid"]["resampled"] is False
    assert not any("source image" in w for w in rep.warnings)
