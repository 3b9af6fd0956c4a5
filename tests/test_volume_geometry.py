"""Geometry: Volume validation, 48 orientations, LPS/RAS round trips through nibabel and SimpleITK."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import oblique_affine, tilted_affine
from phantoms import grid_affine, write_nifti

from netlm_imaging.errors import GeometryError
from netlm_imaging.io.nifti import read_nifti
from netlm_imaging.io.sitk_io import read_itk
from netlm_imaging.measure.burden import measure_burden
from netlm_imaging.segmentation import MaskLayer
from netlm_imaging.volume import Volume


def test_spacing_and_voxel_volume_from_affine_only():
    aff = oblique_affine(spacing=(0.5, 0.5, 2.0))
    v = Volume(np.zeros((10, 10, 10)), aff)
    np.testing.assert_allclose(v.spacing, [0.5, 0.5, 2.0])
    # a 10^3 cube at (0.5, 0.5, 2.0) mm is 500 mm^3 (skimage / STYLE.md example)
    assert v.voxel_volume_mm3 * 1000 == pytest.approx(500.0)


@pytest.mark.parametrize(
    ("affine", "match"),
    [
        (np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
        (np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "not orthogonal"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.diag([1.0, 1.0, 1.0, 2.0]), "last row"),
        (np.eye(3), "4x4"),
    ],
)
def test_invalid_affines_are_refused(affine, match):
    with pytest.raises(GeometryError, match=match):
        Volume(np.zeros((2, 2, 2)), affine)


def test_volume_is_immutable():
    v = Volume(np.zeros((2, 2, 2)), oblique_affine())
    with pytest.raises(ValueError, match="read-only"):
        v.array[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        v.affine[0, 0] = 3


def _reorient(arr: np.ndarray, aff: np.ndarray, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]):
    """Same physical image with permuted/flipped array axes; affine built from explicit index maps."""
    new = np.transpose(arr, perm)
    for ax, f in enumerate(flips):
        if f:
            new = np.flip(new, axis=ax)
    new_shape = new.shape
    # new index n maps to old index o: o[perm[a]] = (N_a - 1 - n_a) if flipped else n_a
    m = np.zeros((4, 4))
    m[3, 3] = 1
    for a in range(3):
        if flips[a]:
            m[perm[a], a] = -1
            m[perm[a], 3] = new_shape[a] - 1
        else:
            m[perm[a], a] = 1
    return np.ascontiguousarray(new), aff @ m


def _orientations():
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((False, True), repeat=3):
            yield perm, flips


def test_all_48_orientations_give_identical_measurements():
    shape = (40, 34, 18)
    aff = grid_affine((0.9, 1.3, 2.5), (-30.0, 12.0, 80.0))
    ijk = np.indices(shape)
    liver = (ijk[0] >= 5) & (ijk[0] < 35) & (ijk[1] >= 4) & (ijk[1] < 30) & (ijk[2] >= 2) & (ijk[2] < 16)
    lesion = ((ijk[0] - 14) ** 2 / 16 + (ijk[1] - 12) ** 2 / 25 + (ijk[2] - 8) ** 2 / 4) <= 1
    lesion |= (ijk[0] >= 24) & (ijk[0] < 30) & (ijk[1] >= 20) & (ijk[1] < 23) & (ijk[2] >= 5) & (ijk[2] < 7)
    image = np.where(lesion, 120.0, np.where(liver, 60.0, -100.0)) + ijk[0] * 0.1
    results = []
    for perm, flips in _orientations():
        a_img, a2 = _reorient(image, aff, perm, flips)
        a_liv, _ = _reorient(liver, aff, perm, flips)
        a_les, _ = _reorient(lesion, aff, perm, flips)
        vol = Volume(a_img, a2)
        layers = [MaskLayer("liver", vol.with_array(a_liv)), MaskLayer("lesion", vol.with_array(a_les))]
        res = measure_burden(vol, layers)
        les = sorted(res.ctx.lesions, key=lambda x: x.volume_ml)
        results.append(
            (
                res.ctx.liver_volume_ml,
                res.ctx.intrahepatic_tumor_ml,
                [round(x.volume_ml, 9) for x in les],
                [round(x.max_3d_diameter_mm, 6) for x in les],
                [round(x.longest_axial_diameter_mm, 6) for x in les],
                [round(x.short_axis_diameter_mm, 6) for x in les],
                [np.round(x.centroid_lps_mm, 6).tolist() for x in les],
                [round(x.mean_intensity, 6) for x in les],
            )
        )
    assert len(results) == 48
    first = results[0]
    # independent truths: voxel counts x |det|
    vox_ml = 0.9 * 1.3 * 2.5 / 1000
    assert first[0] == pytest.approx(np.count_nonzero(liver | lesion) * vox_ml)
    assert first[1] == pytest.approx(np.count_nonzero(lesion) * vox_ml)
    for r in results[1:]:
        assert r[:2] == pytest.approx(first[:2])
        for a, b in zip(r[2:], first[2:]):
            np.testing.assert_allclose(np.array(a, dtype=float), np.array(b, dtype=float), atol=1e-6)


def test_nifti_lps_ras_round_trip_against_simpleitk(tmp_path):
    aff = oblique_affine(spacing=(0.7, 0.8, 3.0))
    arr = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    p = write_nifti(tmp_path / "x.nii.gz", arr, aff)
    ours = read_nifti(p)
    np.testing.assert_allclose(ours.affine, aff, atol=1e-4)  # nibabel stores float32
    np.testing.assert_array_equal(ours.array, arr)
    # SimpleITK reads the same NIfTI file and converts RAS->LPS itself: an independent reader.
    img = sitk.ReadImage(str(p))
    for idx in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        np.testing.assert_allclose(
            img.TransformIndexToPhysicalPoint([int(i) for i in idx]), ours.index_to_lps(idx)[0], atol=1e-3
        )
        assert img[idx] == ours.array[idx]
    # nibabel's own RAS affine, flipped: the x and y signs change, z does not.
    ras = nib.load(str(p)).affine
    np.testing.assert_allclose(ras[:2], -ours.affine[:2], atol=1e-6)
    np.testing.assert_allclose(ras[2], ours.affine[2], atol=1e-6)


def test_nrrd_round_trip_through_simpleitk(tmp_path):
    aff = oblique_affine(spacing=(1.1, 0.6, 2.2), angles_deg=(-12.0, 5.0, 33.0))
    arr = np.arange(4 * 6 * 3, dtype=np.int16).reshape(4, 6, 3)
    vol = Volume(arr, aff)
    p = tmp_path / "x.nrrd"
    sitk.WriteImage(vol.to_sitk(), str(p))
    back = read_itk(p)
    np.testing.assert_allclose(back.affine, aff, atol=1e-6)
    np.testing.assert_array_equal(back.array, arr)
    # the NIfTI written from the same Volume places voxels at the same LPS points as the NRRD
    q = write_nifti(tmp_path / "x.nii.gz", arr, aff)
    nif = sitk.ReadImage(str(q))
    for idx in [(0, 0, 0), (3, 5, 2)]:
        np.testing.assert_allclose(
            nif.TransformIndexToPhysicalPoint(idx),
            sitk.ReadImage(str(p)).TransformIndexToPhysicalPoint(idx),
            atol=1e-3,
        )


# --------------------------------------------------------------------------- which grids are sheared
def test_an_oblique_anisotropic_grid_is_not_sheared():
    spacing = (0.7, 1.1, 3.0)
    aff = oblique_affine(spacing)
    v = Volume(np.zeros((3, 4, 5)), aff)
    assert not v.sheared
    assert v.shear_deg == 0.0
    k = v.slice_axis
    assert v.slice_separation_mm == pytest.approx(spacing[k], rel=1e-12)
    col = aff[:3, k] / np.linalg.norm(aff[:3, k])
    np.testing.assert_allclose(v.slice_normal, col, atol=1e-12)


def test_a_grid_off_orthogonal_by_header_rounding_is_not_sheared():
    """DICOM writes direction cosines to about six digits: 2e-4 rad off is under the 1e-3 tolerance."""
    aff = np.diag([0.8, 0.8, 2.5, 1.0])
    aff[:3, 2] = 2.5 * np.array([0.0, np.sin(2e-4), np.cos(2e-4)])
    v = Volume(np.zeros((3, 4, 5)), aff)
    assert not v.sheared
    assert v.shear_deg == 0.0


def test_slices_stepping_against_the_plane_normal_give_the_normal_along_the_slice_axis():
    """A tilted grid with its slices written head to feet: the normal points the way the slice index grows."""
    t = np.radians(30.0)
    v = Volume(np.zeros((3, 4, 5)), tilted_affine(step=-1.5))
    assert v.sheared
    np.testing.assert_allclose(v.slice_normal, [0.0, -np.sin(t), -np.cos(t)], atol=1e-12)
    assert v.slice_separation_mm == pytest.approx(1.5 * np.cos(t), rel=1e-12)
    assert v.shear_deg == pytest.approx(30.0, abs=1e-9)


def test_the_slice_axis_of_a_sheared_grid_is_the_sheared_axis_even_when_another_is_nearer_to_s():
    """Coronal planes (rows along x, columns leaning 20 degrees off -z), slices stepping 1.5 mm along y."""
    t = np.radians(20.0)
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2] = [0.8, 0, 0], [0, 0.8 * np.sin(t), -0.8 * np.cos(t)], [0, 1.5, 0]
    v = Volume(np.zeros((3, 4, 5)), aff)
    assert v.sheared
    assert v.slice_axis == 2  # column 1 is the one nearest to S
    assert v.slice_separation_mm == pytest.approx(1.5 * np.cos(t), rel=1e-12)
    assert v.shear_deg == pytest.approx(20.0, abs=1e-9)
