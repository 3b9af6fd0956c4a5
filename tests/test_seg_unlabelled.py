"""DICOM SEG segments without a SegmentLabel (Type 1, left out by some writers).

netlm shows such a segment as ``Segment N``. That made-up name matched the Couinaud pattern
(``Segment 2`` is segment 2), so a coded tumour got a warning that "its name says segment2",
and an uncoded one would have become a Couinaud segment. The rules now judge an unlabelled segment
by its code alone; a user mapping may still name it ``Segment N`` (the name messages show).

Phantom: an oblique anisotropic CT with box masks written by highdicom (voxel counts computed here).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (30, 28, 12)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
VOXEL_ML = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0


def _box(i, j, k) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[slice(*i), slice(*j), slice(*k)] = True
    return m


LIVER = _box((4, 26), (3, 25), (2, 10))
TUMOUR = _box((10, 16), (9, 14), (4, 7))


def _study(tmp_path, tumour_code) -> str:
    study = tmp_path / "study"
    paths = write_image_series(study / "ct", np.zeros(SHAPE), AFFINE, seed=37)
    tumour = SegmentSpec("x", TUMOUR, property_type=tumour_code, property_category=codes.SCT.Tissue)
    seg = write_seg(study / "seg.dcm", paths, [SegmentSpec("Liver", LIVER), tumour])
    ds = pydicom.dcmread(seg)
    del ds.SegmentSequence[1].SegmentLabel
    ds.save_as(seg)
    return str(study)


def test_an_unlabelled_coded_tumour_is_the_lesion_without_a_name_conflict(tmp_path):
    report = analyze_json(_study(tmp_path, codes.SCT.Neoplasm))
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TUMOUR.sum() * VOXEL_ML, abs=1e-4)
    assert not any("its name says" in w for w in report["warnings"])
    (decision,) = [r for r in report["study"]["segment_roles"] if r["number"] == 2]
    assert (decision["name"], decision["role"], decision["reason"]) == ("Segment 2", "lesion", "code")


def test_an_unlabelled_segment_with_a_generic_code_is_no_couinaud_segment(tmp_path):
    study = _study(tmp_path, codes.SCT.Tissue)  # Slicer's catch-all: the name would decide, and there is none
    report = analyze_json(study)
    (decision,) = [r for r in report["study"]["segment_roles"] if r["number"] == 2]
    assert (decision["role"], decision["reason"]) == (None, "unmatched-ignored")
    mapped = analyze_json(study, "--labels", 'liver="Liver",lesion="Segment 2"')  # the name messages show
    assert mapped["tumor"]["intrahepatic_volume_ml"] == pytest.approx(TUMOUR.sum() * VOXEL_ML, abs=1e-4)


def test_an_unnamed_slicer_segment_is_no_couinaud_segment(tmp_path):
    """A .seg.nrrd segment without SegmentN_Name was shown as Segment_1 and became Couinaud segment 1."""
    import nibabel as nib
    import SimpleITK as sitk

    ras = np.diag([-0.8, -0.8, 2.0, 1.0])
    labels = LIVER.astype(np.uint8)
    labels[TUMOUR] = 2
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), ras), tmp_path / "ct.nii.gz")
    img = sitk.GetImageFromArray(np.transpose(labels, (2, 1, 0)))
    img.SetSpacing((0.8, 0.8, 2.0))  # the NIfTI's grid in LPS: identity directions, origin 0
    for key, value in {"Segment0_Name": "Liver", "Segment0_LabelValue": "1", "Segment0_Layer": "0"}.items():
        img.SetMetaData(key, value)
    img.SetMetaData("Segment1_LabelValue", "2")  # no Segment1_Name
    img.SetMetaData("Segment1_Layer", "0")
    sitk.WriteImage(img, str(tmp_path / "case.seg.nrrd"))
    report = analyze_json("--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "case.seg.nrrd"))
    (decision,) = [r for r in report["study"]["segment_roles"] if r["number"] == 2]
    assert (decision["name"], decision["role"], decision["reason"]) == ("Segment_1", None, "unmatched-ignored")
    liver_only = int(np.count_nonzero(LIVER & ~TUMOUR))  # the ignored segment's voxels are not the liver
    assert report["liver"]["volume_ml"] == pytest.approx(liver_only * 0.8 * 0.8 * 2.0 / 1000.0, abs=1e-4)
