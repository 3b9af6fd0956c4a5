"""DICOM SEG reader: synthetic highdicom SEGs with analytic truth, and the real dcmqi / pydicom-data SEGs.

Real files (../shared/data/MANIFEST.md):
* ``dcmqi_ct3slice_seg`` -- QIICR/dcmqi @b6137d9e ``data/segmentations`` (BSD-3-Clause): 3-slice GE CT,
  ``liver.dcm`` (107,098 voxels = 70.362 mL with the real 1.0 mm slice step), ``partial_overlaps.dcm``,
  ``sparse-labelmap-*.dcm`` and dcmqi's own NRRD exports of them.
* ``pydicom_data_seg_enhanced`` -- pydicom/pydicom-data @b0d40d1e (MIT): the liver SEG in 9 encodings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.sr.codedict import codes

from netlm_imaging.api import analyze
from netlm_imaging.errors import DicomError, LabelError, ResourceLimitError, UnsupportedError
from netlm_imaging.io.dicom_seg import read_dicom_seg
from netlm_imaging.io.dicom_seg_header import read_seg_segments
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.volume import Volume
from tests.conftest import oblique_affine, shared_path
from tests.dicom_factory import write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SEG_DIR = ("dcmqi_ct3slice_seg", "data", "segmentations")
ENC_DIR = ("pydicom_data_seg_enhanced", "data_store", "data")

# ----------------------------------------------------------------------------- synthetic phantom
SHAPE = (40, 36, 24)
SPACING = (0.8, 0.9, 2.5)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(10.0, -7.0, 20.0), origin=(-120.5, 33.2, 410.0))
VOXEL_MM3 = SPACING[0] * SPACING[1] * SPACING[2]  # 1.8 mm^3, computed independently of the affine
LIVER_BOX = ((5, 35), (4, 30), (4, 20))  # half-open index ranges, well inside the 24 slices
LESIONS = [((14.0, 12.0, 9.0), 4.2), ((26.0, 20.0, 14.0), 3.1), ((20.0, 24.0, 7.0), 2.4)]  # (centre ijk, radius)


def _box() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    (i0, i1), (j0, j1), (k0, k1) = LIVER_BOX
    m[i0:i1, j0:j1, k0:k1] = True
    return m


def _ball(centre: tuple[float, float, float], radius_vox: float) -> np.ndarray:
    """Ball in index units (a direct lattice enumeration, independent of the reader)."""
    ii, jj, kk = np.indices(SHAPE)
    return (ii - centre[0]) ** 2 + (jj - centre[1]) ** 2 + (kk - centre[2]) ** 2 <= radius_vox**2


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """Synthetic oblique anisotropic CT series written with pydicom; reference Volume built from the known affine."""
    folder = tmp_path_factory.mktemp("ct")
    rng = np.random.default_rng(3)
    image = rng.normal(40.0, 10.0, SHAPE).round()
    paths = write_image_series(folder, image, AFFINE, modality="CT", seed=11)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    uids = [str(d.SOPInstanceUID) for d in dss]
    for_uid = str(dss[0].FrameOfReferenceUID)
    ref = Volume(image, AFFINE, for_uid, source=str(folder), meta={"sop_instance_uids": uids})
    return paths, ref


def _count_frames(path: Path) -> int:
    return int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames)


def test_liver_including_lesions_oblique_anisotropic(ct, tmp_path):
    paths, ref = ct
    box = _box()
    lesions = _ball(*LESIONS[0]) | _ball(*LESIONS[1])
    seg = write_seg(
        tmp_path / "seg.dcm",
        paths,
        [
            SegmentSpec("Liver", box),
            SegmentSpec("Tumour", lesions, codes.SCT.Neoplasm, codes.SCT.MorphologicallyAbnormalStructure),
        ],
    )
    # highdicom omitted the empty frames: liver on 16 slices, lesions on fewer.
    n_lesion_slices = int(np.count_nonzero(lesions.any(axis=(0, 1))))
    assert _count_frames(seg) == 16 + n_lesion_slices
    layers = read_dicom_seg(seg, ref, parse_label_spec(None))
    assert [(la.role, la.label) for la in layers] == [("liver", "Liver"), ("lesion", "Tumour")]
    liver, lesion = layers
    assert liver.mask.same_grid(ref)
    assert lesion.mask.same_grid(ref)
    np.testing.assert_array_equal(liver.mask.array, box)
    np.testing.assert_array_equal(lesion.mask.array, lesions)
    n_box = 30 * 26 * 16  # closed form
    assert int(liver.mask.array.sum()) == n_box
    assert liver.mask.array.sum() * liver.mask.voxel_volume_ml == pytest.approx(n_box * VOXEL_MM3 / 1000, rel=1e-9)
    meta = liver.mask.meta
    assert meta["segment_number"] == 1
    assert meta["segment_label"] == "Liver"
    sds = pydicom.dcmread(seg, stop_before_pixels=True)
    assert meta["sop_instance_uid"] == sds.SOPInstanceUID
    assert meta["series_instance_uid"] == sds.SeriesInstanceUID
    written_series = pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID
    assert meta["referenced_series_instance_uid"] == written_series


def test_liver_excluding_lesions_and_placement_by_position(ct, tmp_path):
    paths, ref = ct
    lesions = _ball(*LESIONS[0]) | _ball(*LESIONS[2])
    liver = _box() & ~lesions
    seg = write_seg(
        tmp_path / "seg.dcm",
        paths,
        [SegmentSpec("Liver", liver), SegmentSpec("Metastases", lesions, codes.SCT.Neoplasm)],
    )
    # Without the slice UIDs the frames are placed by ImagePositionPatient alone.
    ref_no_uids = Volume(ref.array, ref.affine, ref.frame_of_reference_uid, meta={})
    for reference in (ref, ref_no_uids):
        layers = read_dicom_seg(seg, reference, parse_label_spec(None))
        by_role = {la.role: la.mask.array for la in layers}
        np.testing.assert_array_equal(by_role["liver"], liver)
        np.testing.assert_array_equal(by_role["lesion"], lesions)


def test_flipped_reference_axes_place_frames_physically(ct, tmp_path):
    """The same physical grid stored with i and k reversed: masks must follow physics, not array order."""
    paths, ref = ct
    box = _box()
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", box)])
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3] = SHAPE[0] - 1
    flip[2, 3] = SHAPE[2] - 1
    flipped = Volume(ref.array[::-1, :, ::-1], ref.affine @ flip, ref.frame_of_reference_uid, meta={})
    (layer,) = read_dicom_seg(seg, flipped, parse_label_spec(None))
    np.testing.assert_array_equal(layer.mask.array, box[::-1, :, ::-1])


def test_one_segment_per_lesion(ct, tmp_path):
    paths, ref = ct
    balls = [_ball(c, r) for c, r in LESIONS]
    segs = [SegmentSpec("Liver", _box())] + [
        SegmentSpec(f"Lesion {n}", b, codes.SCT.Neoplasm) for n, b in enumerate(balls, start=1)
    ]
    seg = write_seg(tmp_path / "seg.dcm", paths, segs)
    layers = read_dicom_seg(seg, ref, parse_label_spec(None))
    lesion_layers = [la for la in layers if la.role == "lesion"]
    assert [la.label for la in lesion_layers] == ["Lesion 1", "Lesion 2", "Lesion 3"]
    for la, ball in zip(lesion_layers, balls):
        np.testing.assert_array_equal(la.mask.array, ball)
        # Independent count of lattice points in the ball, by brute-force loops over its bounding box.
        (ci, cj, ck), r = LESIONS[lesion_layers.index(la)]
        n = sum(
            1
            for i in range(int(ci - r) - 1, int(ci + r) + 2)
            for j in range(int(cj - r) - 1, int(cj + r) + 2)
            for k in range(int(ck - r) - 1, int(ck + r) + 2)
            if (i - ci) ** 2 + (j - cj) ** 2 + (k - ck) ** 2 <= r * r
        )
        assert int(la.mask.array.sum()) == n


def test_fractional_sum_of_fractions_and_threshold(ct, tmp_path):
    paths, ref = ct
    rng = np.random.default_rng(7)
    q = np.zeros(SHAPE, np.int64)
    (i0, i1), (j0, j1), (k0, k1) = LIVER_BOX
    q[i0:i1, j0:j1, k0:k1] = rng.integers(0, 256, size=(i1 - i0, j1 - j0, k1 - k0))
    fractions = q / 255.0  # exactly representable as stored value / MaximumFractionalValue
    seg = write_seg(tmp_path / "frac.dcm", paths, [SegmentSpec("Liver", fractions)], segmentation_type="FRACTIONAL")
    (layer,) = read_dicom_seg(seg, ref, parse_label_spec(None))
    assert layer.fractional
    assert layer.mask.array.dtype == np.float32
    expected_sum = q.sum() / 255.0
    assert float(layer.mask.array.sum(dtype=np.float64)) == pytest.approx(expected_sum, rel=1e-6)
    np.testing.assert_array_equal(layer.binary(), q >= 128)  # q/255 >= 0.5  <=>  q >= 127.5
    assert layer.binary().sum() != int(np.count_nonzero(q))  # the two volumes differ: the rule matters
    assert layer.mask.meta["volume_rule"].startswith("sum of fractions")


def test_segments_without_role_and_ignore_mapping(ct, tmp_path):
    paths, ref = ct
    seg = write_seg(
        tmp_path / "seg.dcm",
        paths,
        [SegmentSpec("Liver", _box()), SegmentSpec("Blob", _ball(*LESIONS[0]), codes.SCT.Tissue, codes.SCT.Tissue)],
    )
    log: list = []
    layers = read_dicom_seg(seg, ref, parse_label_spec(None), role_log=log)  # Blob: no role, ignored with a note
    assert [la.label for la in layers] == ["Liver"]
    assert [(d.name, d.role, d.reason) for d in log] == [
        ("Liver", "liver", "code"),
        ("Blob", None, "unmatched-ignored"),
    ]
    no_role = r"no liver and no lesion among the segments: 1 'Liver'.*-> --labels liver=\"Liver\""
    with pytest.raises(LabelError, match=no_role):
        read_dicom_seg(seg, ref, parse_label_spec("spleen=Liver"))
    layers = read_dicom_seg(seg, ref, parse_label_spec("liver=Liver,ignore=Blob"))
    assert [la.label for la in layers] == ["Liver"]
    layers = read_dicom_seg(seg, ref, parse_label_spec("liver=Liver,lesion=Blob"))
    assert int(layers[1].mask.array.sum()) == int(_ball(*LESIONS[0]).sum())
    assert [s.label for s in read_seg_segments(seg)] == ["Liver", "Blob"]


def test_frames_outside_reference_grid(ct, tmp_path):
    paths, ref = ct
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", _box())])
    # Reference covering only slices 0..9: liver frames on slices 10..19 fall outside it.
    sub = Volume(ref.array[:, :, :10], ref.affine, ref.frame_of_reference_uid, meta={})
    with pytest.raises(DicomError, match="outside the reference image grid"):
        read_dicom_seg(seg, sub, parse_label_spec(None))


def test_frame_of_reference_mismatch(ct, tmp_path):
    paths, ref = ct
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", _box())])
    other = Volume(ref.array, ref.affine, "1.2.3.4.5", meta={})
    with pytest.raises(DicomError, match=r"FrameOfReferenceUID .* differs"):
        read_dicom_seg(seg, other, parse_label_spec(None))


def test_off_grid_reference_gives_masks_on_the_seg_grid(ct, tmp_path):
    """Issue 12: a SEG off the image grid is not refused; its masks come on its own grid, to be resampled."""
    paths, ref = ct
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", _box())])
    for column, factor, shift in ((2, 1.0, 0.5), (0, 1.0, 0.5), (0, 2.0, 0.0)):  # half a slice, half a pixel, 2x
        moved = ref.affine.copy()
        moved[:3, 3] += shift * moved[:3, column]
        moved[:3, column] *= factor
        (layer,) = read_dicom_seg(seg, Volume(ref.array, moved, None, meta={}), parse_label_spec(None))
        # the grid the SEG was written on, from its first stored (non-empty) frame on
        np.testing.assert_allclose(layer.mask.affine[:3, :3], ref.affine[:3, :3], atol=1e-6)
        start = ref.lps_to_index(layer.mask.affine[:3, 3])[0]
        k0 = round(float(start[2]))
        np.testing.assert_allclose(start, [0.0, 0.0, k0], atol=1e-6)
        nk = layer.mask.shape[2]
        np.testing.assert_array_equal(layer.mask.array, _box()[:, :, k0 : k0 + nk])
        assert int(layer.mask.array.sum()) == int(_box().sum())
        assert any("not on the image grid" in w for w in layer.mask.meta["warnings"])


def test_truncated_empty_and_wrong_files(ct, tmp_path):
    paths, ref = ct
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", _box())])
    data = seg.read_bytes()
    spec = parse_label_spec(None)
    for frac in (0.97, 0.6, 0.1):
        bad = tmp_path / f"trunc_{frac}.dcm"
        bad.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(DicomError, match=r"trunc_.*(truncated|not a readable DICOM|incomplete|corrupt)"):
            read_dicom_seg(bad, ref, spec)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(DicomError, match="empty"):
        read_dicom_seg(empty, ref, spec)
    with pytest.raises(DicomError, match="is not a DICOM Segmentation"):
        read_dicom_seg(paths[0], ref, spec)
    with pytest.raises(ResourceLimitError, match="above the limit"):
        read_dicom_seg(seg, ref, spec, max_voxels=1000)


def test_unsupported_encoding_names_file_and_fix(ct, tmp_path):
    paths, ref = ct
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", _box())])
    ds = pydicom.dcmread(seg)
    nbytes = len(ds.PixelData) // int(ds.NumberOfFrames)
    frames = [ds.PixelData[i * nbytes : (i + 1) * nbytes] for i in range(int(ds.NumberOfFrames))]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no pixel decoder handles it
    bad = tmp_path / "mpeg2_seg.dcm"
    ds.save_as(bad)
    with pytest.raises(UnsupportedError, match=r"mpeg2_seg\.dcm.*1\.2\.840\.10008\.1\.2\.4\.100.*dcmconv \+te"):
        read_dicom_seg(bad, ref, parse_label_spec(None))


# ----------------------------------------------------------------------------- real files


def _reference_from_folder(folder: Path) -> Volume:
    """Independent minimal series reader: sort by IPP along the normal, slice step from IPP."""
    dss = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))
    row_mm, col_mm = (float(x) for x in dss[0].PixelSpacing)
    ipp = [np.asarray(d.ImagePositionPatient, float) for d in dss]
    aff = np.eye(4)
    aff[:3, 0] = iop[:3] * col_mm
    aff[:3, 1] = iop[3:] * row_mm
    aff[:3, 2] = ipp[1] - ipp[0]
    aff[:3, 3] = ipp[0]
    arr = np.stack([d.pixel_array.T for d in dss], axis=2)
    uids = [str(d.SOPInstanceUID) for d in dss]
    return Volume(arr, aff, str(dss[0].FrameOfReferenceUID), source=str(folder), meta={"sop_instance_uids": uids})


def _nrrd_ijk(path: Path) -> np.ndarray:
    """NRRD (dcmqi export) as an [i, j, k] array via SimpleITK (array order is [k, j, i])."""
    import SimpleITK as sitk

    return np.transpose(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), (2, 1, 0))


@pytest.fixture(scope="module")
def dcmqi_ct():
    return _reference_from_folder(shared_path(*SEG_DIR, "ct-3slice"))


def test_dcmqi_liver_70_362_ml(dcmqi_ct):
    seg = shared_path(*SEG_DIR, "liver.dcm")
    assert "SpatialLocationsPreserved" not in str(pydicom.dcmread(seg, stop_before_pixels=True))
    (layer,) = read_dicom_seg(seg, dcmqi_ct, parse_label_spec(None))
    assert layer.role == "liver"  # SRT T-62000 Liver
    n = int(layer.mask.array.sum())
    assert n == 107_098  # MANIFEST.md
    ml = n * layer.mask.voxel_volume_ml
    assert ml == pytest.approx(70.362, abs=0.001)  # MANIFEST.md: real 1.0 mm slice step
    assert abs(ml - 87.95) > 10  # the SliceThickness (1.25 mm) mistake
    np.testing.assert_array_equal(layer.mask.array, _nrrd_ijk(shared_path(*SEG_DIR, "liver_seg.nrrd")) == 1)


def test_dcmqi_partial_overlaps_five_separate_masks(dcmqi_ct):
    seg = shared_path(*SEG_DIR, "partial_overlaps.dcm")
    labels = [s.label for s in read_seg_segments(seg)]
    spec = parse_label_spec("lesion=" + "+".join(labels))
    layers = read_dicom_seg(seg, dcmqi_ct, spec)
    assert len(layers) == 5
    by_number = {la.mask.meta["segment_number"]: la.mask.array for la in layers}
    # dcmqi's export: the NRRD label value is the segment number; non-overlapping segments share a file.
    seen = set()
    for n in (1, 2, 3):
        arr = _nrrd_ijk(shared_path(*SEG_DIR, f"partial_overlaps-{n}.nrrd"))
        for value in np.unique(arr[arr > 0]):
            np.testing.assert_array_equal(by_number[int(value)], arr == value)
            seen.add(int(value))
    assert seen == {1, 2, 3, 4, 5}
    total_separate = sum(int(a.sum()) for a in by_number.values())
    union = int(np.logical_or.reduce(list(by_number.values())).sum())
    assert total_separate > union  # they overlap, and were kept separate


@pytest.mark.parametrize("name", ["noppv", "ppv5"])
def test_dcmqi_sparse_label_map_seg(name):
    ref = _reference_from_folder(shared_path(*SEG_DIR, "24x38x3", "image"))
    seg = shared_path(*SEG_DIR, f"sparse-labelmap-{name}.dcm")
    assert pydicom.dcmread(seg, stop_before_pixels=True).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7"
    (layer,) = read_dicom_seg(seg, ref, parse_label_spec(None))
    assert (layer.role, layer.label) == ("liver", "Liver")
    truth = _nrrd_ijk(shared_path(*SEG_DIR, f"sparse_labelmap_{name}_seg.nrrd")) == 1
    np.testing.assert_array_equal(layer.mask.array, truth)
    assert not layer.mask.array[:, :, 1].any()  # the omitted middle frame stays empty


@pytest.mark.parametrize(
    "name",
    [
        "liver.dcm",
        "liver_j2k.dcm",
        "liver_nonbyte_aligned.dcm",
        "liver_nonbyte_aligned_j2k.dcm",
        "liver_rle.dcm",
        "liver_nonbyte_aligned_rle.dcm",
        "liver_deflate.dcm",
        "liver_nonbyte_aligned_deflate.dcm",
        "liver_expb.dcm",
    ],
)
def test_pydicom_data_seg_encodings(dcmqi_ct, name):
    """All nine encodings decode (RLE 1-bit and deflated frames by our own decoders) to the dcmqi liver."""
    seg = shared_path(*ENC_DIR, name)
    (layer,) = read_dicom_seg(seg, dcmqi_ct, parse_label_spec(None))
    assert int(layer.mask.array.sum()) == 107_098
    np.testing.assert_array_equal(layer.mask.array, _nrrd_ijk(shared_path(*SEG_DIR, "liver_seg.nrrd")) == 1)


def test_frames_between_slices_fall_back_to_source_uid(ct, tmp_path):
    """Positions half a slice off the reference grid: placed by ReferencedSOPInstanceUID, with a warning."""
    paths, ref = ct
    box = _box()
    seg = write_seg(tmp_path / "seg.dcm", paths, [SegmentSpec("Liver", box)])
    shifted = ref.affine.copy()
    shifted[:3, 3] += 0.5 * shifted[:3, 2]
    moved = Volume(ref.array, shifted, None, meta={"sop_instance_uids": ref.meta["sop_instance_uids"]})
    (layer,) = read_dicom_seg(seg, moved, parse_label_spec(None))
    np.testing.assert_array_equal(layer.mask.array, box)
    assert any("by its source image UID" in w for w in layer.mask.meta["warnings"])


def test_frames_whose_source_images_lie_slices_away_from_their_positions_are_placed_by_position(tmp_path):
    # The image slices' positions were rewritten to twice their step (3 mm -> 6 mm) after the SEG was made on
    # them: the SEG's even frames fall on image slices, its odd frames between them, and those frames' source
    # images lie several slices away. Even frames went by position, odd ones by source UID: a 1.75x liver (the
    # 8-frame box covered 7 image slices of 6 mm instead of 4). Believing every position (own grid, resampled)
    # gives the box's own volume: 8 frames x 3 mm = 4 image slices x 6 mm.
    spacing = (0.9, 0.8, 3.0)
    aff = oblique_affine(spacing=spacing, angles_deg=(8.0, -5.0, 15.0), origin=(-60.0, 25.0, 300.0))
    shape = (20, 18, 12)
    files = write_image_series(tmp_path / "ct", np.zeros(shape), aff, seed=46)
    box = np.zeros(shape, bool)
    box[4:8, 5:10, 2:10] = True  # 4 x 5 pixels on frames 2..9
    seg = write_seg(tmp_path / "seg.dcm", files, [SegmentSpec("Liver", box)], seed=46)
    origin = np.asarray(aff[:3, 3])
    for f in files:
        ds = pydicom.dcmread(str(f))
        pos = np.asarray([float(v) for v in ds.ImagePositionPatient])
        ds.ImagePositionPatient = [float(v) for v in origin + 2.0 * (pos - origin)]
        ds.save_as(str(f), enforce_file_format=False)
    ref = read_dicom_series(tmp_path / "ct")
    np.testing.assert_allclose(np.linalg.norm(ref.affine[:3, 2]), 6.0, atol=1e-3)  # the image really is 6 mm
    truth_ml = 4 * 5 * 8 * spacing[0] * spacing[1] * spacing[2] / 1000.0
    rep = analyze(image=tmp_path / "ct", segs=[seg], labels="liver=Liver")
    assert rep.liver["volume_ml"] == pytest.approx(truth_ml, rel=1e-6)
