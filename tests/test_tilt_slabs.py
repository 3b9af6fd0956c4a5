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
from pydicom.dataset import Dataset

from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.labels import parse_label_spec
from netlm_imaging.io.rtstruct import read_rtstruct
from tests.conftest import tilted_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import Contour, RoiSpec, write_rtstruct

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
        ds = pydicom.dcmread(rt)
        ref_series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence
        ref_series[0].SeriesInstanceUID = thin.meta["series_instance_uid"]
        del ref_series[0].ContourImageSequence
        for rc in ds.ROIContourSequence:
            for c in rc.ContourSequence:
                del c.ContourImageSequence
                if declared == "ContourSlabThickness":
                    c.ContourSlabThickness = round(separation, 6)
            if declared == "SourcePixelPlanes":
                planes = Dataset()
                planes.SpacingBetweenSlices = round(separation, 6)
                planes.PixelSpacing = [0.8, 0.8]
                rc.SourcePixelPlanesCharacteristicsSequence = [planes]
        ds.save_as(rt)
    layers = {layer.role: layer.mask.array for layer in read_rtstruct(rt, thin, parse_label_spec(None), role_log=[])}
    centres = np.argwhere(np.ones(THIN_SHAPE, bool))
    lps = thin.index_to_lps(centres)
    for role, rects in (("liver", liver), ("lesion", tumour)):
        truth = _in_slabs(lps, rects, separation).reshape(THIN_SHAPE)
        assert int(truth.sum()) == {"liver": 30 * 25 * 10, "lesion": 7 * 8 * 6}[role]  # two thin slices per plane
        np.testing.assert_array_equal(layers[role], truth, err_msg=role)
