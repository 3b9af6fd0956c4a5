"""netlm_imaging.geometry and the Volume methods built on it (to/from SimpleITK, crop, resample_to, dilate_mm).

Oblique, anisotropic grids only; every voxel of an ``np.arange`` volume is identifiable. The truth comes
from SimpleITK's own index -> physical mapping, from the voxel positions computed here with the affine,
and from analytic functions of position.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from netlm_imaging.geometry import bbox, crop_affine, dilate_mm
from netlm_imaging.volume import Volume
from tests.conftest import oblique_affine, tilted_affine

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (7, 5, 4)


@pytest.fixture
def vol() -> Volume:
    return Volume(np.arange(np.prod(SHAPE), dtype=np.int32).reshape(SHAPE), oblique_affine(), source="arange")


def _centres(v: Volume) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in v.shape), indexing="ij"), -1).reshape(-1, 3)
    return ijk, v.affine[:3, :3] @ ijk.T.astype(float) + v.affine[:3, 3:4]


def test_to_sitk_places_every_voxel_where_simpleitk_says(vol):
    img = vol.to_sitk()
    ijk, lps = _centres(vol)
    for n in (0, 13, 57, len(ijk) - 1):
        i, j, k = (int(x) for x in ijk[n])
        assert img.GetPixel(i, j, k) == vol.array[i, j, k]
        np.testing.assert_allclose(img.TransformIndexToPhysicalPoint((i, j, k)), lps[:, n], atol=1e-9)


def test_from_sitk_round_trip_keeps_grid_and_values(vol):
    back = Volume.from_sitk(vol.to_sitk(), source="x")
    assert back.same_grid(vol)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-12)


def test_crop_keeps_patient_positions(vol):
    c = vol.crop((slice(2, 6), slice(1, 5), slice(1, 3)))
    assert c.shape == (4, 4, 2)
    assert c.array[0, 0, 0] == vol.array[2, 1, 1]
    np.testing.assert_allclose(c.index_to_lps([1, 2, 1]), vol.index_to_lps([3, 3, 2]), atol=1e-9)
    np.testing.assert_allclose(crop_affine(vol.affine, (2, 1, 1)), c.affine)
    with pytest.raises(ValueError, match="step 1"):
        vol.crop((slice(0, 6, 2), slice(None), slice(None)))


def test_resample_crop_back_matches_geometry(vol):
    """crop, then resample onto the full grid: the cropped voxels return to their places, 0 elsewhere."""
    sub = (slice(2, 6), slice(1, 5), slice(1, 3))
    c = vol.crop(sub)
    back = c.resample_to(vol).array
    expected = np.zeros(SHAPE, dtype=np.int32)
    expected[sub] = vol.array[sub]
    np.testing.assert_array_equal(back, expected)


def test_resample_linear_is_exact_on_a_linear_function():
    """Linear interpolation reproduces a linear function of LPS position at any voxel inside the source."""
    src_aff = oblique_affine((0.9, 1.1, 2.5), (8.0, -5.0, 15.0), (-20.0, 10.0, 30.0))
    src = Volume(np.zeros((30, 30, 14)), src_aff)
    _, lps = _centres(src)
    coef = np.array([0.3, -0.7, 1.3])
    src = src.with_array((coef @ lps + 5.0).reshape(src.shape).astype(np.float32))
    # a smaller grid well inside the source, other orientation and spacing
    centre = src.index_to_lps([15, 15, 7])[0]
    tgt_aff = oblique_affine((1.3, 0.8, 1.7), (-12.0, 9.0, -20.0), tuple(centre - 5.0))
    tgt = Volume(np.zeros((6, 6, 5)), tgt_aff)
    out = src.resample_to(tgt, "linear").array
    _, tgt_lps = _centres(tgt)
    np.testing.assert_allclose(out, (coef @ tgt_lps + 5.0).reshape(tgt.shape), atol=2e-3)


def test_resample_boolean_nearest_stays_boolean(vol):
    mask = vol.with_array(vol.array % 3 == 0)
    out = mask.resample_to(mask)
    assert out.array.dtype == bool
    np.testing.assert_array_equal(out.array, mask.array)


def test_dilate_mm_is_the_set_of_centres_within_the_radius():
    spacing = (0.6, 0.9, 2.0)
    aff = oblique_affine(spacing)
    mask = np.zeros((21, 15, 9), dtype=bool)
    mask[10, 7, 4] = mask[12, 7, 4] = True
    v = Volume(mask, aff)
    r = 2.3
    out = v.dilate_mm(r).array
    _, lps = _centres(v)
    seeds = v.index_to_lps(np.argwhere(mask))
    d = np.min(np.linalg.norm(lps.T[:, None, :] - seeds[None], axis=-1), axis=1)
    np.testing.assert_array_equal(out.reshape(-1), d <= r + 1e-6)
    assert dilate_mm(mask, spacing, 0.0).sum() == 2
    assert bbox(np.zeros((2, 2, 2), bool)) is None


def test_simpleitk_arrays_cross_only_in_geometry():
    """The [i, j, k] <-> SimpleITK [k, j, i] transposes live in netlm_imaging/geometry.py only."""
    transpose = re.compile(r"transpose\(2, 1, 0")
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "netlm_imaging").rglob("*.py")
        if p.name != "geometry.py" and "import SimpleITK" in (text := p.read_text()) and transpose.search(text)
    ]
    assert offenders == []
    assert sitk.Version.MajorVersion() >= 2


# --------------------------------------------------------------------------- sheared grids (gantry tilt)
def _brute_within(mask, aff, r, shape):
    ijk = np.argwhere(np.ones(shape, bool))
    seeds = np.argwhere(mask) @ aff[:3, :3].T
    d = np.linalg.norm((ijk @ aff[:3, :3].T)[:, None, :] - seeds[None], axis=-1).min(1)
    return (d <= r * (1 + 1e-6)).reshape(shape)


def test_is_orthogonal_tells_a_rotation_from_a_shear():
    from netlm_imaging.geometry import is_orthogonal

    assert is_orthogonal(oblique_affine((0.7, 1.1, 3.0)))
    assert not is_orthogonal(tilted_affine(30.0))
    assert not is_orthogonal(tilted_affine(0.5))  # cos 89.5 deg = 8.7e-3: beyond 1e-3
    assert is_orthogonal(tilted_affine(0.03))  # cos 89.97 deg = 5.2e-4: within 1e-3
    assert not is_orthogonal(tilted_affine(0.03), tol=1e-4)


def test_ball_offsets_on_a_sheared_grid_are_the_offsets_within_the_radius():
    from netlm_imaging.geometry import ball_offsets

    aff = tilted_affine()
    cube = np.stack(np.meshgrid(*[np.arange(-8, 9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    r = float(np.linalg.norm(aff[:3, :3] @ [1, -1, 1]))  # a voxel at exactly the radius is in
    expected = {tuple(d) for d in cube if np.linalg.norm(aff[:3, :3] @ d) <= r * (1 + 1e-6)}
    got = ball_offsets(aff, r)
    assert {tuple(d) for d in got} == expected
    assert len(got) == len(expected)
    assert (1, -1, 1) in expected
    assert (0, 0, 2) not in expected


def test_within_mm_one_point_an_empty_mask_and_no_points():
    from netlm_imaging.geometry import within_mm

    aff = tilted_affine()
    mask = np.zeros((5, 5, 5), bool)
    mask[2, 2, 2] = True
    assert within_mm(mask, aff, 1.5, np.array([[2, 2, 3]])).tolist() == [True]  # one step of 1.5 mm
    assert within_mm(mask, aff, 1.4, np.array([[2, 2, 3]])).tolist() == [False]
    none = within_mm(np.zeros((5, 5, 5), bool), aff, 3.0, np.array([[2, 2, 3], [0, 0, 0]]))
    assert none.dtype == bool
    assert none.tolist() == [False, False]
    empty = within_mm(mask, aff, 3.0, np.zeros((0, 3), int))
    assert empty.dtype == bool
    assert empty.shape == (0,)


def test_dilate_mm_on_a_sheared_grid_is_the_set_of_centres_within_the_radius():
    aff = tilted_affine()
    shape = (9, 8, 7)
    mask = np.zeros(shape, bool)
    mask[0, 3, 3] = mask[4, 7, 0] = mask[5, 2, 5] = True  # two on the array's faces: the box is clipped there
    v = Volume(mask, aff)
    assert v.sheared
    for r in (0.8, 1.5, float(np.linalg.norm(aff[:3, :3] @ [1, -1, 1])), 2.9):  # 0.8: one pixel along the rows
        out = v.dilate_mm(r).array
        np.testing.assert_array_equal(out, _brute_within(mask, aff, r, shape), err_msg=str(r))
        assert out.dtype == bool
    np.testing.assert_array_equal(v.dilate_mm(0.0).array, mask)
    np.testing.assert_array_equal(v.dilate_mm(-1.0).array, mask)
    assert not Volume(np.zeros(shape, bool), aff).dilate_mm(2.0).array.any()


def test_dilate_mm_affine_on_an_oblique_grid_takes_the_axes_spacings():
    """The orthogonal branch (the PET margin's): spacings are the affine's column lengths, not its rows'."""
    from netlm_imaging.geometry import dilate_mm_affine

    aff = oblique_affine((0.7, 1.1, 3.0), angles_deg=(25.0, -30.0, 40.0))
    shape = (13, 11, 7)
    mask = np.zeros(shape, bool)
    mask[6, 5, 3] = mask[2, 9, 1] = True
    for r in (0.7, 1.1, 1.6, 3.0, 3.3):
        np.testing.assert_array_equal(
            dilate_mm_affine(mask, aff, r), _brute_within(mask, aff, r, shape), err_msg=str(r)
        )


def _sheared(pixel_mm: float, step_mm: float, tilt_deg: float, lean: tuple[float, float], angles_deg) -> np.ndarray:
    """A rotated gantry-tilt grid: orthogonal rows and columns, the slice step leaning ``tilt_deg`` off their
    normal towards the in-plane direction ``lean`` (a mix of rows and columns), the whole frame rotated."""
    rot = oblique_affine((1.0, 1.0, 1.0), angles_deg=angles_deg)[:3, :3]
    t = np.radians(tilt_deg)
    u = np.array([lean[0], lean[1], 0.0]) / np.hypot(*lean)
    a = np.eye(4)
    a[:3, 0], a[:3, 1] = rot @ [pixel_mm, 0.0, 0.0], rot @ [0.0, pixel_mm * 1.1, 0.0]
    a[:3, 2] = rot @ (step_mm * (np.cos(t) * np.array([0.0, 0.0, 1.0]) + np.sin(t) * u))
    a[:3, 3] = [12.0, -30.0, 85.0]
    return a


@pytest.mark.parametrize(
    ("pixel_mm", "step_mm", "tilt_deg", "lean"),
    [
        (0.8, 1.5, 14.0, (0.0, 1.0)),
        (0.7, 2.5, 30.0, (1.0, -0.6)),
        (0.5, 5.0, 30.0, (0.0, -1.0)),
        (0.4, 3.0, 40.0, (1, 1)),
    ],
    ids=["ct-14deg", "oblique-lean-30deg", "thin-pixels-thick-slices-30deg", "40deg"],
)
def test_fast_sheared_dilation_is_the_brute_force_set(pixel_mm, step_mm, tilt_deg, lean):
    """Random seeded masks on rotated, tilted grids: the dilation is the set of voxel centres within the radius
    of a mask voxel, by brute force over every pair in patient space. The thin-pixel grids step several pixels
    in-plane per slice, so a mask voxel's nearest outside neighbours are not among its 26 index neighbours."""
    from scipy import ndimage

    from netlm_imaging.geometry import dilate_mm_affine

    aff = _sheared(pixel_mm, step_mm, tilt_deg, lean, (17.0, -11.0, 33.0))
    assert Volume(np.zeros((2, 2, 2)), aff).shear_deg == pytest.approx(tilt_deg, abs=1e-9)
    rng = np.random.default_rng(int(10 * tilt_deg + step_mm))
    shape = (22, 20, 9)
    for trial in range(3):
        noise = ndimage.gaussian_filter(rng.standard_normal(shape), (1.5, 1.5, 0.7))
        mask = noise > np.quantile(noise, 0.93 - 0.2 * trial)  # blobs with holes and several components
        mask[0, rng.integers(0, 20), rng.integers(0, 9)] = True  # one on the array's face
        for r in (pixel_mm, step_mm, 1.7 * step_mm + 0.3):
            got = dilate_mm_affine(mask, aff, r)
            np.testing.assert_array_equal(got, _brute_within(mask, aff, r, shape), err_msg=f"{trial} {r}")
            assert got.dtype == bool


def test_sheared_dilation_finds_a_nearest_voxel_none_of_whose_face_neighbours_is_outside():
    """Near the 45 degree limit, thin pixels under thick slices: the nearest mask voxel ``m`` of an outside
    voxel ``x`` can have all six face neighbours in the mask (no face step from ``x - m = (0, -11, 1)``
    gets closer to ``x``), so a boundary of face neighbours would miss it. The mask is every voxel at
    least ``|A (x - m)|`` from ``x``; ``x`` is within that radius of ``m`` and of no other mask voxel."""
    from netlm_imaging.geometry import dilate_mm_affine

    aff = _sheared(0.3, 5.0, 44.0, (0.0, 1.0), (17.0, -11.0, 33.0))
    a3 = aff[:3, :3]
    e = np.array([0, -11, 1])
    faces = np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
    d0 = float(np.linalg.norm(a3 @ e))
    assert all(np.linalg.norm(a3 @ (e - f)) >= d0 for f in faces)  # no face step from m gets nearer x
    shape = (7, 40, 7)
    x = np.array([3, 20, 3])
    ijk = np.argwhere(np.ones(shape, bool))
    dist = np.linalg.norm((ijk - x) @ a3.T, axis=1).reshape(shape)
    mask = dist >= d0 * (1 - 1e-9)
    m = tuple(x - e)
    assert mask[m]
    assert all(mask[tuple(np.asarray(m) + f)] for f in faces)
    for r in (d0, d0 * 1.01):
        got = dilate_mm_affine(mask, aff, r)
        np.testing.assert_array_equal(got, _brute_within(mask, aff, r, shape))
        assert got[tuple(x)]
    assert not dilate_mm_affine(mask, aff, d0 * 0.999)[tuple(x)]
