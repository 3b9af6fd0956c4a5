"""Lesion instances from per-lesion segments (measure/lesion_instances.py).

DESIGN.md: one lesion per segment where the input gives one segment per lesion. A lesion drawn
with a gap (a slice left out between two parts) is one lesion of its segment; only segments that
share voxels with another one and hold several parts (two masks of every tumour, as
TotalSegmentator's liver_tumor and liver_lesions) are split into their parts. A split of every
multi-part segment made the gapped lesion two lesions, in analyze and compare-seg alike.

Phantom: boxes on an oblique anisotropic grid; each lesion's voxel count is its boxes', computed here.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import analyze_json, compare_seg_json, oblique_affine

SHAPE = (40, 36, 20)
AFFINE_LPS = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -4.0, 12.0), origin=(-30.0, 20.0, 200.0))
AFFINE_RAS = np.diag([-1.0, -1.0, 1.0, 1.0]) @ AFFINE_LPS
VOXEL_ML = abs(np.linalg.det(AFFINE_LPS[:3, :3])) / 1000.0


def _box(mask: np.ndarray, i, j, k) -> int:
    mask[i[0] : i[1], j[0] : j[1], k[0] : k[1]] = 1
    return (i[1] - i[0]) * (j[1] - j[0]) * (k[1] - k[0])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("gap")
    nib.save(nib.Nifti1Image(np.full(SHAPE, 50, np.int16), AFFINE_RAS), d / "ct.nii.gz")
    liver = np.zeros(SHAPE, np.uint8)
    n_liver = _box(liver, (2, 38), (2, 34), (1, 19))
    gapped = np.zeros(SHAPE, np.uint8)  # slices 4-6 and 8-10: slice 7 left out
    n_gapped = _box(gapped, (5, 12), (5, 12), (4, 7)) + _box(gapped, (5, 12), (5, 12), (8, 11))
    other = np.zeros(SHAPE, np.uint8)
    n_other = _box(other, (22, 30), (20, 28), (6, 12))
    for name, arr in (("liver", liver), ("les1", gapped), ("les2", other)):
        nib.save(nib.Nifti1Image(arr, AFFINE_RAS), d / f"{name}.nii.gz")
    return d, n_liver, n_gapped, n_other


def _segs(d) -> list[str]:
    return [
        "--seg",
        f"liver={d / 'liver.nii.gz'}",
        "--seg",
        f"lesion={d / 'les1.nii.gz'}",
        "--seg",
        f"lesion={d / 'les2.nii.gz'}",
    ]


def test_a_lesion_drawn_with_a_gap_is_one_lesion(study):
    d, n_liver, n_gapped, n_other = study
    report = analyze_json("--image", str(d / "ct.nii.gz"), *_segs(d))
    assert report["method"]["lesion_instances"] == "segments"
    volumes = sorted(round(les["volume_ml"], 4) for les in report["lesions"])
    assert volumes == sorted([round(n_gapped * VOXEL_ML, 4), round(n_other * VOXEL_ML, 4)])
    assert report["liver"]["volume_ml"] == pytest.approx(n_liver * VOXEL_ML, abs=1e-4)
    assert not any("separate parts" in w for w in report["warnings"])


def test_compare_seg_counts_the_gapped_lesion_once(study):
    d, *_ = study
    masks = _segs(d)[1::2]  # ROLE=PATH of the liver and the two lesions, for A and B alike
    args = [a for side in ("--seg-a", "--seg-b") for m in masks for a in (side, m)]
    det = compare_seg_json("--image", str(d / "ct.nii.gz"), *args)["detection"]
    assert (det["true_positives"], det["false_positives"], det["false_negatives"]) == (2, 0, 0)
