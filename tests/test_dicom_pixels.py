"""Native pixel data whose length the header does not describe (io/_dicom_pixels.py).

A slice whose BitsAllocated says 8 while its PixelData holds 16-bit values
(twice the bytes Rows x Columns needs) was read from its first half: the
liver's mean CT value came out as 8 HU instead of 61 with no warning when one
slice of 52 had it. The byte counts here are facts of the files: the real GE CT
slices of ``dcmqi_ct3slice_seg/ct-3slice`` (QIICR/dcmqi @b6137d9e, BSD-3-Clause;
shared/data/MANIFEST.md) are 512 x 512 at 16 bits, 524,288 bytes each.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path
from dicom_factory import write_image_series
from seg_factory import RoiSpec, box_outline, write_rtstruct

from netlm_imaging.cli import main as cli_main
from netlm_imaging.errors import DicomError
from netlm_imaging.io.dicom_series import read_dicom_series

CT3 = shared_path("dcmqi_ct3slice_seg", "data", "segmentations", "ct-3slice")


def _set(path, **tags):
    ds = pydicom.dcmread(str(path))
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(str(path), enforce_file_format=False)


def _real_series(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    for name in ("01.dcm", "02.dcm", "03.dcm"):
        shutil.copy(CT3 / name, folder / name)
    return folder


def test_the_real_slices_hold_exactly_their_declared_bytes(tmp_path):
    folder = _real_series(tmp_path)
    ds = pydicom.dcmread(str(folder / "02.dcm"))
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, len(ds.PixelData)) == (512, 512, 16, 524288)
    vol = read_dicom_series(folder)
    assert vol.shape == (512, 512, 3)


def test_bits_allocated_8_on_16_bit_pixel_data_is_refused_naming_the_file(tmp_path):
    folder = _real_series(tmp_path)
    _set(folder / "02.dcm", BitsAllocated=8, BitsStored=8, HighBit=7)
    expected = r"02\.dcm: PixelData holds 524288 bytes, 2 times the 262144 .*at BitsAllocated 8"
    with pytest.raises(DicomError, match=expected):
        read_dicom_series(folder)


def test_rows_too_small_for_the_pixel_data_is_refused(tmp_path):
    folder = _real_series(tmp_path)
    for name in ("01.dcm", "02.dcm", "03.dcm"):
        _set(folder / name, Rows=256)
    with pytest.raises(DicomError, match=r"0[123]\.dcm: PixelData holds 524288 bytes, 2 times the 262144 .*Rows 256"):
        read_dicom_series(folder)


def test_a_pad_byte_is_not_a_frame(tmp_path):
    # 111 x 101 at 8 bits: 11,211 bytes, padded to an even 11,212 by the writer
    rng = np.random.default_rng(46)
    arr = rng.integers(0, 200, (111, 101, 3)).astype(np.float64)
    files = write_image_series(tmp_path / "mr", arr, oblique_affine(), modality="MR", seed=46)
    for f in files:
        ds = pydicom.dcmread(str(f))
        stored = ds.pixel_array.astype(np.uint8)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = stored.tobytes() + b"\0"
        ds.save_as(str(f), enforce_file_format=False)
    assert len(pydicom.dcmread(str(files[0])).PixelData) == 111 * 101 + 1
    vol = read_dicom_series(tmp_path / "mr")
    np.testing.assert_array_equal(np.asarray(vol.array), arr)


def test_one_slice_of_a_long_series_with_bits_allocated_8_exits_3(tmp_path, capsys):
    # 20 slices: enough for the threaded whole-series read path
    rng = np.random.default_rng(47)
    hu = rng.integers(-100, 200, (40, 36, 20)).astype(np.float64)
    aff = oblique_affine()
    files = write_image_series(tmp_path / "ct", hu, aff, modality="CT", seed=47)
    liver = RoiSpec("Liver", [box_outline(aff, ((5, 30), (5, 30)), k) for k in range(3, 15)])
    write_rtstruct(tmp_path / "ct" / "rtss.dcm", files, [liver], seed=47)
    _set(files[7], BitsAllocated=8, BitsStored=8, HighBit=7)
    with pytest.raises(DicomError, match=rf"{files[7].name}: PixelData holds 2880 bytes, 2 times the 1440"):
        read_dicom_series(tmp_path / "ct")
    rc = cli_main(["analyze", str(tmp_path / "ct"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 3
    assert "Traceback" not in err
    assert f"{files[7].name}: PixelData holds" in err
