"""Lesions whose union lies on one line of voxels (point-like marks along one image axis).

cc3d 4.1 raised "maximum length exception" labelling a boolean mask one voxel wide on two axes,
which reached the user as a traceback. Truth: scipy.ndimage.label's count with the same
connectivity, and volumes = voxel count x |det(affine)|.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import oblique_affine
from phantoms import write_nifti
from scipy import ndimage

from netlm_imaging.api import analyze
from netlm_imaging.measure.lesions import label_instances_cropped


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("connectivity", [6, 26])
def test_separate_voxels_on_one_line_are_separate_lesions(axis, connectivity):
    mask = np.zeros((12, 11, 10), bool)
    idx = [5, 5, 5]
    for k in (1, 3, 4, 7):  # 3 and 4 touch: three components
        idx[axis] = k
        mask[tuple(idx)] = True
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    _, expected = ndimage.label(mask, structure=structure)
    box, labels, n = label_instances_cropped(mask, connectivity)
    assert n == expected == 3
    assert box is not None
    assert np.count_nonzero(labels) == 4


def test_analyze_point_like_lesions_along_a_column(tmp_path):
    aff = oblique_affine(spacing=(1.2, 1.1, 2.5))
    shape = (30, 28, 16)
    write_nifti(tmp_path / "ct.nii.gz", np.full(shape, 40, np.int16), aff)
    lab = np.zeros(shape, np.uint8)
    lab[4:26, 4:24, 2:14] = 1
    for k in (3, 6, 9, 12):  # four one-voxel lesions in one column
        lab[15, 12, k] = 2
    write_nifti(tmp_path / "seg.nii.gz", lab, aff)
    rep = analyze(image=tmp_path / "ct.nii.gz", segs=[tmp_path / "seg.nii.gz"])
    assert rep.tumor["lesion_count"] == 4
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(4 * 1.2 * 1.1 * 2.5 / 1000)
