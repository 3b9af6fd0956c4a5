"""Boxes known to a reader (``geometry.remember_nonzero_bbox``): the one-pass SEG decoder records each segment's box,
and ``nonzero_bbox`` answers from it only while it is true; the expected boxes come from ``np.argwhere``."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from netlm_imaging import geometry
from netlm_imaging.geometry import nonzero_bbox, nonzero_count, remember_nonzero_bbox


def _argwhere_box(arr: np.ndarray) -> tuple[slice, slice, slice] | None:
    idx = np.argwhere(arr)
    if not len(idx):
        return None
    lo, hi = idx.min(0), idx.max(0) + 1
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))


@pytest.mark.parametrize("columns", [36, 40])  # 40: whole bytes per row (packed rows); 36: blocks of frames
@pytest.mark.parametrize("order", ["C", "F"])
def test_one_pass_seg_reader_records_each_segments_box(tmp_path, monkeypatch, columns, order):
    import pydicom
    from conftest import oblique_affine
    from dicom_factory import write_image_series
    from seg_factory import SegmentSpec, write_seg

    from netlm_imaging.io import dicom_seg, dicom_seg_decode
    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.volume import Volume

    shape = (columns, 30, 14)
    aff = oblique_affine(spacing=(0.8, 0.9, 2.5))
    paths = write_image_series(tmp_path / "ct", np.zeros(shape), aff, modality="CT", seed=5)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    ref = Volume(
        np.zeros(shape, order=order),
        aff,
        str(dss[0].FrameOfReferenceUID),
        meta={"sop_instance_uids": [d.SOPInstanceUID for d in dss]},
    )
    ii, jj, kk = np.indices(shape)
    liver = (ii >= 3) & (ii < columns - 2) & (jj >= 2) & (jj < 27) & (kk >= 1) & (kk < 13)
    lesion_a = ((ii - 11) ** 2 + (jj - 9) ** 2 + ((kk - 4) * 2) ** 2) <= 9
    lesion_b = ((ii - 25) ** 2 + (jj - 20) ** 2 + ((kk - 9) * 2) ** 2) <= 16
    lesion_b[33 % columns, 1, 13] = True  # a stray voxel: the box spans both ends of the grid
    neo = pydicom.sr.codedict.codes.SCT.Neoplasm
    specs = [SegmentSpec("Liver", liver), SegmentSpec("L1", lesion_a, property_type=neo)]
    specs.append(SegmentSpec("L2", lesion_b, property_type=neo))
    seg = write_seg(tmp_path / "seg.dcm", paths, specs)
    used = []
    real = dicom_seg_decode.decode_binary
    monkeypatch.setattr(dicom_seg_decode, "decode_binary", lambda *a, **k: used.append(1) or real(*a, **k))
    layers = dicom_seg.read_dicom_seg(seg, ref, parse_label_spec(None))
    assert used  # the one-pass decoder placed the frames
    assert len(layers) == 3
    for layer, truth in zip(layers, (liver, lesion_a, lesion_b)):
        arr = layer.mask.array
        np.testing.assert_array_equal(arr, truth)
        assert not arr.flags.writeable
        known, box = geometry._known_box(arr)
        assert known
        assert box == _argwhere_box(truth)
        assert nonzero_count(arr) == int(truth.sum())
        assert nonzero_bbox(arr, 2) == tuple(
            slice(max(0, b.start - 2), min(n, b.stop + 2)) for b, n in zip(_argwhere_box(truth), shape)
        )


def test_a_remembered_box_answers_only_for_its_read_only_array():
    arr = np.zeros((6, 7, 8), dtype=bool)
    arr[1:3, 2:5, 4] = True
    with pytest.raises(ValueError, match="read-only"):
        remember_nonzero_bbox(arr, _argwhere_box(arr))
    arr.flags.writeable = False
    recorded = (slice(0, 6), slice(0, 7), slice(0, 8))  # deliberately not the tight box: shows which answer is used
    remember_nonzero_bbox(arr, recorded)
    assert nonzero_bbox(arr) == recorded
    assert nonzero_bbox(arr.view()) == _argwhere_box(arr)  # another array object: scanned
    assert nonzero_count(arr) == 6
    remember_nonzero_bbox(arr, (slice(1, 2), slice(0, 7), slice(0, 8)))  # a box that cuts the voxels: counted inside
    assert nonzero_count(arr) == 3
    assert nonzero_count(arr.view()) == 6
    remember_nonzero_bbox(arr, None)
    assert nonzero_bbox(arr) is None
    assert nonzero_count(arr) == 0
    arr.flags.writeable = True  # it may change now: the record no longer answers
    assert nonzero_bbox(arr) == _argwhere_box(arr)
    arr.flags.writeable = False
    key = id(arr)
    assert key in geometry._KNOWN_BOXES
    del arr
    gc.collect()
    assert key not in geometry._KNOWN_BOXES  # the record goes with the array
