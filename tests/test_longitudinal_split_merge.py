"""compare: lesions that split or coalesce, and a nodal complete response (RECIST 1.1).

RECIST 1.1 (Eisenhauer et al. 2009, "lesions that split or coalesce on treatment"; clinical_rules.md
section 8 for the thresholds): the longest diameters of a lesion's fragments are added into the
target sum, a coalesced lesion's diameter counts once, and a CR needs every nodal target's short
axis below 10 mm. Truths come from the phantom definition (make_context: diameter 2 r, volumes the
voxel counts), independently of the package; the follow-up patient is moved by a known rotation
and translation on another grid without a shared frame of reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from phantoms_verify import LiverPhantom, Sphere, grid_affine, make_context, rotation
from rules_coverage import covers, user_rules

from netlm_imaging.verify.longitudinal import compare_studies, recist_response

SHAPE_B, SPACING_B = (80, 64, 36), (2.0, 2.0, 2.5)
SHAPE_F, SPACING_F = (72, 72, 44), (2.4, 2.1, 2.5)
AFF_B = grid_affine(SHAPE_B, SPACING_B, (0.0, 0.0, 8.0), (5.0, 0.0, 0.0))
AFF_F = grid_affine(SHAPE_F, SPACING_F, (6.0, 3.0, -5.0), (0.0, 4.0, 2.0))
ROT, SHIFT = rotation((4.0, -3.0, 6.0)), np.array([7.0, -5.0, 4.0])


def _contexts(base_lesions, fu_lesions, *, shared: bool):
    base = LiverPhantom(base_lesions)
    fu = LiverPhantom(fu_lesions) if shared else LiverPhantom(fu_lesions, ROT, SHIFT)
    ctx_b = make_context(base, SHAPE_B, AFF_B, frame_of_reference_uid="1.2.3", seed=1)
    ctx_f = make_context(fu, SHAPE_F, AFF_F, frame_of_reference_uid="1.2.3" if shared else "9.8.7", seed=2)
    return ctx_b, ctx_f


@pytest.mark.parametrize("shared", [True, False])
def test_a_lesion_that_split_is_followed_not_new(shared):
    # baseline A (r 12 mm) splits into two r 6 mm fragments inside its former extent; B (r 8) stays
    a, b = (-25.0, 5.0, 0.0), (40.0, -10.0, 12.0)
    frag1, frag2 = (-33.0, 5.0, 0.0), (-17.0, 5.0, 0.0)
    ctx_b, ctx_f = _contexts(
        [Sphere(a, 12.0), Sphere(b, 8.0)], [Sphere(frag1, 6.0), Sphere(frag2, 6.0), Sphere(b, 8.0)], shared=shared
    )
    res = compare_studies(ctx_b, ctx_f)
    assert res.new_lesions == []
    status = sorted((c.status, c.baseline_id) for c in res.lesions)
    assert status == [("matched", 1), ("matched", 2), ("split", 1)]
    rec = res.recist
    assert rec["new_lesions"] == 0
    assert rec["baseline_sum_mm"] == pytest.approx(24.0 + 16.0)
    assert rec["followup_sum_mm"] == pytest.approx(12.0 + 12.0 + 16.0)  # the fragments' diameters add up
    assert rec["category"] == "SD"
    by_target = {t["baseline_id"]: t for t in rec["targets_followup"]}
    assert sorted(by_target[1]["followup_ids"]) == [1, 2]
    assert by_target[1]["followup_diameter_mm"] == pytest.approx(24.0)
    assert any("fragment of baseline lesion 1" in w for w in rec["rationale"])
    # volumetric: no new lesion, so the change decides; truth from the voxel counts of the contexts
    change = 100.0 * (ctx_f.intrahepatic_tumor_ml - ctx_b.intrahepatic_tumor_ml) / ctx_b.intrahepatic_tumor_ml
    assert -65.0 < change < 0.0  # sphere truth: (2 * 6^3 + 8^3) / (12^3 + 8^3) - 1 = -57.9 %
    assert res.volumetric["category"] == "SD"


def test_coalesced_lesions_count_once_for_the_target():
    # liver targets A (r 9) and B (r 8); C (r 7.5) is a non-target (2 targets per organ). At follow-up
    # C and B have coalesced into one r 11 mm lesion that holds C and part of B: it overlaps C more, so
    # it is C's match, and its diameter counts for the target B. A is unchanged.
    a, b, c = (-45.0, 10.0, 0.0), (24.0, -10.0, 5.0), (10.0, -10.0, 5.0)
    blob = (14.0, -10.0, 5.0)
    ctx_b, ctx_f = _contexts(
        [Sphere(a, 9.0), Sphere(b, 8.0), Sphere(c, 7.5)], [Sphere(a, 9.0), Sphere(blob, 11.0)], shared=True
    )
    res = compare_studies(ctx_b, ctx_f)
    rows = {c.baseline_id: c for c in res.lesions}
    assert rows[3].status == "matched"  # C, the larger overlap
    assert rows[2].status == "merged"
    assert rows[2].followup_id == rows[3].followup_id
    assert res.disappeared_lesions == []
    rec = res.recist
    assert rec["target_baseline_ids"] == [1, 2]
    assert rec["baseline_sum_mm"] == pytest.approx(18.0 + 16.0)
    assert rec["followup_sum_mm"] == pytest.approx(18.0 + 22.0)  # +17.6 %: SD, not a PR from a "gone" B
    assert rec["category"] == "SD"


def test_nodal_target_below_10_mm_is_a_complete_response():
    # a lymph-node target, short axis 18 mm at baseline, 8 mm at follow-up (a normal node): CR,
    # although the target sum is 8 mm (RECIST 1.1: nodes < 10 mm short axis)
    node = (60.0, 30.0, -10.0)
    ctx_b, ctx_f = _contexts([Sphere(node, 9.0)], [Sphere(node, 4.0)], shared=True)
    for ctx in (ctx_b, ctx_f):
        for les in ctx.lesions:
            les.location, les.label = "extrahepatic", "lymph node 1"
    res = compare_studies(ctx_b, ctx_f)
    rec = res.recist
    assert rec["targets"][0]["lymph_node"] is True
    assert rec["baseline_sum_mm"] == pytest.approx(18.0)
    assert rec["followup_sum_mm"] == pytest.approx(8.0)
    assert rec["category"] == "CR"
    # 11 mm at follow-up is still pathological: a PR (-39 %), not a CR
    ctx_b, ctx_f = _contexts([Sphere(node, 9.0)], [Sphere(node, 5.5)], shared=True)
    for ctx in (ctx_b, ctx_f):
        for les in ctx.lesions:
            les.location, les.label = "extrahepatic", "lymph node 1"
    assert compare_studies(ctx_b, ctx_f).recist["category"] == "PR"


def test_recist_response_targets_resolved():
    assert recist_response(18.0, 8.0, targets_resolved=True)[0] == "CR"
    assert recist_response(18.0, 8.0, targets_resolved=False)[0] == "PR"
    assert recist_response(18.0, 8.0)[0] == "PR"  # by the sum alone


def test_compare_cli_takes_a_rules_file(tmp_path, capsys):
    """--rules: its recist.pr_decrease_percent decides the category (a sphere r 8 -> 6.5 mm: SD by default)."""
    from phantoms_verify import write_nifti

    from netlm_imaging.cli import main

    a = (-25.0, 5.0, 0.0)
    for name, r, aff, shape in (("b", 8.0, AFF_B, SHAPE_B), ("f", 6.5, AFF_F, SHAPE_F)):
        ph = LiverPhantom([Sphere(a, r)])
        write_nifti(tmp_path / f"{name}_ct.nii.gz", ph.ct_image(shape, aff), aff)
        write_nifti(tmp_path / f"{name}_seg.nii.gz", ph.label_map(shape, aff), aff)
    args = [
        "compare",
        str(tmp_path / "b_ct.nii.gz"),
        str(tmp_path / "f_ct.nii.gz"),
        "--baseline-seg",
        str(tmp_path / "b_seg.nii.gz"),
        "--followup-seg",
        str(tmp_path / "f_seg.nii.gz"),
        "--registration",
        "never",  # the same patient position (NIfTI has no frame of reference): no registration needed
        "--json",
        "-",
    ]
    import json

    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)["recist_1_1"]
    assert -30.0 < default["change_percent"] < -5.0  # edge-to-edge diameters of the voxelised spheres
    assert default["category"] == "SD"
    user_rules(tmp_path, {"recist.pr_decrease_percent": 5.0})
    assert main([*args, "--rules", str(tmp_path / "user_rules.json")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["recist_1_1"]["category"] == "PR"
    assert d["thresholds"]["recist_pr_decrease_percent"] == 5.0
    assert main([*args, "--rules", str(tmp_path / "nope.toml")]) == 2
    assert "--rules" in capsys.readouterr().err


def test_a_change_of_modality_is_warned_about():
    """RECIST 1.1 (clinical_rules.md section 8): the same technique at every assessment, CT or MRI only."""
    lesions = [Sphere((-25.0, 5.0, 0.0), 8.0)]
    ctx_b = make_context(LiverPhantom(lesions), SHAPE_B, AFF_B, frame_of_reference_uid="1.2", seed=1)
    ctx_f = make_context(LiverPhantom(lesions), SHAPE_F, AFF_F, frame_of_reference_uid="1.2", seed=2, modality="MR")
    res = compare_studies(ctx_b, ctx_f)
    assert any(w.startswith("baseline CT, follow-up MR: RECIST 1.1 measures") for w in res.warnings)
    same = compare_studies(ctx_b, make_context(LiverPhantom(lesions), SHAPE_F, AFF_F, frame_of_reference_uid="1.2"))
    assert not any("RECIST 1.1 measures" in w for w in same.warnings)
    pet = make_context(LiverPhantom(lesions), SHAPE_F, AFF_F, frame_of_reference_uid="1.2", modality="PT")
    assert any(w.startswith("PT: RECIST 1.1 measures on CT or MRI") for w in compare_studies(ctx_b, pet).warnings)


def test_mr_time_points_in_different_contrast_phases_are_warned_about(tmp_path):
    """Gadoxetic MR: hepatobiliary (20 min) at baseline, portal venous (70 s) at follow-up (the sidecars' times)."""
    from mri_factory import mr_headers, signal_image, write_nifti_study

    from netlm_imaging.api import AnalyzeOptions
    from netlm_imaging.verify.longitudinal import compare_study_inputs

    img = signal_image(400.0, 200.0, 120.0)
    hbp = write_nifti_study(tmp_path / "hbp", img, sidecar=mr_headers("101500", "103500"))
    pv = write_nifti_study(tmp_path / "pv", img, sidecar=mr_headers("101500", "101610"))
    hbp2 = write_nifti_study(tmp_path / "hbp2", img, sidecar=mr_headers("091000", "093000"))
    opts = AnalyzeOptions(modality="MR")

    def compare(a, b):
        return compare_study_inputs(
            a["image"],
            b["image"],
            baseline_segs=[a["seg"]],
            followup_segs=[b["seg"]],
            labels="liver=1,lesion=2",
            options=opts,
            registration="never",
        )

    res = compare(hbp, pv)
    assert any("MR contrast phase hepatobiliary at baseline, portal_venous at follow-up" in w for w in res.warnings)
    assert not any("contrast phase" in w for w in compare(hbp, hbp2).warnings)


def test_an_image_file_without_its_segmentation_names_the_compare_option(tmp_path, capsys):
    from phantoms_verify import write_nifti

    from netlm_imaging.cli import main

    ph = LiverPhantom([Sphere((-25.0, 5.0, 0.0), 8.0)])
    for name in ("b", "f"):
        write_nifti(tmp_path / f"{name}_ct.nii.gz", ph.ct_image(SHAPE_B, AFF_B), AFF_B)
        write_nifti(tmp_path / f"{name}_seg.nii.gz", ph.label_map(SHAPE_B, AFF_B), AFF_B)
    b, f = str(tmp_path / "b_ct.nii.gz"), str(tmp_path / "f_ct.nii.gz")
    assert main(["compare", b, f, "--baseline-seg", str(tmp_path / "b_seg.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f in err[0]
    assert "--followup-seg PATH" in err[0]
    assert "netlm analyze" not in err[0]  # only options compare accepts
    assert main(["compare", b, f, "--followup-seg", str(tmp_path / "f_seg.nii.gz")]) == 2
    assert "--baseline-seg PATH" in capsys.readouterr().err


@covers("recist.too_small_default_mm")
def test_a_target_too_small_to_measure_counts_5_mm(tmp_path):
    """EORTC clarification of RECIST 1.1 (clinical_rules.md section 8): present but too small -> 5 mm.

    Targets A 20 mm (unchanged) and B 12 mm; at follow-up B is still there but 2 mm across. The sum
    32 -> 22 mm (-31 %) would be a PR; with B at 5 mm it is 32 -> 25 mm (-22 %): SD.
    """
    a, b = (-40.0, 5.0, 0.0), (30.0, -10.0, 5.0)
    ctx_b, ctx_f = _contexts([Sphere(a, 10.0), Sphere(b, 6.0)], [Sphere(a, 10.0), Sphere(b, 3.0)], shared=True)
    small = next(les for les in ctx_f.lesions if les.id == 2)
    small.longest_axial_diameter_mm = 2.0  # a 2 mm remnant (the voxelised sphere keeps the match)
    rec = compare_studies(ctx_b, ctx_f).recist
    assert rec["baseline_sum_mm"] == pytest.approx(32.0)
    assert rec["followup_sum_mm"] == pytest.approx(25.0)
    assert rec["category"] == "SD"
    assert any("below 5 mm: counted as 5 mm" in w for w in rec["rationale"])
    off = user_rules(tmp_path, {"recist.too_small_default_mm": 0.0})
    rec = compare_studies(ctx_b, ctx_f, recist=off["recist"]).recist
    assert rec["followup_sum_mm"] == pytest.approx(22.0)
    assert rec["category"] == "PR"


def test_a_lesion_outside_the_followup_field_of_view_is_not_imaged_not_gone():
    """The follow-up scan stops at z = 0 mm; baseline lesion B (z 14..26 mm) was never imaged: NE, not a PR.

    Targets A (16 mm, unchanged) and B (12 mm). Counting B as gone would give 28 -> 16 mm (-43 %): a PR.
    RECIST 1.1: a target that is not evaluated makes the response NE (unless PD).
    """
    a, b = (-25.0, 5.0, -15.0), (40.0, -10.0, 20.0)
    aff_f = grid_affine((80, 64, 16), (2.0, 2.0, 2.5), (0.0, 0.0, 8.0), (5.0, 0.0, -20.0))  # z -40 .. 0 mm
    ctx_b = make_context(LiverPhantom([Sphere(a, 8.0), Sphere(b, 6.0)]), SHAPE_B, AFF_B, frame_of_reference_uid="1.2")
    ctx_f = make_context(
        LiverPhantom([Sphere(a, 8.0), Sphere(b, 6.0)]), (80, 64, 16), aff_f, frame_of_reference_uid="1.2"
    )
    assert [les.id for les in ctx_f.lesions if les.voxel_count] == [1]  # B is not in the follow-up image
    ctx_f.lesions = [les for les in ctx_f.lesions if les.voxel_count]  # as an analysis of that image finds them
    res = compare_studies(ctx_b, ctx_f)
    rows = {c.baseline_id: c for c in res.lesions}
    assert rows[1].status == "matched"
    assert rows[2].status == "not_imaged"
    assert res.disappeared_lesions == []
    assert res.recist["target_baseline_ids"] == [1, 2]
    assert res.recist["category"] == "NE"
    assert res.volumetric["category"] == "NE"
    assert any("baseline lesion(s) 2 lie outside the follow-up image" in w for w in res.warnings)


def test_a_lesion_cut_by_the_followup_field_of_view_is_warned_about():
    """Lesion A (z -8 .. +8 mm) at the edge of a follow-up scan ending at z = 0 mm: its follow-up size is partial."""
    a = (-25.0, 5.0, 0.0)
    aff_f = grid_affine((80, 64, 16), (2.0, 2.0, 2.5), (0.0, 0.0, 8.0), (5.0, 0.0, -20.0))  # z -40 .. 0 mm
    ctx_b = make_context(LiverPhantom([Sphere(a, 8.0)]), SHAPE_B, AFF_B, frame_of_reference_uid="1.2")
    ctx_f = make_context(LiverPhantom([Sphere(a, 8.0)]), (80, 64, 16), aff_f, frame_of_reference_uid="1.2")
    res = compare_studies(ctx_b, ctx_f)
    assert [c.status for c in res.lesions] == ["matched"]
    assert any("baseline lesion(s) 1 lie partly outside the follow-up image" in w for w in res.warnings)
    whole = compare_studies(
        ctx_b, make_context(LiverPhantom([Sphere(a, 8.0)]), SHAPE_F, AFF_F, frame_of_reference_uid="1.2")
    )
    assert not any("outside the follow-up image" in w for w in whole.warnings)


def test_a_nodal_target_is_measured_on_its_short_axis_at_follow_up_too():
    """Baseline 'lymph node 1' (short axis 18 mm); the follow-up reader calls it 'Lesion 1' (14 x 8 mm).

    RECIST 1.1 compares the same measurement: the node's short axis, 8 mm < 10 mm: CR. Reading the
    follow-up lesion as a non-nodal one (long axis 14 mm) would give an SD.
    """
    node = (60.0, 30.0, -10.0)
    ctx_b, ctx_f = _contexts([Sphere(node, 9.0)], [Sphere(node, 6.0)], shared=True)
    ctx_b.lesions[0].location, ctx_b.lesions[0].label = "extrahepatic", "lymph node 1"
    fu = ctx_f.lesions[0]
    fu.location, fu.label = "extrahepatic", "Lesion 1"
    fu.longest_axial_diameter_mm, fu.short_axis_diameter_mm = 14.0, 8.0
    rec = compare_studies(ctx_b, ctx_f).recist
    assert rec["targets"][0]["lymph_node"] is True
    assert rec["followup_sum_mm"] == pytest.approx(8.0)
    assert rec["category"] == "CR"
