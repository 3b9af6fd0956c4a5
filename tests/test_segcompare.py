"""compare-seg: Dice, HD95, detection and burden on constructed pairs with closed-form truths.

Every expected value is computed here independently of netlm_imaging.verify:
Dice and IoU of offset cubes in closed form, the Hausdorff distance as the
shift times the spacing, and HD95 by brute-force pairwise distances between
analytically enumerated cube-face voxels (no erosion, no KD-tree).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from phantoms_verify import grid_affine, rotation
from rules_coverage import covers

from netlm_imaging.errors import GeometryError
from netlm_imaging.verify.segcompare import compare_masks, compare_segmentations, detect_lesions
from netlm_imaging.volume import Volume

SPACING = (0.8, 1.3, 2.5)
ANGLES = (12.0, -8.0, 25.0)
SHAPE = (24, 22, 20)


def _affine():
    return grid_affine(SHAPE, SPACING, ANGLES, centre=(-40.0, 25.0, 300.0))


def _box(shape, lo, size):
    m = np.zeros(shape, dtype=bool)
    m[lo[0] : lo[0] + size[0], lo[1] : lo[1] + size[1], lo[2] : lo[2] + size[2]] = True
    return m


def _face_voxels(lo, n):
    """Indices of the voxels of an n^3 cube's faces, enumerated directly."""
    rng = range(n)
    pts = [
        (lo[0] + i, lo[1] + j, lo[2] + k)
        for i, j, k in itertools.product(rng, rng, rng)
        if min(i, j, k) == 0 or max(i, j, k) == n - 1
    ]
    return np.array(pts, dtype=float)


def _brute_hd95(lo_a, lo_b, n, affine):
    pa = _face_voxels(lo_a, n) @ affine[:3, :3].T + affine[:3, 3]
    pb = _face_voxels(lo_b, n) @ affine[:3, :3].T + affine[:3, 3]
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return float(np.percentile(np.concatenate([d.min(1), d.min(0)]), 95))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_offset_cubes_dice_and_hausdorff(k):
    aff = _affine()
    n = 8
    lo_a, lo_b = (5, 6, 4), (5 + k, 6, 4)
    a, b = _box(SHAPE, lo_a, (n,) * 3), _box(SHAPE, lo_b, (n,) * 3)
    res = compare_masks("lesion", a, b, aff)
    assert res.dice == pytest.approx((n - k) / n, abs=1e-12)
    # the farthest surface voxel is on the exposed face, k voxels along i from the other cube
    assert res.hd_mm == pytest.approx(k * SPACING[0], abs=1e-9)
    assert res.hd95_mm == pytest.approx(_brute_hd95(lo_a, lo_b, n, aff), abs=1e-9)
    assert res.volume_difference_ml == pytest.approx(0.0, abs=1e-12)
    assert res.volume_a_ml == pytest.approx(n**3 * np.prod(SPACING) / 1000.0)


def test_shift_along_thick_axis_uses_physical_spacing():
    aff = _affine()
    a, b = _box(SHAPE, (5, 5, 4), (8, 8, 8)), _box(SHAPE, (5, 5, 6), (8, 8, 8))
    res = compare_masks("liver", a, b, aff)
    assert res.hd_mm == pytest.approx(2 * SPACING[2], abs=1e-9)
    assert res.hd95_mm == pytest.approx(_brute_hd95((5, 5, 4), (5, 5, 6), 8, aff), abs=1e-9)


def test_second_segmentation_on_a_permuted_flipped_grid_is_compared_by_position():
    """B stored with axes permuted and one axis flipped (same voxel centres) gives the same-grid results."""
    aff = _affine()
    a = _box(SHAPE, (5, 6, 4), (8, 8, 8))
    b = _box(SHAPE, (7, 6, 4), (8, 8, 8))
    same = compare_segmentations({"lesion": Volume(a, aff)}, {"lesion": Volume(b, aff)})
    # new array index (p, q, r) = old (i=q, j=n_j-1-r, k=p)
    b2 = np.transpose(b[:, ::-1, :], (2, 0, 1))
    perm = np.zeros((4, 4))
    perm[0, 1] = 1  # i = q
    perm[1, 2] = -1  # j = n_j - 1 - r
    perm[1, 3] = SHAPE[1] - 1
    perm[2, 0] = 1  # k = p
    perm[3, 3] = 1
    aff2 = aff @ perm
    other = compare_segmentations({"lesion": Volume(a, aff)}, {"lesion": Volume(b2, aff2)})
    s1, s2 = same.structure("lesion"), other.structure("lesion")
    assert s2.dice == pytest.approx(6 / 8, abs=1e-12)
    assert s2.dice == pytest.approx(s1.dice, abs=1e-12)
    assert s2.hd95_mm == pytest.approx(s1.hd95_mm, abs=1e-9)
    # its voxels are A's, re-indexed: copied into place as analyze places it, not resampled
    assert other.grid["resampled"] is False
    assert not any("resampled" in w for w in other.warnings)
    assert b2.shape != a.shape  # an index-by-index comparison is impossible here


def test_finer_second_grid_volumes_native_and_dice_near_one():
    """A sphere of radius 10 mm on two grids (B at half the spacing, rotated): volumes from each native grid."""
    r = 10.0
    aff_a = grid_affine((40, 36, 20), (0.9, 1.0, 2.0), (5.0, 0.0, 10.0), (3.0, -2.0, 50.0))
    aff_b = grid_affine((60, 60, 60), (0.5, 0.5, 0.5), (0.0, 20.0, 0.0), (3.0, -2.0, 50.0))

    def sphere(shape, aff):
        idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(float)
        pts = idx @ aff[:3, :3].T + aff[:3, 3]
        return np.linalg.norm(pts - np.array([3.0, -2.0, 50.0]), axis=-1) <= r

    a, b = sphere((40, 36, 20), aff_a), sphere((60, 60, 60), aff_b)
    res = compare_segmentations({"lesion": Volume(a, aff_a)}, {"lesion": Volume(b, aff_b)}).structure("lesion")
    truth_ml = 4 / 3 * np.pi * r**3 / 1000
    assert res.volume_b_ml == pytest.approx(truth_ml, rel=0.02)  # 0.5 mm grid
    assert res.volume_a_ml == pytest.approx(truth_ml, rel=0.06)  # 2 mm slices
    assert res.dice > 0.9
    assert res.hd95_mm <= 2.0  # at most one thick-slice step


def test_lits_detection_counts_and_matched_volume_agreement():
    shape = (60, 60, 30)
    aff = grid_affine(shape, SPACING, ANGLES, centre=(0.0, 0.0, 0.0))
    n = 6
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    # 1: identical -> TP, IoU 1
    ref |= _box(shape, (2, 2, 2), (n, n, n))
    pred |= _box(shape, (2, 2, 2), (n, n, n))
    # 2: prediction one voxel longer along i -> IoU n/(n+1) = 0.857 -> TP, +n^2 voxels
    ref |= _box(shape, (20, 2, 2), (n, n, n))
    pred |= _box(shape, (20, 2, 2), (n + 1, n, n))
    # 3: prediction shifted by 3 voxels -> IoU (n-3)/(n+3) = 1/3 -> FN and FP
    ref |= _box(shape, (2, 20, 2), (n, n, n))
    pred |= _box(shape, (5, 20, 2), (n, n, n))
    # 4: missed entirely -> FN
    ref |= _box(shape, (20, 20, 12), (n, n, n))
    # 5: prediction only -> FP
    pred |= _box(shape, (40, 40, 20), (4, 4, 4))
    # 6: shifted by 1 voxel -> IoU (n-1)/(n+1) = 5/7 > 0.5 -> TP
    ref |= _box(shape, (40, 2, 12), (n, n, n))
    pred |= _box(shape, (41, 2, 12), (n, n, n))
    det = detect_lesions(ref, pred, aff)
    assert (det.true_positives, det.false_positives, det.false_negatives) == (3, 2, 2)
    vox_ml = np.prod(SPACING) / 1000
    by_iou = sorted(det.matches, key=lambda m: m.iou)
    assert [m.iou for m in by_iou] == pytest.approx([5 / 7, n / (n + 1), 1.0])
    grown = by_iou[1]
    assert grown.volume_difference_ml == pytest.approx(n * n * vox_ml)
    assert grown.volume_difference_percent == pytest.approx(100.0 / n)
    assert grown.dice == pytest.approx(2 * n**3 / (n**3 + (n + 1) * n * n))
    assert det.precision == pytest.approx(3 / 5)
    assert det.recall == pytest.approx(3 / 5)
    assert det.to_dict()["iou_threshold"] == 0.5
    # a stricter IoU threshold (5/7 = 0.71 no longer matches) is the one the result reports
    strict = detect_lesions(ref, pred, aff, iou_threshold=0.8)
    assert (strict.true_positives, strict.to_dict()["iou_threshold"]) == (2, 0.8)


def test_burden_difference_and_total_liver_union():
    aff = grid_affine((30, 30, 20), (1.5, 1.5, 3.0), (0.0, 0.0, 30.0), (10.0, 10.0, 10.0))
    liver = _box((30, 30, 20), (2, 2, 2), (20, 20, 10))  # 4000 voxels
    lesion_a = _box((30, 30, 20), (5, 5, 5), (4, 4, 4))  # 64 inside the liver
    lesion_b = _box((30, 30, 20), (5, 5, 5), (5, 4, 4))  # 80 inside
    liver_excl_a = liver & ~lesion_a  # reader A excludes lesions from the liver label
    res = compare_segmentations(
        {"liver": Volume(liver_excl_a, aff), "lesion": Volume(lesion_a, aff)},
        {"liver": Volume(liver, aff), "lesion": Volume(lesion_b, aff)},
    )
    assert res.burden_a_percent == pytest.approx(100 * 64 / 4000)
    assert res.burden_b_percent == pytest.approx(100 * 80 / 4000)
    assert res.burden_difference_percent_points == pytest.approx(100 * 16 / 4000)
    liv = res.structure("liver")
    assert liv.dice == pytest.approx(1.0)  # total liver = liver UNION lesion in both conventions
    assert liv.volume_a_ml == pytest.approx(4000 * 1.5 * 1.5 * 3.0 / 1000)


def test_empty_masks_and_rejections():
    aff = _affine()
    empty = np.zeros(SHAPE, bool)
    res = compare_masks("lesion", empty, empty, aff)
    assert res.dice == 1.0
    assert res.hd95_mm is None
    assert res.volume_difference_percent is None
    with pytest.raises(GeometryError, match="different grids"):
        compare_masks("lesion", empty, np.zeros((3, 3, 3), bool), aff)
    with pytest.raises(ValueError, match="one-to-one"):
        detect_lesions(empty, empty, aff, iou_threshold=0.3)
    with pytest.raises(GeometryError, match="at least one structure"):
        compare_segmentations({}, {"lesion": Volume(empty, aff)})


def test_rotation_helper_is_not_identity():
    # guard: the geometry tests above really use a rotated, anisotropic grid
    assert not np.allclose(rotation(ANGLES), np.eye(3))
    assert len(set(np.round(np.linalg.norm(_affine()[:3, :3], axis=0), 6))) == 3


def test_compare_seg_cli_on_files_with_different_grids(tmp_path, capsys):
    """Reader A on the image grid, reader B on a flipped/permuted copy of it: known Dice, detection and burden."""
    import json

    from phantoms_verify import write_nifti

    from netlm_imaging.cli import main

    shape = (40, 36, 24)
    aff = grid_affine(shape, (1.2, 0.9, 2.5), (6.0, -4.0, 18.0), centre=(0.0, 10.0, 50.0))
    img = np.random.default_rng(5).normal(50, 5, shape).astype(np.float32)
    a = np.zeros(shape, np.uint8)
    a[4:36, 4:32, 2:22] = 1
    b = a.copy()
    a[6:12, 6:12, 4:10] = 2  # lesion 1: same in B (TP)
    b[6:12, 6:12, 4:10] = 2
    a[20:26, 6:12, 4:10] = 2  # lesion 2: B shifted 3 voxels (IoU 1/3: FN + FP)
    b[23:29, 6:12, 4:10] = 2
    a[6:12, 20:26, 12:18] = 2  # lesion 3: missed by B (FN)
    b[28:32, 24:28, 14:18] = 2  # FP in B only
    # B stored with axes permuted and one flipped (same voxel centres)
    b_stored = np.transpose(b[:, ::-1, :], (2, 0, 1))
    perm = np.zeros((4, 4))
    perm[0, 1], perm[1, 2], perm[1, 3], perm[2, 0], perm[3, 3] = 1, -1, shape[1] - 1, 1, 1
    write_nifti(tmp_path / "ct.nii.gz", img, aff)
    write_nifti(tmp_path / "a.nii.gz", a, aff)
    write_nifti(tmp_path / "b.nii.gz", np.ascontiguousarray(b_stored), aff @ perm)
    code = main(
        [
            "compare-seg",
            "--image",
            str(tmp_path / "ct.nii.gz"),
            "--seg-a",
            str(tmp_path / "a.nii.gz"),
            "--seg-b",
            str(tmp_path / "b.nii.gz"),
            "--json",
            "-",
        ]
    )
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    det = d["detection"]
    assert (det["true_positives"], det["false_positives"], det["false_negatives"]) == (1, 2, 2)
    les = next(s for s in d["structures"] if s["structure"] == "lesion")
    inter = 216 + 3 * 36  # lesion 1 fully, lesion 2 overlaps 3 of 6 columns
    assert les["dice"] == pytest.approx(2 * inter / (3 * 216 + 2 * 216 + 64), abs=1e-4)
    liv = next(s for s in d["structures"] if s["structure"] == "liver")
    assert liv["dice"] == pytest.approx(1.0)
    liver_vox = 32 * 28 * 20
    assert d["burden_a_percent"] == pytest.approx(100 * 3 * 216 / liver_vox, abs=1e-3)
    assert d["burden_b_percent"] == pytest.approx(100 * (2 * 216 + 64) / liver_vox, abs=1e-3)
    # human table + JSON file
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare-seg",
                "--image",
                str(tmp_path / "ct.nii.gz"),
                "--seg-a",
                str(tmp_path / "a.nii.gz"),
                "--seg-b",
                str(tmp_path / "b.nii.gz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "TP 1, FP 2, FN 2" in capsys.readouterr().out
    assert json.loads((out / "compare_seg.json").read_text())["detection"]["true_positives"] == 1
    # unreadable input -> exit 3; bad --json -> exit 2
    assert (
        main(
            [
                "compare-seg",
                "--image",
                str(tmp_path / "ct.nii.gz"),
                "--seg-a",
                str(tmp_path / "nope.nii.gz"),
                "--seg-b",
                str(tmp_path / "b.nii.gz"),
            ]
        )
        == 3
    )
    assert "nope.nii.gz" in capsys.readouterr().err
    assert (
        main(
            [
                "compare-seg",
                "--image",
                str(tmp_path / "ct.nii.gz"),
                "--seg-a",
                str(tmp_path / "a.nii.gz"),
                "--seg-b",
                str(tmp_path / "b.nii.gz"),
                "--json",
                "x.json",
            ]
        )
        == 2
    )


@covers("compare_seg.detection_iou")
def test_rules_detection_iou_decides_what_compare_seg_detects(tmp_path, capsys):
    import json

    from phantoms_verify import write_nifti

    from netlm_imaging.cli import main

    shape, n = (30, 28, 16), 6
    aff = grid_affine(shape, SPACING, ANGLES, centre=(5.0, -10.0, 120.0))
    liver = _box(shape, (2, 2, 2), (26, 24, 12))
    a = liver.astype(np.uint8) + _box(shape, (8, 8, 4), (n, n, n))
    b = liver.astype(np.uint8) + _box(shape, (9, 8, 4), (n, n, n))  # shifted one voxel: IoU (n-1)/(n+1) = 5/7
    for name, lab in (("img", liver.astype(np.float32)), ("a", a), ("b", b)):
        write_nifti(tmp_path / f"{name}.nii.gz", lab, aff)
    args = ["compare-seg", "--image", str(tmp_path / "img.nii.gz"), "--seg-a", str(tmp_path / "a.nii.gz")]
    args += ["--seg-b", str(tmp_path / "b.nii.gz"), "--json", "-"]

    def detection(*extra):
        assert main([*args, *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        det = out["detection"]
        assert f"IoU > {det['iou_threshold']:g} " in out["definitions"]["detection"]
        return det["true_positives"], det["false_positives"], det["false_negatives"], det["iou_threshold"]

    assert detection() == (1, 0, 0, 0.5)
    strict = tmp_path / "strict.toml"
    strict.write_text(f"[compare_seg]\ndetection_iou = {(5 / 7 + 0.8) / 2}\n")  # between 5/7 and 0.8
    assert detection("--rules", str(strict)) == (0, 1, 1, pytest.approx((5 / 7 + 0.8) / 2))
    loose = tmp_path / "loose.toml"
    loose.write_text("[compare_seg]\ndetection_iou = 0.4\n")
    assert main([*args, "--rules", str(loose)]) == 3
    err = capsys.readouterr().err
    assert "compare_seg.detection_iou" in err
    assert "0.5 <= value < 1" in err
