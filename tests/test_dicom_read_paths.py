"""The DICOM read path without pydicom: each raw-byte reader gives the pydicom path's answer (issue 17).

* ``_dicom_fast._plain_seg_header`` (the folder scan of a plain BINARY SEG from its raw
  bytes) returns exactly what ``_read_header_pydicom`` returns, on every real DICOM file of
  shared/data and on generated SEGs, and declines everything else;
* ``dicom_seg.read_dicom_seg`` given that raw header returns the layers, warnings and role
  decisions of the pydicom reader, and falls back to it for what it cannot place;
* ``dicom_series_header._fast_header_facts`` (the series' non-identifying header facts) equals the
  pydicom parse;
* an analysis of a CT + SEG folder gives the same report whichever path read it.

Real files (../shared/data, see MANIFEST.md):
- dcmqi_ct3slice_seg: QIICR/dcmqi @b6137d9e (BSD-3-Clause): GE CT 3 slices, liver.dcm, partial_overlaps.dcm.
- pydicom_data_seg_enhanced: pydicom/pydicom-data @b0d40d1e (MIT): the liver SEG in 9 encodings.
- mirp_sts_fdg_pet: oncoray/mirp @d8a6a726 (CC BY 3.0, TCIA Soft-tissue-Sarcoma,
  Vallieres et al. 2015, doi 10.7937/K9/TCIA.2015.7GO2GSKS); dcm_qa_ts: neurolabusc/dcm_qa_ts
  @fe4878a4 (BSD-2-Clause); dicompyler_rtss: dicompyler/dicompyler-core @0d5729d7 (BSD-3-Clause);
  dicom2nifti_geometry_edgecases: icometrix/dicom2nifti (MIT).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.io import (
    _dicom_common,
    dicom_seg,
    dicom_seg_header,
    dicom_series,
    dicom_series_header,
    dicom_series_pixels,
)
from netlm_imaging.io._dicom_common import scan_dicom_folder
from netlm_imaging.io._dicom_fast import _plain_seg_header
from netlm_imaging.io._dicom_header import _read_header_pydicom
from netlm_imaging.io._seg_header import PlainSeg, read_plain_seg
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.volume import Volume

SEGS = ("dcmqi_ct3slice_seg", "data", "segmentations")
ENH = ("pydicom_data_seg_enhanced", "data_store", "data")


def _real_dicom_files() -> list[Path]:
    root = shared_path()
    return sorted(p for p in root.rglob("*.dcm") if p.is_file())


def test_plain_seg_header_equals_pydicom_on_real_files():
    """Every real .dcm file: the raw SEG header is pydicom's, or declined; which ones are plain is known."""
    plain = []
    for p in _real_dicom_files():
        info = _plain_seg_header(p)
        if info is None:
            continue
        assert info == _read_header_pydicom(p), p  # DicomFileInfo compares every fact but the dataset
        assert isinstance(info.dataset, PlainSeg)
        plain.append(str(p.relative_to(shared_path())))
    # MANIFEST.md: dcmqi's liver.dcm and partial_overlaps.dcm (BINARY, native explicit VR LE) and the
    # plain variant of the same liver in pydicom-data; its J2K / RLE / deflated / big-endian / non-byte-aligned
    # encodings, the label-map SEGs, CT, PET, MR, RTSTRUCT are not plain BINARY SEGs.
    assert sorted(plain) == [
        "dcmqi_ct3slice_seg/data/segmentations/liver.dcm",
        "dcmqi_ct3slice_seg/data/segmentations/partial_overlaps.dcm",
        "pydicom_data_seg_enhanced/data_store/data/liver.dcm",
    ]


def _study(
    tmp_path: Path, *, omit_empty: bool = True, seed: int = 3, empty_segment: bool = False
) -> tuple[list[Path], Path, Volume, list]:
    shape = (32, 30, 13)  # 960-pixel frames: whole bytes of packed bits
    aff = oblique_affine(spacing=(0.8, 0.9, 2.5))
    ii, jj, kk = np.indices(shape)
    liver = (ii >= 3) & (ii < 29) & (jj >= 3) & (jj < 26) & (kk >= 1) & (kk < 12)
    lesions = [
        ((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + ((kk - c[2]) * 2) ** 2) <= r**2
        for c, r in (((11, 10, 5), 4), ((22, 18, 8), 3))
    ]
    image = np.where(liver, 60.0, -80.0) + np.where(lesions[0] | lesions[1], 50.0, 0.0)
    files = write_image_series(tmp_path / "study" / "ct", image, aff, seed=seed)
    neo = pydicom.sr.codedict.codes.SCT.Neoplasm
    if empty_segment:  # a third lesion segment without any pixel
        lesions.append(np.zeros(shape, bool))
    specs = [
        SegmentSpec("Liver", liver),
        *(SegmentSpec(f"Lesion {n}", m, property_type=neo) for n, m in enumerate(lesions, 1)),
    ]
    seg = write_seg(tmp_path / "study" / "seg.dcm", files, specs, omit_empty_frames=omit_empty, seed=seed)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    ref = Volume(
        image,
        aff,
        str(dss[0].FrameOfReferenceUID),
        meta={
            "sop_instance_uids": [d.SOPInstanceUID for d in dss],
            "series_instance_uid": str(dss[0].SeriesInstanceUID),
        },
    )
    return files, seg, ref, [liver, *lesions]


@pytest.mark.parametrize("omit_empty", [True, False])
def test_plain_seg_header_equals_pydicom_on_generated_segs(tmp_path, omit_empty):
    _files, seg, _ref, _truth = _study(tmp_path, omit_empty=omit_empty)
    info = _plain_seg_header(seg)
    assert info is not None
    assert info == _read_header_pydicom(seg)
    assert info.segment_labels == ("Liver", "Lesion 1", "Lesion 2")  # what the test wrote


def _edit(path: Path, out: Path, **changes) -> Path:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(out)
    return out


@pytest.mark.parametrize(
    "changes",
    [
        {"SegmentationType": "FRACTIONAL"},  # not BINARY
        {"SpecificCharacterSet": "ISO_IR 144"},  # Cyrillic: pydicom decodes it
        {"SeriesDescription": "a\\b"},  # multi-valued where one value is expected
        {"SeriesNumber": "1.5"},  # not an integer string
    ],
)
def test_plain_seg_header_declines_what_pydicom_must_read(tmp_path, changes):
    _files, seg, _ref, _truth = _study(tmp_path)
    edited = _edit(seg, tmp_path / "edited.dcm", **changes)
    assert _plain_seg_header(edited) is None


def test_plain_seg_header_declines_other_syntaxes(tmp_path):
    _files, seg, _ref, _truth = _study(tmp_path)
    ds = pydicom.dcmread(seg)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    out = tmp_path / "implicit.dcm"
    ds.save_as(out, implicit_vr=True, little_endian=True)
    assert read_plain_seg(out) is None
    assert _read_header_pydicom(out).kind == "SEG"  # pydicom still reads it as a SEG


def _read_both(seg: Path, ref: Volume, labels: str | None = None, folder_scan: bool = True):
    """read_dicom_seg from the raw header (as the folder scan hands it) and through pydicom."""
    plain = read_plain_seg(seg)
    assert plain is not None
    log_plain: list = []
    log_pydicom: list = []
    fast = dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(labels), role_log=log_plain, dataset=plain)
    general = dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(labels), role_log=log_pydicom)
    return fast, general, log_plain, log_pydicom


def _same_layers(fast, general):
    assert [(la.role, la.label, la.fractional, la.source) for la in fast] == [
        (la.role, la.label, la.fractional, la.source) for la in general
    ]
    for a, b in zip(fast, general):
        assert a.mask.array.dtype == b.mask.array.dtype
        assert a.mask.array.flags.f_contiguous == b.mask.array.flags.f_contiguous
        np.testing.assert_array_equal(a.mask.array, b.mask.array)
        np.testing.assert_array_equal(a.mask.affine, b.mask.affine)
        assert a.mask.meta == b.mask.meta


@pytest.mark.parametrize("empty_segment", [False, True])
def test_plain_seg_reader_equals_the_pydicom_reader_on_generated_segs(tmp_path, monkeypatch, empty_segment):
    _files, seg, ref, truth = _study(tmp_path, omit_empty=not empty_segment, empty_segment=empty_segment)
    imported = []
    real = dicom_seg_header.bounded_dcmread
    monkeypatch.setattr(dicom_seg_header, "bounded_dcmread", lambda *a, **k: imported.append(a) or real(*a, **k))
    fast, general, log_plain, log_pydicom = _read_both(seg, ref)
    assert len(imported) == 1  # only the pydicom side parsed the file
    _same_layers(fast, general)
    assert [d.to_report() for d in log_plain] == [d.to_report() for d in log_pydicom]
    assert len(fast) == len(truth)
    for layer, mask in zip(fast, truth):  # and both are the truth the test wrote
        np.testing.assert_array_equal(layer.mask.array, mask)
    empty = [la.label for la in fast if any("is empty" in w for w in la.mask.meta["warnings"])]
    assert empty == (["Lesion 3"] if empty_segment else [])


def test_plain_seg_reader_on_real_files():
    """dcmqi's liver.dcm and partial_overlaps.dcm on the real 3-slice CT: the same layers either way."""
    from test_dicom_seg import _reference_from_folder  # the independent minimal series reader

    folder = shared_path(*SEGS)
    ref = _reference_from_folder(folder / "ct-3slice")
    for name, labels in (
        ("liver.dcm", None),
        ("partial_overlaps.dcm", "lesion=GREEN+ORANGE+PURPLE+LIGHT_BLUE+DARK_BLUE"),
    ):
        fast, general, log_plain, log_pydicom = _read_both(folder / name, ref, labels)
        _same_layers(fast, general)
        assert [d.to_report() for d in log_plain] == [d.to_report() for d in log_pydicom]
    liver = _read_both(folder / "liver.dcm", ref)[0]
    assert int(np.count_nonzero(liver[0].mask.array)) == 107098  # MANIFEST.md: 107,098 liver voxels


def test_plain_seg_reader_hands_what_it_cannot_place_to_pydicom(tmp_path):
    """A reference grid the SEG's frames are not on: the raw reader declines and the general reader answers."""
    _files, seg, ref, _truth = _study(tmp_path)
    shifted = ref.affine.copy()
    shifted[:3, 3] += ref.affine[:3, 0] * 0.5  # half a voxel along i: frames off the grid
    other = Volume(ref.array, shifted, ref.frame_of_reference_uid, meta=ref.meta)
    fast, general, log_plain, log_pydicom = _read_both(seg, other)
    _same_layers(fast, general)
    assert len(log_plain) == len(log_pydicom) == 3  # each decision logged once, not once per reader tried
    assert any("own grid" in w or "grid" in w for w in fast[0].mask.meta["warnings"])


def test_header_facts_without_pydicom_equal_pydicom_on_real_files():
    fast = 0
    for p in _real_dicom_files():
        try:
            expected = dicom_series_header._header_facts_pydicom(p)
        except Exception:  # files pydicom cannot read are not series files
            continue
        got = dicom_series_header._fast_header_facts(p)
        if got is None:
            continue
        fast += 1
        assert got == expected, p
        assert list(got) == list(expected), p  # same key order: the same report.json
    # the real plain images: 3 GE CT slices (implicit VR LE), 8 of the 9 MR files, the dicompyler CT slice,
    # and the geometry edge cases; PET files (Radiopharmaceutical Information Sequence) go to pydicom
    assert fast >= 12


@pytest.mark.parametrize(
    "extra",
    [
        {"Manufacturer": "Müller Medical", "PatientWeight": "71.5", "PatientSize": "1.80", "PatientSex": "F"},
        {"PatientAge": "064Y", "BodyPartExamined": "ABDOMEN", "RescaleType": "HU", "SeriesTime": "101500.25"},
        {"SpecificCharacterSet": "ISO_IR 192", "ManufacturerModelName": "Tomógrafo 3000"},
        {"PatientWeight": ""},
    ],
)
def test_header_facts_without_pydicom_equal_pydicom(tmp_path, extra):
    files = write_image_series(tmp_path / "ct", np.zeros((6, 5, 2)), oblique_affine(), extra_tags=extra)
    got = dicom_series_header._fast_header_facts(files[0])
    assert got is not None
    assert got == dicom_series_header._header_facts_pydicom(files[0])


@pytest.mark.parametrize(
    "extra",
    [
        {"CorrectedImage": ["ATTN", "DECY"]},  # multi-valued
        {"PatientWeight": ["70", "71"]},  # two weights: pydicom decides (None)
        {"SpecificCharacterSet": "ISO_IR 144", "Manufacturer": "X"},
    ],
)
def test_header_facts_decline_what_pydicom_must_read(tmp_path, extra):
    files = write_image_series(tmp_path / "ct", np.zeros((6, 5, 2)), oblique_affine(), extra_tags=extra)
    assert dicom_series_header._fast_header_facts(files[0]) is None
    assert isinstance(dicom_series_header.series_header_facts(files[0]), dict)


def test_scan_of_a_ct_seg_folder_equals_the_pydicom_scan(tmp_path, monkeypatch):
    _study(tmp_path)
    fast = scan_dicom_folder(tmp_path / "study")
    assert any(isinstance(i.dataset, PlainSeg) for i in fast)
    monkeypatch.setattr(_dicom_common, "_plain_seg_header", lambda path: None)
    slow = scan_dicom_folder(tmp_path / "study")
    assert fast == slow


def test_analysis_report_is_the_same_whichever_path_read_the_study(tmp_path, monkeypatch):
    from netlm_imaging.cli import main

    _study(tmp_path)
    assert main(["analyze", str(tmp_path / "study"), "--out", str(tmp_path / "raw"), "--quiet"]) == 0
    monkeypatch.setattr(_dicom_common, "_plain_seg_header", lambda path: None)
    monkeypatch.setattr(dicom_series_header, "_fast_header_facts", lambda path: None)
    assert main(["analyze", str(tmp_path / "study"), "--out", str(tmp_path / "pydicom"), "--quiet"]) == 0
    raw = json.loads((tmp_path / "raw" / "report.json").read_text())
    slow = json.loads((tmp_path / "pydicom" / "report.json").read_text())
    assert raw == slow
    assert len(raw["lesions"]) == 2  # two lesions written by the test


def _with_encoding(path: Path, out: Path, stored: np.ndarray, bits_stored: int, signed: bool, slope, intercept) -> Path:
    """The slice rewritten with these stored values (raw, including bits above BitsStored), encoding and rescale."""
    ds = pydicom.dcmread(path)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.save_as(out)
    return out


@pytest.mark.parametrize(
    ("bits_stored", "signed", "slope", "intercept", "low", "high"),
    [
        (16, True, 1, -1024, -2000, 3000),  # the benchmark CT: actual values checked
        (12, True, 1, 0, -2048, 2047),  # sign extension from bit 11
        (12, False, 1, -1024, 0, 4095),  # masked to 12 bits, shifted
        (16, False, 1, -32768, 30000, 65535),  # uint16 above int16's range, exact after the intercept
        (16, True, 2, -100, -3000, 3000),  # integer slope
        (16, False, 1, 0, 0, 65535),  # does not fit int16: widened to int32
    ],
)
def test_pixels_read_into_the_volume_equal_pydicom(
    tmp_path, monkeypatch, bits_stored, signed, slope, intercept, low, high
):
    """Stored values read straight into the volume's buffer and rescaled there: pydicom's pixel_array x slope + b."""
    from pydicom.pixels import apply_modality_lut

    rng = np.random.default_rng(bits_stored + int(signed) + slope)
    files = write_image_series(tmp_path / "src", np.zeros((8, 6, 4)), oblique_affine(), seed=5)
    shape = (6, 8)  # rows, columns
    outs = []
    for n, f in enumerate(files):
        stored = rng.integers(low, high, size=shape, endpoint=True)
        if bits_stored < 16:  # garbage above BitsStored must be ignored
            stored = stored + (rng.integers(0, 2, size=shape) << 14) * (1 if not signed else 0)
        outs.append(_with_encoding(f, tmp_path / f"{n}.dcm", stored, bits_stored, signed, slope, intercept))
    used = []  # what the direct reads answered: per file, or per run of plain slices (BitsStored 16, slope 1)
    real = dicom_series_pixels.read_native_into
    monkeypatch.setattr(dicom_series_pixels, "read_native_into", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    real_plain = dicom_series_pixels.read_plain_into
    monkeypatch.setattr(
        dicom_series_pixels, "read_plain_into", lambda *a, **k: used.append(real_plain(*a, **k)) or used[-1]
    )
    vol = dicom_series.read_dicom_series(outs)
    fits = -32768 <= low * slope + intercept and high * slope + intercept <= 32767
    assert vol.array.dtype == (np.int16 if fits else np.int32)
    assert used[0] is (True if fits else False)  # the direct read answered (or asked for the wider buffer)
    by_file = {f: k for k, f in enumerate(vol.meta["files"])}
    for p in outs:
        ds = pydicom.dcmread(p)
        expected = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
        np.testing.assert_array_equal(vol.array[:, :, by_file[str(p)]].T.astype(np.float64), expected)


@pytest.mark.parametrize("empty_segment", [False, True])
def test_plain_seg_reader_equals_the_frame_by_frame_reader(tmp_path, monkeypatch, empty_segment):
    """Rows unpacked from the packed bytes (32 columns: whole bytes) = the general frame-by-frame decode."""
    _files, seg, ref, _truth = _study(tmp_path, omit_empty=not empty_segment, empty_segment=empty_segment)
    fast = dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(None), dataset=read_plain_seg(seg))
    monkeypatch.setattr(dicom_seg, "read_frame_table", lambda ds, path: None)  # pydicom, frame by frame
    general = dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(None))
    _same_layers(fast, general)


def test_image_header_fast_path_strips_acquisition_facts_like_pydicom(tmp_path):
    """Leading spaces in AcquisitionTime / ConvolutionKernel: the raw reader gives pydicom's stripped text."""
    from netlm_imaging.io._dicom_fast import _fast_header

    extra = {"AcquisitionTime": " 101500", "AcquisitionDate": "20240102", "ConvolutionKernel": " B30f"}
    files = write_image_series(tmp_path / "ct", np.zeros((6, 5, 2)), oblique_affine(), extra_tags=extra)
    fast = _fast_header(files[0])
    assert fast is not None
    assert (fast.acquisition_time, fast.convolution_kernel) == ("101500", "B30f")
    assert fast == _read_header_pydicom(files[0])


def test_seg_cut_after_the_scan_is_reported_by_the_pydicom_reader(tmp_path):
    """A SEG truncated between the folder scan and the read: one clear DicomError naming it, no traceback."""
    from netlm_imaging.errors import DicomError

    _files, seg, ref, _truth = _study(tmp_path)
    plain = read_plain_seg(seg)
    assert plain is not None
    seg.write_bytes(seg.read_bytes()[: plain.pixel_offset + 10])  # cut inside PixelData
    with pytest.raises(DicomError, match=r"seg\.dcm: pixel data holds 10 bytes"):
        dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(None), dataset=plain)


def _layers_or_error(path: Path, ref: Volume, dataset):
    from netlm_imaging.errors import NetlmError

    try:
        return dicom_seg.read_dicom_seg(path, ref, parse_label_spec(None), role_log=[], dataset=dataset)
    except NetlmError as exc:  # the raw reader's error class; the pydicom reader's class and message
        return type(exc).__name__ if dataset is not None else (type(exc).__name__, str(exc))


def test_mutated_seg_headers_never_make_the_raw_reader_disagree_with_pydicom(tmp_path):
    """Random bytes changed in a SEG's header: the raw reader declines, or gives pydicom's facts and layers.

    Seeded; every mutation that the raw header reader accepts must give the pydicom header parse's
    DicomFileInfo (when pydicom can read it at all) and the pydicom reader's layers or error.
    """
    import random

    from netlm_imaging.errors import NetlmError

    _files, seg, ref, truth = _study(tmp_path)
    original = seg.read_bytes()
    end = read_plain_seg(seg).pixel_offset
    rng = random.Random(17)
    accepted = 0
    for n in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(132, end)] = rng.randrange(256)
        path = tmp_path / f"m{n}.dcm"
        path.write_bytes(bytes(data))
        info = _plain_seg_header(path)
        if info is None:
            continue
        accepted += 1
        try:
            expected = _read_header_pydicom(path)
        except NetlmError:
            continue
        assert info == expected, n
        fast, general = _layers_or_error(path, ref, info.dataset), _layers_or_error(path, ref, None)
        if isinstance(general, tuple) and not isinstance(fast, str) and "Unknown Value Representation" in general[1]:
            # damage inside a sequence the raw reader skips unparsed: pydicom refuses the whole file, the raw
            # reader never reads the damaged element, and what it reads must then be the truth
            for layer, mask in zip(fast, truth):
                np.testing.assert_array_equal(layer.mask.array, mask)
            continue
        if isinstance(fast, str) or isinstance(general, tuple):
            assert fast == (general[0] if isinstance(general, tuple) else general), n
            continue
        _same_layers(fast, general)
    assert 20 <= accepted < 150  # many mutations hit values the reader does not need; others are declined


@pytest.mark.parametrize("where", ["SourceImageSequence", "ReferencedSeriesSequence"])
def test_a_uid_with_a_backslash_is_left_to_pydicom(tmp_path, where):
    """A backslash in a referenced UID (two values where one belongs): the raw reader declines, as pydicom decides."""
    _files, seg, _ref, _truth = _study(tmp_path)
    ds = pydicom.dcmread(seg)
    if where == "SourceImageSequence":
        ds.SourceImageSequence[0].ReferencedSOPInstanceUID = "1.2.3\\4.5"
    else:
        ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[1].ReferencedSOPInstanceUID = "1.2.3\\4.5"
    out = tmp_path / "two_values.dcm"
    ds.save_as(out)
    assert _plain_seg_header(out) is None
    assert _read_header_pydicom(out).kind == "SEG"


@pytest.mark.parametrize(
    ("tag", "vr"), [((0x0020, 0x0052), b"UI"), ((0x0062, 0x0005), b"LO"), ((0x0002, 0x0010), b"UI")]
)
def test_an_unknown_vr_is_left_to_pydicom(tmp_path, tag, vr):
    """A VR that does not exist (a damaged byte) in an element the raw reader walks: it declines (pydicom decides)."""
    import struct

    _files, seg, _ref, _truth = _study(tmp_path)
    data = bytearray(seg.read_bytes())
    at = data.index(struct.pack("<HH", *tag) + vr)
    data[at + 5] = ord("Z")  # UI -> UZ, LO -> LZ (FrameOfReferenceUID, SegmentLabel, TransferSyntaxUID)
    out = tmp_path / "unknown_vr.dcm"
    out.write_bytes(bytes(data))
    assert read_plain_seg(out) is None
    assert _plain_seg_header(out) is None
