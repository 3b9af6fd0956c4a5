"""compare: baseline / follow-up phantoms with known growth, a new and a disappeared lesion.

Truths come from the phantom definition: lesion A grows from r = 8 mm to
r = 10 mm (diameter 16 -> 20 mm, volume 4/3 pi r^3), lesion B (r = 6 mm)
disappears, lesion C (r = 7 mm) is new. Without a shared frame of reference
the follow-up patient is moved by a known rotation and translation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context, rotation, write_nifti
from rules_coverage import covers, user_rules

from netlm_imaging.errors import GeometryError
from netlm_imaging.verify.longitudinal import (
    ResponseThresholds,
    compare_studies,
    recist_response,
    select_targets,
    volumetric_response,
)
from netlm_imaging.verify.registration import align_liver_masks
from netlm_imaging.volume import Volume

A, B, C = (-25.0, 5.0, 0.0), (40.0, -10.0, 12.0), (-45.0, 20.0, -15.0)
SHAPE_B, SPACING_B = (80, 64, 36), (2.2, 2.0, 3.0)
SHAPE_F, SPACING_F = (72, 72, 44), (2.4, 2.1, 2.5)
ROT = rotation((4.0, -3.0, 6.0))
SHIFT = np.array([7.0, -5.0, 4.0])


def _pair(shared: bool):
    base = LiverPhantom([Sphere(A, 8.0), Sphere(B, 6.0)])
    if shared:
        fu = LiverPhantom([Sphere(C, 7.0), Sphere(A, 10.0)])
    else:
        fu = LiverPhantom([Sphere(C, 7.0), Sphere(A, 10.0)], ROT, SHIFT)
    aff_b = grid_affine(SHAPE_B, SPACING_B, (0.0, 0.0, 8.0), (5.0, 0.0, 0.0))
    aff_f = grid_affine(SHAPE_F, SPACING_F, (6.0, 3.0, -5.0), (0.0, 4.0, 2.0))
    ctx_b = make_context(base, SHAPE_B, aff_b, frame_of_reference_uid="1.2.3.4" if shared else None, seed=1)
    ctx_f = make_context(fu, SHAPE_F, aff_f, frame_of_reference_uid="1.2.3.4" if shared else "9.8.7", seed=2)
    return ctx_b, ctx_f


def _sphere_ml(r):
    return 4 / 3 * np.pi * r**3 / 1000


@pytest.mark.parametrize("shared", [True, False])
def test_growth_new_and_disappeared_lesions(shared):
    ctx_b, ctx_f = _pair(shared)
    res = compare_studies(ctx_b, ctx_f)
    matched = [c for c in res.lesions if c.status == "matched"]
    assert len(matched) == 1
    m = matched[0]
    # baseline ids: A=1, B=2; follow-up ids: C=1, A=2 (the phantom's lesion order)
    assert (m.baseline_id, m.followup_id) == (1, 2)
    assert m.volume_change_ml == pytest.approx(_sphere_ml(10) - _sphere_ml(8), rel=0.08)
    assert m.centroid_distance_mm < 2.0
    assert [c.followup_id for c in res.new_lesions] == [1]
    assert [c.baseline_id for c in res.disappeared_lesions] == [2]
    assert res.tumor_change_ml == pytest.approx(
        _sphere_ml(10) + _sphere_ml(7) - _sphere_ml(8) - _sphere_ml(6), rel=0.08
    )
    # RECIST: targets A (16 mm) and B (12 mm); follow-up 20 + 0 mm; a new lesion -> PD
    assert res.recist["target_baseline_ids"] == [1, 2]
    assert res.recist["baseline_sum_mm"] == pytest.approx(28.0)
    assert res.recist["followup_sum_mm"] == pytest.approx(20.0)
    assert res.recist["category"] == "PD"
    assert any("new lesion" in r for r in res.recist["rationale"])
    assert res.volumetric["category"] == "PD"
    d = json.loads(json.dumps(res.to_dict()))
    assert d["new_lesion_ids"] == [1]
    assert d["disappeared_lesion_ids"] == [2]
    if shared:
        assert res.alignment.method == "shared_frame_of_reference"
        assert np.allclose(res.alignment.matrix_fixed_to_moving, np.eye(4))
        assert m.matched_by == "overlap"
    else:
        assert res.alignment.method == "rigid+affine_liver_registration"
        assert res.alignment.liver_dice_after > 0.93
        assert res.alignment.liver_dice_after > res.alignment.liver_dice_before
        # the recovered map baseline -> follow-up agrees with the known motion within 2 mm over the liver
        pts = np.array([A, B, C, (0.0, 0.0, 0.0), (30.0, 20.0, -10.0)])
        truth = pts @ ROT.T + SHIFT
        got = pts @ res.alignment.matrix_fixed_to_moving[:3, :3].T + res.alignment.matrix_fixed_to_moving[:3, 3]
        assert np.max(np.linalg.norm(got - truth, axis=1)) < 2.0
        assert d["alignment"]["rigid_rotation_deg"] is not None


@covers("response.registration_min_liver_dice")
def test_registration_min_liver_dice_of_the_rules(tmp_path):
    """Registered livers below the rules' Dice get the 'doubtful' warning (the phantom pair reaches > 0.93)."""
    ctx_b, ctx_f = _pair(False)
    shipped = compare_studies(ctx_b, ctx_f, thresholds=ResponseThresholds.from_rules(None))
    assert shipped.alignment.liver_dice_after > 0.93
    assert not any("doubtful" in w for w in shipped.warnings)
    strict = user_rules(tmp_path, {"response.registration_min_liver_dice": 0.999})
    res = compare_studies(ctx_b, ctx_f, thresholds=ResponseThresholds.from_rules(strict))
    judged = res.alignment.liver_dice_after_in_view  # the follow-up's view holds nearly all the liver
    assert judged == pytest.approx(res.alignment.liver_dice_after, abs=0.01)
    assert any("liver Dice after registration" in w and f"{judged:.3f} < 0.999" in w for w in res.warnings)


def test_without_registration_the_moved_followup_does_not_match():
    """Control: the same pair compared in raw coordinates (no shared frame, registration off) mis-matches."""
    ctx_b, ctx_f = _pair(False)
    res = compare_studies(ctx_b, ctx_f, registration="never")
    assert res.alignment.method == "identity_assumed"
    assert any("assumed" in w for w in res.warnings)
    m = [c for c in res.lesions if c.status == "matched"]
    assert all(c.centroid_distance_mm > 2.0 for c in m)


@pytest.mark.parametrize(
    ("base", "fu", "new", "expected"),
    [
        (50.0, 35.0, 0, "PR"),  # -30 % exactly
        (50.0, 35.5, 0, "SD"),  # -29 %
        (20.0, 24.0, 0, "SD"),  # +20 % but only +4 mm
        (25.0, 30.0, 0, "PD"),  # +20 % and +5 mm
        (50.0, 59.0, 0, "SD"),  # +18 %
        (40.0, 0.0, 0, "CR"),
        (40.0, 10.0, 1, "PD"),  # new lesion
        (0.0, 0.0, 0, "NE"),
    ],
)
def test_recist_categories(base, fu, new, expected):
    assert recist_response(base, fu, new_lesions=new)[0] == expected


def test_recist_nadir_is_used_for_progression():
    # baseline 50, nadir 30, now 36: +20 % and +6 mm over the nadir -> PD although below baseline
    assert recist_response(50.0, 36.0, nadir_sum_mm=30.0)[0] == "PD"


@pytest.mark.parametrize(
    ("base", "fu", "new", "expected"),
    [
        (10.0, 3.5, 0, "PR"),
        (10.0, 3.6, 0, "SD"),
        (10.0, 17.3, 0, "PD"),
        (10.0, 17.2, 0, "SD"),
        (10.0, 0.0, 0, "CR"),
        (10.0, 5.0, 2, "PD"),
    ],
)
def test_volumetric_categories(base, fu, new, expected):
    assert volumetric_response(base, fu, new_lesions=new)[0] == expected


def test_volumetric_thresholds_are_configurable():
    t = ResponseThresholds(volume_pr_decrease_percent=50.0)
    assert volumetric_response(10.0, 5.0, thresholds=t)[0] == "PR"
    assert volumetric_response(10.0, 5.0)[0] == "SD"


def test_target_selection_shared_with_analyze():
    from netlm_imaging.measure.context import Lesion

    def les(i, d, loc="intrahepatic", meas=None):
        return Lesion(i, loc, 1.0, 10, [0.0, 0.0, 0.0], d, None, d, meas, False, None)

    targets = select_targets(
        [les(1, 12.0), les(2, 30.0), les(3, 8.0), les(4, 50.0, "extrahepatic"), les(5, 20.0), les(6, 25.0)]
    )
    # liver: 30 and 25 (2 per organ); the extrahepatic lesion without an organ is its own organ (RECIST 1.1)
    assert [t.id for t in targets] == [4, 2, 6]


def test_registration_refuses_an_empty_liver():
    aff = grid_affine((10, 10, 10), (1.0, 1.2, 2.0), (5.0, 0.0, 0.0))
    empty = Volume(np.zeros((10, 10, 10), bool), aff, source="empty.nii.gz")
    full = Volume(np.ones((10, 10, 10), bool), aff)
    with pytest.raises(GeometryError, match=r"empty\.nii\.gz: the baseline liver mask is empty"):
        align_liver_masks(empty, full)


def test_compare_cli_on_nifti_studies(tmp_path, capsys):
    """netlm compare on image + seg files written here (no shared frame: NIfTI has none)."""
    from netlm_imaging.cli import main

    base = LiverPhantom([Sphere(A, 8.0), Sphere(B, 6.0)])
    fu = LiverPhantom([Sphere(C, 7.0), Sphere(A, 10.0)], ROT, SHIFT)
    aff_b = grid_affine(SHAPE_B, SPACING_B, (0.0, 0.0, 8.0), (5.0, 0.0, 0.0))
    aff_f = grid_affine(SHAPE_F, SPACING_F, (6.0, 3.0, -5.0), (0.0, 4.0, 2.0))
    for name, ph, shape, aff in (("b", base, SHAPE_B, aff_b), ("f", fu, SHAPE_F, aff_f)):
        write_nifti(tmp_path / f"{name}_ct.nii.gz", ph.ct_image(shape, aff), aff)
        write_nifti(tmp_path / f"{name}_seg.nii.gz", ph.label_map(shape, aff), aff)
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            str(tmp_path / "b_ct.nii.gz"),
            str(tmp_path / "f_ct.nii.gz"),
            "--baseline-seg",
            str(tmp_path / "b_seg.nii.gz"),
            "--followup-seg",
            str(tmp_path / "f_seg.nii.gz"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    d = json.loads((out / "comparison.json").read_text())
    assert d["recist_1_1"]["category"] == "PD"
    # edge-to-edge diameters of the voxelised spheres (16 + 12 mm): voxel centres lie within each sphere, so the
    # centre distance is <= 2r and the voxel extent added is <= hypot(2.2, 2.0); the centre distance along x is
    # >= 2r - 2 x 2.2 and one voxel (2.2) is added back
    s = d["recist_1_1"]["baseline_sum_mm"]
    assert 28.0 - 2 * 2.2 <= s <= 28.0 + 2 * math.hypot(2.2, 2.0)
    assert len(d["new_lesion_ids"]) == 1
    assert len(d["disappeared_lesion_ids"]) == 1
    assert d["alignment"]["liver_dice_after"] > 0.93
    assert "PD" in capsys.readouterr().out
    # unreadable input: exit 3 with one line on stderr
    code = main(
        [
            "compare",
            str(tmp_path / "missing.nii.gz"),
            str(tmp_path / "f_ct.nii.gz"),
            "--baseline-seg",
            str(tmp_path / "b_seg.nii.gz"),
            "--followup-seg",
            str(tmp_path / "f_seg.nii.gz"),
        ]
    )
    assert code == 3
    assert "missing.nii.gz" in capsys.readouterr().err


@pytest.mark.parametrize("liver_only", ["baseline", "followup"])
def test_a_liver_only_time_point_is_no_response(tmp_path, capsys, liver_only):
    """A follow-up segmented without its lesions must not read as complete response (nor a baseline as PD)."""
    from netlm_imaging.cli import main

    ph = LiverPhantom([Sphere(A, 8.0)])
    aff = grid_affine(SHAPE_B, SPACING_B, (0.0, 0.0, 8.0), (5.0, 0.0, 0.0))
    write_nifti(tmp_path / "ct.nii.gz", ph.ct_image(SHAPE_B, aff), aff)
    lab = ph.label_map(SHAPE_B, aff)
    write_nifti(tmp_path / "seg.nii.gz", lab, aff)
    write_nifti(tmp_path / "liver.nii.gz", (lab > 0).astype(np.uint8), aff)  # the liver with its lesion inside
    segs = {"baseline": f"liver={tmp_path / 'liver.nii.gz'}", "followup": str(tmp_path / "seg.nii.gz")}
    if liver_only == "followup":
        segs = {"baseline": segs["followup"], "followup": segs["baseline"]}
    args = ["compare", str(tmp_path / "ct.nii.gz"), str(tmp_path / "ct.nii.gz")]
    code = main([*args, "--baseline-seg", segs["baseline"], "--followup-seg", segs["followup"], "--out", str(tmp_path)])
    assert code == 3
    err = capsys.readouterr().err
    assert f"the {'follow-up' if liver_only == 'followup' else 'baseline'} has no lesion segmentation" in err
    assert not (tmp_path / "comparison.json").exists()
    both = [*args, "--baseline-seg", str(tmp_path / "seg.nii.gz"), "--followup-seg", str(tmp_path / "seg.nii.gz")]
    assert main([*both, "--out", str(tmp_path / "same")]) == 0  # the same segmented study twice: stable disease
    assert json.loads((tmp_path / "same" / "comparison.json").read_text())["recist_1_1"]["category"] == "SD"
