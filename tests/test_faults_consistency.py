"""Inconsistent inputs (issue 16 item 7): accepted, measured as before, and each with a warning saying which
value was believed.

The SEG and CT are built with highdicom / pydicom (tests/seg_factory.py, tests/dicom_factory.py) on an
oblique grid; the liver is an ellipsoid, so its slices differ. The expected volume is the voxel count of the
mask written, times the voxel volume from the spacing given to the factory; each defect is then planted in a
copy with pydicom. The PET case compares factors with the same series whose contradicting attribute is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine
from dicom_factory import write_image_series
from pet_factory import write_pet_series
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.cli import main
from netlm_imaging.io.suv import suv_conversion

SHAPE = (16, 14, 8)
SPACING = (1.5, 1.5, 3.0)
AFF = oblique_affine(spacing=SPACING, angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0


def _liver() -> np.ndarray:
    i, j, k = np.indices(SHAPE)
    return ((i - 8) / 6.0) ** 2 + ((j - 7) / 5.0) ** 2 + ((k - 3.5) / 3.2) ** 2 <= 1.0


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("consistency") / "base"
    ct = write_image_series(d / "ct", np.where(_liver(), 60.0, -50.0), AFF, seed=5)
    write_seg(d / "seg.dcm", ct, [SegmentSpec("Liver", _liver())])
    return d


def _run(d: Path, tmp_path: Path) -> dict:
    out = tmp_path / f"out_{d.name}"
    assert main(["analyze", str(d), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "report.json").read_text())


def _copy(study: Path, tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    shutil.copytree(study, d)
    return d


def _edit_seg(d: Path, fn) -> None:
    ds = pydicom.dcmread(d / "seg.dcm")
    fn(ds)
    ds.save_as(d / "seg.dcm")


def _sources(ds):
    return [fr.DerivationImageSequence[0].SourceImageSequence[0] for fr in ds.PerFrameFunctionalGroupsSequence]


def test_untouched_study_has_no_such_warning(study, tmp_path):
    rep = _run(study, tmp_path)
    assert rep["liver"]["volume_ml"] == pytest.approx(_liver().sum() * VOXEL_ML, rel=1e-9)
    assert not [w for w in rep["warnings"] if "believed" in w or "union" in w]


def _believed(rep: dict, needle: str) -> str:
    assert rep["liver"]["volume_ml"] == pytest.approx(_liver().sum() * VOXEL_ML, rel=1e-9)
    hits = [w for w in rep["warnings"] if needle in w]
    assert len(hits) == 1, rep["warnings"]
    return hits[0]


def test_seg_referencing_unknown_sop_instances(study, tmp_path):
    d = _copy(study, tmp_path, "unknown_refs")

    def plant(ds):
        for n, src in enumerate(_sources(ds)):
            src.ReferencedSOPInstanceUID = f"1.2.3.4.5.{n + 1}"

    _edit_seg(d, plant)
    w = _believed(_run(d, tmp_path), "not in the image series")
    assert "plane positions were believed" in w


def test_seg_with_shuffled_source_references(study, tmp_path):
    d = _copy(study, tmp_path, "shuffled_refs")

    def plant(ds):
        srcs = _sources(ds)
        uids = [s.ReferencedSOPInstanceUID for s in srcs]
        for s, u in zip(srcs, uids[1:] + uids[:1]):
            s.ReferencedSOPInstanceUID = u

    _edit_seg(d, plant)
    w = _believed(_run(d, tmp_path), "another slice than their position")
    assert "plane positions were believed" in w


def test_seg_referenced_frame_number_99(study, tmp_path):
    d = _copy(study, tmp_path, "frame99")
    _edit_seg(d, lambda ds: setattr(_sources(ds)[1], "ReferencedFrameNumber", 99))
    w = _believed(_run(d, tmp_path), "ReferencedFrameNumber")
    assert "frame 99" in w
    assert "ignored" in w


def test_two_conflicting_seg_frames_for_one_slice(study, tmp_path):
    d = _copy(study, tmp_path, "conflict")
    liver = _liver()
    seg = pydicom.dcmread(d / "seg.dcm")
    pf = seg.PerFrameFunctionalGroupsSequence

    # frame 2 is moved onto frame 1's slice: two different masks for one slice, frame 2's own slice emptied
    def k_of(item) -> int:
        ipp = np.array([float(x) for x in item.PlanePositionSequence[0].ImagePositionPatient])
        return round(np.linalg.solve(AFF[:3, :3], ipp - AFF[:3, 3])[2])

    k1, k2 = k_of(pf[0]), k_of(pf[1])
    assert k1 != k2
    pf[1].PlanePositionSequence[0].ImagePositionPatient = pf[0].PlanePositionSequence[0].ImagePositionPatient
    seg.save_as(d / "seg.dcm")
    expect = liver.copy()
    expect[:, :, k1] = liver[:, :, k1] | liver[:, :, k2]
    expect[:, :, k2] = False
    rep = _run(d, tmp_path)
    assert rep["liver"]["volume_ml"] == pytest.approx(expect.sum() * VOXEL_ML, rel=1e-9)
    hits = [w for w in rep["warnings"] if "different masks for one segment on one slice" in w]
    assert len(hits) == 1
    assert "frames 1 and 2" in hits[0]
    assert "union was used" in hits[0]


def test_one_slice_with_another_frame_of_reference(study, tmp_path):
    d = _copy(study, tmp_path, "other_for")
    f = sorted((d / "ct").iterdir())[4]
    ds = pydicom.dcmread(f)
    ds.FrameOfReferenceUID = "1.2.3.999"
    ds.save_as(f)
    w = _believed(_run(d, tmp_path), "FrameOfReferenceUID 1.2.3.999")
    assert f.name in w
    assert "majority" in w


def test_rescale_slope_zero_is_taken_as_one(study, tmp_path):
    d = _copy(study, tmp_path, "slope0")
    for f in (d / "ct").iterdir():
        ds = pydicom.dcmread(f)
        ds.RescaleSlope = 0
        ds.save_as(f)
    rep = _run(d, tmp_path)
    w = _believed(rep, "RescaleSlope (0028,1053) is 0")
    assert "a slope of 1 was used" in w
    assert rep["liver"]["mean_intensity"] == pytest.approx(60.0, abs=0.5)  # the factory wrote 60 HU at slope 1


def test_pet_start_time_contradicting_start_datetime(tmp_path):
    aff = oblique_affine(spacing=(3.0, 3.0, 4.0))
    values = np.full((6, 5, 3), 5000.0)

    def conversion(name, **kw):
        files = write_pet_series(tmp_path / name, values, aff, seed=3, **kw)
        return suv_conversion([pydicom.dcmread(f) for f in files], source=name)

    both = conversion("both", injection_time="093000", injection_datetime="20240102100000")
    only_dt = conversion("only_dt", injection_time=None, injection_datetime="20240102100000")
    only_t = conversion("only_t", injection_time="093000")
    np.testing.assert_allclose(both.factors, only_dt.factors, rtol=1e-12)  # the DateTime was believed
    assert not np.allclose(both.factors, only_t.factors, rtol=1e-6)
    hits = [w for w in both.warnings if "contradicts" in w]
    assert len(hits) == 1
    assert "09:30:00" in hits[0]
    assert "DateTime" in hits[0]
    assert "believed" in hits[0]
    assert not [w for w in only_dt.warnings if "contradicts" in w]
    # 30 s apart: within the stated agreement, no warning
    close = conversion("close", injection_time="100030", injection_datetime="20240102100000")
    assert not [w for w in close.warnings if "contradicts" in w]
