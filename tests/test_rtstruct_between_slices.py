"""RTSTRUCT contour planes between the image's slices, as some planning-system exports write them.

A structure set drawn on this very series whose contour planes sit a fraction of a slice off the
image positions (positions rounded or offset by the exporter) names, per contour, the image it was
drawn on (ContourImageSequence). rt-utils places contours by that reference alone; netlm fills each
such plane on the adjacent slice it names, with a warning. A plane that names no image, or planes
whose named images collide, stay refused (with a message that says the file contradicts the series).

Phantom: an oblique anisotropic CT; the liver and the tumour are boxes outlined through voxel
edges, so their voxel counts (computed here) are the truth.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from netlm_imaging.errors import DicomError, GeometryError
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, box_outline, write_rtstruct
from tests.test_faults_messages import netlm, one_line

SHAPE = (34, 30, 14)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
LIVER = ((4, 30), (3, 27), range(2, 12))
TUMOUR = ((10, 16), (9, 14), range(4, 7))


def _outline(box, k: int, dk: float) -> Contour:
    return box_outline(AFFINE, box, k, dk)


def _voxels(box) -> int:
    (i0, i1), (j0, j1), ks = box
    return (i1 - i0) * (j1 - j0) * len(ks)


def _structure_set(path, paths, dk: float, *, name_slices: bool = True, shift_named: int = 0):
    """Liver and GTV planes ``dk`` slices off their slices k; each contour names image k + shift_named."""
    rois = [
        RoiSpec("Liver", [_outline(LIVER, k, dk) for k in LIVER[2]]),
        RoiSpec("GTV", [_outline(TUMOUR, k, dk) for k in TUMOUR[2]], interpreted_type="GTV"),
    ]
    out = write_rtstruct(path, paths, rois, contour_image_sequence=name_slices)
    if name_slices:  # name exactly slice k (the factory picks the nearest, which a half slice leaves to round-off)
        uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths]
        ds = pydicom.dcmread(out)
        for rc, (_, _, ks) in zip(ds.ROIContourSequence, (LIVER, TUMOUR), strict=True):
            for c, k in zip(rc.ContourSequence, ks, strict=True):
                c.ContourImageSequence[0].ReferencedSOPInstanceUID = uids[k + shift_named]
        ds.save_as(out)
    return out


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("between") / "study" / "ct"
    paths = write_image_series(folder, np.zeros(SHAPE), AFFINE, seed=31)
    return paths, read_dicom_series(folder)


@pytest.mark.parametrize("dk", [0.3, 0.5, -0.45])
def test_planes_between_slices_fill_the_slice_their_contours_name(ct, tmp_path, dk):
    paths, ref = ct
    rt = _structure_set(tmp_path / "rt.dcm", paths, dk)
    layers = read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    got = {layer.role: layer.mask.array for layer in layers}
    for role, box in (("liver", LIVER), ("lesion", TUMOUR)):
        assert int(got[role].sum()) == _voxels(box)
        assert sorted(set(np.nonzero(got[role])[2])) == list(box[2])  # on the named slices, not their neighbours
    warned = [w for layer in layers for w in layer.mask.meta["warnings"] if "between image slices" in w]
    assert len(warned) == 2
    assert all(f"up to {abs(dk):.2f} slice" in w for w in warned)


def test_end_to_end_volume_of_a_structure_set_off_by_a_third_of_a_slice(ct, tmp_path):
    paths, _ = ct
    study = paths[0].parent.parent
    _structure_set(study / "rt.dcm", paths, 0.33)
    report = analyze_json(str(study))
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert report["liver"]["volume_ml"] == pytest.approx(_voxels(LIVER) * voxel_ml, abs=1e-3)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(_voxels(TUMOUR) * voxel_ml, abs=1e-4)
    assert any("ContourImageSequence names" in w for w in report["warnings"])
    (study / "rt.dcm").unlink()


def test_planes_between_slices_naming_no_image_are_refused(ct, tmp_path):
    paths, ref = ct
    rt = _structure_set(tmp_path / "rt.dcm", paths, 0.3, name_slices=False)
    with pytest.raises(GeometryError, match=r"has contours between image slices \(slice index 2\.30, 10 plane"):
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])


def test_planes_naming_a_slice_they_are_not_beside_are_refused_as_inconsistent(ct, tmp_path):
    paths, ref = ct
    rt = _structure_set(tmp_path / "rt.dcm", paths, 0.3, shift_named=2)  # 1.7 slices from the image named
    with pytest.raises(GeometryError, match=r"although they name this series' images.*Re-export the RTSTRUCT"):
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])


def test_real_structure_set_beyond_its_one_exported_slice_says_the_series_is_incomplete(shared, tmp_path):
    """dicompyler's real breast RTSTRUCT with ONE of its CT slices (MANIFEST): Breast has 48 contours, none on it.

    Its contours name images of the CT's own series that the folder lacks, so the message says the
    series is incomplete (it said the structure set was drawn on another series).
    """
    folder = shared("dicompyler_rtss", "tests", "testdata", "example_data")
    ds = pydicom.dcmread(folder / "rtss.dcm", stop_before_pixels=True)
    (breast,) = [r.ROINumber for r in ds.StructureSetROISequence if r.ROIName == "Breast"]
    (contours,) = [rc.ContourSequence for rc in ds.ROIContourSequence if rc.ReferencedROINumber == breast]
    named = {str(c.ContourImageSequence[0].ReferencedSOPInstanceUID) for c in contours}
    ct_uid = str(pydicom.dcmread(folder / "ct.0.dcm", stop_before_pixels=True).SOPInstanceUID)
    assert ct_uid not in named  # truth from the file: none of Breast's images is the shipped slice
    line = one_line(netlm("analyze", folder, "--labels", "lesion=Breast", "--out", tmp_path / "out"))
    assert line.startswith(f"netlm: error: {folder / 'rtss.dcm'}: ROI 4 'Breast' has contours on slice(s) ")
    assert f"they name {len(named)} image(s) of this series that are not among its 1 slice(s)" in line
    assert line.endswith("the series is incomplete. Export the complete series with the RTSTRUCT.")


def _edit_liver_contours(rt, paths, edit) -> None:
    uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths]
    ds = pydicom.dcmread(rt)
    edit(list(ds.ROIContourSequence[0].ContourSequence), uids)
    ds.save_as(rt)


def test_a_plane_naming_both_slices_beside_it_is_refused_as_inconsistent(ct, tmp_path):
    paths, ref = ct
    rt = _structure_set(tmp_path / "rt.dcm", paths, 0.5)

    def name_two(contours, uids):  # the liver plane at 4.5 names images 4 and 5: which slice is not stated
        both = pydicom.Dataset()
        both.ReferencedSOPClassUID = contours[2].ContourImageSequence[0].ReferencedSOPClassUID
        both.ReferencedSOPInstanceUID = uids[5]
        contours[2].ContourImageSequence.append(both)

    _edit_liver_contours(rt, paths, name_two)
    with pytest.raises(GeometryError, match=r"ROI 1 'Liver' has contours between image slices.*inconsistent"):
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])


def test_two_planes_naming_one_slice_are_refused_as_inconsistent(ct, tmp_path):
    paths, ref = ct
    rt = _structure_set(tmp_path / "rt.dcm", paths, 0.3)

    def collide(contours, uids):  # the planes at 4.3 and 5.3 both name image 5
        contours[2].ContourImageSequence[0].ReferencedSOPInstanceUID = uids[5]

    _edit_liver_contours(rt, paths, collide)
    with pytest.raises(GeometryError, match=r"ROI 1 'Liver' has contours between image slices.*inconsistent"):
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])


def test_contours_beyond_the_image_naming_another_series_say_another_series(ct, tmp_path):
    # a longer CT of the same frame of reference, another series: its structure set reaches slice 17 of 20
    paths, ref = ct
    longer = write_image_series(
        tmp_path / "long",
        np.zeros((*SHAPE[:2], 20)),
        AFFINE,
        seed=32,
        frame_of_reference_uid=pydicom.dcmread(paths[0], stop_before_pixels=True).FrameOfReferenceUID,
    )
    rt = write_rtstruct(
        tmp_path / "rt.dcm", longer, [RoiSpec("Liver", [_outline(LIVER, k, 0.0) for k in range(2, 18)])]
    )
    with pytest.raises((GeometryError, DicomError)) as err:
        read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])
    assert "another series" in str(err.value)
    assert "incomplete" not in str(err.value)
