"""Decisions on edge inputs name only what is truly missing (the charter: a decision whose inputs are
missing is null with the missing inputs named, never a guess; an input that was given is never named).

- A lesion segmentation holding no liver lesion: nothing to resect, so Cloyd's resection criterion
  (clinical_rules.md section 3, "resection of >90% of metastases feasible") and Mahuron (section 1)
  are not applicable: null with no missing input, not "intrahepatic lesions" missing.
- Lesions and a Couinaud segment map without a liver mask: the segment table (liver voxels per
  segment) cannot be measured; the liver mask is what is missing, not the segment map that was given.
"""

from __future__ import annotations

import pytest
from rules_coverage import user_rules
from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, VOXEL_ML, SlabLiver, assess, weight_for_telv

from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs
from netlm_imaging.errors import InputError


def test_a_segmentation_without_liver_lesions_leaves_cloyd_open_with_nothing_missing():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    out = assess(p.ctx(), FULL_CLINICAL, load_rules())
    c = out.classification
    assert c["mahuron_type"] is None
    assert c["resectable_cloyd"] is None
    assert "Cloyd resectable: n/a (no intrahepatic lesions)" in out.summary_lines
    crit = c["cloyd_criteria"]["resection_feasible"]
    assert (crit["met"], crit["missing_inputs"]) == (None, [])
    assert "not applicable: no intrahepatic lesions" in crit["rule"]
    assert c["missing_inputs"] == []  # every clinical input is given; no lesion is not a missing input
    assert any("Cloyd resection criteria not applicable" in r for r in c["rationale"])


def test_only_extrahepatic_lesions_still_fail_cloyd_on_extrahepatic_disease():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(3, 2, NY + 1, 2, 0, 2)  # rows >= NY lie outside the liver
    c = assess(p.ctx(), FULL_CLINICAL, load_rules()).classification
    assert c["resectable_cloyd"] is False
    assert c["cloyd_criteria"]["no_extrahepatic_disease"]["met"] is False
    assert c["missing_inputs"] == []


def test_a_segment_map_without_a_liver_mask_names_the_liver_mask_not_the_map():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(3, 2, 4, 4)
    p.add_in_segment(6, 2, 4, 4)
    out = assess(p.ctx(with_liver=False), FULL_CLINICAL, load_rules())
    c = out.classification
    assert c["distribution"] == "unknown"
    assert c["mahuron_type"] is None
    assert c["missing_inputs"] == ["liver mask"]
    assert not any(r.startswith("no Couinaud segment map") for r in c["rationale"])
    assert any("segment map given without a liver mask" in r for r in c["rationale"])
    # without the map it is the map that is missing too
    c2 = assess(p.ctx(with_liver=False, with_segments=False), FULL_CLINICAL, load_rules()).classification
    assert c2["missing_inputs"] == ["liver mask", "segment map"]


def _right_mass_needing_pve(condition):
    """A 140 mm mass filling the right liver (x 13..28: segments 5-8): only a right hemihepatectomy
    clears it, leaving segments 1-4 (slices 2+3+3+4, tumour-free) = 18 % of the TELV."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * VOXEL_ML  # 480 mL
    telv = flr_ml / 0.18
    clin = ClinicalInputs(
        **{**FULL_CLINICAL.__dict__, "weight_kg": weight_for_telv(telv, 175.0), "liver_condition": condition}
    )
    return assess(p.ctx(), clin, load_rules()).classification["staged_strategies"]


@pytest.mark.parametrize(
    ("condition", "pve", "alpps", "possible"),
    [
        ("normal", True, True, True),  # 18 x 1.379 = 24.8 % and 18 x 1.843 = 33.2 % > 20 %
        ("chemotherapy", False, True, True),  # > 30 % only after ALPPS
        ("cirrhosis", False, False, False),  # neither reaches 40 %
        (None, None, None, None),  # 20 % says yes, 40 % says no: undetermined
    ],
)
def test_staged_strategies_without_a_liver_condition_decide_only_what_every_condition_decides(
    condition, pve, alpps, possible
):
    st = _right_mass_needing_pve(condition)
    assert st["needed"] is True
    assert st["clearing_resected_segments"] == [5, 6, 7, 8]
    assert st["flr_now_percent"] == pytest.approx(18.0)
    s = st["strategies"]
    assert s["portal_vein_embolisation"]["expected_flr_percent"] == pytest.approx(18.0 * 1.379)
    assert s["alpps"]["expected_flr_percent"] == pytest.approx(18.0 * 1.843)
    assert s["portal_vein_embolisation"]["reaches_threshold"] is pve
    assert s["alpps"]["reaches_threshold"] is alpps
    assert st["possible"] is possible
    if condition is None:
        assert s["alpps"]["missing_inputs"] == ["liver_condition"]
        assert st["missing_inputs"] == ["liver_condition"]
        assert "undetermined without liver_condition" in st["reason"]


def _non_tumorous_rules(tmp_path, extra=""):
    f = tmp_path / "r.toml"
    f.write_text('[flr]\ndenominator = "non_tumorous"\n' + extra)
    return load_rules(f)


def test_a_liver_condition_without_a_sourced_threshold_on_its_denominator_leaves_the_decisions_open(tmp_path):
    """CR section 6: no study gives an FLR threshold after chemotherapy on the CT non-tumorous liver.
    Judged on that denominator, a chemotherapy liver's FLR decisions are null, naming the rules key
    that would give the threshold; the study is still measured (it stopped with exit 3)."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(6, 1, 2, 2)
    clin = ClinicalInputs(**{**FULL_CLINICAL.__dict__, "liver_condition": "chemotherapy"})
    out = assess(p.ctx(), clin, _non_tumorous_rules(tmp_path))
    key = "flr.non_tumorous_threshold_percent.chemotherapy"
    c = out.classification
    assert c["mahuron_type"] is None
    assert c["resectable_cloyd"] is None
    assert c["cloyd_criteria"]["adequate_flr"]["missing_inputs"] == [key]
    assert key in c["missing_inputs"]
    assert out.remnant["resection_plan"] is None
    assert out.remnant["flr_threshold_percent"] is None
    assert all(r["adequate"] is None and key in r["missing_inputs"] for r in out.remnant["standard_resections"])


def test_a_user_threshold_for_that_condition_is_accepted_and_used(tmp_path):
    """The user may give the missing threshold: 1 x 2 x 2 voxels in segment 6, right hemihepatectomy leaves
    segments 1-4 (12 slices) of the non-tumorous liver: 12 / 30 slices = 40 %."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_in_segment(6, 1, 2, 2)
    clin = ClinicalInputs(**{**FULL_CLINICAL.__dict__, "liver_condition": "chemotherapy"})
    nt_ml = 30 * NY * NZ * VOXEL_ML - 4 * VOXEL_ML
    right_flr = 100.0 * 12 * NY * NZ * VOXEL_ML / nt_ml  # 40.0 %
    for thr, adequate in ((39.0, True), (41.0, False)):
        rules = _non_tumorous_rules(tmp_path, f"[flr.non_tumorous_threshold_percent]\nchemotherapy = {thr}\n")
        rows = {r["name"]: r for r in assess(p.ctx(), clin, rules).remnant["standard_resections"]}
        right = rows["right_hepatectomy"]
        assert right["flr_percent_of_non_tumorous"] == pytest.approx(right_flr)
        assert (right["threshold_percent"], right["adequate"]) == (thr, adequate)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[flr.non_tumorous_threshold_percent]\nchemo = 30\n", "unknown rules key"),
        ("[flr.non_tumorous_threshold_percent]\nsteatosis = -3\n", "must be >= 0"),
        ("[flr.threshold_percent]\nnormal = -3\n", "must be >= 0"),
    ],
)
def test_a_threshold_for_an_unknown_condition_or_below_zero_is_refused(tmp_path, text, message):
    f = tmp_path / "r.toml"
    f.write_text(text)
    with pytest.raises(InputError, match=message):
        load_rules(f)


def test_without_a_segment_map_the_staged_strategies_are_undetermined_not_impossible():
    """The 140 mm right mass (too big to wedge or ablate) that a right hemihepatectomy clears after PVE
    (the test above): without the Couinaud map no resection can be planned, so whether staging (or one
    stage) clears it is unknown. It read "no anatomically possible plan clears every lesion, whatever the
    FLR: staging cannot make the disease clearable", and the lesion "outside every segment"."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    mass = p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * VOXEL_ML
    clin = ClinicalInputs(**{**FULL_CLINICAL.__dict__, "weight_kg": weight_for_telv(flr_ml / 0.18, 175.0)})
    mapped = assess(p.ctx(), clin, load_rules()).classification["staged_strategies"]
    assert (mapped["needed"], mapped["possible"], mapped["clearing_resected_segments"]) == (True, True, [5, 6, 7, 8])
    out = assess(p.ctx(with_segments=False), clin, load_rules())
    staged = out.classification["staged_strategies"]
    assert (staged["needed"], staged["possible"], staged["missing_inputs"]) == (None, None, ["segment map"])
    assert "staging cannot make" not in staged["reason"]
    assert any(
        line.startswith("Staged strategies: undetermined without a Couinaud segment map") for line in out.summary_lines
    )
    why = next(t for t in out.remnant["resection_plan"]["lesion_treatments"] if t["lesion_id"] == mass.id)
    assert "no Couinaud segment map" in why["untreated_reason"]
    assert "outside every segment" not in why["untreated_reason"]


def test_the_console_quotes_the_flr_on_the_denominator_its_threshold_is_on(tmp_path):
    """With flr.denominator = "non_tumorous" the console's plan line read "FLR 480 mL, sFLR 31.1% (threshold
    25% of non_tumorous)": the TELV percentage beside a threshold on the non-tumorous liver. The 140 mm
    mass (4096 voxels) fills segments 5-8; the right hemihepatectomy keeps segments 1-4 (12 slices x 400
    voxels, tumour-free): 480 mL of 1200 - 409.6 = 790.4 mL non-tumorous liver = 60.7 %."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * VOXEL_ML
    non_tumorous = (30 * NY * NZ - 16**3) * VOXEL_ML
    out = assess(p.ctx(), FULL_CLINICAL, user_rules(tmp_path, {"flr.denominator": "non_tumorous"}))
    plan = out.remnant["resection_plan"]
    assert plan["resected_segments"] == [5, 6, 7, 8]
    assert plan["remnant_ml"] == pytest.approx(flr_ml)
    line = next(x for x in out.summary_lines if x.startswith("Debulking plan:"))
    pct = 100 * flr_ml / non_tumorous  # 60.73
    assert line.endswith(f"FLR 480 mL = {pct:.1f}% of the non-tumorous liver (threshold 25% of non_tumorous)")
    assert "sFLR" not in line
    telv_line = next(x for x in assess(p.ctx(), FULL_CLINICAL, load_rules()).summary_lines if x.startswith("Debulking"))
    assert ", sFLR " in telv_line  # on the TELV the sFLR is the deciding percentage
    assert telv_line.endswith("(threshold 20% of telv)")


def test_without_a_liver_condition_the_achievable_debulking_is_not_the_normal_livers():
    """The 140 mm right mass: its right hemihepatectomy keeps segments 1-4 = 480 mL, set to 30 % of the TELV:
    adequate for a normal liver (> 20 %), not for cirrhosis (> 40 %), whose best plan then treats nothing
    (the untreated liver, 790.4 mL = 49.4 % of the TELV, is adequate). Without a liver condition the
    report said achievable debulking 100 % and Cloyd's resection criterion met, beside a Cloyd verdict and
    a Mahuron type left open for the liver condition."""
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    p.add_box(13, 16, 2, 16, 2, 16, max_3d_diameter_mm=140.0)
    flr_ml = (2 + 3 + 3 + 4) * NY * NZ * VOXEL_ML
    clin = {**FULL_CLINICAL.__dict__, "weight_kg": weight_for_telv(flr_ml / 0.30, 175.0)}
    c = assess(p.ctx(), ClinicalInputs(**{**clin, "liver_condition": None}), load_rules()).classification
    assert (c["mahuron_type"], c["mahuron_type_range"]) == (None, ["1", "4"])  # symptoms "none": 4 below 70 %
    assert c["achievable_debulking_percent"] is None
    assert c["achievable_debulking_count_percent"] is None
    crit = c["cloyd_criteria"]["resection_feasible"]
    assert (crit["value"], crit["met"], crit["missing_inputs"]) == (None, None, ["liver_condition"])
    assert "100.0 with a normal liver, 0.0 with an injured one" in crit["rule"]
    assert c["cloyd_criteria"]["adequate_flr"]["met"] is True  # both livers' plans keep an adequate FLR
    assert c["resectable_cloyd"] is None
    assert "liver_condition" in c["missing_inputs"]
    for condition, pct in (("normal", 100.0), ("cirrhosis", 0.0)):  # each condition decides its own
        given = assess(p.ctx(), ClinicalInputs(**{**clin, "liver_condition": condition}), load_rules()).classification
        assert given["achievable_debulking_percent"] == pytest.approx(pct)
        assert given["cloyd_criteria"]["resection_feasible"]["value"] == pytest.approx(pct)
