"""Liver registration (compare, longitudinal) with a gantry-tilted study: distances in patient space.

SimpleITK's distance maps step through the index grid scaled by the spacing and ignore the direction
matrix, so on a sheared grid a step along the tilt and across it counted ``|a_j| + |a_k|`` apart instead of
``|a_j + a_k|`` (24 % too far at 25 degrees). The registration's cost then compared distorted maps and the
recovered transform was off by millimetres. The truth here is independent of the code: distances by a k-d
tree of the voxel centres in patient space (LPS mm), and a follow-up liver that is the baseline's analytic
shape moved by a known rigid transform.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import cKDTree

from netlm_imaging import geometry
from netlm_imaging.verify.registration import align_liver_masks, liver_distance_map, orthogonal_twin
from netlm_imaging.volume import Volume
from tests.conftest import oblique_affine, tilted_affine

CENTRE = np.array([10.0, -20.0, 350.0])


def _liver(p: np.ndarray) -> np.ndarray:
    """An asymmetric liver-like shape (a body and a lobe) at patient positions ``p`` (N x 3, mm)."""
    body = ((((p - CENTRE) / [55.0, 40.0, 35.0]) ** 2).sum(-1)) <= 1
    lobe = ((((p - CENTRE - [40.0, 25.0, 10.0]) / [30.0, 22.0, 20.0]) ** 2).sum(-1)) <= 1
    return body | lobe


def _grid(tilt_deg: float, pixel_mm: float, step_mm: float, shape) -> np.ndarray:
    aff = tilted_affine(tilt_deg, step=step_mm) @ np.diag([pixel_mm / 0.8, pixel_mm / 0.8, 1.0, 1.0])
    aff[:3, 3] = CENTRE + np.array([-80.0, -75.0, -60.0])
    return aff


def _mask(aff: np.ndarray, shape, to_shape=lambda p: p) -> Volume:
    ijk = np.argwhere(np.ones(shape, bool))
    return Volume(_liver(to_shape(ijk @ aff[:3, :3].T + aff[:3, 3])).reshape(shape), aff)


def test_the_registration_distance_map_of_a_tilted_liver_is_in_patient_space():
    vol = _mask(_grid(25.0, 1.6, 3.0, (110, 100, 45)), (110, 100, 45))
    assert vol.sheared
    twin = orthogonal_twin(vol)
    assert not twin.sheared
    assert twin.voxel_volume_mm3 == pytest.approx(vol.voxel_volume_mm3, rel=1e-9)
    assert int(twin.array.sum()) == pytest.approx(int(vol.array.sum()), rel=0.01)
    img = liver_distance_map(vol, 30.0)
    ref = geometry.grid_image(vol.shape, vol.affine)
    on_vol = geometry.array_from_sitk(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 99.0))
    lps = vol.index_to_lps(np.argwhere(np.ones(vol.shape, bool)))
    inside = vol.array.reshape(-1)
    d_out = cKDTree(lps[inside]).query(lps[~inside])[0]  # outside voxel centre -> nearest liver voxel centre
    near = d_out < 25.0
    err = np.abs(on_vol.reshape(-1)[~inside][near] - d_out[near])
    assert near.sum() > 100_000
    assert float(err.mean()) < 0.4  # the map on the sheared grid as it is: mean 1.40 mm
    assert float(err.max()) < 1.2  # ... max 7.10 mm
    ortho = Volume(vol.array, oblique_affine((1.6, 1.6, 3.0)))
    assert orthogonal_twin(ortho) is ortho


def test_a_tilted_baseline_registers_onto_a_moved_follow_up():
    """The follow-up liver is the baseline's shape rotated (3, -4, 5 degrees) about its centre and moved
    (6, -4, 5) mm, on an orthogonal grid; the baseline is on a 25 degree tilted one. The recovered transform
    maps the baseline's surface where the known one does."""
    ax, ay, az = np.radians([3.0, -4.0, 5.0])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rot, shift = rz @ ry @ rx, np.array([6.0, -4.0, 5.0])
    base = _mask(_grid(25.0, 2.0, 3.5, (88, 80, 39)), (88, 80, 39))
    fu_aff = np.eye(4)
    fu_aff[:3, :3] = np.diag([2.0, 2.0, 3.0])
    fu_aff[:3, 3] = CENTRE + np.array([-90.0, -80.0, -70.0])
    follow = _mask(fu_aff, (94, 83, 50), lambda p: (p - shift - CENTRE) @ rot + CENTRE)  # x_f = R (x_b - c) + c + t
    al = align_liver_masks(base, follow)
    m = al.matrix_fixed_to_moving
    surface = base.index_to_lps(np.argwhere(base.array & ~_eroded(base.array)))
    truth = (surface - CENTRE) @ rot.T + CENTRE + shift
    err = np.linalg.norm(surface @ m[:3, :3].T + m[:3, 3] - truth, axis=1)
    assert float(err.mean()) < 1.2  # distance maps on the sheared grid as it is: mean 2.42 mm
    assert float(err.max()) < 2.0  # ... max 4.86 mm
    assert al.liver_dice_after is not None
    assert al.liver_dice_after > 0.97  # ... 0.956
    assert any("sheared" in w and "orthogonal grid of its slice planes" in w for w in al.warnings)


def _eroded(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(mask)


def test_surface_distances_of_compare_seg_on_a_tilted_grid_are_in_patient_space():
    """HD and HD95 of two masks on a 25 degree tilted grid: surface voxel centres (a face neighbour outside)
    by brute force, every pairwise distance in LPS mm. A spacing-only metric (index steps times spacings,
    as SimpleITK's and MedPy's distance maps measure) gives another number on this grid."""
    from netlm_imaging.verify.segcompare import compare_masks

    aff = tilted_affine(25.0, step=2.5)
    shape = (24, 22, 14)
    a = np.zeros(shape, bool)
    a[4:18, 5:15, 3:10] = True
    b = np.zeros(shape, bool)
    b[6:20, 3:13, 5:12] = True  # moved two rows, back two columns, up two slices: across the tilt

    def surface(m):
        p = np.pad(m, 1)
        inner = np.ones(shape, bool)
        for axis in range(3):
            for step in (-1, 1):
                inner &= np.roll(p, step, axis=axis)[1:-1, 1:-1, 1:-1]
        return np.argwhere(m & ~inner)

    def directed(pa, pb, metric):
        return np.sqrt((((pa[:, None, :] - pb[None, :, :]) @ metric.T) ** 2).sum(-1)).min(1)

    sa, sb = surface(a), surface(b)
    lps = aff[:3, :3]
    pooled = np.concatenate([directed(sa, sb, lps), directed(sb, sa, lps)])
    got = compare_masks("liver", a, b, aff)
    assert got.hd_mm == pytest.approx(float(pooled.max()), abs=1e-9)
    assert got.hd95_mm == pytest.approx(float(np.percentile(pooled, 95)), abs=1e-9)
    spacing_only = np.diag(np.linalg.norm(lps, axis=0))
    index_metric = np.concatenate([directed(sa, sb, spacing_only), directed(sb, sa, spacing_only)])
    assert abs(float(index_metric.max()) - got.hd_mm) > 0.5
