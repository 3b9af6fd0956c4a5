"""DICOM image series reader: synthetic series with known truth and real public files.

Real files (../shared/data, see MANIFEST.md):
- dcmqi_ct3slice_seg: QIICR/dcmqi @b6137d9e (BSD-3-Clause), GE CT 3 slices.
- pydicom_data_seg_enhanced: pydicom/pydicom-data @b0d40d1e (MIT), Enhanced CT/MR.
- dcm_qa_ts: neurolabusc/dcm_qa_ts @fe4878a4 (BSD-2-Clause), with dcm2niix references.
- dicom2nifti_geometry_edgecases: icometrix/dicom2nifti (MIT), gantry tilt / missing slice.
- mirp_sts_fdg_pet: oncoray/mirp @d8a6a726 (CC BY 3.0, TCIA Soft-tissue-Sarcoma,
  Vallieres et al. 2015, doi 10.7937/K9/TCIA.2015.7GO2GSKS).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path, tilted_affine
from dicom_factory import SLICE_THICKNESS_FACTOR, deterministic_uid, write_enhanced_series, write_image_series
from pydicom.uid import RLELossless

from netlm_imaging.errors import DicomError, ResourceLimitError, UnsupportedError
from netlm_imaging.io._dicom_common import read_header, scan_dicom_folder
from netlm_imaging.io._dicom_pixels import decode_frames
from netlm_imaging.io.dicom_series import read_dicom_series

CT3 = ("dcmqi_ct3slice_seg", "data", "segmentations", "ct-3slice")
PET = ("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET", "image")
EDGE = ("dicom2nifti_geometry_edgecases", "tests", "data", "failing")
ENH = ("pydicom_data_seg_enhanced", "data_store", "data")


def _phantom(shape=(12, 10, 7), seed=0) -> np.ndarray:
    """Integer HU values so the stored int16 round trip is exact."""
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1500, size=shape).astype(np.float64)


def _add_junk(folder: Path) -> None:
    (folder / "README.txt").write_text("exported by PACS\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    (folder / "meta.json").write_text(json.dumps({"study": 1}))


# ---------------------------------------------------------------- synthetic
def test_oblique_anisotropic_round_trip_with_shuffled_names_and_junk(tmp_path):
    array = _phantom()
    spacing = (0.7, 0.9, 2.5)
    affine = oblique_affine(spacing=spacing, angles_deg=(10.0, -4.0, 8.0))
    files = write_image_series(tmp_path / "ct", array, affine, shuffle_names=True, seed=3)
    _add_junk(tmp_path / "ct")
    (tmp_path / "ct" / "sub").mkdir()
    files[3].rename(tmp_path / "ct" / "sub" / files[3].name)  # recursive walk

    vol = read_dicom_series(tmp_path / "ct")

    np.testing.assert_array_equal(vol.array, array)
    assert vol.array.dtype == np.int16  # integer slope and intercept: exact int16 (dicom_series "Array dtype")
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    # voxel volume from the written spacing, not from SliceThickness (1.25 x step)
    assert vol.voxel_volume_mm3 == pytest.approx(0.7 * 0.9 * 2.5, rel=1e-6)
    assert pydicom.dcmread(files[0]).SliceThickness == pytest.approx(SLICE_THICKNESS_FACTOR * 2.5)
    expected_uids = [deterministic_uid("sop", 3, "CT", vol.meta["series_instance_uid"], k) for k in range(7)]
    assert vol.meta["sop_instance_uids"] == expected_uids
    # slice positions: projection of affine @ (0, 0, k) on the slice normal
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    normal /= np.linalg.norm(normal)
    truth = [float((affine @ [0, 0, k, 1])[:3] @ normal) for k in range(7)]
    np.testing.assert_allclose(vol.meta["slice_positions_mm"], truth, atol=1e-6)
    assert vol.meta["resampled"] is False
    assert vol.meta["modality"] == "CT"


def test_per_slice_rescale_applied_in_float(tmp_path):
    nk = 5
    array = _phantom((6, 8, nk), seed=1) / 3.0  # non-integer values
    pairs = [(0.5, -1024.0), (0.25, -1000.0), (1.0, 0.0), (2.0, -2048.0), (0.1, 3.5)]
    write_image_series(tmp_path, array, oblique_affine(), per_slice_rescale=pairs)
    vol = read_dicom_series(tmp_path)
    truth = np.stack(
        [np.rint((array[:, :, k] - b) / s) * s + b for k, (s, b) in enumerate(pairs)],
        axis=-1,
    )
    np.testing.assert_allclose(vol.array, truth, rtol=0, atol=1e-4)
    assert vol.meta["rescale"] == [list(p) for p in pairs]
    assert not np.allclose(vol.array, np.rint(vol.array))  # fractions kept, no integer cast


def test_several_series_listed_and_chosen(tmp_path):
    aff = oblique_affine(spacing=(1.0, 1.0, 3.0), angles_deg=(0.0, 0.0, 0.0))
    ct = _phantom((8, 8, 4), seed=2)
    pet = np.abs(_phantom((4, 4, 2), seed=3)) * 10
    pet_aff = oblique_affine(spacing=(2.0, 2.0, 6.0), angles_deg=(0.0, 0.0, 0.0))
    write_image_series(tmp_path / "a", ct, aff, seed=7, series_description="CT abdomen")
    write_image_series(
        tmp_path / "b", pet, pet_aff, modality="PT", seed=7, series_description="PET AC", series_number=2
    )
    with pytest.raises(DicomError, match=r"2 image series found: .*CT 'CT abdomen', 4 slices.*PT 'PET AC', 2 slices"):
        read_dicom_series(tmp_path)
    with pytest.raises(DicomError, match=r"--image-series UID"):
        read_dicom_series(tmp_path)
    pet_uid = deterministic_uid("series", 7, "PT")
    vol = read_dicom_series(tmp_path, series_uid=pet_uid)
    assert vol.meta["modality"] == "PT"
    assert vol.meta["header"]["units"] == "BQML"
    assert vol.meta["header"]["patient_weight_kg"] == 70.0
    np.testing.assert_array_equal(vol.array, pet)
    assert vol.frame_of_reference_uid == deterministic_uid("for", 7)
    with pytest.raises(DicomError, match=r"no image series with SeriesInstanceUID 1\.2\.3"):
        read_dicom_series(tmp_path, series_uid="1.2.3")


def test_empty_series_uid_falls_back_to_frame_of_reference_and_geometry(tmp_path):
    a1 = _phantom((6, 6, 3), seed=4)
    a2 = _phantom((5, 6, 4), seed=5)
    aff = oblique_affine()
    write_image_series(tmp_path / "x", a1, aff, series_uid="", seed=1)
    write_image_series(tmp_path / "y", a2, aff, series_uid="", seed=2, extra_tags={"SeriesInstanceUID": None})
    with pytest.raises(DicomError, match=r"2 image series found: nouid:.*3 slices.*nouid:.*4 slices"):
        read_dicom_series(tmp_path)
    vol = read_dicom_series(tmp_path / "y")
    np.testing.assert_array_equal(vol.array, a2)
    assert vol.meta["series_instance_uid"] == ""


def test_file_list_source_and_single_file_reads_its_series(tmp_path):
    array = _phantom((5, 4, 6), seed=6)
    aff = oblique_affine()
    files = write_image_series(tmp_path, array, aff, shuffle_names=True)
    np.testing.assert_array_equal(read_dicom_series(files[:3]).array, array[:, :, :3])
    np.testing.assert_array_equal(read_dicom_series(files[2]).array, array)


def test_enhanced_ct_frames_sorted_by_position_with_per_frame_rescale(tmp_path):
    array = _phantom((9, 7, 5), seed=8)
    aff = oblique_affine(spacing=(0.6, 0.8, 1.5))
    pairs = [(1.0, -1024.0), (0.5, -1024.0), (2.0, -2000.0), (1.0, 0.0), (0.25, -500.0)]
    path = write_enhanced_series(tmp_path / "enh.dcm", array, aff, per_frame_rescale=pairs, frame_order=[3, 0, 4, 1, 2])
    vol = read_dicom_series(path)
    truth = np.stack([np.rint((array[:, :, k] - b) / s) * s + b for k, (s, b) in enumerate(pairs)], axis=-1)
    np.testing.assert_allclose(vol.array, truth, atol=1e-4)
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    assert vol.meta["frame_numbers"] == [2, 4, 5, 1, 3]  # frame holding k = 0..4


def test_missing_slice_named_and_resampled_linearly(tmp_path):
    ni, nj, nk = 4, 5, 6
    i, j, k = np.meshgrid(np.arange(ni), np.arange(nj), np.arange(nk), indexing="ij")
    array = (10.0 * k + i - 2 * j).astype(np.float64)  # linear in k: interpolation is exact
    aff = oblique_affine(spacing=(1.0, 1.0, 2.0))
    write_image_series(tmp_path, array, aff, slice_indices=[0, 1, 2, 4, 5], rescale_intercept=0.0)
    with pytest.raises(DicomError, match=r"missing slice: a gap of 4 mm between slices 2 and 3.*step is 2 mm"):
        read_dicom_series(tmp_path)
    vol = read_dicom_series(tmp_path, nonuniform="resample")
    assert vol.meta["resampled"] is True
    assert "missing slice" in vol.meta["warnings"][0]
    np.testing.assert_allclose(vol.array, array, atol=1e-4)
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    assert len(vol.meta["slice_positions_mm"]) == 5  # original positions kept


def test_synthetic_gantry_tilt_read_on_the_written_sheared_affine(tmp_path):
    tilt_deg = 10.0
    aff = np.eye(4)
    aff[:3, 0] = [0.8, 0, 0]
    aff[:3, 1] = [0, 0.8 * math.cos(math.radians(tilt_deg)), -0.8 * math.sin(math.radians(tilt_deg))]
    aff[:3, 2] = [0, 0, 2.5]  # table moves along z, the image plane is tilted
    array = _phantom((6, 6, 5))
    write_image_series(tmp_path, array, aff)
    vol = read_dicom_series(tmp_path)
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    np.testing.assert_allclose(vol.array, array, atol=1e-4)
    assert vol.meta["resampled"] is False
    assert any("gantry tilt of 10.0 degrees" in w for w in vol.meta["warnings"])


def test_duplicate_positions_refused(tmp_path):
    aff = oblique_affine()
    write_image_series(tmp_path / "e1", _phantom((4, 4, 3)), aff, series_uid="1.2.826.0.1.9", seed=1)
    write_image_series(tmp_path / "e2", _phantom((4, 4, 3), seed=9), aff, series_uid="1.2.826.0.1.9", seed=2)
    with pytest.raises(DicomError, match=r"2 images share the slice position .*one volume per series") as err:
        read_dicom_series(tmp_path)
    # the two files have one name: the message tells them apart by their folders
    assert re.search(r"\((e1|e2)/[^,/]+, (e1|e2)/[^)/]+\)", str(err.value)), str(err.value)
    assert "e1/" in str(err.value)
    assert "e2/" in str(err.value)


def test_a_slice_archived_twice_under_new_uids_is_read_once(tmp_path):
    """A PACS re-archived slice 2 under a new SOPInstanceUID: same position, byte-identical pixels, one image.

    Different pixels at one position (the next check) are still several phases and refused.
    """
    aff = oblique_affine()
    image = _phantom((6, 5, 4), seed=4)
    files = write_image_series(tmp_path, image, aff, seed=3)
    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.4242.99"
    ds.save_as(tmp_path / "resent.dcm")
    vol = read_dicom_series(tmp_path)
    assert vol.shape == image.shape
    np.testing.assert_array_equal(vol.array, image)
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    ds.PixelData = (ds.pixel_array + 1).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(tmp_path / "resent.dcm")
    with pytest.raises(DicomError, match=r"2 images share the slice position"):
        read_dicom_series(tmp_path)


def _strip_preamble(files, implicit=True):
    """Rewrite files as old exports wrote them: no 128-byte preamble, no DICM marker, no file meta group."""
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(f, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=False)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit-vr", "explicit-vr"])
def test_series_without_preamble_or_file_meta_is_read(tmp_path, implicit):
    """Old CD / research exports: raw datasets without the Part-10 header (the scan already took them for
    DICOM). Pixels and geometry as pydicom reads them with force=True; they were refused as corrupt."""
    aff = oblique_affine()
    image = _phantom((10, 9, 4), seed=6)
    files = write_image_series(tmp_path, image, aff, seed=8, per_slice_rescale=[(1.0, -1024.0), (2.0, -1000.0)] * 2)
    _strip_preamble(files, implicit)
    assert files[0].read_bytes()[:2] == b"\x08\x00"  # starts with group 0008: no preamble
    vol = read_dicom_series(tmp_path)
    peer = [pydicom.dcmread(f, force=True) for f in files]
    for k, ds in enumerate(peer):  # pydicom's modality values of each slice, [row, column] -> [i, j]
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
        )
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(vol.array[:, :, k], expected.T)
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    assert vol.meta["header"]["rescale_type"] == "HU"


def test_identifiers_never_in_meta(tmp_path):
    write_image_series(tmp_path, _phantom((4, 4, 2)), oblique_affine(), modality="PT")
    vol = read_dicom_series(tmp_path)
    text = json.dumps(vol.meta)
    for secret in ("Doe", "SECRET-ID-123", "19700101", "ACC-SECRET-42"):
        assert secret not in text


# ---------------------------------------------------------------- bad input
def test_truncated_pixel_data_names_file(tmp_path):
    files = write_image_series(tmp_path, _phantom((16, 16, 4)), oblique_affine(), shuffle_names=True)
    data = files[2].read_bytes()
    files[2].write_bytes(data[:-100])
    with pytest.raises(DicomError, match=rf"{files[2].name}: pixel data is truncated.*re-export the series"):
        read_dicom_series(tmp_path)


def test_truncated_header_names_file(tmp_path):
    files = write_image_series(tmp_path, _phantom((16, 16, 4)), oblique_affine())
    files[1].write_bytes(files[1].read_bytes()[:300])
    with pytest.raises(DicomError, match=rf"{files[1].name}: DICOM (header|file) is truncated or corrupt"):
        read_dicom_series(tmp_path)


def test_zero_byte_file_names_file(tmp_path):
    write_image_series(tmp_path, _phantom((8, 8, 3)), oblique_affine())
    (tmp_path / "IM0004").write_bytes(b"")
    with pytest.raises(DicomError, match=r"IM0004: zero-byte file"):
        read_dicom_series(tmp_path)


def test_unsupported_transfer_syntax_names_file_and_fix(tmp_path):
    files = write_image_series(tmp_path, _phantom((8, 8, 2)), oblique_affine(), transfer_syntax=RLELossless)
    ds = pydicom.dcmread(files[0])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 MP@ML: no pydicom decoder
    ds.save_as(files[0])
    with pytest.raises(UnsupportedError, match=rf"{files[0].name}: cannot decode pixel data in MPEG2.*gdcmconv"):
        read_dicom_series(tmp_path)


def test_voxel_budget_checked_before_reading_pixels(tmp_path):
    files = write_image_series(tmp_path, _phantom((8, 8, 3)), oblique_affine())
    files[0].write_bytes(files[0].read_bytes()[:-10])  # pixels never read: budget first
    with pytest.raises(ResourceLimitError, match=r"declares 192 voxels \(8, 8, 3\), above the limit of 100"):
        read_dicom_series(tmp_path, max_voxels=100)


def test_no_image_series(tmp_path):
    _add_junk(tmp_path)
    with pytest.raises(DicomError, match=r"no DICOM image series found"):
        read_dicom_series(tmp_path)


# ---------------------------------------------------------------- real files
def test_dcmqi_ct_uses_position_step_not_slice_thickness():
    folder = shared_path(*CT3)
    vol = read_dicom_series(folder)
    assert vol.shape == (512, 512, 3)
    np.testing.assert_allclose(vol.spacing, [0.810547, 0.810547, 1.0], atol=1e-6)
    assert pydicom.dcmread(folder / "01.dcm").SliceThickness == 1.25
    # MANIFEST: liver 107,098 voxels = 70.362 mL with the real 1.0 mm step
    assert 107_098 * vol.voxel_volume_ml == pytest.approx(70.362, abs=5e-4)

    # pixels against pydicom's own decoder + modality LUT, in position order
    def along_normal(p: Path) -> float:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        return float(np.array(ds.ImagePositionPatient, dtype=float) @ np.cross(iop[:3], iop[3:]))

    by_z = sorted(folder.glob("*.dcm"), key=along_normal)
    for k, p in enumerate(by_z):
        ds = pydicom.dcmread(p)
        ref = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
        np.testing.assert_array_equal(vol.array[:, :, k], ref.T)
    assert vol.meta["header"]["manufacturer"] == "GE MEDICAL SYSTEMS"


def test_enhanced_ct_supplemental():
    path = shared_path(*ENH, "eCT_Supplemental.dcm")
    vol = read_dicom_series(path)
    ds = pydicom.dcmread(path)
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in ds.PerFrameFunctionalGroupsSequence]
    # IOP rows (-1,0,0), cols (0,1,0): the normal is -z, so higher z comes first
    order = np.argsort(-np.array(z))
    assert vol.shape == (512, 512, 2)
    assert vol.spacing[2] == pytest.approx(abs(z[1] - z[0]))
    np.testing.assert_allclose(vol.affine[:3, 2], [0, 0, -abs(z[1] - z[0])], atol=1e-6)
    for k, f in enumerate(order):
        np.testing.assert_array_equal(vol.array[:, :, k], (ds.pixel_array[f].astype(np.float64) - 1024.0).T)


def test_enhanced_mr_encodings_decode_identically_and_missing_geometry_refused():
    names = ["emri_small.dcm", "emri_small_RLE.dcm", "emri_small_big_endian.dcm",
             "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"]  # fmt: skip
    decoded = [decode_frames(read_header(shared_path(*ENH, n)))[0] for n in names]
    for arr in decoded[1:]:
        np.testing.assert_array_equal(arr, decoded[0])
    assert decoded[0].shape == (10, 64, 64)
    with pytest.raises(DicomError, match=r"emri_small\.dcm: image lacks ImagePositionPatient"):
        read_dicom_series(shared_path(*ENH, "emri_small.dcm"))


@pytest.mark.parametrize("n", range(1, 10))
def test_dcm_qa_ts_decodes_to_dcm2niix_reference(n):
    path = shared_path("dcm_qa_ts", "In", f"{n}.dcm")
    info = read_header(path)
    frames, _ = decode_frames(info)
    mosaic = frames[0]
    assert int(mosaic.astype(np.int64).sum()) == 38_036_663  # MANIFEST
    ref = np.asarray(nib.load(shared_path("dcm_qa_ts", "Ref", f"{n}.nii")).dataobj)
    n_images = int(pydicom.dcmread(path, stop_before_pixels=True)[0x0019, 0x100A].value)
    tile = ref.shape[0]
    per_row = mosaic.shape[1] // tile
    tiles = [mosaic[(t // per_row) * tile : (t // per_row + 1) * tile, (t % per_row) * tile : (t % per_row + 1) * tile]
             for t in range(n_images)]  # fmt: skip
    # dcm2niix: i = column, j = row flipped (NIfTI y up), k = tile order
    demosaic = np.stack(tiles, axis=-1).transpose(1, 0, 2)[:, ::-1, :]
    np.testing.assert_array_equal(demosaic, ref)


def test_mosaic_series_refused_clearly():
    with pytest.raises(UnsupportedError, match=r"1\.dcm: Siemens mosaic .*dcm2niix"):
        read_dicom_series(shared_path("dcm_qa_ts", "In", "1.dcm"))


def test_real_missing_slice_named():
    folder = shared_path(*EDGE, "sliceincrement", "002")
    with pytest.raises(DicomError, match=r"missing slice: .*IM-0001-0003\.dcm, IM-0001-0005\.dcm.*1 slice\(s\) absent"):
        read_dicom_series(folder)


def test_fdg_pet_nonuniform_steps_error_then_resample():
    folder = shared_path(*PET)
    with pytest.raises(DicomError, match=r"non-uniform slice steps \(3\.27 mm x261, 3\.29 mm x4, 3\.19 mm x1\)"):
        read_dicom_series(folder)
    vol = read_dicom_series(folder, nonuniform="resample")
    z = np.sort([float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]) for p in folder.iterdir()])
    n_out = round((z[-1] - z[0]) / 3.27) + 1
    assert vol.shape == (128, 128, n_out)
    assert vol.spacing[2] == pytest.approx((z[-1] - z[0]) / (n_out - 1), abs=1e-9)
    assert vol.meta["resampled"] is True
    assert "3.19 mm x1" in vol.meta["warnings"][0]
    assert vol.meta["header"]["units"] == "BQML"
    assert vol.meta["header"]["patient_weight_kg"] == 71.0
    # first and last slices are on original positions: equal to the decoded slices
    infos = {float(i.position[2]): i for i in scan_dicom_folder(folder)}
    for k, zk in ((0, z[0]), (n_out - 1, z[-1])):
        info = infos[float(zk)]
        ds = pydicom.dcmread(info.path)
        ref = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).T
        np.testing.assert_allclose(vol.array[:, :, k], ref, rtol=1e-5, atol=1e-3)


# --------------------------------------------------------------------------- gantry tilt: where a drift is a tilt
def _drifting_series(folder, aff, n, drift_mm=None, noise_mm=0.0, seed=0):
    """``n`` slices on the grid of ``aff``; each origin moved in-plane (along the rows) by ``drift_mm[k]``."""
    files = write_image_series(folder, np.zeros((4, 4, n)), aff, modality="CT", seed=1)
    rng = np.random.default_rng(seed)
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        p = np.array([float(x) for x in ds.ImagePositionPatient])
        p[0] += (drift_mm[k] if drift_mm is not None else 0.0) + rng.uniform(-noise_mm, noise_mm)
        ds.ImagePositionPatient = [round(float(x), 4) for x in p]
        ds.save_as(f)
    return files


def test_a_tilt_of_two_slices_is_read_on_its_sheared_grid(tmp_path):
    aff = tilted_affine(30.0)
    _drifting_series(tmp_path, aff, 2)
    vol = read_dicom_series(tmp_path)
    assert vol.sheared
    assert vol.shear_deg == pytest.approx(30.0, abs=1e-3)
    np.testing.assert_allclose(vol.affine[:3, :3], aff[:3, :3], atol=1e-4)


def test_in_plane_drift_below_half_a_pixel_is_ignored_above_it_is_a_tilt(tmp_path):
    """Half of the 0.8 mm pixel is 0.4 mm: a drift of 0.36 mm over the series is noise, 0.48 mm a tilt."""
    aff = tilted_affine(0.0)
    small = read_dicom_series(_drifting_series(tmp_path / "a", aff, 6, np.linspace(0.0, 0.36, 6))[0].parent)
    assert not small.sheared
    ignored = "slice origins drift 0.360 mm in-plane (below half a pixel; ignored)"
    assert any(ignored in w for w in small.meta["warnings"])
    big = read_dicom_series(_drifting_series(tmp_path / "b", aff, 6, np.linspace(0.0, 0.48, 6))[0].parent)
    assert big.sheared
    step = np.array([0.48 / 5, 0.0, 1.5])  # the origin's step from one slice to the next
    assert big.shear_deg == pytest.approx(math.degrees(math.atan2(0.48 / 5, 1.5)), abs=1e-3)
    np.testing.assert_allclose(big.affine[:3, 2], step, atol=1e-4)


def test_a_tilt_with_rounded_origins_is_still_a_tilt(tmp_path):
    """24 slices at 30 degrees, each origin off by up to 0.15 mm (rounding by an exporter): under the tolerance."""
    aff = tilted_affine(30.0)
    vol = read_dicom_series(_drifting_series(tmp_path, aff, 24, noise_mm=0.15, seed=7)[0].parent)
    assert vol.sheared
    assert vol.shear_deg == pytest.approx(30.0, abs=0.5)
    # the tilt the warning names is the span's, first to last slice: the noise is 0.3 mm of 34.5
    assert any("gantry tilt of 30.0 degrees: measured on the acquired, sheared grid" in w for w in vol.meta["warnings"])


def test_a_tilt_beyond_45_degrees_is_refused_as_such(tmp_path):
    _drifting_series(tmp_path, tilted_affine(50.0), 6)
    with pytest.raises(DicomError, match=r"gantry tilt of 50\.0 degrees with more than 45 degrees; resample"):
        read_dicom_series(tmp_path)
