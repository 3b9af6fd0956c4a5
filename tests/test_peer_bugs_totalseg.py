"""PEERS.md, TotalSegmentator: its outputs where its own statistics went wrong.

TotalSegmentator #204 / #488 / #528 / PR #609: ``--statistics`` gives volume 0 (and intensity 0) to
every mask within 3 voxels of the image border unless ``--stats_include_incomplete``; users saw a
non-empty liver, or the Couinaud segments of ``liver_segments_mr``, reported as 0 mL. A liver cut by
the field of view is measured and flagged (``touches_image_border``), never zeroed; so is each
segment. TotalSegmentator casts the image to int16 before its intensity statistics: a float MR
(normalised intensities) must keep its fractional mean. Files are written as TotalSegmentator writes
them: nibabel NIfTI, uint8 labels on the image's RAS affine (``--ml`` label 5 = liver in the ``total``
task; ``liver_segments_mr`` labels 1-8 = Couinaud segments 1-8). Truths are numpy voxel counts times
the voxel volume from the affine's determinant; the grid is oblique and anisotropic.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from netlm_imaging.volume import lps_to_ras
from tests.conftest import analyze_json, oblique_affine

SHAPE = (40, 36, 18)
AFFINE = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(0.0, 4.0, -9.0), origin=(120.0, -80.0, -300.0))
VOXEL_ML = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0


def _save(path, array) -> str:
    nib.save(nib.Nifti1Image(array, lps_to_ras(AFFINE)), str(path))
    return str(path)


def _image(tmp_path, dtype=np.int16, values=None) -> str:
    rng = np.random.default_rng(204)
    arr = values if values is not None else rng.normal(60.0, 8.0, SHAPE).round().astype(dtype)
    return _save(tmp_path / "ct.nii.gz", arr)


def test_a_liver_cut_by_the_field_of_view_is_measured_and_flagged(tmp_path):
    ml = np.zeros(SHAPE, np.uint8)
    ml[6:34, 5:31, 11:18] = 5  # liver up to the last slice (within TotalSegmentator's 3-voxel margin)
    ml[2:6, 20:30, 4:9] = 3  # another organ near the border (left kidney in the total task)
    ml[14:22, 12:20, 14:18] = 0
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[14:22, 12:20, 14:18] = 1  # a tumour at the cut, not in the liver label
    image = _image(tmp_path)
    rep = analyze_json(
        "--image", image, "--seg", f"liver={_save(tmp_path / 'liver.nii.gz', (ml == 5).astype(np.uint8))}",
        "--seg", f"lesion={_save(tmp_path / 'liver_tumor.nii.gz', lesion)}",
    )  # fmt: skip
    n_liver = int(np.count_nonzero((ml == 5) | (lesion == 1)))
    assert rep["liver"]["voxel_count"] == n_liver
    assert rep["liver"]["volume_ml"] == pytest.approx(n_liver * VOXEL_ML, abs=1e-3)
    assert rep["liver"]["touches_image_border"] is True
    (les,) = rep["lesions"]
    assert les["voxel_count"] == 8 * 8 * 4
    assert les["volume_ml"] == pytest.approx(256 * VOXEL_ML, abs=1e-4)
    assert les["touches_image_border"] is True
    img = nib.load(image).get_fdata()
    assert les["mean_intensity"] == pytest.approx(float(img[lesion == 1].mean()), abs=1e-3)
    assert rep["involvement_percent"] == pytest.approx(100.0 * 256 / n_liver, abs=1e-3)


def test_the_total_task_label_map_with_the_liver_at_the_border_by_label_5(tmp_path):
    ml = np.zeros(SHAPE, np.uint8)
    ml[0:30, 5:31, 2:12] = 5  # the liver touches the first column: TotalSegmentator reported 0 mL
    ml[30:38, 8:16, 4:10] = 1  # spleen (label 1 in the total task)
    rep = analyze_json("--image", _image(tmp_path), "--seg", _save(tmp_path / "seg.nii.gz", ml), "--labels", "liver=5")
    assert rep["liver"]["voxel_count"] == int((ml == 5).sum())
    assert rep["liver"]["volume_ml"] == pytest.approx((ml == 5).sum() * VOXEL_ML, abs=1e-3)
    assert rep["liver"]["touches_image_border"] is True


def test_liver_segments_mr_at_the_border_each_have_their_volume(tmp_path):
    """liver_segments_mr labels 1-8: slabs along i, segment 1 on the first column, segment 8 on the last."""
    segs = np.zeros(SHAPE, np.uint8)
    for n in range(1, 9):
        segs[5 * (n - 1) : 5 * n, 6:30, 4:16] = n
    mr = np.random.default_rng(488).normal(310.0, 25.0, SHAPE).astype(np.float32)
    labels = ",".join(f"segment{n}={n}" for n in range(1, 9))
    liver = _save(tmp_path / "liver.nii.gz", (segs > 0).astype(np.uint8))
    rep = analyze_json(
        "--image", _save(tmp_path / "mr.nii.gz", mr), "--seg", f"liver={liver}",
        "--seg", _save(tmp_path / "liver_segments_mr.nii.gz", segs), "--labels", labels,
    )  # fmt: skip
    by_segment = {s["segment"]: s["liver_volume_ml"] for s in rep["segments"]}
    assert by_segment == pytest.approx(dict.fromkeys(range(1, 9), 5 * 24 * 12 * VOXEL_ML), abs=1e-4)
    assert rep["liver"]["touches_image_border"] is True
    # a float MR keeps its fractional mean (TotalSegmentator casts to int16 first)
    assert rep["liver"]["mean_intensity"] == pytest.approx(float(mr[segs > 0].mean()), abs=1e-3)
    assert rep["liver"]["mean_intensity"] != pytest.approx(float(mr.astype(np.int16)[segs > 0].mean()), abs=1e-3)
