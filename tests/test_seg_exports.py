"""DICOM SEG as exporters write it: on an Enhanced (multi-frame) CT, and on the thick reconstruction of a thin CT.

All frames of an Enhanced CT share one SOPInstanceUID; a SEG frame names its source slice by
that UID *and* ReferencedFrameNumber. Matching by UID alone took every frame for the last
slice of the image: a false "references a source image on another slice" warning on every
such SEG, and frames without a plane position all placed on one slice.

Phantom: an oblique anisotropic Enhanced CT whose frames are stored out of slice order; the
liver is a box (truth computed here in index space). The SEG comes from highdicom.

A SEG made on the 5 mm reconstruction of an acquisition and read with its 2.5 mm one (same
frame of reference, every second thin slice at a thick slice's position) has frames that fall
exactly on thin slices: placed there, the slices between stayed empty (half the volume, a
lesion cut into one-slice pieces). Each frame is a 5 mm slab (SpacingBetweenSlices).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.io.dicom_seg import read_dicom_seg
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_enhanced_series, write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (32, 30, 12)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(7.0, -5.0, 18.0), origin=(-60.0, 40.0, 120.0))
FRAME_ORDER = [int(k) for k in np.random.default_rng(2).permutation(SHAPE[2])]  # slice k stored in frame n


def _liver() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[4:28, 4:26, 2:10] = True
    m[10:14, 8:12, 5] = False  # a notch on one slice: a frame on the wrong slice shows
    return m


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ect")
    (folder / "ct").mkdir()
    image = np.random.default_rng(0).normal(40.0, 5.0, SHAPE).round()
    path = write_enhanced_series(folder / "ct" / "ect.dcm", image, AFFINE, frame_order=FRAME_ORDER, seed=31)
    source = pydicom.dcmread(path)
    # the mask's k-th plane is the source's frame k (highdicom pairs frames with source frames in order)
    write_seg(folder / "seg.dcm", [source], [SegmentSpec("Liver", _liver()[:, :, FRAME_ORDER])], seed=31)
    return folder, read_dicom_series(folder / "ct")


def test_seg_on_enhanced_ct_gives_no_false_reference_warning(enhanced):
    folder, ref = enhanced
    (layer,) = read_dicom_seg(folder / "seg.dcm", ref, parse_label_spec(None))
    np.testing.assert_array_equal(layer.mask.array, _liver())
    assert layer.mask.meta["warnings"] == []


def test_seg_frames_without_position_are_placed_by_source_frame_number(enhanced, tmp_path):
    folder, ref = enhanced
    ds = pydicom.dcmread(folder / "seg.dcm")
    for item in ds.PerFrameFunctionalGroupsSequence:  # placed by the source image frame only
        del item.PlanePositionSequence
    ds.save_as(tmp_path / "noposition.dcm")
    (layer,) = read_dicom_seg(tmp_path / "noposition.dcm", ref, parse_label_spec(None))
    np.testing.assert_array_equal(layer.mask.array, _liver())
    assert int(layer.mask.array.sum()) == 24 * 22 * 8 - 16


def test_seg_of_the_thick_reconstruction_on_the_thin_one(tmp_path):
    thin_aff = oblique_affine(spacing=(0.9, 0.8, 2.5), angles_deg=(5.0, -4.0, 10.0), origin=(-20.0, 10.0, 200.0))
    thick_aff = thin_aff @ np.diag([1.0, 1.0, 2.0, 1.0])  # thick slice j sits on thin slice 2j
    for_uid = "1.2.826.0.1.3680043.8.498.4242.7"
    write_image_series(tmp_path / "thin", np.zeros((40, 36, 20)), thin_aff, frame_of_reference_uid=for_uid, seed=1)
    thick = write_image_series(
        tmp_path / "thick", np.zeros((40, 36, 10)), thick_aff, frame_of_reference_uid=for_uid, seed=2
    )
    liver = np.zeros((40, 36, 10), bool)
    liver[5:35, 5:30, 2:7] = True
    lesion = np.zeros((40, 36, 10), bool)
    lesion[15:22, 12:20, 3:6] = True
    tumour = SegmentSpec("Tumour", lesion, codes.SCT.Neoplasm, codes.SCT.MorphologicallyAbnormalStructure)
    write_seg(tmp_path / "seg.dcm", thick, [SegmentSpec("Liver", liver), tumour])
    rep = analyze_json("--image", str(tmp_path / "thin"), "--seg", str(tmp_path / "seg.dcm"))
    thick_voxel_ml = 0.9 * 0.8 * 5.0 / 1000.0
    thin_layer_ml = 30 * 25 * 0.9 * 0.8 * 2.5 / 1000.0  # one thin slice of the liver box
    # each 5 mm frame covers two 2.5 mm slices; nearest-neighbour ties at the two ends may move one thin slice
    assert abs(rep["liver"]["volume_ml"] - int(liver.sum()) * thick_voxel_ml) <= thin_layer_ml + 1e-9
    assert len(rep["lesions"]) == 1
    assert rep["lesions"][0]["volume_ml"] == pytest.approx(int(lesion.sum()) * thick_voxel_ml, abs=7 * 8 * 0.0018)
    assert any("5 mm apart (SpacingBetweenSlices)" in w for w in rep["warnings"])


def _strip_preamble(path, implicit: bool) -> None:
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=False)


def test_study_of_raw_datasets_without_preamble(tmp_path):
    """An old export: CT slices (implicit VR) and their SEG (explicit VR) as raw datasets, no Part-10 header.

    The folder scan took them for DICOM; the readers then refused them as corrupt. Truth: the box volumes.
    """
    aff = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(3.0, -6.0, 9.0), origin=(10.0, -30.0, 80.0))
    shape = (30, 28, 10)
    files = write_image_series(tmp_path / "study" / "ct", np.zeros(shape), aff, seed=12)
    liver = np.zeros(shape, bool)
    liver[3:27, 4:24, 1:9] = True
    lesion = np.zeros(shape, bool)
    lesion[10:15, 10:16, 3:6] = True
    tumour = SegmentSpec("Tumour", lesion, codes.SCT.Neoplasm, codes.SCT.MorphologicallyAbnormalStructure)
    seg = write_seg(tmp_path / "study" / "seg.dcm", files, [SegmentSpec("Liver", liver), tumour])
    for f in files:
        _strip_preamble(f, implicit=True)
    _strip_preamble(seg, implicit=False)
    rep = analyze_json(str(tmp_path / "study"))
    voxel_ml = 0.9 * 0.8 * 2.0 / 1000.0
    assert rep["liver"]["volume_ml"] == pytest.approx(int(liver.sum()) * voxel_ml, abs=1e-6)
    assert [round(les["volume_ml"], 6) for les in rep["lesions"]] == [round(int(lesion.sum()) * voxel_ml, 6)]
    layers = read_dicom_seg(seg, read_dicom_series(tmp_path / "study" / "ct"), parse_label_spec(None))  # the API
    assert [int(layer.mask.array.sum()) for layer in layers] == [int(liver.sum()), int(lesion.sum())]
