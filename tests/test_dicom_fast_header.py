"""DICOM image path: fast header scan, smallest exact image dtype, and two fuzz findings.

* The fast header reader (``_dicom_fast._fast_header``) must return exactly
  what the full pydicom parse returns (``_read_header_pydicom``), on every real
  file of shared/data and on synthetic files with the structures it skips
  (nested sequences of defined and undefined length, a private UN element of
  undefined length, other character sets), and decline what it does not handle.
* Integer modality values are kept in int16/int32 when exact (the truth is the
  test's own integer phantom); fractional slopes and PET stay float32.
* A corrupt slice is never dropped silently (fuzz findings of tests/test_fuzz.py).

Real files (../shared/data, see MANIFEST.md):
- dcmqi_ct3slice_seg: QIICR/dcmqi @b6137d9e (BSD-3-Clause), GE CT 3 slices (implicit VR LE).
- mirp_sts_fdg_pet: oncoray/mirp @d8a6a726 (CC BY 3.0, TCIA Soft-tissue-Sarcoma,
  Vallieres et al. 2015, doi 10.7937/K9/TCIA.2015.7GO2GSKS), GE PET 267 slices.
- dcm_qa_ts: neurolabusc/dcm_qa_ts @fe4878a4 (BSD-2-Clause), one MR in 9 transfer syntaxes.
- pydicom_data_seg_enhanced: pydicom/pydicom-data @b0d40d1e (MIT), SEGs and Enhanced CT/MR.
- dicom2nifti_geometry_edgecases: icometrix/dicom2nifti (MIT).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path
from dicom_factory import write_image_series
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.errors import DicomError
from netlm_imaging.io._dicom_common import read_header, scan_dicom_folder
from netlm_imaging.io._dicom_fast import _fast_header
from netlm_imaging.io._dicom_header import _read_header_pydicom
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.discover import discover_study

CT3 = ("dcmqi_ct3slice_seg", "data", "segmentations", "ct-3slice")
PET = ("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET", "image")
QA_TS = ("dcm_qa_ts", "In")
ENH = ("pydicom_data_seg_enhanced", "data_store", "data")


def _phantom(shape=(9, 7, 4), seed=0, low=-1000, high=1500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(low, high, size=shape).astype(np.float64)


def _same_as_pydicom(path: Path) -> bool:
    """True when the fast path handled ``path``; fails when its answer differs from pydicom's."""
    fast = _fast_header(path)
    if fast is None:
        return False
    assert fast == _read_header_pydicom(path), path
    return True


# ------------------------------------------------------------ fast header path
def test_fast_header_equals_pydicom_on_real_files():
    """Every real file: same facts as pydicom, or declined. Which files are fast is known from MANIFEST.md."""
    folders = [CT3, PET, QA_TS, ENH]
    fast = {}
    for folder in folders:
        root = shared_path(*folder)
        for p in sorted(root.iterdir()):
            if p.is_file():
                fast[p] = _same_as_pydicom(p)
    # Plain single-frame images: 3 GE CT slices (implicit VR), 267 GE PET slices, and the MR in every
    # little-endian syntax of dcm_qa_ts (8 of 9; file 3 is explicit VR big endian).
    assert sum(fast[p] for p in fast if p.parent.name == "ct-3slice") == 3
    assert sum(fast[p] for p in fast if p.parent.name == "image") == 267
    qa = {p.name: fast[p] for p in fast if p.parent.name == "In"}
    assert [n for n, f in sorted(qa.items()) if not f] == ["3.dcm"]
    # SEGs, Enhanced CT/MR (functional groups) and deflated/big-endian files are all declined.
    assert not any(fast[p] for p in fast if p.parent.name == "data")


def _insert_private_un_sequence(path: Path) -> None:
    """Insert (0009,0010) creator + (0009,1001) UN of undefined length holding implicit-VR items."""
    data = path.read_bytes()
    creator = b"NETLM TEST"
    inner = struct.pack("<HHI", 0x0009, 0x1002, 4) + b"abcd"
    nested = (
        struct.pack("<HHI", 0x0009, 0x1003, 0xFFFFFFFF)  # implicit VR: undefined length = sequence
        + struct.pack("<HHI", 0xFFFE, 0xE000, 8)
        + struct.pack("<HHI", 0x0009, 0x1004, 0)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + nested + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    element = (
        struct.pack("<HH", 0x0009, 0x0010)
        + b"LO"
        + struct.pack("<H", len(creator))
        + creator
        + struct.pack("<HH", 0x0009, 0x1001)
        + b"UN\0\0"
        + struct.pack("<I", 0xFFFFFFFF)
        + item
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    at = data.index(struct.pack("<HH", 0x0010, 0x0010))  # PatientName: first element of group 0010
    path.write_bytes(data[:at] + element + data[at:])


def _add_nested_sequences(ds: Dataset, undefined: bool) -> None:
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4"
    code = Dataset()
    code.CodeValue = "121311"
    code.CodingSchemeDesignator = "DCM"
    ref.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ReferencedImageSequence = Sequence([ref, Dataset()])
    if undefined:
        ds["ReferencedImageSequence"].is_undefined_length = True
        ref["PurposeOfReferenceCodeSequence"].is_undefined_length = True
        ref.is_undefined_length_sequence_item = True
        code.is_undefined_length_sequence_item = True


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("undefined", [False, True])
def test_fast_header_skips_nested_sequences(tmp_path, syntax, undefined):
    files = write_image_series(tmp_path, _phantom(), oblique_affine(), transfer_syntax=syntax, series_number=7)
    ds = pydicom.dcmread(files[1])
    _add_nested_sequences(ds, undefined)
    ds.save_as(files[1])
    if syntax == ExplicitVRLittleEndian:
        _insert_private_un_sequence(files[2])
        assert 0x00091001 in pydicom.dcmread(files[2])  # pydicom reads the inserted element too
    for p in files:
        assert _same_as_pydicom(p), p
    info = _fast_header(files[1])
    assert info is not None
    assert (info.series_number, info.rows, info.columns) == (7, 7, 9)


@pytest.mark.parametrize(
    ("charset", "description", "fast"),
    [
        (None, "CT venous", True),
        ("ISO_IR 100", "Leber venös", True),
        ("ISO_IR 192", "肝臓 venös", True),
        ("ISO 2022 IR 87", "CT", False),  # other character sets go to pydicom
    ],
)
def test_fast_header_text_and_character_sets(tmp_path, charset, description, fast):
    tags = {"SeriesDescription": description}
    if charset:
        tags["SpecificCharacterSet"] = charset
    files = write_image_series(tmp_path, _phantom(), oblique_affine(), extra_tags=tags)
    assert _same_as_pydicom(files[0]) is fast
    assert read_header(files[0]).series_description == description


@pytest.mark.parametrize(
    ("keyword", "value", "fast"),
    [
        ("ImagePositionPatient", ["1e1", "-2.5E-1", "+3"], True),  # exponents and signs are plain decimals
        ("SeriesNumber", " 12 ", True),
        ("RescaleSlope", "0", True),  # pydicom path: a zero slope reads as 1 (``or 1.0``); same here
        ("ImageType", ["derived", "secondary", " axial"], True),
        ("PixelSpacing", ["0.7"], True),  # wrong value count: no spacing, as pydicom's path says
        ("SeriesDescription", "a\\b", False),  # a backslash makes LO multi-valued in pydicom
        ("NumberOfFrames", "1", True),
        ("NumberOfFrames", "3", False),  # multi-frame without functional groups
    ],
)
def test_fast_header_values_like_pydicom(tmp_path, keyword, value, fast):
    files = write_image_series(tmp_path, _phantom(), oblique_affine())
    ds = pydicom.dcmread(files[0])
    setattr(ds, keyword, value)
    ds.save_as(files[0])
    assert _same_as_pydicom(files[0]) is fast


def test_fast_header_decodes_each_file_s_own_shared_values(tmp_path):
    """Files of one series share most header values (decoded once per distinct set of raw values):
    a file that differs from its neighbours in one of them gets its own, read in either order, as pydicom does."""
    files = write_image_series(tmp_path, _phantom(shape=(9, 7, 6)), oblique_affine())
    edits = [
        ("RescaleIntercept", "-1000"),
        ("SeriesDescription", "arterial"),
        ("ImageOrientationPatient", [1, 0, 0, 0, 0.8, 0.6]),
        ("PixelSpacing", [0.5, 0.75]),
    ]
    for f, (keyword, value) in zip(files[1:], edits, strict=False):
        ds = pydicom.dcmread(f)
        setattr(ds, keyword, value)
        ds.save_as(f)
    for order in (files, files[::-1], files + files):
        got = [_fast_header(f) for f in order]
        assert got == [_read_header_pydicom(f) for f in order]
    expected = {f.name: pydicom.dcmread(f, stop_before_pixels=True) for f in files}
    for info in got:
        ds = expected[info.path.name]
        assert info.frames[0].intercept == float(ds.RescaleIntercept)
        assert info.series_description == ds.SeriesDescription
        assert info.frames[0].orientation == tuple(float(x) for x in ds.ImageOrientationPatient)
        assert info.frames[0].pixel_spacing == tuple(float(x) for x in ds.PixelSpacing)
        assert info.sop_instance_uid == ds.SOPInstanceUID
        assert info.frames[0].position == tuple(float(x) for x in ds.ImagePositionPatient)


@pytest.fixture(scope="module")
def mutation_sources(tmp_path_factory) -> list[bytes]:
    root = tmp_path_factory.mktemp("mutants")
    out = []
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        files = write_image_series(root / syntax, _phantom(), oblique_affine(), transfer_syntax=syntax)
        ds = pydicom.dcmread(files[0])
        _add_nested_sequences(ds, undefined=syntax == ImplicitVRLittleEndian)
        ds.save_as(files[0])
        out.append(files[0].read_bytes())
    return out


@settings(derandomize=True, deadline=None, max_examples=150, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.integers(0, 1999), st.integers(0, 255), st.booleans()), min_size=1, max_size=4),
)
def test_fast_header_never_disagrees_with_pydicom_on_mutated_headers(tmp_path, mutation_sources, which, edits):
    """Differential fuzz: bytes of the header overwritten or deleted; the fast path declines or agrees."""
    data = bytearray(mutation_sources[which])
    for pos, value, delete in edits:
        pos %= min(len(data), 2000)
        if delete:
            del data[pos : pos + 1 + value % 8]
        else:
            data[pos] = value
    p = tmp_path / "mutant.dcm"
    p.write_bytes(bytes(data))
    fast = _fast_header(p)
    if fast is not None:
        assert fast == _read_header_pydicom(p)


@pytest.mark.parametrize(
    ("keyword", "vr", "value", "refused"),
    [
        ("RescaleSlope", "DS", "2\\3", True),  # two slopes: refused by the pydicom path
        ("ImagePositionPatient", "LO", "1\\x\\3", False),  # unparsable: no position (series reader refuses)
        ("Rows", "UL", 7, False),  # non-standard VR: pydicom still reads Rows = 7
    ],
)
def test_fast_header_declines_unusual_values(tmp_path, keyword, vr, value, refused):
    """Multi-valued scalars and non-standard VRs go to the pydicom path, which decides."""
    files = write_image_series(tmp_path, _phantom(), oblique_affine())
    ds = pydicom.dcmread(files[0])
    ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, value)
    ds.save_as(files[0])
    assert _fast_header(files[0]) is None
    if refused:
        with pytest.raises(DicomError, match=rf"{files[0].name}: malformed DICOM header"):
            read_header(files[0])
    else:
        info = read_header(files[0])
        assert info == _read_header_pydicom(files[0])
        assert info.rows == 7
        assert (info.position is None) is (keyword == "ImagePositionPatient")


def test_fast_header_flags_truncated_pixel_data(tmp_path):
    files = write_image_series(tmp_path, _phantom(), oblique_affine())
    files[0].write_bytes(files[0].read_bytes()[:-5])
    info = _fast_header(files[0])
    assert info is not None
    assert info.truncated
    assert info.pixel_data_length == 9 * 7 * 2  # 9 x 7 int16 pixels declared
    assert [i.truncated for i in scan_dicom_folder(tmp_path)] == [True, False, False, False]


# ------------------------------------------------------------ fuzz finding 1
@pytest.mark.parametrize("keyword", ["Rows", "Columns", "BitsAllocated", "PixelRepresentation"])
def test_file_cut_inside_a_us_value_names_the_file(tmp_path, keyword):
    """A file ending one byte into a 2-byte US value is refused naming the file, never a pydicom traceback.

    Cut inside Rows/Columns, pydicom raises BytesLengthException when the value is read (fuzz finding);
    cut further on, the file is recognised as ending before PixelData.
    """
    files = write_image_series(tmp_path, _phantom(), oblique_affine())
    data = files[-1].read_bytes()
    group, elem = divmod(pydicom.datadict.tag_for_keyword(keyword), 0x10000)
    at = data.index(struct.pack("<HH", group, elem) + b"US\x02\x00") + 8
    files[-1].write_bytes(data[: at + 1])
    expected = r"malformed DICOM header \(BytesLengthException" if keyword in ("Rows", "Columns") else "truncated"
    with pytest.raises(DicomError, match=rf"{files[-1].name}: .*{expected}"):
        scan_dicom_folder(tmp_path)


# ------------------------------------------------------------ image dtype
def test_ct_kept_as_exact_int16(tmp_path):
    """Slope 1, intercept -1024: HU values are integers and fit int16."""
    hu = _phantom(shape=(9, 7, 5), seed=1, low=-1024, high=3000)
    write_image_series(tmp_path, hu, oblique_affine())
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, hu)
    assert vol.meta["rescale"] == [[1.0, -1024.0]] * 5


def test_declared_12_bit_range_fits_int16(tmp_path):
    """BitsStored 12 (signed): the declared range -2048..2047 shifted by -1024 fits int16 without a value check."""
    hu = _phantom(shape=(6, 5, 3), seed=2, low=-1024, high=1000)  # stored = HU + 1024 in 0..2023
    write_image_series(tmp_path, hu, oblique_affine(), extra_tags={"BitsStored": 12, "HighBit": 11})
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, hu)


def test_integer_per_slice_rescale_is_exact(tmp_path):
    hu = _phantom(shape=(6, 5, 3), seed=3, low=-1000, high=1000)
    hu[:, :, 1] = 2 * np.round(hu[:, :, 1] / 2)  # slope 2 stores every other value exactly
    write_image_series(tmp_path, hu, oblique_affine(), per_slice_rescale=[(1, -1024), (2, -1000), (1, 0)])
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, hu)


def test_values_beyond_int16_widen_to_int32(tmp_path):
    """MR (slope 1, intercept 0) with a last slice above 32767 (stored uint16): exact int32."""
    mr = _phantom(shape=(6, 5, 4), seed=4, low=0, high=30000)
    mr[2, 3, 3] = 60000
    write_image_series(tmp_path, mr, oblique_affine(), modality="MR")
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.int32
    np.testing.assert_array_equal(vol.array, mr)


def test_fractional_slope_stays_float32(tmp_path):
    rescale = [(0.5, -3.25), (1.0, 0.0), (0.25, 10.0)]
    values = _phantom(shape=(6, 5, 3), seed=5, low=0, high=4000)
    write_image_series(tmp_path, values, oblique_affine(), modality="MR", per_slice_rescale=rescale)
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.float32
    for k, (s, b) in enumerate(rescale):
        stored = np.rint((values[:, :, k] - b) / s)  # what the writer stored
        np.testing.assert_allclose(vol.array[:, :, k], stored * s + b, rtol=0, atol=1e-6)


def test_pet_stays_float32(tmp_path):
    values = _phantom(shape=(6, 5, 3), seed=6, low=0, high=20000)
    write_image_series(tmp_path, values, oblique_affine(), modality="PT")
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, values)


def test_resampled_integer_series_is_float32_without_wraparound(tmp_path):
    """A missing slice between -30000 and +30000 HU: the midpoint is 0 (int16 differences would wrap)."""
    hu = np.zeros((5, 4, 5))
    hu[:, :, 2] = -30000.0
    hu[:, :, 4] = 30000.0
    write_image_series(tmp_path, hu, oblique_affine(), slice_indices=[0, 1, 2, 4])
    vol = read_dicom_series(tmp_path, nonuniform="resample")
    assert vol.meta["resampled"]
    assert vol.array.dtype == np.float32
    assert vol.shape == (5, 4, 5)
    np.testing.assert_array_equal(vol.array[:, :, 3], 0.0)
    np.testing.assert_array_equal(vol.array[:, :, 4], 30000.0)


def test_modality_lut_sequence_is_applied_to_native_pixels(tmp_path):
    """A Modality LUT Sequence (no RescaleSlope) maps stored values; LUT 2x + 5 computed here."""
    stored = _phantom(shape=(6, 5, 2), seed=7, low=0, high=4000)
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.ModalityLUTType = "US"
    lut.add_new(0x00283006, "US", [2 * x + 5 for x in range(4096)])  # LUTData
    tags = {"ModalityLUTSequence": Sequence([lut]), "RescaleSlope": None, "RescaleIntercept": None}
    write_image_series(tmp_path, stored, oblique_affine(), modality="MR", extra_tags=tags)
    vol = read_dicom_series(tmp_path)
    assert vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, 2 * stored + 5)


# ------------------------------------------------------------ fuzz finding 2
def _series(tmp_path: Path, n: int = 4) -> list[Path]:
    return write_image_series(tmp_path, _phantom(shape=(9, 7, n), seed=8), oblique_affine())


def _damage_dicm(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[128] ^= 1  # "DICM" -> "EICM"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", [0, -1])
def test_damaged_dicm_marker_in_a_dcm_file_is_refused(tmp_path, which):
    files = _series(tmp_path)
    _damage_dicm(files[which])
    with pytest.raises(DicomError, match=rf"{files[which].name}: not a readable DICOM file although .*'DICM' marker"):
        read_dicom_series(tmp_path)  # the file meta group after byte 132 says it is DICOM, whatever its name


def test_damaged_dicm_marker_without_extension_is_refused(tmp_path):
    """PACS exports often have no extension (IM0001): the file meta group after byte 132 gives it away."""
    files = _series(tmp_path)
    bare = files[0].with_name("IM0001")
    files[0].rename(bare)
    _damage_dicm(bare)
    with pytest.raises(DicomError, match=r"IM0001: not a readable DICOM file although .*'DICM' marker .* damaged"):
        read_dicom_series(tmp_path)


def test_junk_with_a_dicom_name_is_skipped(tmp_path):
    """Issue 12: a file named *.dcm with no DICOM structure in its bytes is junk, skipped with a note."""
    files = _series(tmp_path)
    (tmp_path / "extra.dcm").write_bytes(b"not dicom at all " * 20)
    assert read_dicom_series(tmp_path).shape[2] == len(files)


@pytest.mark.parametrize(("keyword", "value"), [("Columns", 0), ("Rows", 0), ("Rows", None)])
def test_image_without_matrix_size_is_refused(tmp_path, keyword, value):
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[-1])
    if value is None:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    ds.save_as(files[-1])
    expected = {"Columns": r"Rows 7 x Columns 0", "Rows": r"Rows 0 x Columns 9"}[keyword]
    with pytest.raises(DicomError, match=rf"{files[-1].name}: image with {expected}: the header is corrupt"):
        read_dicom_series(tmp_path)


def test_non_dicom_files_are_still_skipped(tmp_path, caplog):
    """README, JSON, hidden files, a PNG and DICOMDIR.txt: skipped with a note; all 4 slices are read."""
    _series(tmp_path)
    (tmp_path / "README.txt").write_text("exported by PACS\n")
    (tmp_path / "meta.json").write_text('{"study": 1}')
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    (tmp_path / "DICOMDIR.txt").write_text("not dicom")
    (tmp_path / "thumb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    with caplog.at_level("INFO", logger="netlm_imaging.io"):
        vol = read_dicom_series(tmp_path)
    assert vol.shape == (9, 7, 4)
    skipped = " ".join(r.getMessage() for r in caplog.records)
    for name in ("README.txt", "meta.json", "DICOMDIR.txt", "thumb.png", ".DS_Store"):
        assert name in skipped


# ------------------------------------------------------------ SEG references
def _per_frame_sources(path: Path) -> set[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {
        src.ReferencedSOPInstanceUID
        for item in ds.get("PerFrameFunctionalGroupsSequence") or []
        for der in item.get("DerivationImageSequence") or []
        for src in der.get("SourceImageSequence") or []
    }


def test_real_seg_instance_lists_cover_their_per_frame_sources():
    """Why the per-frame walk can be skipped: on every real SEG the series-level list holds all per-frame sources."""
    checked = 0
    for folder in [("dcmqi_ct3slice_seg", "data", "segmentations"), ENH]:
        for p in sorted(shared_path(*folder).iterdir()):
            if p.suffix == ".dcm" and pydicom.dcmread(p, stop_before_pixels=True).Modality == "SEG":
                refs = read_header(p).referenced_sop_uids
                assert _per_frame_sources(p) <= set(refs), p
                assert len(refs) in (2, 3), p  # the 3-slice dcmqi CT (2 slices in the sparse label maps)
                checked += 1
    assert checked == 13


@pytest.mark.parametrize("drop_series_refs", [False, True])
def test_seg_references_with_and_without_referenced_series_sequence(tmp_path, drop_series_refs):
    """Without ReferencedSeriesSequence the per-frame source images still find the CT series."""
    ct = write_image_series(tmp_path / "study" / "ct", _phantom(shape=(8, 7, 4), seed=9), oblique_affine())
    mask = np.zeros((8, 7, 4), bool)
    mask[2:6, 2:5, 1:3] = True
    seg = write_seg(tmp_path / "study" / "seg.dcm", ct, [SegmentSpec("Liver", mask)])
    if drop_series_refs:
        ds = pydicom.dcmread(seg)
        del ds.ReferencedSeriesSequence
        ds.save_as(seg)
    info = read_header(seg)
    ct_uids = {pydicom.dcmread(f).SOPInstanceUID for f in ct}
    # frames 1 and 2 hold the mask: at least their source slices; the full list when the series module is there
    assert {pydicom.dcmread(ct[k]).SOPInstanceUID for k in (1, 2)} <= set(info.referenced_sop_uids) <= ct_uids
    assert (info.referenced_series_uids == ()) is drop_series_refs
    study = discover_study(tmp_path / "study")
    assert sorted(study.image_files) == sorted(ct)


def test_dangling_link_is_skipped_with_a_note(tmp_path):
    """Issue 12: a dangling symbolic link in an export folder is skipped with a note naming it (was an error)."""
    files = _series(tmp_path)
    (tmp_path / "IM0009").symlink_to(tmp_path / "gone" / "IM0009")
    notes: list[str] = []
    assert len(scan_dicom_folder(tmp_path, notes)) == len(files)
    assert any("IM0009: dangling symbolic link" in n for n in notes)
