"""A user's resection with the sparing treatment of the lesions it leaves (``plan_with_sparing``).

Phantom: slab liver (segment volumes = slices x 20 x 20 voxels x 0.1 mL), a 4x6x6-voxel lesion in
segment 7 (taken by a right hemihepatectomy, segments 5-8) and a 2x2x2-voxel 20 mm lesion in segment 3
(left in the remnant, ablatable). Its ablation zone (lesion dilated 5 mm on the oblique grid) is
measured here with a k-d tree (surgical_phantoms.zone_mask). Truth by hand (clinical_rules.md
sections 4 and 6): the FLR is the kept segments' non-tumorous liver minus the zone; debulking % =
treated / all lesion volume; the threshold on the non-tumorous liver is set around those numbers.
"""

from __future__ import annotations

import pytest
from rules_coverage import user_rules
from surgical_phantoms import (
    FULL_CLINICAL,
    NY,
    NZ,
    SLICES,
    VOXEL_ML,
    SlabLiver,
    assess,
    parenchyma_ml_by_segment,
    zone_mask,
)

from netlm_imaging.clinical.inputs import ClinicalInputs


def _scene():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    big = p.add_in_segment(7, 4, 6, 6, y0=4, z0=4, max_3d_diameter_mm=45.0)  # 144 voxels
    small = p.add_in_segment(3, 2, 2, 2, x_off=1, y0=9, z0=9, max_3d_diameter_mm=20.0)  # 8 voxels
    zone = parenchyma_ml_by_segment(p, zone_mask(p, small.id, 5.0))
    nt_ml = (p.liver.sum() - 152) * VOXEL_ML
    flr_left = (sum(SLICES[k] for k in (1, 2, 3, 4)) * NY * NZ - 8) * VOXEL_ML  # segments 1-4 kept
    return p, big, small, nt_ml, flr_left, sum(zone[k] for k in (1, 2, 3, 4))


def _row(p, nt_ml, threshold_ml, tmp_path, clinical=FULL_CLINICAL):
    changes = {
        "flr.denominator": "non_tumorous",
        "flr.non_tumorous_threshold_percent.normal": 100 * threshold_ml / nt_ml,
    }
    a = assess(p.ctx(), clinical, user_rules(tmp_path, changes), resections=[(5, 6, 7, 8)])
    return next(r for r in a.remnant["standard_resections"] if r["name"] == "custom:5+6+7+8"), a


def test_the_lesion_left_in_the_remnant_is_ablated_within_the_flr(tmp_path):
    p, big, small, nt_ml, flr_left, zone_ml = _scene()
    row, a = _row(p, nt_ml, flr_left - 2 * zone_ml, tmp_path)  # room for the ablation
    plan = row["plan_with_sparing"]
    assert {t["lesion_id"]: t["treatment"] for t in plan["lesion_treatments"]} == {
        big.id: "resection",
        small.id: "ablation",
    }
    assert plan["resected_segments"] == [5, 6, 7, 8]
    assert plan["remnant_ml"] == pytest.approx(flr_left - zone_ml)
    assert plan["debulking_percent_volume"] == pytest.approx(100.0)
    assert plan["meets_debulking_threshold"] is True
    assert any(
        line.startswith("user resection 5+6+7+8 (Right hemihepatectomy)") for line in a.classification["rationale"]
    )


def test_without_room_for_the_ablation_the_resection_alone_is_the_plan(tmp_path):
    p, big, small, nt_ml, flr_left, zone_ml = _scene()
    plan = _row(p, nt_ml, flr_left - 0.5 * zone_ml, tmp_path)[0]["plan_with_sparing"]
    assert {t["lesion_id"]: t["treatment"] for t in plan["lesion_treatments"]} == {big.id: "resection", small.id: None}
    assert plan["remnant_ml"] == pytest.approx(flr_left)
    assert plan["debulking_percent_volume"] == pytest.approx(100 * 144 / 152)
    assert plan["meets_debulking_threshold"] is True  # 94.7 % >= 70 %


def test_a_resection_leaving_too_little_flr_plans_nothing(tmp_path):
    p, _, _, nt_ml, flr_left, _ = _scene()
    plan = _row(p, nt_ml, flr_left + 1.0, tmp_path)[0]["plan_with_sparing"]
    assert plan["feasible"] is False
    assert plan["resection_name"] == "Right hemihepatectomy"
    assert plan["remnant_ml"] == pytest.approx(flr_left)
    assert plan["meets_debulking_threshold"] is False


def test_without_height_and_weight_on_the_telv_there_is_no_user_plan(tmp_path):
    p, *_ = _scene()
    clin = ClinicalInputs(symptoms="none", liver_condition="normal")
    changes = {"flr.fallback_denominator": "none"}
    a = assess(p.ctx(), clin, user_rules(tmp_path, changes), resections=[(5, 6, 7, 8)])
    row = next(r for r in a.remnant["standard_resections"] if r["name"] == "custom:5+6+7+8")
    assert row["plan_with_sparing"] is None
    assert "height/weight" in row["missing_inputs"]
    assert all(
        "plan_with_sparing" not in r for r in a.remnant["standard_resections"] if not r["name"].startswith("custom")
    )


def test_an_inadequate_user_resection_gets_the_staged_numbers(tmp_path):
    """FLR after the resection and the ablation below the threshold, within PVE's 37.9 % growth
    (van Lienden 2013 via the rules' [staging], clinical_rules.md section 6: 'consider PVE')."""
    p, _, small, nt_ml, flr_left, zone_ml = _scene()
    now = flr_left - zone_ml
    need = now * 1.2  # 20 % growth needed: PVE (37.9 %) reaches it
    plan = _row(p, nt_ml, need, tmp_path)[0]["plan_with_sparing"]
    staged = plan["staged_strategies"]
    assert staged["clearing_resected_segments"] == [5, 6, 7, 8]
    assert staged["flr_now_ml"] == pytest.approx(now)
    assert staged["growth_needed_percent"] == pytest.approx(20.0, rel=1e-6)
    pve = staged["strategies"]["portal_vein_embolisation"]
    assert pve["expected_flr_ml"] == pytest.approx(now * 1.379)
    assert pve["reaches_threshold"] is True
    assert staged["strategies"]["two_stage_hepatectomy"]["first_stage_clears_lesions"] == [small.id]
    # room for the ablation: one stage clears it, no staged figures
    assert _row(p, nt_ml, flr_left - 2 * zone_ml, tmp_path)[0]["plan_with_sparing"]["staged_strategies"] is None


@pytest.mark.parametrize(
    ("removed", "why"),
    [
        ((1, 4), "remnant segments 2,3,5,6,7,8 are not contiguous"),  # 2-3 touch only 1 and 4 (rules table, CR 9)
        ((2, 3, 4, 5, 6, 7, 8), "remnant 1 keeps fewer than 2 segments"),
    ],
)
def test_a_resection_leaving_an_impossible_remnant_plans_nothing_beside_it(tmp_path, removed, why):
    """A remnant failing the anatomy test is no operation: the sparing plan beside it was 'feasible' with
    the segment-3 lesion ablated (5.3 % debulked), and 2-8 got PVE / ALPPS figures for a 1-segment remnant."""
    p, big, small, nt_ml, flr_left, zone_ml = _scene()
    changes = {
        "flr.denominator": "non_tumorous",
        "flr.non_tumorous_threshold_percent.normal": 100 * (flr_left - 2 * zone_ml) / nt_ml,
    }
    a = assess(p.ctx(), FULL_CLINICAL, user_rules(tmp_path, changes), resections=[removed])
    name = "custom:" + "+".join(map(str, removed))
    row = next(r for r in a.remnant["standard_resections"] if r["name"] == name)
    assert row["anatomically_feasible"] is False
    assert row["anatomy_check"] == why
    plan = row["plan_with_sparing"]
    assert plan["feasible"] is False
    assert {t["lesion_id"]: t["treatment"] for t in plan["lesion_treatments"]} == {big.id: None, small.id: None}
    assert plan["debulking_percent_volume"] == 0.0
    assert plan["meets_debulking_threshold"] is False
    assert plan["staged_strategies"] is None
    kept = [k for k in range(1, 9) if k not in removed]
    tumour_kept = (144 if 7 in kept else 0) + (8 if 3 in kept else 0)
    assert plan["remnant_ml"] == pytest.approx((sum(SLICES[k] for k in kept) * NY * NZ - tumour_kept) * VOXEL_ML)
    assert any("not anatomically possible" in line for line in a.classification["rationale"])
