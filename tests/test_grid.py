"""Grid reconciliation (placement.py): the tolerance boundary and every rejecting branch.

``reconcile_layers`` uses a mask as is when its grid matches the image within
the named tolerances of ``Volume.same_grid`` and resamples it by physical
position otherwise. The expected voxel sets are the masks themselves: the
offsets used here are far below half a voxel, so nearest-neighbour sampling
must return the same voxels.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine

from netlm_imaging.errors import GeometryError
from netlm_imaging.placement import reconcile_layers
from netlm_imaging.segmentation import MaskLayer
from netlm_imaging.volume import ORIGIN_TOLERANCE_MM, SPACING_TOLERANCE_MM, Volume

AFF = oblique_affine(spacing=(0.8, 0.9, 2.5), angles_deg=(10.0, -7.0, 20.0))
SHAPE = (20, 18, 8)


def _mask() -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[4:15, 3:12, 2:6] = True
    return m


def _shifted(shift_mm: float) -> np.ndarray:
    a = AFF.copy()
    a[:3, 3] += shift_mm * np.array([1.0, -1.0, 1.0]) / np.sqrt(3.0)  # the largest component is shift / sqrt(3)
    return a


def _image(uid: str | None = None) -> Volume:
    return Volume(np.zeros(SHAPE, np.float32), AFF, uid, source="img.nii.gz")


def test_origin_offset_within_tolerance_is_used_as_is():
    shift = 0.9 * ORIGIN_TOLERANCE_MM * np.sqrt(3.0)  # each component 0.9 x tolerance
    layer = MaskLayer("liver", Volume(_mask(), _shifted(shift), source="liver.nii.gz"), source="liver.nii.gz")
    out = reconcile_layers(_image(), [layer])
    assert out.resampled is False
    assert out.warnings == []
    np.testing.assert_array_equal(out.layers[0].mask.array, _mask())
    np.testing.assert_array_equal(out.layers[0].mask.affine, AFF)  # the image grid, not the mask's


def test_origin_offset_beyond_tolerance_is_resampled_and_said():
    shift = 3.0 * ORIGIN_TOLERANCE_MM * np.sqrt(3.0)  # 0.03 mm per axis: beyond tolerance, << half a voxel
    layer = MaskLayer("liver", Volume(_mask(), _shifted(shift), source="liver.nii.gz"), source="liver.nii.gz")
    out = reconcile_layers(_image(), [layer])
    assert out.resampled is True
    assert len(out.warnings) == 1
    assert "liver.nii.gz" in out.warnings[0]
    assert "resampled onto the image grid by physical coordinates" in out.warnings[0]
    np.testing.assert_array_equal(out.layers[0].mask.array, _mask())


def test_spacing_difference_beyond_tolerance_is_resampled():
    a = AFF.copy()
    a[:3, 0] *= (0.8 + 3 * SPACING_TOLERANCE_MM) / 0.8
    layer = MaskLayer("lesion", Volume(_mask(), a, source="les.nrrd"), source="les.nrrd")
    out = reconcile_layers(_image(), [layer])
    assert out.resampled is True
    # the last voxel centre along i moves by 19 x 0.003 mm = 0.057 mm: the same voxels
    np.testing.assert_array_equal(out.layers[0].mask.array, _mask())


def test_other_frame_of_reference_is_refused():
    layer = MaskLayer("liver", Volume(_mask(), _shifted(1.0), "1.2.3.9", source="seg.dcm"), source="seg.dcm")
    with pytest.raises(GeometryError, match=r"seg\.dcm: mask FrameOfReferenceUID differs.*Pass the image it was drawn"):
        reconcile_layers(_image("1.2.3.4"), [layer])


def test_mask_entirely_outside_the_image_is_refused():
    far = AFF.copy()
    far[:3, 3] += [500.0, 0.0, 0.0]
    layer = MaskLayer("lesion", Volume(_mask(), far, source="les.nii.gz"), source="les.nii.gz")
    with pytest.raises(GeometryError, match=r"les\.nii\.gz: the lesion mask lies entirely outside the image.*LPS/RAS"):
        reconcile_layers(_image(), [layer])


def test_mask_without_geometry_of_the_same_shape_is_assumed_on_the_image_grid():
    nogeo = Volume(_mask(), np.diag([1.0, 1.0, 1.0, 1.0]), source="seg.nii", meta={"geometry_known": False})
    out = reconcile_layers(_image(), [MaskLayer("liver", nogeo, source="seg.nii")])
    assert out.resampled is False
    assert any("no orientation in its header" in w and "seg.nii" in w for w in out.warnings)
    np.testing.assert_array_equal(out.layers[0].mask.affine, AFF)
    np.testing.assert_array_equal(out.layers[0].mask.array, _mask())


def _crop_affine_at(lo) -> np.ndarray:
    a = AFF.copy()
    a[:3, 3] = AFF[:3, :3] @ np.asarray(lo, dtype=float) + AFF[:3, 3]  # the voxel lo of the image, computed here
    return a


def test_a_crop_of_the_image_grid_is_placed_voxel_for_voxel_not_resampled():
    """Slicer writes a .seg.nrrd cropped to its segments' extent: a grid whose first voxel is the image's voxel
    (4, 3, 2), same spacing and direction. Its voxels are copied into that box (truth: the mask itself), and the
    report says nothing was resampled; the same crop moved by half a voxel is resampled, as before."""
    full = _mask()
    crop = full[4:15, 3:12, 2:6]
    assert crop.all()
    mask = Volume(crop, _crop_affine_at((4, 3, 2)), source="Segmentation.seg.nrrd")
    assert mask.box_in(_image()) == (slice(4, 15), slice(3, 12), slice(2, 6))
    rec = reconcile_layers(_image(), [MaskLayer("liver", mask)])
    np.testing.assert_array_equal(rec.layers[0].mask.array, full)
    assert rec.resampled is False
    assert rec.warnings == []
    assert any("index offset [4, 3, 2]" in n and "nothing resampled" in n for n in rec.notes)
    half = _crop_affine_at((4.5, 3, 2))
    moved = reconcile_layers(_image(), [MaskLayer("liver", Volume(crop, half, source="moved.nrrd"))])
    assert moved.resampled is True
    assert moved.notes == []
    # a crop reaching past the image, or on another spacing, is not a box of it
    assert Volume(crop, _crop_affine_at((12, 3, 2))).box_in(_image()) is None
    finer = _crop_affine_at((4, 3, 2))
    finer[:3, :3] *= 0.5
    assert Volume(crop, finer).box_in(_image()) is None
