"""ITK loaders (io/sitk_io.py): MHA/MHD images and Slicer ``.seg.nrrd`` segmentations (single and layered).

The files are written here with SimpleITK from an oblique, anisotropic affine
whose ITK spacing / origin / direction are derived in the test (direction =
affine columns / spacing, ITK's index->LPS convention), not with the package's
own converter. Expected volumes are voxel counts x the product of the
spacings.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import oblique_affine

from netlm_imaging.api import analyze
from netlm_imaging.errors import InputError
from netlm_imaging.io.sitk_io import read_itk, read_itk_segments

SPACING = (0.8, 1.1, 2.5)
AFF = oblique_affine(spacing=SPACING, angles_deg=(-9.0, 6.0, 28.0), origin=(-40.0, 12.0, 215.0))
SHAPE = (22, 18, 9)
VOX_ML = float(np.prod(SPACING)) / 1000.0


def _itk_image(array_ijk: np.ndarray, *, vector: bool = False) -> sitk.Image:
    """SimpleITK image of an [i, j, k] (or [i, j, k, c]) array on AFF, geometry set by hand."""
    arr = np.transpose(array_ijk, (2, 1, 0, 3) if vector else (2, 1, 0))
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr), isVector=vector)
    spacing = np.linalg.norm(AFF[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in AFF[:3, 3]])
    img.SetDirection([float(d) for d in (AFF[:3, :3] / spacing).ravel()])
    return img


def _masks():
    ijk = np.indices(SHAPE)
    liver = (ijk[0] >= 3) & (ijk[0] < 19) & (ijk[1] >= 2) & (ijk[1] < 15) & (ijk[2] >= 1) & (ijk[2] < 8)
    lesion = (ijk[0] >= 6) & (ijk[0] < 10) & (ijk[1] >= 5) & (ijk[1] < 9) & (ijk[2] >= 3) & (ijk[2] < 6)
    return liver, lesion


@pytest.mark.parametrize("suffix", [".mha", ".mhd"])
def test_metaimage_image_round_trip(tmp_path, suffix):
    arr = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(_itk_image(arr), str(path))
    vol = read_itk(path)
    np.testing.assert_allclose(vol.affine, AFF, atol=1e-6)
    np.testing.assert_array_equal(vol.array, arr)
    assert vol.voxel_volume_ml == pytest.approx(VOX_ML)
    # a voxel placed by ITK's own index -> point transform lands where the affine puts it
    img = sitk.ReadImage(str(path))
    np.testing.assert_allclose(img.TransformIndexToPhysicalPoint((5, 7, 3)), vol.index_to_lps((5, 7, 3))[0], atol=1e-6)


def _fields(name: str, label_value: str, layer: str) -> dict[str, str]:
    """Slicer segment metadata (SegmentN_Name / _LabelValue / _Layer)."""
    return {"Name": name, "LabelValue": label_value, "Layer": layer}


def _seg_nrrd(path, array, segments: dict[int, dict[str, str]], *, vector=False):
    img = _itk_image(array, vector=vector)
    for idx, fields in segments.items():
        for key, value in fields.items():
            img.SetMetaData(f"Segment{idx}_{key}", value)
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def test_single_layer_seg_nrrd_segments_by_name(tmp_path):
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    seg = _seg_nrrd(
        tmp_path / "s.seg.nrrd",
        lab,
        {0: _fields("Liver", "1", "0"), 1: _fields("Tumour 1", "2", "0")},
    )
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])
    assert rep.liver["voxel_count"] == int(np.count_nonzero(liver | lesion))
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(liver | lesion) * VOX_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)
    assert rep.study["grid"]["resampled"] is False


def test_layered_seg_nrrd_keeps_overlapping_segments(tmp_path):
    liver, lesion = _masks()
    layers = np.stack([liver.astype(np.uint8), lesion.astype(np.uint8)], axis=-1)  # lesion overlaps the liver
    seg = _seg_nrrd(
        tmp_path / "layered.seg.nrrd",
        layers,
        {0: _fields("liver", "1", "0"), 1: _fields("metastasis", "1", "1")},
        vector=True,
    )
    grid, segs = read_itk_segments(seg)
    np.testing.assert_allclose(grid.affine, AFF, atol=1e-6)
    assert [(s["name"], s["layer"]) for s in segs] == [("liver", 0), ("metastasis", 1)]
    np.testing.assert_array_equal(segs[0]["mask"], liver)
    np.testing.assert_array_equal(segs[1]["mask"], lesion)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)
    assert rep.involvement_percent == pytest.approx(100.0 * np.count_nonzero(lesion) / np.count_nonzero(liver))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (_fields("Liver", "one", "0"), r"bad\.seg\.nrrd: segment 0 has a non-integer LabelValue"),
        (_fields("Liver", "1", "3"), r"bad\.seg\.nrrd: segment 0 refers to layer 3 but the file"),
    ],
)
def test_corrupt_segment_tables_are_refused(tmp_path, fields, message):
    liver, _ = _masks()
    seg = _seg_nrrd(tmp_path / "bad.seg.nrrd", liver.astype(np.uint8), {0: fields})
    with pytest.raises(InputError, match=message):
        read_itk_segments(seg)


def test_unmapped_segment_names_ask_for_labels(tmp_path):
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    seg = _seg_nrrd(
        tmp_path / "s.seg.nrrd",
        lab,
        {0: _fields("Liver", "1", "0"), 1: _fields("Kidney", "2", "0")},
    )
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])  # issue 12: an unknown organ is ignored with a note
    assert rep.tumor["lesion_count"] == 0
    assert [(r["name"], r["role"], r["reason"]) for r in rep.study["segment_roles"]] == [
        ("Liver", "liver", "pattern"),
        ("Kidney", None, "unmatched-ignored"),
    ]
    assert any("'Kidney' (unmatched-ignored)" in w for w in rep.warnings)
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg], labels="liver=Liver,lesion=Kidney")
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)


def test_slicer_terminology_codes_decide_roles(tmp_path):
    """Issue 12: a .seg.nrrd segment's Slicer TerminologyEntry code gives its role before its name does."""
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    ctx = "Segmentation category and type - 3D Slicer General Anatomy list"
    tags = {
        0: f"TerminologyEntry:{ctx}~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~Anatomic codes~^^~^^|",
        1: f"TerminologyEntry:{ctx}~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~^^~x~^^~^^|",
    }
    seg = _seg_nrrd(
        tmp_path / "s.seg.nrrd",
        lab,
        {
            0: {**_fields("Structure A", "1", "0"), "Tags": tags[0]},
            1: {**_fields("Structure B", "2", "0"), "Tags": tags[1]},
        },
    )
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])  # names say nothing; the codes decide
    roles = [(r["name"], r["role"], r["reason"], r["code"]["value"]) for r in rep.study["segment_roles"]]
    assert roles == [("Structure A", "liver", "code", "10200004"), ("Structure B", "lesion", "code", "108369006")]
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)


def test_layered_seg_nrrd_without_layer_and_label_value_keys(tmp_path):
    """One segment per layer, 0/1, and no ``SegmentN_Layer`` / ``_LabelValue`` (Slicer before 4.11, slicerio).

    Slicer reads such a segment from the layer of its index with the value 1 (its storage node:
    no Layer key -> layer = segment index; no LabelValue -> the segment's default 1); taking the
    value index + 1 in layer 0 instead left the second segment empty, a tumour of 0 mL.
    """
    liver, lesion = _masks()
    layers = np.stack([liver.astype(np.uint8), lesion.astype(np.uint8)], axis=-1)
    seg = _seg_nrrd(
        tmp_path / "old.seg.nrrd",
        layers,
        {0: {"ID": "Segment_1", "Name": "Liver"}, 1: {"ID": "Segment_2", "Name": "Tumor"}},
        vector=True,
    )
    _, segs = read_itk_segments(seg)
    assert [(s["name"], s["layer"], s["label_value"]) for s in segs] == [("Liver", 0, 1), ("Tumor", 1, 1)]
    np.testing.assert_array_equal(segs[1]["mask"], lesion)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(liver) * VOX_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)


def test_single_layer_seg_nrrd_without_label_values_keeps_the_order(tmp_path):
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    seg = _seg_nrrd(tmp_path / "one.seg.nrrd", lab, {0: {"Name": "Liver"}, 1: {"Name": "Tumor"}})
    _, segs = read_itk_segments(seg)
    assert [(s["name"], s["layer"], s["label_value"]) for s in segs] == [("Liver", 0, 1), ("Tumor", 0, 2)]


@pytest.mark.parametrize("labels", ["liver=Liver+Tumor,lesion=Tumor", "lesion=Tumor,liver=Liver+Tumor"])
def test_a_segment_named_for_the_liver_and_the_lesion_is_the_lesion(tmp_path, labels):
    # a user who counts the tumour in the liver names it for both; the first role in --labels made it liver
    # only (no lesion, involvement null), whatever the order it is the lesion, inside the total liver
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    seg = _seg_nrrd(tmp_path / "s.seg.nrrd", lab, {0: _fields("Liver", "1", "0"), 1: _fields("Tumor", "2", "0")})
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg], labels=labels)
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(liver | lesion) * VOX_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)
    assert rep.involvement_percent == pytest.approx(100.0 * np.count_nonzero(lesion) / np.count_nonzero(liver))


@pytest.mark.parametrize("name", ["Liver.seg.nrrd", "Tumor.seg.nrrd"])
def test_a_seg_nrrd_named_after_an_organ_in_a_study_folder_keeps_its_segments(tmp_path, name):
    # the file name made it a liver (or lesion) mask: every segment merged into that one role
    from netlm_imaging.io.discover import discover_study

    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    _seg_nrrd(tmp_path / name, lab, {0: _fields("Liver", "1", "0"), 1: _fields("Tumor 1", "2", "0")})
    assert discover_study(tmp_path).segmentation_args == [str(tmp_path / name)]
    rep = analyze(tmp_path)
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(liver | lesion) * VOX_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)


@pytest.mark.parametrize("name", ["Liver.seg.nrrd", "Tumor.seg.nrrd"])
def test_a_folder_passed_as_seg_holding_a_seg_nrrd_named_after_an_organ_keeps_its_segments(tmp_path, name):
    # --seg FOLDER: the file name is no role there either (read as liver=, the tumour segment was merged away)
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    (tmp_path / "slicer").mkdir()
    _seg_nrrd(tmp_path / "slicer" / name, lab, {0: _fields("Liver", "1", "0"), 1: _fields("Tumor 1", "2", "0")})
    rep = analyze(image=tmp_path / "ct.mha", segs=[tmp_path / "slicer"])
    assert rep.liver["volume_ml"] == pytest.approx(np.count_nonzero(liver | lesion) * VOX_ML)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)


def test_a_seg_nrrd_cropped_to_its_segments_is_placed_not_resampled(tmp_path):
    """Slicer saves a .seg.nrrd cropped to its segments' extent: a sub-grid of the CT starting at voxel (3, 2, 1).
    The numbers equal the uncropped file's, and the report says nothing was resampled (it said resampled, with a
    nearest-neighbour warning, although every voxel was the CT's)."""
    liver, lesion = _masks()
    lab = np.where(lesion, 2, np.where(liver, 1, 0)).astype(np.uint8)
    crop = lab[3:19, 2:15, 1:8]
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(crop, (2, 1, 0))))
    spacing = np.linalg.norm(AFF[:3, :3], axis=0)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in AFF[:3, :3] @ np.array([3.0, 2.0, 1.0]) + AFF[:3, 3]])  # the CT's voxel (3,2,1)
    img.SetDirection([float(d) for d in (AFF[:3, :3] / spacing).ravel()])
    img.SetMetaData("Segment0_Name", "Liver")
    img.SetMetaData("Segment0_LabelValue", "1")
    img.SetMetaData("Segment0_Layer", "0")
    img.SetMetaData("Segment1_Name", "Tumour 1")
    img.SetMetaData("Segment1_LabelValue", "2")
    img.SetMetaData("Segment1_Layer", "0")
    seg = tmp_path / "Segmentation.seg.nrrd"
    sitk.WriteImage(img, str(seg), useCompression=True)
    sitk.WriteImage(_itk_image(np.zeros(SHAPE, np.int16)), str(tmp_path / "ct.mha"))
    rep = analyze(image=tmp_path / "ct.mha", segs=[seg])
    assert rep.liver["voxel_count"] == int(np.count_nonzero(liver | lesion))
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion) * VOX_ML)
    assert rep.study["grid"]["resampled"] is False
    assert not any("resampled" in w for w in rep.warnings)
    assert any("index offset [3, 2, 1]" in n for n in rep.extra["notes"])
