"""compare-seg with masks that are not on the reference grid: burden across files, masks off the image.

Truths are computed here from the construction: integer-voxel shifts of oblique, anisotropic grids,
so every voxel centre of one file is a voxel centre of the other (no interpolation in the truth).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from phantoms_verify import grid_affine, write_nifti

from netlm_imaging.cli import main
from netlm_imaging.verify.segcompare import compare_segmentations, outside_fraction
from netlm_imaging.volume import Volume

SHAPE = (30, 26, 16)
AFF = grid_affine(SHAPE, (1.2, 0.9, 2.5), (6.0, -4.0, 18.0), centre=(0.0, 10.0, 50.0))


def _shifted(affine: np.ndarray, voxels: tuple[int, int, int]) -> np.ndarray:
    """The affine of a grid whose voxel (0, 0, 0) is voxel ``voxels`` of ``affine``."""
    out = affine.copy()
    out[:3, 3] = affine[:3, :3] @ np.asarray(voxels, dtype=float) + affine[:3, 3]
    return out


def _box(lo, hi):
    m = np.zeros(SHAPE, bool)
    m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return m


def test_burden_of_a_lesion_file_on_another_grid_of_the_same_shape():
    """Liver and lesion masks from two files of one shape but different origins: burden by position."""
    liver = _box((4, 4, 2), (26, 22, 14))
    lesion = _box((0, 4, 2), (4, 22, 14))  # in its own file, whose grid starts 10 voxels further along i
    les_aff = _shifted(AFF, (10, 0, 0))
    # truth on the liver grid: the lesion occupies i 10..13, inside the liver box (index by index it
    # would lie beside the liver, at i 0..3)
    lesion_on_liver = np.zeros(SHAPE, bool)
    lesion_on_liver[10:14, 4:22, 2:14] = True
    truth = 100.0 * lesion_on_liver.sum() / (liver | lesion_on_liver).sum()
    index_by_index = 100.0 * lesion.sum() / (liver | lesion).sum()
    assert abs(truth - index_by_index) > 2.0  # the wrong pairing would be seen
    masks = {"liver": Volume(liver, AFF), "lesion": Volume(lesion, les_aff)}
    res = compare_segmentations(masks, masks, reference_grid=Volume(np.zeros(SHAPE, np.float32), AFF))
    assert res.burden_a_percent == pytest.approx(truth, abs=1e-9)
    assert res.burden_b_percent == pytest.approx(truth, abs=1e-9)


def test_outside_fraction_of_a_shifted_mask():
    m = _box((20, 4, 2), (30, 10, 8))  # i 20..29 on a grid shifted by 25 voxels: 5 of 10 columns fall off
    grid = Volume(np.zeros(SHAPE, np.float32), AFF)
    assert outside_fraction(Volume(m, _shifted(AFF, (5, 0, 0))), grid) == pytest.approx(0.5)
    assert outside_fraction(Volume(m, AFF), grid) == 0.0
    assert outside_fraction(Volume(m, _shifted(AFF, (40, 0, 0))), grid) == 1.0


def test_segmentation_off_the_image_is_refused_and_partly_off_is_warned(tmp_path, capsys):
    img = np.random.default_rng(3).normal(50, 5, SHAPE).astype(np.float32)
    a = np.zeros(SHAPE, np.uint8)
    a[4:26, 4:22, 2:14] = 1
    write_nifti(tmp_path / "ct.nii.gz", img, AFF)
    write_nifti(tmp_path / "a.nii.gz", a, AFF)
    # B: the same liver, stored on a grid shifted by 16 slices: slices 2..13 of B are 18..29 of the image
    # grid, of which 18..15 do not exist: 12 of its 12 slices lie outside
    write_nifti(tmp_path / "off.nii.gz", a, _shifted(AFF, (0, 0, 16)))
    args = ["compare-seg", "--image", str(tmp_path / "ct.nii.gz"), "--seg-a", str(tmp_path / "a.nii.gz")]
    assert main([*args, "--seg-b", str(tmp_path / "off.nii.gz")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "off.nii.gz" in err[0]
    assert "none of its voxels lies inside the reference grid" in err[0]
    assert "Traceback" not in err[0]
    # B shifted by 6 slices: its slices 2..13 are 8..19 of the image grid; 16..19 (4 of 12) fall off
    write_nifti(tmp_path / "part.nii.gz", a, _shifted(AFF, (0, 0, 6)))
    assert main([*args, "--seg-b", str(tmp_path / "part.nii.gz"), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any("part.nii.gz" in w and "33.3% of its voxels lie outside" in w for w in out["warnings"])
    liver = out["structures"][0]
    vox_ml = abs(np.linalg.det(AFF[:3, :3])) / 1000.0
    assert liver["volume_b_ml"] == pytest.approx(a.sum() * vox_ml, abs=1e-4)  # the whole mask
    inside_b = np.zeros(SHAPE, bool)
    inside_b[4:26, 4:22, 8:16] = True  # the part of B on the image grid
    overlap = (a.astype(bool) & inside_b).sum()
    assert liver["dice"] == pytest.approx(2 * overlap / (a.sum() + inside_b.sum()), abs=1e-4)


def test_touching_lesions_given_as_segments_are_two_lesions(tmp_path, capsys):
    """Two abutting lesions, one SEG segment each (as analyze counts them): two lesions, not one component.

    Truth by construction: lesion 1 = i 8..13, lesion 2 = i 14..19 (they share a face), same j, k boxes.
    Reader B draws lesion 2 one voxel further along i (IoU 5/7 > 0.5). The same two lesions as A in one
    label map (connected components) are one lesion of 12 columns, whose IoU with each A lesion is
    6/12, not > 0.5: two missed, one false positive, as LiTS counts it.
    """
    from pydicom.sr.codedict import codes

    from tests.dicom_factory import write_image_series
    from tests.seg_factory import SegmentSpec, write_seg

    liver = _box((3, 3, 2), (27, 23, 14))
    l1, l2 = _box((8, 6, 4), (14, 12, 10)), _box((14, 6, 4), (20, 12, 10))
    l2_b = _box((15, 6, 4), (21, 12, 10))
    hu = np.where(l1 | l2, 120.0, np.where(liver, 60.0, -50.0))
    files = write_image_series(tmp_path / "ct", hu, AFF, modality="CT", seed=5)

    def lesion(name, m):
        return SegmentSpec(
            name, m, property_type=codes.SCT.Neoplasm, property_category=codes.SCT.MorphologicallyAbnormalStructure
        )

    write_seg(tmp_path / "a.dcm", files, [SegmentSpec("Liver", liver), lesion("Lesion 1", l1), lesion("Lesion 2", l2)])
    write_seg(
        tmp_path / "b.dcm", files, [SegmentSpec("Liver", liver), lesion("Lesion 1", l1), lesion("Lesion 2", l2_b)]
    )
    lab = liver.astype(np.uint8)
    lab[l1 | l2] = 2  # the same lesions as A, in one label map: one 26-connected component
    write_nifti(tmp_path / "b_map.nii.gz", lab, AFF)
    base = ["compare-seg", "--image", str(tmp_path / "ct"), "--seg-a", str(tmp_path / "a.dcm"), "--json", "-"]
    assert main([*base, "--seg-b", str(tmp_path / "b.dcm")]) == 0
    det = json.loads(capsys.readouterr().out)["detection"]
    assert (det["true_positives"], det["false_negatives"], det["false_positives"]) == (2, 0, 0)
    ious = sorted(m["iou"] for m in det["matches"])
    assert ious == pytest.approx([5 / 7, 1.0], abs=1e-4)
    assert main([*base, "--seg-b", str(tmp_path / "b_map.nii.gz")]) == 0
    det = json.loads(capsys.readouterr().out)["detection"]
    assert (det["true_positives"], det["false_negatives"], det["false_positives"]) == (0, 2, 1)


def test_a_reader_who_found_no_lesion_is_compared_as_zero_lesions(tmp_path, capsys):
    """B: a LiTS label map (lesion = 2) without any 2: every A lesion missed, lesion Dice 0, burden 0 %.

    With ``--labels-b liver=1`` B has no lesion role at all (a liver-only segmentation): no lesion
    comparison, as analyze does not read such a segmentation as tumour-free.
    """
    img = np.zeros(SHAPE, np.float32)
    a = np.zeros(SHAPE, np.uint8)
    a[4:26, 4:22, 2:14] = 1
    b = a.copy()
    a[8:14, 6:12, 4:10] = 2
    a[18:22, 14:18, 8:11] = 2  # two separate lesions
    for name, arr in (("ct", img), ("a", a), ("b", b)):
        write_nifti(tmp_path / f"{name}.nii.gz", arr, AFF)
    args = ["compare-seg", "--image", str(tmp_path / "ct.nii.gz"), "--seg-a", str(tmp_path / "a.nii.gz")]
    assert main([*args, "--seg-b", str(tmp_path / "b.nii.gz"), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    lesion = next(s for s in out["structures"] if s["structure"] == "lesion")
    vox_ml = abs(np.linalg.det(AFF[:3, :3])) / 1000.0
    assert lesion["volume_a_ml"] == pytest.approx((6 * 6 * 6 + 4 * 4 * 3) * vox_ml, abs=1e-4)
    assert lesion["volume_b_ml"] == 0.0
    assert lesion["dice"] == 0.0
    det = out["detection"]
    assert (det["true_positives"], det["false_negatives"], det["false_positives"]) == (0, 2, 0)
    assert out["burden_b_percent"] == 0.0
    assert any("B: the lesion segmentation holds no lesion" in w for w in out["warnings"])
    assert main([*args, "--seg-b", str(tmp_path / "b.nii.gz"), "--labels-b", "liver=1", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["structure"] for s in out["structures"]] == ["liver"]
    assert out["detection"] is None


def test_an_extrahepatic_lesion_is_no_part_of_the_liver_or_the_burden(tmp_path, capsys):
    """DESIGN.md: total liver = liver UNION intrahepatic lesions (touching the liver + 2 mm); burden likewise.

    A and B agree on the liver, an intrahepatic lesion and a lesion abutting the liver from outside (which
    counts as intrahepatic); A also has a distant lesion (a node, say). Truths from box arithmetic.
    """
    img = np.zeros(SHAPE, np.float32)
    b = np.zeros(SHAPE, np.uint8)
    b[4:20, 4:22, 2:14] = 1  # liver
    b[8:12, 8:12, 4:8] = 2  # inside the liver
    b[20:23, 10:14, 5:9] = 2  # abutting the liver's i = 19 face from outside: intrahepatic
    a = b.copy()
    a[26:29, 20:24, 10:13] = 2  # 6+ voxels away from the liver: extrahepatic
    for name, arr in (("ct", img), ("a", a), ("b", b)):
        write_nifti(tmp_path / f"{name}.nii.gz", arr, AFF)
    files = {k: str(tmp_path / f"{k}.nii.gz") for k in ("ct", "a", "b")}
    args = ["compare-seg", "--image", files["ct"], "--seg-a", files["a"], "--seg-b", files["b"], "--json", "-"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    vox_ml = abs(np.linalg.det(AFF[:3, :3])) / 1000.0
    total = int((b > 0).sum())  # liver + both intrahepatic lesions
    liver = next(s for s in out["structures"] if s["structure"] == "liver")
    assert liver["volume_a_ml"] == pytest.approx(total * vox_ml, abs=1e-4)
    assert liver["volume_b_ml"] == pytest.approx(total * vox_ml, abs=1e-4)
    assert liver["dice"] == 1.0
    intra = 4 * 4 * 4 + 3 * 4 * 4
    assert out["burden_a_percent"] == pytest.approx(100.0 * intra / total, abs=1e-4)
    assert out["burden_b_percent"] == pytest.approx(100.0 * intra / total, abs=1e-4)
    assert any(w.startswith("A: 36 lesion voxel(s) lie in lesions outside the liver") for w in out["warnings"])
    det = out["detection"]
    assert (det["true_positives"], det["false_negatives"], det["false_positives"]) == (2, 1, 0)


def test_real_liver_against_simpleitk_overlap_and_hausdorff(tmp_path, capsys, shared):
    """TotalSegmentator's example liver (MANIFEST: label 5, 1043.12 mL) vs a dilated, moved copy on a rotated grid.

    Peer: SimpleITK resamples B onto A's grid (nearest neighbour, as compare-seg) and measures Dice
    (LabelOverlapMeasuresImageFilter) and the Hausdorff distance (HausdorffDistanceImageFilter).
    """
    import SimpleITK as sitk

    ref = shared("totalseg_example", "tests", "reference_files")
    seg = sitk.ReadImage(str(ref / "example_seg.nii.gz"))
    liver = sitk.Cast(seg == 5, sitk.sitkUInt8)
    moved = sitk.BinaryDilate(liver, [1, 1, 1])
    tx = sitk.Euler3DTransform()
    tx.SetCenter(liver.TransformContinuousIndexToPhysicalPoint([61.0, 50.0, 15.0]))
    tx.SetRotation(0.05, -0.03, 0.08)
    tx.SetTranslation((2.0, -3.0, 1.5))
    grid = sitk.Image([170, 150, 50], sitk.sitkUInt8)
    grid.SetSpacing((2.5, 2.5, 2.5))
    direction = np.array(liver.GetDirection()).reshape(3, 3) @ np.array(
        sitk.VersorTransform((0, 0, 1), 0.03).GetMatrix()
    ).reshape(3, 3)
    grid.SetDirection(direction.ravel().tolist())
    grid.SetOrigin(
        (np.array(liver.GetOrigin()) - np.array(liver.GetDirection()).reshape(3, 3) @ [15.0, 15.0, 15.0]).tolist()
    )
    b = sitk.Resample(moved, grid, tx, sitk.sitkNearestNeighbor, 0)
    sitk.WriteImage(sitk.Cast(b * 5, sitk.sitkUInt8), str(tmp_path / "b.nii.gz"))
    b_on_a = sitk.Resample(b, liver, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(liver, b_on_a)
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(liver, b_on_a)
    args = ["compare-seg", "--image", str(ref / "example_ct_sm.nii.gz"), "--seg-a", str(ref / "example_seg.nii.gz")]
    assert main([*args, "--seg-b", str(tmp_path / "b.nii.gz"), "--labels", "liver=5", "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)["structures"][0]
    assert s["structure"] == "liver"
    assert s["volume_a_ml"] == pytest.approx(1043.12, abs=0.01)
    assert s["volume_b_ml"] == pytest.approx(float(sitk.GetArrayViewFromImage(b).sum()) * 2.5**3 / 1000.0, abs=1e-3)
    assert s["dice"] == pytest.approx(overlap.GetDiceCoefficient(), abs=1e-4)
    assert s["hd_mm"] == pytest.approx(hausdorff.GetHausdorffDistance(), abs=1e-3)


def test_compare_seg_takes_the_image_series_of_a_folder_with_two(tmp_path, capsys):
    from tests.dicom_factory import write_image_series

    a = np.zeros(SHAPE, np.uint8)
    a[4:26, 4:22, 2:14] = 1
    write_image_series(tmp_path / "ct" / "s1", np.zeros(SHAPE), AFF, series_uid="1.2.826.0.1.3680043.8.498.71", seed=1)
    write_image_series(tmp_path / "ct" / "s2", np.zeros(SHAPE), AFF, series_uid="1.2.826.0.1.3680043.8.498.72", seed=2)
    write_nifti(tmp_path / "a.nii.gz", a, AFF)
    args = ["compare-seg", "--image", str(tmp_path / "ct"), "--seg-a", str(tmp_path / "a.nii.gz")]
    args += ["--seg-b", str(tmp_path / "a.nii.gz"), "--json", "-"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "--image-series" in err
    assert "netlm analyze" not in err  # compare-seg accepts the option itself
    assert main([*args, "--image-series", "1.2.826.0.1.3680043.8.498.72"]) == 0
    liver = json.loads(capsys.readouterr().out)["structures"][0]
    assert liver["volume_a_ml"] == pytest.approx(a.sum() * abs(np.linalg.det(AFF[:3, :3])) / 1000.0, abs=1e-4)


def _one_liver_file_twice(tmp_path):
    """compare-seg arguments comparing one liver label map (label 1) with itself."""
    a = np.zeros(SHAPE, np.uint8)
    a[4:26, 4:22, 2:14] = 1
    write_nifti(tmp_path / "ct.nii.gz", np.zeros(SHAPE, np.float32), AFF)
    write_nifti(tmp_path / "a.nii.gz", a, AFF)
    seg = str(tmp_path / "a.nii.gz")
    return ["compare-seg", "--image", str(tmp_path / "ct.nii.gz"), "--seg-a", seg, "--seg-b", seg]


def test_a_bad_labels_b_is_named_as_labels_b(tmp_path, capsys):
    args = _one_liver_file_twice(tmp_path)
    assert main([*args, "--labels-b", "garbage"]) == 2
    assert capsys.readouterr().err.startswith("netlm: error: --labels-b: item 'garbage'")


def test_labels_b_that_match_nothing_in_b_are_named_as_labels_b(tmp_path, capsys):
    """B's label map read with --labels-b: a label number it does not hold is named --labels-b, not --labels."""
    args = _one_liver_file_twice(tmp_path)
    assert main([*args, "--labels-b", "liver=5"]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "none of the labels given in --labels-b ([5])" in line


def _intrahepatic_truth(liver: np.ndarray, lesions: list[np.ndarray], affine: np.ndarray) -> list[bool]:
    """DESIGN.md's rule by brute force: some lesion voxel centre within 2 mm (patient space, + 1e-6
    relative) of a liver voxel centre, or face to face with one, or overlapping it."""
    from scipy.spatial.distance import cdist

    liver_idx = np.argwhere(liver)
    liver_pts = liver_idx @ affine[:3, :3].T + affine[:3, 3]
    liver_set = {tuple(v) for v in liver_idx}
    out = []
    for les in lesions:
        idx = np.argwhere(les)
        pts = idx @ affine[:3, :3].T + affine[:3, 3]
        near = bool((cdist(pts, liver_pts) <= 2.0 * (1 + 1e-6)).any())
        face = any(
            tuple(v + d) in liver_set for v in idx for d in np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
        )
        out.append(near or face)
    return out


@pytest.mark.parametrize("sheared", [False, True])
def test_compare_seg_and_analyze_apply_one_intrahepatic_rule_at_the_margin(sheared):
    """Lesions 1.5, 1.8, 2.16, 2.7 mm from the liver and one face to face across a 2.5 mm slice step, on a
    rotated anisotropic grid (and a gantry-tilted one): compare-seg's burden and analyze's lesion
    locations both follow the brute-force rule (one function decides both)."""
    from netlm_imaging.measure.burden import measure_burden
    from netlm_imaging.segmentation import MaskLayer

    aff = grid_affine(SHAPE, (1.2, 0.9, 2.5), (6.0, -4.0, 18.0), centre=(0.0, 10.0, 50.0))
    if sheared:
        aff[:3, 2] += 0.45 * aff[:3, 1] / np.linalg.norm(aff[:3, 1])  # ~10 degrees of gantry tilt
    liver = _box((4, 2, 2), (14, 20, 8))
    lesions = [
        _box((15, 10, 3), (17, 13, 5)),  # one empty i voxel between: 2.4 mm, out
        _box((6, 21, 3), (9, 23, 5)),  # one empty j voxel between: 1.8 mm, in
        _box((9, 22, 6), (12, 24, 8)),  # two empty j voxels: 2.7 mm, out
        _box((6, 6, 8), (9, 9, 10)),  # face to face across the 2.5 mm slice step: in
        _box((14, 20, 3), (16, 22, 5)),  # diagonal to the liver's edge: 1.5 mm, in
        _box((2, 21, 5), (4, 23, 7)),  # one i and two j voxels off its corner: 2.16 mm, out
    ]
    truth = _intrahepatic_truth(liver, lesions, aff)
    assert truth == [False, True, False, True, True, False]  # the brute force agrees with the distances above
    lesion = np.logical_or.reduce(lesions)
    grid = Volume(np.zeros(SHAPE, np.float32), aff)
    res = compare_segmentations(
        {"liver": grid.with_array(liver), "lesion": grid.with_array(lesion)},
        {"liver": grid.with_array(liver), "lesion": grid.with_array(lesion)},
    )
    intra = sum(int(m.sum()) for m, t in zip(lesions, truth) if t)
    assert res.burden_a_percent == pytest.approx(100.0 * intra / (int(liver.sum()) + intra), abs=1e-9)
    burden = measure_burden(
        grid, [MaskLayer("liver", grid.with_array(liver)), MaskLayer("lesion", grid.with_array(lesion))]
    )
    centres = [np.argwhere(m).mean(axis=0) @ aff[:3, :3].T + aff[:3, 3] for m in lesions]
    found = {}
    for les in burden.ctx.lesions:
        n = int(np.argmin([np.linalg.norm(np.asarray(les.centroid_lps_mm) - c) for c in centres]))
        found[n] = les.location == "intrahepatic"
    assert [found.get(n) for n in range(len(lesions))] == truth
