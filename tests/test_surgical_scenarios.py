"""The surgeon's scenarios of issue 13 on livers with a Couinaud map (independent truth from the phantom).

Expected numbers are voxel counts chosen here x the voxel volume, zones from a k-d tree in patient space
(tests/surgical_phantoms.py), and the published hypertrophy figures of the rules' [staging] sources.
"""

from __future__ import annotations

import numpy as np
import pytest
from surgical_phantoms import (
    FULL_CLINICAL,
    NY,
    NZ,
    SLICES,
    VOXEL_ML,
    SlabLiver,
    assess,
    parenchyma_ml_by_segment,
    remnant_possible,
    weight_for_telv,
    zone_mask,
)

from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs

SLICE_ML = NY * NZ * VOXEL_ML  # 40 mL per x-slice
ANATOMY = load_rules()["anatomy"]
FULL = FULL_CLINICAL


def _rules(tmp_path, text):
    f = tmp_path / "r.toml"
    f.write_text(text)
    return load_rules(f)


def test_lesions_in_1_2_4_5_6_8_have_no_clearing_plan_and_the_remnant_is_contiguous(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for seg in (1, 2, 4, 5, 6, 8):  # 40 mm lesions: too big to ablate; enucleation off
        p.add_in_segment(seg, 1, 4, 4, max_3d_diameter_mm=40.0)
    rules = _rules(tmp_path, "[planner]\nallow_enucleation = false\n")
    out = assess(p.ctx(), FULL, rules, resections=[[1, 2, 4, 5, 6, 8]])
    plan = out.remnant["resection_plan"]
    kept = set(range(1, 9)) - set(plan["resected_segments"])
    # clearing all six needs the remnant {3, 7}: not contiguous, so no one-stage plan clears them
    assert not remnant_possible({3, 7}, ANATOMY)
    assert plan["treated_lesion_count"] < 6
    assert remnant_possible(kept, ANATOMY)
    assert len(kept) >= 2
    c = out.classification
    assert c["achievable_debulking_percent"] < 100.0
    assert c["mahuron_type"] != "1"
    staged = c["staged_strategies"]
    assert staged["needed"] is True
    assert staged["possible"] is False
    assert "no anatomically possible plan clears every lesion" in staged["reason"]
    custom = next(r for r in out.remnant["standard_resections"] if r["name"] == "custom:1+2+4+5+6+8")
    assert custom["anatomically_feasible"] is False
    assert "not contiguous" in custom["anatomy_check"]
    for t in plan["lesion_treatments"]:
        if t["treatment"] is None:
            assert "enucleation/wedge disabled" in t["untreated_reason"]
            assert "ablation: diameter 40.0 mm > 30 mm" in t["untreated_reason"]


def _right_mass():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    # segments 5-8 are x-slices 12..29; a 16 x 16 x 16 voxel mass (409.6 mL) in x 13..28 touches 5, 6, 7, 8 only
    p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    return p


def test_a_14_cm_right_liver_mass_gets_a_right_hepatectomy_not_enucleation(tmp_path):
    p = _right_mass()
    out = assess(p.ctx(), FULL, load_rules())
    plan = out.remnant["resection_plan"]
    assert plan["resected_segments"] == [5, 6, 7, 8]
    assert plan["resection_name"] == "Right hemihepatectomy"
    assert plan["lesion_treatments"][0]["treatment"] == "resection"
    assert plan["remnant_ml"] == pytest.approx(12 * SLICE_ML)  # segments 1-4, no tumour there
    assert out.classification["mahuron_type"] == "1"
    # the enucleation size limit is what forbids the wedge: lift it and the cheaper "enucleation" comes back
    lifted = assess(p.ctx(), FULL, _rules(tmp_path, "[planner]\nenucleation_max_diameter_mm = 200.0\n"))
    assert lifted.remnant["resection_plan"]["lesion_treatments"][0]["treatment"] == "enucleation"


def test_an_inadequate_flr_reports_the_pve_two_stage_and_alpps_numbers():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    big = p.add_box(10, 16, 2, 16, 2, 16, max_3d_diameter_mm=150.0)  # x 10..25: segments 4-8
    small = p.add_in_segment(2, 1, 2, 2, y0=10, z0=10, max_3d_diameter_mm=18.0)  # in the future remnant
    assert big.id == 1
    assert small.id == 2
    # clearing = extended right hepatectomy (4-8) + ablation of the segment-2 lesion: FLR now, computed here
    lesion_vox = p.labels > 0
    nt = {s: float(np.count_nonzero((p.seg == s) & ~lesion_vox)) * VOXEL_ML for s in range(1, 9)}
    abl = parenchyma_ml_by_segment(p, zone_mask(p, small.id, 5.0))
    flr_now = sum(nt[s] - abl[s] for s in (1, 2, 3))
    telv = flr_now / 0.207  # sFLR 20.7 %
    clin = ClinicalInputs(
        **{**FULL.__dict__, "weight_kg": weight_for_telv(telv, 175.0), "liver_condition": "chemotherapy"}
    )
    out = assess(p.ctx(), clin, load_rules())
    st = out.classification["staged_strategies"]
    assert st["needed"] is True
    assert st["clearing_resection"] == "Extended right hemihepatectomy (right trisectionectomy)"
    assert st["flr_now_ml"] == pytest.approx(flr_now)
    assert st["flr_now_percent"] == pytest.approx(20.7)
    assert st["flr_needed_percent"] == 30.0
    assert st["growth_needed_percent"] == pytest.approx(100 * (30.0 / 20.7 - 1))  # 44.9 %
    pve, two, alpps = (st["strategies"][k] for k in ("portal_vein_embolisation", "two_stage_hepatectomy", "alpps"))
    assert pve["expected_flr_percent"] == pytest.approx(20.7 * 1.379)  # 28.5 % < 30 %
    assert pve["reaches_threshold"] is False
    assert two["first_stage_clears_lesions"] == [small.id]
    assert two["applicable"] is True
    assert two["reaches_threshold"] is False
    assert alpps["expected_flr_percent"] == pytest.approx(20.7 * 1.843)  # 38.2 % > 30 %
    assert alpps["reaches_threshold"] is True
    assert st["possible"] is True
    c = out.classification
    assert c["mahuron_assumes_staged_approach"] is False
    assert c["cloyd_assumes_staged_approach"] is False
    assert any("a staged approach could clear the liver" in r for r in c["rationale"])
    assert out.remnant["resection_plan"]["treated_lesion_count"] < 2  # one stage cannot clear both


def test_no_segment_map_gives_no_type_but_the_honest_range(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for seg in (2, 3, 5, 6, 7, 8):  # 6 lesions > the 5 of "limited", 40 mm: not ablatable, enucleation off
        p.add_in_segment(seg, 1, 4, 4, max_3d_diameter_mm=40.0)
    rules = _rules(tmp_path, "[planner]\nallow_enucleation = false\n")
    c = assess(p.ctx(with_segments=False), FULL, rules).classification
    assert c["mahuron_type"] is None
    assert c["mahuron_type_range"] == ["2", "4"]
    assert c["achievable_debulking_percent"] is None
    assert c["achievable_debulking_lower_bound_percent"] == 0.0
    assert "segment map" in c["missing_inputs"]
    assert c["resectable_cloyd"] is None
    assert c["cloyd_criteria"]["resection_feasible"]["missing_inputs"] == ["segment map"]
    # with the map the same liver is decided
    with_map = assess(p.ctx(), FULL, rules).classification
    assert with_map["mahuron_type"] in ("1", "2", "3", "4")
    assert with_map["achievable_debulking_percent"] is not None


def test_sixty_small_lesions_get_at_most_the_ablation_count(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    n = 0
    for x in range(0, 30, 3):
        for y in range(0, 20, 4):
            for z in (2, 12):
                if n < 60:
                    p.add_box(x, 1, y, 1, z, 1, max_3d_diameter_mm=8.0)
                    n += 1
    rules = _rules(tmp_path, "[planner]\nallow_enucleation = false\nallow_segment_resection = false\n")
    out = assess(p.ctx(), FULL, rules)
    plan = out.remnant["resection_plan"]
    kinds = [t["treatment"] for t in plan["lesion_treatments"]]
    assert kinds.count("ablation") == 6
    assert kinds.count(None) == 54
    assert all("ablation count" in t["untreated_reason"] for t in plan["lesion_treatments"] if t["treatment"] is None)
    assert plan["treated_tumor_ml"] == pytest.approx(6 * VOXEL_ML)


def test_the_ablation_limit_uses_the_edge_to_edge_diameter(tmp_path):
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    near = p.add_in_segment(3, 1, 2, 2, max_3d_diameter_mm=28.0)  # centre to centre 28 mm ...
    near.max_3d_diameter_edge_mm = 31.0  # ... but 31 mm edge to edge: over the 30 mm limit
    ok = p.add_in_segment(6, 1, 2, 2, max_3d_diameter_mm=26.0)
    ok.max_3d_diameter_edge_mm = 29.0
    rules = _rules(tmp_path, "[planner]\nallow_enucleation = false\nallow_segment_resection = false\n")
    plan = assess(p.ctx(), FULL, rules).remnant["resection_plan"]
    kinds = {t["lesion_id"]: t["treatment"] for t in plan["lesion_treatments"]}
    assert kinds == {near.id: None, ok.id: "ablation"}
    assert "ablation: diameter 31.0 mm > 30 mm" in plan["lesion_treatments"][0]["untreated_reason"]


@pytest.mark.parametrize("radius", [0.5, 4.0, 5.0, 7.3, 12.0])
def test_ball_dilation_equals_kd_tree_distances(radius):
    from scipy.spatial import cKDTree

    from netlm_imaging.classify.zones import dilate_ball

    rng = np.random.default_rng(7)
    spacing = np.array([0.8, 1.3, 2.5])
    mask = rng.random((18, 16, 10)) > 0.985
    got = dilate_ball(mask, radius, spacing)
    idx = np.indices(mask.shape).reshape(3, -1).T * spacing
    d, _ = cKDTree(np.argwhere(mask) * spacing).query(idx, k=1)
    assert np.array_equal(got.ravel(), d <= radius + 1e-9)


def test_two_stage_hepatectomy_needs_a_lesion_in_the_future_remnant():
    """A single mass in segments 4-8 of a chemotherapy liver: the extended right hepatectomy that clears it
    leaves segments 1-3 (counted here) below 30 % of TELV. PVE and ALPPS apply; a two-stage hepatectomy
    (Kawaguchi 2019: the first stage clears the future remnant) has nothing to do in its first stage."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(10, 16, 2, 16, 2, 16, max_3d_diameter_mm=150.0)  # x 10..25: segments 4-8 only
    flr_now = (SLICES[1] + SLICES[2] + SLICES[3]) * SLICE_ML  # 8 slices, no tumour: 320 mL
    telv = flr_now / 0.25  # sFLR 25 %: PVE's 37.9 % growth reaches 34.5 % > 30 %
    clin = ClinicalInputs(
        **{**FULL.__dict__, "weight_kg": weight_for_telv(telv, 175.0), "liver_condition": "chemotherapy"}
    )
    st = assess(p.ctx(), clin, load_rules()).classification["staged_strategies"]
    assert st["flr_now_ml"] == pytest.approx(flr_now)
    two = st["strategies"]["two_stage_hepatectomy"]
    assert two["first_stage_clears_lesions"] == []
    assert two["applicable"] is False
    assert "no lesion in the future remnant" in two["note"]
    assert st["strategies"]["portal_vein_embolisation"]["reaches_threshold"] is True
    assert st["possible"] is True
    assert "two_stage_hepatectomy" not in st["reason"]
    assert "portal_vein_embolisation" in st["reason"]


def test_the_console_says_why_each_untreated_lesion_stays_untreated(tmp_path):
    """Enucleation off, lesions of 40 mm (> the 30 mm ablation limit) in segments 2, 3, 5, 6, 7, 8: the plan leaves
    some untreated and the summary gives each one's reason (ablation size limit, not covered by the resection)."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    for seg in (2, 3, 5, 6, 7, 8):
        p.add_in_segment(seg, 1, 4, 4, max_3d_diameter_mm=40.0)
    out = assess(p.ctx(), FULL, _rules(tmp_path, "[planner]\nallow_enucleation = false\n"))
    untreated = sorted(
        t["lesion_id"] for t in out.remnant["resection_plan"]["lesion_treatments"] if t["treatment"] is None
    )
    assert untreated
    lines = [ln for ln in out.summary_lines if ln.startswith("Untreated lesion ")]
    assert [int(ln.split()[2].rstrip(":")) for ln in lines] == untreated[:3]
    assert all("ablation: diameter 40.0 mm > 30 mm" in ln and "enucleation/wedge disabled" in ln for ln in lines)
    if len(untreated) > 3:
        assert any(ln.startswith(f"... and {len(untreated) - 3} more untreated") for ln in out.summary_lines)


def test_without_height_and_weight_the_standard_resections_are_judged_as_the_plan_on_the_non_tumorous_liver():
    """No height or weight: no TELV, so the plan falls back to the CT non-tumorous liver and its 25 % (rules
    ``flr.fallback_denominator``); each standard resection is judged on that same basis. It showed the 25 % beside
    ``adequacy_basis: telv`` and no verdict. Truth: the demo's own per-segment voxel counts (truth.json)."""
    import json
    from pathlib import Path

    from netlm_imaging import analyze

    demo = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
    seg = json.loads((demo / "truth.json").read_text())["segments"]
    non_tumorous = sum(s["liver_voxels_excluding_lesions"] for s in seg.values())
    rep = analyze(
        image=demo / "ct.nii.gz",
        segs=[demo / "seg.nii.gz", f"segments={demo / 'couinaud.nii.gz'}"],
        labels="liver=1,lesion=2,spleen=3",
    ).to_dict()
    assert rep["remnant"]["adequacy_basis"] == "non_tumorous"
    flr_rules = load_rules()["flr"]
    threshold = flr_rules["non_tumorous_threshold_percent"]["normal"]
    for r in rep["remnant"]["standard_resections"]:
        kept = sum(seg[str(k)]["liver_voxels_excluding_lesions"] for k in r["remnant_segments"])
        flr = 100.0 * kept / non_tumorous
        assert r["flr_percent_of_non_tumorous"] == pytest.approx(flr, rel=1e-6)
        assert (r["adequacy_basis"], r["threshold_percent"]) == ("non_tumorous", threshold)
        assert r["adequate"] is (flr > threshold if flr_rules["comparator"] == ">" else flr >= threshold), r["name"]
    verdicts = {r["name"]: r["adequate"] for r in rep["remnant"]["standard_resections"]}
    assert verdicts["right_hepatectomy"] is False  # 21.6 % of the non-tumorous liver
    assert verdicts["left_hepatectomy"] is True  # 80.0 %


def _extended_right_study(sflr: float) -> tuple[SlabLiver, float]:
    """One 150 mm lesion in segments 4-8 (no ablation or enucleation), and the weight (175 cm tall) that makes
    the extended right hepatectomy's remnant (segments 1-3, counted here) ``sflr`` % of the TELV."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(10, 16, 2, 16, 2, 16, max_3d_diameter_mm=150.0)  # x 10..25: segments 4-8
    lesion_vox = p.labels > 0
    flr_now = sum(float(np.count_nonzero((p.seg == s) & ~lesion_vox)) * VOXEL_ML for s in (1, 2, 3))
    return p, weight_for_telv(flr_now / (sflr / 100.0), 175.0)


@pytest.mark.parametrize(("sflr", "open_"), [(30.0, True), (45.0, False)], ids=["30%-open", "45%-decided"])
def test_without_a_liver_condition_only_what_every_condition_decides_alike_is_decided(sflr, open_):
    """One 150 mm lesion in segments 4-8 (no ablation or enucleation): only an extended right hepatectomy clears it,
    leaving segments 1-3. At an sFLR of 30 % that is adequate for a normal liver (20 %) but not a cirrhotic one
    (40 %, clinical_rules.md section 6): without liver_condition the type is 1 or 4 and named as missing. At 45 %
    every condition decides alike and the type stays 1."""
    p, weight = _extended_right_study(sflr)
    rules = load_rules()

    def verdicts(condition):
        clin = ClinicalInputs(**{**FULL.__dict__, "weight_kg": weight, "liver_condition": condition})
        out = assess(p.ctx(), clin, rules)
        c = out.classification
        ext = next(r for r in out.remnant["standard_resections"] if r["name"] == "extended_right_hepatectomy")
        return c["mahuron_type"], c["mahuron_type_range"], c["resectable_cloyd"], ext, c["missing_inputs"], out

    normal, cirrhotic, unknown = verdicts("normal"), verdicts("cirrhosis"), verdicts(None)
    assert normal[3]["standardized_flr_percent"] == pytest.approx(sflr, rel=1e-9)
    assert normal[:3] == ("1", None, True)
    assert normal[3]["adequate"] is True
    if open_:
        assert cirrhotic[:3] == ("4", None, False)  # nothing can be removed: 0 % debulking, no symptoms
        assert cirrhotic[3]["adequate"] is False
        assert unknown[:3] == (None, ["1", "4"], None)
        assert unknown[3]["adequate"] is None
        assert "liver_condition" in unknown[3]["missing_inputs"]
        said = [x for x in unknown[5].summary_lines if x.startswith("Mahuron type 1 or 4")]
        assert said == ["Mahuron type 1 or 4 depending on the liver condition (not given: give liver_condition)"]
    else:
        assert cirrhotic[:3] == normal[:3]
        assert unknown[:3] == normal[:3]
        assert unknown[3]["adequate"] is True
    assert "liver_condition" in unknown[4]
    assert "liver_condition" not in normal[4]


def test_without_a_liver_condition_cloyd_says_what_each_liver_decides():
    """The 30 % study above with the ECOG status unknown: Cloyd is undetermined with a normal liver (performance
    status missing) and not resectable with a cirrhotic one (nothing can be removed). It said "resectable with a
    normal liver but not with an injured one ... liver_condition decides it"; both inputs are missing."""
    p, weight = _extended_right_study(30.0)

    def cloyd(condition):
        clin = ClinicalInputs(
            **{**FULL.__dict__, "weight_kg": weight, "liver_condition": condition, "performance_status": None}
        )
        return assess(p.ctx(), clin, load_rules()).classification

    assert (cloyd("normal")["resectable_cloyd"], cloyd("cirrhosis")["resectable_cloyd"]) == (None, False)
    unknown = cloyd(None)
    assert unknown["resectable_cloyd"] is None
    assert {"performance_status", "liver_condition"} <= set(unknown["missing_inputs"])
    said = "undetermined with a normal liver, not resectable with an injured one (FLR threshold 40%)"
    assert any(r.startswith(said) for r in unknown["rationale"])
    assert not any(r.startswith("resectable with a normal liver") for r in unknown["rationale"])


def test_without_a_liver_condition_the_mahuron_rationale_names_both_livers_types():
    """The 30 % study above with the symptoms unknown: type 1 with a normal liver; with a cirrhotic one nothing
    can be removed and the symptoms decide 3 or 4. The rationale said 'type 1 with a normal liver,  with an
    injured one' (the injured liver's undecided type was left blank)."""
    p, weight = _extended_right_study(30.0)
    clin = ClinicalInputs(**{**FULL.__dict__, "weight_kg": weight, "symptoms": None, "liver_condition": None})
    c = assess(p.ctx(), clin, load_rules()).classification
    assert (c["mahuron_type"], c["mahuron_type_range"]) == (None, ["1", "3 or 4"])
    said = "type 1 with a normal liver, 3 or 4 with an injured one (FLR threshold 40%)"
    assert any(said in r for r in c["rationale"]), c["rationale"]
