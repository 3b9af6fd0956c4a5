"""Scouts filed under the series UID of the axial stack, as scanners and PACS export them.

GE and Philips file the topogram (ImageType ORIGINAL\\PRIMARY\\LOCALIZER) with the axial images;
some exports add an untyped topogram or a dose screen capture (one image of another orientation
or matrix). None of them is a slice of the volume: the stack is read without them, with a warning
naming them. Two stacks of several images each under one UID stay ambiguous and are refused.

Truths: the factory's own affine and pixel values (written by pydicom), and the liver box's
voxel count times the affine's determinant, computed here.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from netlm_imaging.errors import DicomError
from netlm_imaging.io.dicom_series import read_dicom_series
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import deterministic_uid, write_image_series
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (20, 18, 10)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -3.0, 12.0), origin=(-40.0, 20.0, 300.0))
SEED = 5
CORONAL = np.array([[1.5, 0, 0, -60.0], [0, 0, 1.2, 0.0], [0, 1.5, 0, 250.0], [0, 0, 0, 1.0]])
LOCALIZER = ["ORIGINAL", "PRIMARY", "LOCALIZER"]


def _ct(folder):
    rng = np.random.default_rng(SEED)
    values = rng.integers(-100, 200, SHAPE).astype(float)
    return write_image_series(folder, values, AFFINE, seed=SEED), values


def _scouts(folder, shape, affine, image_type):
    """Images filed under the CT's SeriesInstanceUID (own SOP instance UIDs), in a subfolder."""
    paths = write_image_series(
        folder,
        np.full(shape, 500.0),
        affine,
        seed=SEED,
        series_uid=deterministic_uid("series", SEED, "CT"),
        extra_tags={"ImageType": image_type},
    )
    for n, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = deterministic_uid("scout", n, image_type)
        ds.save_as(p)
    return paths


@pytest.mark.parametrize(
    ("shape", "affine", "image_type"),
    [
        ((30, 10, 2), CORONAL, LOCALIZER),  # AP and lateral topograms, typed
        ((30, 10, 1), CORONAL, ["ORIGINAL", "PRIMARY", "OTHER"]),  # an untyped topogram
        ((64, 48, 1), AFFINE, ["DERIVED", "SECONDARY", "SCREEN SAVE"]),  # a dose screen, another matrix
        ((20, 18, 1), AFFINE, LOCALIZER),  # a localizer of the stack's own orientation and matrix
    ],
    ids=["typed-topograms", "untyped-topogram", "screen-capture", "axial-localizer"],
)
def test_scouts_in_the_series_are_left_out_with_a_warning(tmp_path, shape, affine, image_type):
    _, values = _ct(tmp_path / "ct")
    scouts = _scouts(tmp_path / "ct" / "scout", shape, affine, image_type)
    vol = read_dicom_series(tmp_path / "ct")
    assert vol.array.shape == SHAPE
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(vol.array, float), values)
    (note,) = [w for w in vol.meta["warnings"] if "scout/localizer" in w]
    assert f"{len(scouts)} scout/localizer image(s)" in note
    assert all(f"scout/{p.name}" in note for p in scouts)


def test_two_stacks_of_several_images_under_one_uid_are_refused(tmp_path):
    _ct(tmp_path / "ct")
    _scouts(tmp_path / "ct" / "coronal", (30, 10, 3), CORONAL, ["DERIVED", "SECONDARY", "REFORMATTED"])
    with pytest.raises(DicomError, match=r"mixes image stacks of different orientation or size .*own series\.$"):
        read_dicom_series(tmp_path / "ct")


def test_study_with_a_topogram_in_the_ct_series_measures_the_liver(tmp_path):
    study = tmp_path / "study"
    paths, _ = _ct(study / "ct")
    _scouts(study / "ct" / "scout", (30, 10, 1), CORONAL, LOCALIZER)
    liver = np.zeros(SHAPE, bool)
    liver[3:17, 2:15, 2:8] = True
    write_seg(study / "seg.dcm", paths, [SegmentSpec("Liver", liver)])
    report = analyze_json(str(study))
    truth_ml = 14 * 13 * 6 * abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert report["liver"]["volume_ml"] == pytest.approx(truth_ml, abs=1e-3)
    assert any("scout/localizer" in w for w in report["warnings"])


@pytest.mark.parametrize("jitter", [3e-5, 4e-4])
def test_cosines_jittered_across_a_rounding_boundary_stay_one_stack(tmp_path, jitter):
    """Exporters jitter the last digits of ImageOrientationPatient. Slices whose cosine straddles a 3-decimal
    rounding boundary (0.3395 +- jitter) were split into two stacks and the series refused as mixed."""
    paths, values = _ct(tmp_path / "ct")
    for n, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        iop[1] = round(iop[1], 3) + 0.0005 + (jitter if n % 2 else -jitter)  # half the slices round up, half down
        ds.ImageOrientationPatient = [f"{v:.7f}" for v in iop]
        ds.save_as(p)
    vol = read_dicom_series(tmp_path / "ct")
    assert vol.array.shape == SHAPE
    np.testing.assert_array_equal(np.asarray(vol.array, float), values)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=0.02)  # the cosine moved by <= 1e-3: <= 0.02 mm here


def test_an_anonymised_series_with_jittered_cosines_is_one_series(tmp_path):
    """Without a SeriesInstanceUID slices are grouped by frame of reference, matrix, spacing and orientation:
    cosines straddling a rounding boundary made two 'series' of one stack (exit 3: choose one)."""
    paths, values = _ct(tmp_path / "ct")
    for n, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID = ""
        iop = [float(v) for v in ds.ImageOrientationPatient]
        iop[1] = round(iop[1], 3) + 0.0005 + (3e-5 if n % 2 else -3e-5)
        ds.ImageOrientationPatient = [f"{v:.7f}" for v in iop]
        ds.save_as(p)
    vol = read_dicom_series(tmp_path / "ct")
    assert vol.array.shape == SHAPE
    np.testing.assert_array_equal(np.asarray(vol.array, float), values)


def _assert_the_ct_liver_is_measured(study, paths):
    """A SEG of a liver box on the CT ``paths``; the study's liver volume is the box's voxels x |det A|."""
    liver = np.zeros(SHAPE, bool)
    liver[3:17, 2:15, 2:8] = True
    write_seg(study / "seg.dcm", paths, [SegmentSpec("Liver", liver)])
    report = analyze_json(str(study))
    assert report["liver"]["volume_ml"] == pytest.approx(
        14 * 13 * 6 * abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0, abs=1e-3
    )


SAGITTAL = np.array([[0, 0, 1.2, 0.0], [1.5, 0, 0, -60.0], [0, 1.5, 0, 250.0], [0, 0, 0, 1.0]])


@pytest.mark.parametrize("image_type", [LOCALIZER, ["ORIGINAL", "PRIMARY", "OTHER"]], ids=["typed", "untyped"])
def test_a_topogram_series_of_two_orientations_does_not_stop_the_study(tmp_path, image_type):
    """The AP and lateral topograms in their own series beside the CT (the usual CT export): the grouping of
    the folder refused the study for the topogram series ('mixes image stacks'; before that an internal
    StopIteration), although the SEG references the CT."""
    study = tmp_path / "study"
    paths, _ = _ct(study / "ct")
    for n, affine in enumerate((CORONAL, SAGITTAL)):
        (p,) = write_image_series(
            study / "topo" / str(n),
            np.full((30, 10, 1), 500.0),
            affine,
            seed=SEED,
            series_uid=deterministic_uid("topograms"),
            extra_tags={"ImageType": image_type},
        )
        ds = pydicom.dcmread(p)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = deterministic_uid("topogram", n)
        ds.save_as(p)
    _assert_the_ct_liver_is_measured(study, paths)
    with pytest.raises(DicomError, match="mixes image stacks of different orientation or size"):
        read_dicom_series(study / "topo")  # read on its own, it is still no volume


def test_a_corrupt_unrelated_series_does_not_stop_the_study(tmp_path):
    """A NaN ImageOrientationPatient in a series the SEG does not reference (a dose report or a
    reformat exported beside the CT) refused the whole study; the CT the SEG references is measured, and
    the corrupt series is still refused, naming its file, when it is read itself."""
    study = tmp_path / "study"
    paths, _ = _ct(study / "ct")
    other = write_image_series(
        study / "other", np.full((20, 18, 3), 10.0), AFFINE, seed=SEED + 1, series_uid=deterministic_uid("other")
    )
    ds = pydicom.dcmread(other[1])
    ds.ImageOrientationPatient = ["nan", 0, 0, 0, 1, 0]
    ds.save_as(other[1])
    _assert_the_ct_liver_is_measured(study, paths)
    with pytest.raises(DicomError, match=r"ImageOrientationPatient \(0020,0037\) holds a non-finite value"):
        read_dicom_series(study / "other")
