"""Lesion geometry (measure/lesions.py): 48 orientations of an OBLIQUE volume, and axial diameters against brute force.

tests/test_volume_geometry.py checks the 48 orientations on an axis-aligned
(diagonal) affine; here the base affine is rotated and anisotropic, so the
lesions go through the transverse resampling path. Expected numbers are
computed here: volumes as voxel counts x |det(affine)|, the 3-D diameter by
brute force over all voxel-centre pairs, the axial diameters by brute force
over all voxel centres of each transverse slice.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import grid_affine
from scipy.spatial.distance import pdist, squareform
from test_volume_geometry import _orientations, _reorient

from netlm_imaging.measure.burden import measure_burden
from netlm_imaging.segmentation import MaskLayer
from netlm_imaging.volume import Volume


def _measure(image: np.ndarray, liver: np.ndarray, lesion: np.ndarray, affine: np.ndarray):
    vol = Volume(image, affine)
    layers = [MaskLayer("liver", vol.with_array(liver)), MaskLayer("lesion", vol.with_array(lesion))]
    return measure_burden(vol, layers)


def test_all_48_orientations_of_an_oblique_volume_agree():
    shape = (40, 34, 18)
    aff = oblique_affine(spacing=(0.9, 1.3, 2.5), angles_deg=(10.0, -7.0, 20.0))
    ijk = np.indices(shape)
    liver = (ijk[0] >= 5) & (ijk[0] < 35) & (ijk[1] >= 4) & (ijk[1] < 30) & (ijk[2] >= 2) & (ijk[2] < 16)
    ellipsoid = ((ijk[0] - 14) ** 2 / 16 + (ijk[1] - 12) ** 2 / 25 + (ijk[2] - 8) ** 2 / 4) <= 1
    box = (ijk[0] >= 24) & (ijk[0] < 30) & (ijk[1] >= 20) & (ijk[1] < 23) & (ijk[2] >= 5) & (ijk[2] < 7)
    lesion = ellipsoid | box
    image = np.where(lesion, 120.0, np.where(liver, 60.0, -100.0)) + ijk[0] * 0.1
    results = []
    for perm, flips in _orientations():
        a_img, a2 = _reorient(image, aff, perm, flips)
        a_liv, _ = _reorient(liver, aff, perm, flips)
        a_les, _ = _reorient(lesion, aff, perm, flips)
        res = _measure(a_img, a_liv, a_les, a2)
        les = sorted(res.ctx.lesions, key=lambda x: x.volume_ml)
        results.append(
            (
                res.ctx.liver_volume_ml,
                res.ctx.intrahepatic_tumor_ml,
                [x.volume_ml for x in les],
                [x.max_3d_diameter_mm for x in les],
                [x.longest_axial_diameter_mm for x in les],
                [x.short_axis_diameter_mm for x in les],
                [list(x.centroid_lps_mm) for x in les],
                [x.mean_intensity for x in les],
            )
        )
    assert len(results) == 48
    vox_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    centres = np.indices(shape).reshape(3, -1).T @ aff[:3, :3].T + aff[:3, 3]
    first = results[0]
    assert first[0] == pytest.approx(np.count_nonzero(liver | lesion) * vox_ml)
    assert first[1] == pytest.approx(np.count_nonzero(lesion) * vox_ml)
    assert first[2] == pytest.approx(sorted([np.count_nonzero(box) * vox_ml, np.count_nonzero(ellipsoid) * vox_ml]))
    brute_3d = sorted(
        [float(pdist(centres[m.ravel()]).max()) for m in (box, ellipsoid)],
    )
    assert first[3] == pytest.approx(brute_3d, abs=1e-6)
    for r in results[1:]:
        for a, b in zip(r, first):
            np.testing.assert_allclose(np.array(a, dtype=float), np.array(b, dtype=float), atol=1e-6)


def _brute_axial(points_by_slice: list[np.ndarray], normal=(0.0, 0.0, 1.0)) -> tuple[float, float]:
    """Longest in-slice diameter over all voxel-centre pairs, and the widest extent perpendicular to any
    pair of that length (ties included) within the slice plane (unit ``normal``)."""
    longest = max(float(pdist(p).max()) for p in points_by_slice if len(p) > 1)
    widest = 0.0
    for p in points_by_slice:
        if len(p) < 2:
            continue
        d = squareform(pdist(p))
        for i, j in zip(*np.nonzero(d >= longest - 1e-6)):
            u = (p[j] - p[i]) / d[i, j]
            v = np.cross(normal, u)
            proj = p @ (v / np.linalg.norm(v))
            widest = max(widest, float(proj.max() - proj.min()))
    return longest, widest


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("turn", ["aligned", "in-plane rotation", "tilt within the axial tolerance"])
def test_axial_diameters_equal_brute_force_including_ties(seed, turn):
    # in-plane isotropic grid (non-identity spacing and origin): equal-length diagonals are common. Axis-aligned
    # or turned about S, the slices' S coordinate is constant (the distance search leaves it out); tilted by
    # 0.5 degrees (still transverse within AXIAL_TOLERANCE), every patient coordinate varies in a slice
    if turn == "aligned":
        aff = grid_affine((0.8, 0.8, 2.5), (-31.0, 12.5, 70.0))
    else:
        tilt = (0.4, -0.3) if turn.startswith("tilt") else (0.0, 0.0)
        aff = oblique_affine(spacing=(0.8, 0.8, 2.5), angles_deg=(*tilt, 25.0), origin=(-31.0, 12.5, 70.0))
        assert (aff[2, :2] != 0.0).all() == turn.startswith("tilt")
    shape = (24, 24, 5)
    rng = np.random.default_rng(seed)
    lesion = np.zeros(shape, bool)
    for _ in range(4):  # a union of random rectangles, all containing voxel (10, 10): one lesion
        x0, y0 = rng.integers(3, 11, size=2)
        nx, ny = rng.integers(11 - x0, 18 - x0), rng.integers(11 - y0, 18 - y0)
        lesion[x0 : x0 + nx, y0 : y0 + ny, 1:4] = True
    liver = np.ones(shape, bool)
    res = _measure(np.zeros(shape, np.float32), liver, lesion, aff)
    (les,) = res.ctx.lesions
    centres = np.indices(shape).reshape(3, -1).T @ aff[:3, :3].T + aff[:3, 3]
    flat = lesion.ravel()
    k_of = np.indices(shape)[2].ravel()
    by_slice = [centres[flat & (k_of == k)] for k in range(shape[2])]
    longest, widest = _brute_axial(by_slice, aff[:3, 2] / np.linalg.norm(aff[:3, 2]))
    assert les.longest_axial_diameter_mm == pytest.approx(longest, abs=1e-9)
    assert les.short_axis_diameter_mm == pytest.approx(widest, abs=1e-9)
