"""Which DICOM series a NIfTI beside it lies on is decided from headers alone: no pixel is read to decide.

Two CT series of one study on different oblique grids; a label map on the second's grid, its affine
computed here from the written files' ImageOrientationPatient / ImagePositionPatient / PixelSpacing
with the LPS->RAS flip (not taken from the writer's affine). The proof that no pixel is read: a label map
whose data block is cut off (header intact) is still matched to the second series, and only the
analysis' read of it refuses it, in one line naming the file; a first series whose RLE pixel data cannot
be decoded does not stop the study measured on the second. Truths: voxel counts of the ellipsoids drawn
here x the voxel volume.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import analyze_json, oblique_affine
from dicom_factory import write_image_series
from pydicom.uid import RLELossless
from test_faults_messages import netlm, one_line

from netlm_imaging.errors import UnsupportedError
from netlm_imaging.io._dicom_common import scan_dicom_folder
from netlm_imaging.io.dicom_series import read_series_from_index
from netlm_imaging.io.dicom_series_plan import series_grid
from netlm_imaging.io.discover import discover_study

SPACING = (0.8, 0.9, 2.5)
SHAPE = (40, 36, 18)
AFF_A = oblique_affine(spacing=(0.7, 0.7, 3.0), angles_deg=(-6.0, 9.0, 15.0), origin=(-98.0, 21.0, 380.0))
AFF_B = oblique_affine(spacing=SPACING, angles_deg=(12.0, -8.0, 22.0))
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
    lps[:3, 0] = iop[:3] * col_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = ipp1 - ipp0
    lps[:3, 3] = ipp0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _study(tmp_path, **series_a) -> tuple:
    """A study of series A (another grid) and B (the label map's), and the label map on B's grid."""
    d = tmp_path / "study"
    liver, tumour = _phantom()
    hu = np.where(tumour, 20.0, np.where(liver, 60.0, -80.0))
    write_image_series(
        d / "a", np.full((32, 30, 12), 40.0), AFF_A, study_uid="1.2.3.4", series_number=1, seed=31, **series_a
    )
    write_image_series(d / "b", hu, AFF_B, study_uid="1.2.3.4", series_number=2, seed=32)
    lab = np.zeros(SHAPE, np.uint8)
    lab[liver] = 1
    lab[tumour] = 2
    nib.save(nib.Nifti1Image(lab, _ras_affine_from_files(d / "b")), d / "ct_seg.nii.gz")
    uid_b = pydicom.dcmread(next((d / "b").iterdir())).SeriesInstanceUID
    return d, uid_b


def test_a_label_map_whose_data_is_cut_off_is_matched_by_its_header_then_refused_by_its_read(tmp_path):
    d, uid_b = _study(tmp_path)
    seg = d / "ct_seg.nii.gz"
    whole = gzip.decompress(seg.read_bytes())
    assert len(whole) == 352 + int(np.prod(SHAPE))  # header + extension flag, then one byte a voxel
    seg.write_bytes(gzip.compress(whole[: 352 + 1000]))  # the header and 1000 of its 25920 voxels
    found = discover_study(d)
    assert found.image_series_uid == uid_b
    assert [s.path.name for s in found.segmentations] == ["ct_seg.nii.gz"]
    assert len(found.image_files) == SHAPE[2]
    line = one_line(netlm("analyze", d, "--out", tmp_path / "out"), 3)
    assert "ct_seg.nii.gz" in line
    assert "truncated or corrupt file" in line
    assert not (tmp_path / "out" / "report.json").exists()


def _break_rle_pixels(folder) -> None:
    """Each file's RLE header puts its second segment past the end of its frame: its pixels cannot be decoded."""
    for p in folder.iterdir():
        raw = p.read_bytes()
        at = raw.index(b"\x02\x00\x00\x00\x40\x00\x00\x00") + 8  # segment count 2, the first at byte 64
        p.write_bytes(raw[:at] + (1 << 16).to_bytes(4, "little") + raw[at + 4 :])  # same length: not truncated


def test_a_series_whose_pixels_cannot_be_decoded_does_not_stop_the_study_measured_on_the_other(tmp_path):
    d, uid_b = _study(tmp_path, transfer_syntax=RLELossless)
    _break_rle_pixels(d / "a")
    index = scan_dicom_folder(d / "a")
    with pytest.raises(UnsupportedError, match="cannot decode pixel data in RLE Lossless"):
        read_series_from_index(index)  # the series cannot be read
    assert discover_study(d).image_series_uid == uid_b
    rep = analyze_json(str(d))
    liver, tumour = _phantom()
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver | tumour) * VOXEL_ML, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(tumour) * VOXEL_ML, abs=1e-6)


@pytest.mark.parametrize("case", ["oblique", "irregular steps, resampled", "gantry tilt", "one slice"])
def test_the_header_grid_is_the_grid_of_the_read(tmp_path, case):
    aff = AFF_B.copy()
    n_k, indices = 9, None
    if case == "irregular steps, resampled":
        indices = [0, 1, 2, 4, 5, 6, 7, 8]  # slice 3 missing
    elif case == "gantry tilt":
        aff[:3, 2] += 0.2 * aff[:3, 0]  # each slice origin a fifth of a column step along the row
    elif case == "one slice":
        n_k = 1
    write_image_series(tmp_path / "s", np.zeros((20, 16, n_k)), aff, seed=5, slice_indices=indices)
    index = scan_dicom_folder(tmp_path / "s")
    grid = series_grid(index, nonuniform="resample")
    read = read_series_from_index(index, nonuniform="resample")
    assert grid.array.strides == (0, 0, 0)  # no pixel buffer behind it
    assert grid.shape == read.shape == (20, 16, n_k)
    np.testing.assert_array_equal(grid.affine, read.affine)
    assert grid.frame_of_reference_uid == read.frame_of_reference_uid
    assert read.meta["resampled"] is (case == "irregular steps, resampled")
    assert read.sheared is (case == "gantry tilt")


def test_a_one_hot_label_map_beside_the_series_is_measured_on_its_grid(tmp_path):
    """MONAI's one-hot output (x, y, z, C): its grid is its 3 spatial axes (it was refused as a 4-D image)."""
    d, uid_b = _study(tmp_path)
    seg = d / "ct_seg.nii.gz"
    img = nib.load(seg)
    lab = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(np.stack([lab == c for c in range(3)], axis=3).astype(np.uint8), img.affine), seg)
    assert discover_study(d).image_series_uid == uid_b
    rep = analyze_json(str(d))
    liver, tumour = _phantom()
    assert rep["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver | tumour) * VOXEL_ML, abs=1e-6)
    assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(tumour) * VOXEL_ML, abs=1e-6)
