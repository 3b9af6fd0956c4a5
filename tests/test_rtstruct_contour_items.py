"""RTSTRUCT contour items as some exporters write them: no ContourGeometricType, or emptied contours.

ContourGeometricType is Type 1, yet some scripts leave it out; rt-utils, plastimatch and
dcmrtstruct2nii fill every contour as a polygon, and so does netlm now (with a warning): the
untyped contour was ignored, silently losing its slice of the lesion. A contour with no points
(NumberOfContourPoints 0, an emptied contour) is skipped with a warning instead of refusing the
file as corrupt; ContourData that is not x,y,z triplets still is.

Phantom: an oblique anisotropic CT, boxes outlined through voxel edges (voxel counts computed here).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from netlm_imaging.errors import DicomError
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, box_outline, write_rtstruct

SHAPE = (30, 28, 12)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
LIVER = ((4, 26), (3, 25), range(2, 10))
GTV = ((10, 16), (9, 14), range(4, 7))


def _outline(box, k: int) -> Contour:
    return box_outline(AFFINE, box, k)


def _area(box) -> int:
    (i0, i1), (j0, j1), _ = box
    return (i1 - i0) * (j1 - j0)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("items")
    paths = write_image_series(folder, np.zeros(SHAPE), AFFINE, seed=29)
    return paths, read_dicom_series(folder)


def _gtv_voxels(tmp_path, paths, ref, edit) -> tuple[int, list[str]]:
    rois = [
        RoiSpec("Liver", [_outline(LIVER, k) for k in LIVER[2]]),
        RoiSpec("GTV", [_outline(GTV, k) for k in GTV[2]]),
    ]
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, rois)
    ds = pydicom.dcmread(rt)
    edit(ds.ROIContourSequence[1].ContourSequence[0])  # the GTV's contour on slice 4
    ds.save_as(rt)
    layers = {la.role: la for la in read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])}
    return int(layers["lesion"].mask.array.sum()), layers["lesion"].mask.meta["warnings"]


def test_a_contour_without_geometric_type_is_filled_as_closed_planar(ct, tmp_path):
    paths, ref = ct
    n, warnings = _gtv_voxels(tmp_path, paths, ref, lambda c: delattr(c, "ContourGeometricType"))
    assert n == _area(GTV) * len(GTV[2])
    assert any("no ContourGeometricType; read as CLOSED_PLANAR" in w for w in warnings)


def test_an_emptied_contour_is_skipped_with_a_warning(ct, tmp_path):
    paths, ref = ct

    def empty(c):
        c.ContourData = []
        c.NumberOfContourPoints = 0

    n, warnings = _gtv_voxels(tmp_path, paths, ref, empty)
    assert n == _area(GTV) * (len(GTV[2]) - 1)  # the other two slices
    assert any("contour with 0 point(s) ignored" in w for w in warnings)


def test_contour_data_that_is_not_triplets_is_refused_as_corrupt(ct, tmp_path):
    paths, ref = ct
    with pytest.raises(DicomError, match=r"rt\.dcm: ROI 2 'GTV' contour 1: ContourData does not hold x,y,z triplets"):
        _gtv_voxels(tmp_path, paths, ref, lambda c: setattr(c, "ContourData", list(c.ContourData)[:-1]))


def _open_planar(closed: bool):
    def edit(c):
        pts = list(c.ContourData)
        c.ContourGeometricType = "OPEN_PLANAR"
        if closed:  # the outline ends where it began, as exporters that type every contour OPEN_PLANAR write it
            pts = pts + pts[:3]
        # else: the four corners, not back to the first: three sides of the box, a line, no region
        c.ContourData = pts
        c.NumberOfContourPoints = len(pts) // 3

    return edit


def test_an_open_planar_contour_that_closes_itself_is_its_outline(ct, tmp_path):
    paths, ref = ct
    n, warnings = _gtv_voxels(tmp_path, paths, ref, _open_planar(closed=True))
    assert n == _area(GTV) * len(GTV[2])  # was the other two slices: the slice of the lesion lost
    assert any(
        "OPEN_PLANAR contour whose last point repeats its first; read as the closed outline" in w for w in warnings
    )


def test_an_open_planar_line_stays_ignored(ct, tmp_path):
    paths, ref = ct
    n, warnings = _gtv_voxels(tmp_path, paths, ref, _open_planar(closed=False))
    assert n == _area(GTV) * (len(GTV[2]) - 1)
    assert any("OPEN_PLANAR contour ignored" in w for w in warnings)
