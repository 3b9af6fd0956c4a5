"""PEERS.md, rt-utils: structure sets written from masks the way rt-utils writes them.

rt-utils (``RTStructBuilder.add_roi``) traces every mask slice with ``cv2.findContours(RETR_TREE)``:
the contour runs through the **centres of the mask's edge voxels**, for outer borders and holes alike
(CHAIN_APPROX_SIMPLE keeps only the turning points, CHAIN_APPROX_NONE every one). Re-rasterised with
the voxel-centre rule those outlines lose half of their edge voxels: the round trip mask -> RTSTRUCT
-> mask is not volume-preserving (rt-utils PR #141, which added ``contour_mode="voxel_edge"``). A
nnU-Net or TotalSegmentator mask converted this way (TotalSegmentator's ``dicom_rtstruct`` output uses
rt-utils) must come back as the mask it was traced from. rt-utils #84 / TotalSegmentator-AIDE PR #8:
the RTSTRUCT of a NIfTI mask came out rotated or flipped; ours must lie where the NIfTI mask lies.

The phantom is an oblique anisotropic CT (never an identity affine). The masks are built with numpy
slicing (the truth); the contours are the vertex lists cv2 emits for these shapes, written here by
hand: a convex corner voxel is a vertex, a concave corner voxel (all four face neighbours inside) is
cut diagonally, a hole's border runs through the foreground voxels face-adjacent to the hole.
"""

from __future__ import annotations

import numpy as np
import pytest

from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import analyze_json, oblique_affine
from tests.dicom_factory import write_image_series
from tests.phantoms import write_nifti
from tests.seg_factory import Contour, RoiSpec, write_rtstruct

SHAPE = (32, 30, 10)
SPACING = (0.9, 0.8, 2.5)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(5.0, -6.0, 12.0), origin=(-60.0, 15.0, 250.0))
LIVER_K = range(1, 9)
TUMOUR_K = range(3, 7)


def _liver_2d() -> np.ndarray:
    """A square ring: [3, 29) x [3, 27) less the hole [10, 18) x [9, 16)."""
    m = np.zeros(SHAPE[:2], bool)
    m[3:29, 3:27] = True
    m[10:18, 9:16] = False
    return m


def _tumour_2d() -> np.ndarray:
    """An L: [12, 24) x [18, 22) and [12, 16) x [22, 26) (inside the ring, beside the hole)."""
    m = np.zeros(SHAPE[:2], bool)
    m[12:24, 18:22] = True
    m[12:16, 22:26] = True
    return m


# cv2.findContours(..., CHAIN_APPROX_SIMPLE) of the masks above, in (i, j) voxel indices
RING_OUTER = [(3, 3), (28, 3), (28, 26), (3, 26)]
RING_HOLE = [(9, 9), (10, 8), (17, 8), (18, 9), (18, 15), (17, 16), (10, 16), (9, 15)]  # corners cut
L_OUTER = [(12, 18), (23, 18), (23, 21), (16, 21), (15, 22), (15, 25), (12, 25)]  # concave corner cut
# rt-utils PR #141 contour_mode="voxel_edge": the same masks outlined along the voxel edges
RING_OUTER_EDGE = [(2.5, 2.5), (28.5, 2.5), (28.5, 26.5), (2.5, 26.5)]
RING_HOLE_EDGE = [(9.5, 8.5), (17.5, 8.5), (17.5, 15.5), (9.5, 15.5)]
L_EDGE = [(11.5, 17.5), (23.5, 17.5), (23.5, 21.5), (15.5, 21.5), (15.5, 25.5), (11.5, 25.5)]


def _mask3d(plane: np.ndarray, ks: range) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[:, :, ks.start : ks.stop] = plane[:, :, None]
    return m


def _every_centre(poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """CHAIN_APPROX_NONE: every voxel centre along the outline, not only the turning points."""
    out: list[tuple[float, float]] = []
    for (i0, j0), (i1, j1) in zip(poly, poly[1:] + poly[:1]):
        n = int(max(abs(i1 - i0), abs(j1 - j0)))
        out += [(i0 + (i1 - i0) * t / n, j0 + (j1 - j0) * t / n) for t in range(n)]
    return out


def _contour(poly, k: int) -> Contour:
    return Contour(np.array([(AFFINE @ [i, j, k, 1.0])[:3] for i, j in poly]))


def _rois(liver_polys, tumour_polys) -> list[RoiSpec]:
    return [
        RoiSpec("Liver", [_contour(p, k) for k in LIVER_K for p in liver_polys]),
        RoiSpec("GTV", [_contour(p, k) for k in TUMOUR_K for p in tumour_polys], interpreted_type="GTV"),
    ]


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct") / "ct"
    paths = write_image_series(folder, np.full(SHAPE, 60.0), AFFINE, seed=31)
    return paths, read_dicom_series(folder)


def _read(tmp_path, paths, ref, rois) -> dict:
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, rois)
    return {la.label: la for la in read_rtstruct(rt, ref, parse_label_spec(None), role_log=[])}


@pytest.mark.parametrize("approximation", ["CHAIN_APPROX_SIMPLE", "CHAIN_APPROX_NONE"])
def test_outlines_traced_through_edge_voxel_centres_give_back_the_mask(ct, tmp_path, approximation):
    paths, ref = ct
    dense = _every_centre if approximation == "CHAIN_APPROX_NONE" else list
    layers = _read(tmp_path, paths, ref, _rois([dense(RING_OUTER), dense(RING_HOLE)], [dense(L_OUTER)]))
    np.testing.assert_array_equal(layers["Liver"].mask.array, _mask3d(_liver_2d(), LIVER_K))
    np.testing.assert_array_equal(layers["GTV"].mask.array, _mask3d(_tumour_2d(), TUMOUR_K))
    for name in ("Liver", "GTV"):
        assert "outlines traced through voxel centres" in layers[name].mask.meta["rasterisation"]
        assert any("every contour vertex lies on a voxel centre" in w for w in layers[name].mask.meta["warnings"])


def test_voxel_edge_mode_gives_the_same_masks_with_the_plain_rule(ct, tmp_path):
    paths, ref = ct
    layers = _read(tmp_path, paths, ref, _rois([RING_OUTER_EDGE, RING_HOLE_EDGE], [L_EDGE]))
    np.testing.assert_array_equal(layers["Liver"].mask.array, _mask3d(_liver_2d(), LIVER_K))
    np.testing.assert_array_equal(layers["GTV"].mask.array, _mask3d(_tumour_2d(), TUMOUR_K))
    assert "traced" not in layers["Liver"].mask.meta["rasterisation"]


def test_an_outline_not_on_centres_keeps_the_centre_rule(ct, tmp_path):
    """One vertex 0.3 voxel off its centre: a drawn outline, not a traced one; nothing is added to it."""
    paths, ref = ct
    drawn = [(3, 3), (28, 3), (28, 26), (3.3, 26)]
    layers = _read(tmp_path, paths, ref, _rois([RING_OUTER, RING_HOLE], [drawn]))
    gtv = layers["GTV"].mask.array[:, :, 4]
    # the centre rule, half-open: columns 3..27 of rows 3..25, and rows 26 nowhere (the top edge is open)
    assert not gtv[:, 26].any()
    assert not gtv[28, :].any()
    assert gtv[27, 25]
    assert gtv[3, 3]
    assert "traced" not in layers["GTV"].mask.meta["rasterisation"]
    assert "traced" in layers["Liver"].mask.meta["rasterisation"]  # decided per ROI


def test_the_rtstruct_of_a_nifti_mask_lies_where_the_nifti_mask_lies(ct, tmp_path):
    """rt-utils #84: the NIfTI mask (LiTS labels) and its traced RTSTRUCT give the same numbers and places."""
    paths, _ = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, _rois([RING_OUTER, RING_HOLE], [L_OUTER]))
    labels = _mask3d(_liver_2d(), LIVER_K).astype(np.uint8)
    labels[_mask3d(_tumour_2d(), TUMOUR_K)] = 2
    seg = write_nifti(tmp_path / "seg.nii.gz", labels, AFFINE)
    from_rt = analyze_json("--image", str(paths[0].parent), "--seg", str(rt))
    from_nifti = analyze_json("--image", str(paths[0].parent), "--seg", str(seg))
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    n_liver = int(np.count_nonzero(labels))
    for rep in (from_rt, from_nifti):
        assert rep["liver"]["voxel_count"] == n_liver
        assert rep["liver"]["volume_ml"] == pytest.approx(n_liver * voxel_ml, abs=1e-3)
        assert rep["tumor"]["intrahepatic_volume_ml"] == pytest.approx((labels == 2).sum() * voxel_ml, abs=1e-3)
    idx = np.argwhere(labels == 2).mean(axis=0)
    centroid = (AFFINE @ [*idx, 1.0])[:3]
    (a,), (b,) = from_rt["lesions"], from_nifti["lesions"]
    np.testing.assert_allclose(a["centroid_lps_mm"], centroid, atol=1e-3)
    np.testing.assert_allclose(b["centroid_lps_mm"], centroid, atol=1e-3)
