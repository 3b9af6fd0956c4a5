"""Slabs on a gantry-tilted grid: a declared thickness is across the slice planes, not along the tilted step.

A structure set or SEG made on the thick reconstruction of a tilted acquisition and read on its thin one has
contour planes / frames every second thin slice; each is a slab as thick as the thick reconstruction's plane
separation, extending along the planes' normal. On a tilted grid the step from one slice to the next is
``1 / cos(tilt)`` times that separation and leans off the normal, so a slab converted to slices with the step
covered too few slices, and a slab copied to the neighbouring slice at the same index sat a pixel or more off
its footprint. The truth here is brute force in patient space: a voxel centre is in a slab when its distance
along the normal from the slab's centre plane is in ``(-T/2, T/2]`` and its projection onto that plane lies
inside the contour.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import tilted_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, declare_slabs, write_rtstruct

TILT_DEG = 25.0
THIN_SHAPE, THICK_SHAPE = (40, 36, 20), (40, 36, 10)
FOR_UID = "1.2.826.0.1.3680043.8.498.4242.19"


def _grids():
    thin = tilted_affine(TILT_DEG, step=2.5)
    thick = thin @ np.diag([1.0, 1.0, 2.0, 1.0])  # thick slice j sits on thin slice 2j; planes twice as far apart
    return thin, thick


def _rectangle(aff, k, i0, i1, j0, j1) -> np.ndarray:
    corners = [(i0 - 0.5, j0 - 0.5), (i1 - 0.5, j0 - 0.5), (i1 - 0.5, j1 - 0.5), (i0 - 0.5, j1 - 0.5)]
    return np.array([(aff @ [i, j, k, 1.0])[:3] for i, j in corners])


def _in_slabs(points: np.ndarray, rectangles: list[np.ndarray], thickness_mm: float) -> np.ndarray:
    """Brute force: points (N x 3, LPS) inside any rectangle's slab of ``thickness_mm`` along its normal."""
    out = np.zeros(len(points), bool)
    for rect in rectangles:
        u, v = rect[1] - rect[0], rect[3] - rect[0]
        n = np.cross(u, v)
        n /= np.linalg.norm(n)
        d = (points - rect[0]) @ n
        foot = points - rect[0] - np.outer(d, n)
        s, t = foot @ u / (u @ u), foot @ v / (v @ v)
        tol = 1e-6
        out |= (d > -thickness_mm / 2 + tol) & (d <= thickness_mm / 2 + tol) & (s > 0) & (s < 1) & (t > 0) & (t < 1)
    return out


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiltslab")
    thin_aff, thick_aff = _grids()
    write_image_series(root / "thin", np.zeros(THIN_SHAPE), thin_aff, frame_of_reference_uid=FOR_UID, seed=1)
    thick = write_image_series(root / "thick", np.zeros(THICK_SHAPE), thick_aff, frame_of_reference_uid=FOR_UID, seed=2)
    return root, read_dicom_series(root / "thin"), thick


@pytest.mark.parametrize("declared", [None, "ContourSlabThickness", "SourcePixelPlanes"])
def test_structure_set_of_the_thick_tilted_reconstruction_on_the_thin_one(tmp_path, series, declared):
    _root, thin, thick = series
    _thin_aff, thick_aff = _grids()
    normal = np.cross(thick_aff[:3, 0], thick_aff[:3, 1])
    separation = abs(float(normal @ thick_aff[:3, 2])) / float(np.linalg.norm(normal))  # of the thick planes
    assert thin.sheared
    assert thin.slice_separation_mm == pytest.approx(separation / 2, rel=1e-9)
    assert separation == pytest.approx(5.0 * np.cos(np.radians(TILT_DEG)), rel=1e-9)  # 4.53 mm, the step 5 mm
    liver = [_rectangle(thick_aff, k, 5, 35, 5, 30) for k in range(2, 7)]
    tumour = [_rectangle(thick_aff, k, 15, 22, 12, 20) for k in range(3, 6)]
    rt = write_rtstruct(
        tmp_path / "rt.dcm",
        thick,
        [RoiSpec("Liver", [Contour(r) for r in liver]), RoiSpec("Tumour", [Contour(r) for r in tumour], "GTV")],
    )
    if declared is not None:  # the structure set names the thin series and says how thick its contours are
        declare_slabs(rt, thin.meta["series_instance_uid"], declared, round(separation, 6), (0.8, 0.8))
    layers = {layer.role: layer.mask.array for layer in read_rtstruct(rt, thin, parse_label_spec(None), role_log=[])}
    centres = np.argwhere(np.ones(THIN_SHAPE, bool))
    lps = thin.index_to_lps(centres)
    for role, rects in (("liver", liver), ("lesion", tumour)):
        truth = _in_slabs(lps, rects, separation).reshape(THIN_SHAPE)
        assert int(truth.sum()) == {"liver": 30 * 25 * 10, "lesion": 7 * 8 * 6}[role]  # two thin slices per plane
        np.testing.assert_array_equal(layers[role], truth, err_msg=role)


def _frame_slabs(points: np.ndarray, thick_aff: np.ndarray, thick_mask: np.ndarray) -> np.ndarray:
    """Brute force: each point takes the thick frame whose slab along the normal holds it, at its projection."""
    normal = np.cross(thick_aff[:3, 0], thick_aff[:3, 1])
    normal /= np.linalg.norm(normal)
    thickness = abs(float(normal @ thick_aff[:3, 2]))
    inv = np.linalg.inv(thick_aff)
    out = np.zeros(len(points), bool)
    for m in range(thick_mask.shape[2]):
        d = (points - thick_aff[:3, 3] - m * thick_aff[:3, 2]) @ normal
        slab = (d > -thickness / 2 + 1e-6) & (d <= thickness / 2 + 1e-6)
        foot = points[slab] - np.outer(d[slab], normal)  # projected along the normal onto frame m's plane
        ijk = foot @ inv[:3, :3].T + inv[:3, 3]
        assert np.allclose(ijk[:, 2], m)
        i, j = (np.floor(ijk[:, 0] + 0.5).astype(int), np.floor(ijk[:, 1] + 0.5).astype(int))
        ok = (i >= 0) & (i < thick_mask.shape[0]) & (j >= 0) & (j < thick_mask.shape[1])
        hit = np.zeros(int(slab.sum()), bool)
        hit[ok] = thick_mask[i[ok], j[ok], m]
        out[np.flatnonzero(slab)] |= hit
    return out


@pytest.mark.parametrize(("declared", "offset"), [("across-planes", 0.0), ("table-step", 0.0), ("across-planes", 0.5)])
def test_seg_of_the_thick_tilted_reconstruction_on_the_thin_one(tmp_path, series, declared, offset):
    """A SEG of the thick tilted reconstruction (SpacingBetweenSlices as dcmqi writes it: across the planes,
    4.53 mm, or the table increment, 5 mm) read on the thin one: each frame is a slab along the normal, whether
    the thick planes lie on thin slices or half-way between them (``offset`` 0.5 thin slice)."""
    from pydicom.sr.codedict import codes

    from netlm_imaging.io.dicom_seg import read_dicom_seg
    from tests.seg_factory import SegmentSpec, write_seg

    _root, thin, thick = series
    thin_aff, thick_aff = _grids()
    if offset:
        thick_aff[:3, 3] += offset * thin_aff[:3, 2]
        thick = write_image_series(
            tmp_path / "thick", np.zeros(THICK_SHAPE), thick_aff, frame_of_reference_uid=FOR_UID, seed=3
        )
    liver = np.zeros(THICK_SHAPE, bool)
    liver[5:35, 5:30, 2:7] = True
    liver[12:20, 10:14, 4] = False  # a notch in one frame: a frame placed on the wrong slab shows
    lesion = np.zeros(THICK_SHAPE, bool)
    lesion[15:22, 16:24, 3:6] = True
    tumour = SegmentSpec("Tumour", lesion, codes.SCT.Neoplasm, codes.SCT.MorphologicallyAbnormalStructure)
    path = write_seg(tmp_path / "seg.dcm", thick, [SegmentSpec("Liver", liver), tumour])
    ds = pydicom.dcmread(path)
    normal = np.cross(thick_aff[:3, 0], thick_aff[:3, 1])
    across = abs(float(normal @ thick_aff[:3, 2])) / float(np.linalg.norm(normal))
    pm = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    pm.SpacingBetweenSlices = round(across if declared == "across-planes" else 5.0, 6)
    ds.save_as(path)
    layers = {layer.role: layer.mask for layer in read_dicom_seg(path, thin, parse_label_spec(None))}
    lps = thin.index_to_lps(np.argwhere(np.ones(THIN_SHAPE, bool)))
    for role, thick_mask in (("liver", liver), ("lesion", lesion)):
        mask = layers[role]
        assert mask.same_grid(thin)
        truth = _frame_slabs(lps, thick_aff, thick_mask).reshape(THIN_SHAPE)
        assert int(truth.sum()) == 2 * int(thick_mask.sum())  # two thin slices per 5 mm frame
        np.testing.assert_array_equal(mask.array, truth, err_msg=role)
        assert any("slab along the slice normal" in w for w in mask.meta["warnings"])


def test_original_slices_of_a_resampled_grid_are_counted_in_plane_separations():
    """``slice_positions_mm`` are along the normal; on a sheared grid the slice index is position / separation.

    (The series reader refuses tilt with irregular steps, but a resampled grid may be sheared: the rule holds.)
    """
    from netlm_imaging.io._dicom_resampled import grid_slice_of_original, nearest_original_slices
    from netlm_imaging.volume import Volume

    aff = tilted_affine(TILT_DEG, step=2.5)
    sep = 2.5 * np.cos(np.radians(TILT_DEG))
    original = [0, 1, 2, 4, 5, 6, 7, 9, 10, 11]  # slices 3 and 8 missing from the acquisition
    vol = Volume(
        np.zeros((4, 4, 12)),
        aff,
        meta={"resampled": True, "slice_positions_mm": [100.0 + k * sep for k in original]},
    )
    assert vol.slice_separation_mm == pytest.approx(sep)
    np.testing.assert_array_equal(grid_slice_of_original(vol), original)
    kmap = nearest_original_slices(vol)
    assert kmap is not None
    assert kmap.tolist() == [0, 1, 2, 2, 4, 5, 6, 7, 7, 9, 10, 11]  # ties go to the lower original slice


def test_seg_on_a_shifted_tilted_grid_is_resampled_not_refused(tmp_path):
    """A SEG on the tilted CT's grid moved 0.4 pixel along the rows and 0.3 along the columns (off the voxel
    grid): its own grid is sheared like its frames' origins and resampled by position. It was refused ("its
    frames do not share one in-plane origin": the tilt moves them). Truth: each image voxel centre mapped into
    the SEG's grid by its affine, rounded to the nearest SEG voxel."""
    from netlm_imaging.api import analyze_with_context
    from tests.seg_factory import SegmentSpec, write_seg

    aff = tilted_affine(TILT_DEG, step=2.5)
    shape = (40, 36, 20)
    write_image_series(tmp_path / "ct", np.zeros(shape), aff, frame_of_reference_uid=FOR_UID, seed=1)
    seg_aff = aff.copy()
    seg_aff[:3, 3] += 0.4 * aff[:3, 0] + 0.3 * aff[:3, 1]
    src = write_image_series(tmp_path / "src", np.zeros(shape), seg_aff, frame_of_reference_uid=FOR_UID, seed=2)
    liver = np.zeros(shape, bool)
    liver[8:30, 6:28, 4:15] = True
    liver[12:16, 10:13, 9] = False
    write_seg(tmp_path / "seg.dcm", src, [SegmentSpec("Liver", liver)])
    _report, ctx = analyze_with_context(image=tmp_path / "ct", segs=[tmp_path / "seg.dcm"])
    centres = np.argwhere(np.ones(shape, bool))
    inv = np.linalg.inv(seg_aff)
    idx = np.floor((centres @ aff[:3, :3].T + aff[:3, 3]) @ inv[:3, :3].T + inv[:3, 3] + 0.5).astype(int)
    ok = np.all((idx >= 0) & (idx < shape), axis=1)
    truth = np.zeros(len(centres), bool)
    truth[ok] = liver[tuple(idx[ok].T)]
    np.testing.assert_array_equal(np.asarray(ctx.liver, bool), truth.reshape(shape))
