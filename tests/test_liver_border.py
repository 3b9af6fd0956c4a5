"""A liver cut off by the field of view is said so in the warnings (DESIGN.md: flagged, never silent).

A scan that stops below the dome leaves liver, and perhaps lesions, out of the liver volume, the involvement,
the FLR and the debulking plan; the report had only ``liver.touches_image_border: true``, no warning, beside
"Mahuron type 1" and "Cloyd resectable: yes". Phantom: a 12 x 10 x 8 voxel box liver with a lesion, two
voxels clear of every face of a 16 x 14 x 12 grid (oblique affine); the same study cropped at k = 8 (the
liver's last slice, k = 9, cut off) reaches the last k index of the 9-slice image, k = 8.
"""

from __future__ import annotations

import numpy as np
from cli_studies import run_analyze
from conftest import oblique_affine


def _study() -> tuple[np.ndarray, np.ndarray]:
    liver = np.zeros((16, 14, 12), bool)
    liver[2:14, 2:12, 2:10] = True
    lesion = np.zeros_like(liver)
    lesion[5:8, 5:8, 4:6] = True
    return liver, lesion


AFFINE = oblique_affine(spacing=(1.5, 1.6, 3.0), angles_deg=(8.0, -5.0, 20.0), origin=(-20.0, 10.0, 50.0))


def test_a_liver_inside_the_image_gets_no_border_warning(tmp_path):
    liver, lesion = _study()
    rep = run_analyze(tmp_path, AFFINE, liver, lesion)
    assert rep["liver"]["touches_image_border"] is False
    assert not any("edge of the image" in w for w in rep["warnings"])


def test_a_liver_cut_off_by_the_field_of_view_is_warned_of(tmp_path):
    liver, lesion = _study()
    rep = run_analyze(tmp_path, AFFINE, liver[:, :, :9], lesion[:, :, :9])
    assert rep["liver"]["touches_image_border"] is True
    hits = [w for w in rep["warnings"] if "edge of the image" in w]
    assert len(hits) == 1
    assert "(voxel index k = 8)" in hits[0]
    assert "may cover only the imaged part" in hits[0]
