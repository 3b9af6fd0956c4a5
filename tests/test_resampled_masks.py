"""SEG and RTSTRUCT masks on a CT that ``--allow-resample`` made regular (a missing slice, a moved slice).

The structure set / SEG was drawn on the original slices only; the resampled grid has a
slice where the original has none. Before the fix that grid slice stayed empty: a hole
through the liver and a lesion split in two (two instances, a lower volume). The masks
must be resampled as the image is, by nearest neighbour along the normal.

Phantom (analytic, in original slice indices): a liver box over original slices 3..16 and a
lesion cylinder (radius 5 voxels, in-plane) over original slices 7..15, on an oblique
anisotropic grid. Slice 10 is absent and slice 14 lies 1.0 mm (0.4 step) above its place,
(in one of the two series) so that one SEG frame and one contour plane fall between grid slices. On the regular grid the
cylinder covers grid slices 7..15 (9 slices), one 26-connected instance.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from scipy import ndimage

from netlm_imaging.io.dicom_seg import read_dicom_seg
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, SegmentSpec, ellipse_points, write_rtstruct, write_seg

SHAPE = (40, 36, 20)
SPACING = (0.9, 0.8, 2.5)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(4.0, -3.0, 12.0), origin=(-30.0, 12.0, 250.0))
MISSING, MOVED, MOVE_MM = 10, 14, 1.0
KEPT = [k for k in range(SHAPE[2]) if k != MISSING]
LIVER_K, LESION_K = range(3, 17), range(7, 16)
CENTRE, RADIUS = (20.0, 18.0), 5.0


def _disc() -> np.ndarray:
    ii, jj = np.indices(SHAPE[:2])
    return (ii - CENTRE[0]) ** 2 + (jj - CENTRE[1]) ** 2 <= RADIUS**2


def _masks() -> tuple[np.ndarray, np.ndarray]:
    liver = np.zeros(SHAPE, bool)
    liver[4:36, 3:33, LIVER_K.start : LIVER_K.stop] = True
    lesion = np.zeros(SHAPE, bool)
    lesion[:, :, LESION_K.start : LESION_K.stop] = _disc()[:, :, None]
    return liver, lesion


@pytest.fixture(scope="module", params=[0.0, MOVE_MM], ids=["on-grid", "slice-14-moved"])
def ct(request, tmp_path_factory):
    """The CT written without slice 10 (and slice 14 moved along the normal, or not), with its files."""
    move_mm = request.param
    folder = tmp_path_factory.mktemp("gap_ct")
    image = np.random.default_rng(5).normal(50.0, 5.0, SHAPE).round()
    paths = write_image_series(folder, image, AFFINE, seed=19, slice_indices=KEPT)
    normal = AFFINE[:3, 2] / np.linalg.norm(AFFINE[:3, 2])
    moved = paths[KEPT.index(MOVED)]
    ds = pydicom.dcmread(moved)
    ds.ImagePositionPatient = [float(x) for x in np.asarray(ds.ImagePositionPatient, float) + move_mm * normal]
    ds.save_as(moved)
    return folder, paths, move_mm


def _check(layers, ref):
    by_role = {layer.role: layer.mask.array for layer in layers}
    liver_truth, lesion_truth = _masks()
    assert ref.meta["resampled"] is True
    assert ref.shape == SHAPE
    np.testing.assert_allclose(ref.affine, AFFINE, atol=1e-4)  # the grid is the regular original one
    lesion = by_role["lesion"]
    _, n_instances = ndimage.label(lesion, structure=np.ones((3, 3, 3)))
    assert n_instances == 1  # the missing slice does not split the lesion
    assert int(lesion.sum()) == len(LESION_K) * int(_disc().sum())
    np.testing.assert_array_equal(lesion, lesion_truth)
    np.testing.assert_array_equal(by_role["liver"], liver_truth)
    assert any("nearest original slice" in w for layer in layers for w in layer.mask.meta["warnings"])


def test_seg_on_a_resampled_series_fills_the_missing_slice(ct, tmp_path):
    folder, paths, _ = ct
    liver, lesion = _masks()
    seg = write_seg(
        tmp_path / "seg.dcm",
        paths,  # frames only for the original slices, at their (moved) positions
        [
            SegmentSpec("Liver", liver[:, :, KEPT]),
            SegmentSpec("Tumour", lesion[:, :, KEPT], codes.SCT.Neoplasm, codes.SCT.MorphologicallyAbnormalStructure),
        ],
    )
    ref = read_dicom_series(folder, nonuniform="resample")
    _check(read_dicom_seg(seg, ref, parse_label_spec(None)), ref)


def test_rtstruct_on_a_resampled_series_fills_the_missing_slice(ct, tmp_path):
    folder, paths, move_mm = ct
    u, v = (AFFINE[:3, n] / np.linalg.norm(AFFINE[:3, n]) for n in range(2))
    normal = AFFINE[:3, 2] / np.linalg.norm(AFFINE[:3, 2])

    def plane(k: int) -> np.ndarray:  # the contour plane of original slice k, where its image really is
        return (AFFINE @ [0.0, 0.0, k, 1.0])[:3] + (move_mm * normal if k == MOVED else 0.0)

    def box(k: int) -> Contour:  # the liver box's outline through the voxel edges (centres strictly inside)
        corners = [(3.5, 2.5), (35.5, 2.5), (35.5, 32.5), (3.5, 32.5)]
        return Contour(np.array([plane(k) + i * SPACING[0] * u + j * SPACING[1] * v for i, j in corners]))

    def disc(k: int) -> Contour:  # radius 5.05 voxels: exactly the centres within 5 (the next lattice distance is 5.10)
        centre = plane(k) + CENTRE[0] * SPACING[0] * u + CENTRE[1] * SPACING[1] * v
        return Contour(ellipse_points(centre, u, v, 5.05 * SPACING[0], 5.05 * SPACING[1], n=720))

    rt = write_rtstruct(
        tmp_path / "rt.dcm",
        paths,
        [
            RoiSpec("Liver", [box(k) for k in LIVER_K if k != MISSING]),
            RoiSpec("Tumour", [disc(k) for k in LESION_K if k != MISSING], interpreted_type="GTV"),
        ],
    )
    ref = read_dicom_series(folder, nonuniform="resample")
    _check(read_rtstruct(rt, ref, parse_label_spec(None)), ref)
