"""RTSTRUCT ROIs drawn on a subset of slices of their own series (every 2nd slice, a slice forgotten).

A planning-system user who contours every second slice and exports before interpolating writes an
ROI whose slices between are empty; plastimatch, dcmrtstruct2nii and rt-utils rasterise it so, and
so does netlm (the contours name this series' images: no slab is declared or implied). The numbers
are then those of the drawn slices only, and a tumour drawn on slices 3, 5, 7, 9 is four 1-slice
lesions: that was silent. It is now a warning naming the ROI and the empty slices, given only when
the outlines either side overlap (the structure runs through the gap); two lesions side by side or
far apart along the axis are not warned about.

Phantom: an oblique anisotropic CT; every outline runs through voxel edges (``box_outline``), so a
box's voxel count, computed here, is the truth of what each slice holds.
"""

from __future__ import annotations

import numpy as np
import pytest

from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import RoiSpec, box_outline, write_rtstruct

SHAPE = (34, 30, 16)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
LIVER = ((4, 30), (3, 27))
TUMOUR = ((10, 16), (9, 14))  # 6 x 5 voxels a slice
BESIDE = ((20, 26), (16, 22))  # 6 x 6, in-plane apart from TUMOUR
VOXEL_ML = 0.9 * 0.8 * 2.0 / 1000.0


def _area(box) -> int:
    (i0, i1), (j0, j1) = box
    return (i1 - i0) * (j1 - j0)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("skipped") / "study" / "ct"
    paths = write_image_series(folder, np.zeros(SHAPE), AFFINE, seed=34)
    return paths, read_dicom_series(folder)


def _roi(name, slices_by_box, interpreted_type="ORGAN"):
    return RoiSpec(
        name, [box_outline(AFFINE, box, k) for box, ks in slices_by_box for k in ks], interpreted_type=interpreted_type
    )


def _layers(ct, tmp_path, rois, labels):
    paths, ref = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, rois)
    return {la.label: la.mask for la in read_rtstruct(rt, ref, parse_label_spec(labels))}


def _skip_warnings(mask) -> list[str]:
    return [w for w in mask.meta["warnings"] if "no contour on image slice(s)" in w]


def test_a_tumour_drawn_on_every_second_slice_is_measured_as_drawn_with_a_warning(ct, tmp_path):
    rt_rois = [_roi("Liver", [(LIVER, range(2, 13))]), _roi("GTV", [(TUMOUR, (3, 5, 7, 9))], "GTV")]
    paths, _ = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, rt_rois)
    rep = analyze_json("--image", str(paths[0].parent), "--seg", str(rt))
    total = rep["tumor"]["intrahepatic_volume_ml"] + rep["tumor"]["extrahepatic_volume_ml"]
    assert total == pytest.approx(4 * _area(TUMOUR) * VOXEL_ML, abs=1e-5)  # the drawn slices, as plastimatch
    assert rep["tumor"]["lesion_count"] == 4  # what the warning says may happen
    (line,) = [w for w in rep["warnings"] if "no contour on image slice(s)" in w]
    assert "ROI 2 'GTV'" in line
    assert "slice(s) 4, 6, 8 between" in line
    assert "interpolate the ROI" in line
    assert not any("'Liver'" in w and "no contour on image slice" in w for w in rep["warnings"])


def test_a_forgotten_liver_slice_is_named(ct, tmp_path):
    ks = [k for k in range(2, 13) if k != 7]
    layers = _layers(ct, tmp_path, [_roi("Liver", [(LIVER, ks)])], "liver=Liver")
    assert int(layers["Liver"].array.sum()) == len(ks) * _area(LIVER)
    (line,) = _skip_warnings(layers["Liver"])
    assert "slice(s) 7 between" in line


def test_three_skipped_slices_are_named_four_are_two_structures(ct, tmp_path):
    layers = _layers(ct, tmp_path, [_roi("GTV", [(TUMOUR, (2, 6, 11))], "GTV")], "lesion=GTV")
    (line,) = _skip_warnings(layers["GTV"])  # 3..5 skipped; 7..10 (four slices) parts two lesions
    assert "slice(s) 3, 4, 5 between" in line


def test_lesions_apart_in_plane_or_along_the_axis_get_no_warning(ct, tmp_path):
    rois = [
        _roi("GTV", [(TUMOUR, (3, 4)), (BESIDE, (6, 7))], "GTV"),  # one slice apart, in-plane apart
        _roi("Mets", [(TUMOUR, (2, 3)), (TUMOUR, (8, 9))], "GTV"),  # above each other, 4 slices apart
    ]
    layers = _layers(ct, tmp_path, rois, "lesion=GTV+Mets")
    assert int(layers["GTV"].array.sum()) == 2 * (_area(TUMOUR) + _area(BESIDE))
    assert _skip_warnings(layers["GTV"]) == []
    assert _skip_warnings(layers["Mets"]) == []
