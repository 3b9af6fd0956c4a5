"""A DICOM CT series with a NIfTI segmentation of it beside it (nnU-Net / MONAI ``ct_seg.nii.gz``,
TotalSegmentator's ``segmentations/``): measured when the NIfTI is on the series' grid, refused when not.

The CT is written with pydicom on an oblique grid; the NIfTI's affine is computed here from the written
files' ImageOrientationPatient / ImagePositionPatient / PixelSpacing with the LPS->RAS flip, not taken
from the writer's affine. Truths: voxel counts of the ellipsoids drawn here x the voxel volume.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import analyze_json, oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg
from test_faults_messages import netlm, one_line

from netlm_imaging.io.discover import discover_study

SPACING = (0.8, 0.9, 2.5)
AFF_LPS = oblique_affine(spacing=SPACING, angles_deg=(12.0, -8.0, 22.0))
SHAPE = (40, 36, 18)
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    i, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    liver = ((i - 19) / 13.0) ** 2 + ((j - 17) / 11.0) ** 2 + ((k - 9) / 6.0) ** 2 <= 1
    tumour = ((i - 23) / 4.0) ** 2 + ((j - 15) / 3.5) ** 2 + ((k - 9) / 2.2) ** 2 <= 1
    return liver, tumour


def _ras_affine_from_files(folder) -> np.ndarray:
    """The NIfTI (RAS) affine of the written series, from its headers alone."""
    ds = sorted((pydicom.dcmread(p) for p in folder.iterdir()), key=lambda d: int(d.InstanceNumber))
    iop = np.array(ds[0].ImageOrientationPatient, float)
    row_spacing, col_spacing = (float(v) for v in ds[0].PixelSpacing)
    ipp0, ipp1 = (np.array(d.ImagePositionPatient, float) for d in ds[:2])
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing  # i: along a row (column index), steps of the column spacing
    lps[:3, 1] = iop[3:] * row_spacing  # j: down a column (row index)
    lps[:3, 2] = ipp1 - ipp0
    lps[:3, 3] = ipp0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _expected() -> tuple[float, float]:
    liver, tumour = _phantom()
    return np.count_nonzero(liver | tumour) * VOXEL_ML, np.count_nonzero(tumour) * VOXEL_ML


def _ct(d):
    liver, tumour = _phantom()
    hu = np.where(tumour, 20.0, np.where(liver, 60.0, -80.0))
    return write_image_series(d / "ct", hu, AFF_LPS, seed=21)


def _label_map() -> np.ndarray:
    liver, tumour = _phantom()
    lab = np.zeros(SHAPE, np.uint8)
    lab[liver] = 1
    lab[tumour] = 2
    return lab


@pytest.fixture
def nnunet_study(tmp_path):
    d = tmp_path / "study"
    _ct(d)
    nib.save(nib.Nifti1Image(_label_map(), _ras_affine_from_files(d / "ct")), d / "ct_seg.nii.gz")
    return d


def test_a_label_map_on_the_series_grid_is_measured(nnunet_study):
    ras = _ras_affine_from_files(nnunet_study / "ct")
    assert abs(np.linalg.det(ras[:3, :3])) == pytest.approx(VOXEL_ML * 1000)
    found = discover_study(nnunet_study)
    assert [s.path.name for s in found.segmentations] == ["ct_seg.nii.gz"]
    assert found.image_series_uid
    assert len(found.image_files) == SHAPE[2]
    rep = analyze_json(str(nnunet_study))
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    assert rep["tumor"]["lesion_count"] == 1
    assert not any("resampl" in w for w in rep["warnings"]), rep["warnings"]


def test_totalsegmentator_masks_on_the_series_grid_are_measured(tmp_path):
    d = tmp_path / "study"
    _ct(d)
    ras = _ras_affine_from_files(d / "ct")
    liver, tumour = _phantom()
    (d / "segmentations").mkdir()
    nib.save(nib.Nifti1Image(liver.astype(np.uint8), ras), d / "segmentations" / "liver.nii.gz")
    nib.save(nib.Nifti1Image(tumour.astype(np.uint8), ras), d / "segmentations" / "liver_tumor.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), ras), d / "segmentations" / "aorta.nii.gz")
    rep = analyze_json(str(d))
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)


def test_a_label_map_one_slice_off_the_series_grid_is_refused_in_one_line(tmp_path):
    d = tmp_path / "study"
    _ct(d)
    ras = _ras_affine_from_files(d / "ct")
    ras[:3, 3] += ras[:3, 2]  # the first voxel one slice (2.5 mm) further along the normal
    nib.save(nib.Nifti1Image(_label_map(), ras), d / "ct_seg.nii.gz")
    line = one_line(netlm("analyze", d, "--out", tmp_path / "out"), 3)
    uid = pydicom.dcmread(next((d / "ct").iterdir())).SeriesInstanceUID
    assert f"ct_seg.nii.gz is not on the grid of DICOM series {uid}" in line
    assert f"({SHAPE[2]} files in ct/)" in line
    assert "first voxel 2.5 mm apart" in line
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_seg_beside_the_label_map_lists_both_and_the_choice_takes_one(nnunet_study, tmp_path):
    liver, _ = _phantom()
    files = sorted((nnunet_study / "ct").iterdir())
    write_seg(nnunet_study / "seg.dcm", files, [SegmentSpec("Liver", liver)])
    line = one_line(netlm("analyze", nnunet_study, "--out", tmp_path / "out"), 3)
    assert "2 candidate segmentations: 1) seg.dcm (SEG" in line
    assert "; 2) ct_seg.nii.gz (NIFTI)" in line
    rep = analyze_json(str(nnunet_study), "--seg-choice", "ct_seg.nii.gz")
    liver_ml, tumour_ml = _expected()
    assert rep["liver"]["volume_ml"] == pytest.approx(liver_ml, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour_ml, abs=1e-6)
    rep = analyze_json(str(nnunet_study), "--seg-choice", "seg.dcm")
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver) * VOXEL_ML, abs=1e-6)
