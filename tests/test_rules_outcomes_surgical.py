"""Every key of the surgical tables: change it in a rules file, see the classification or plan change.

Covers [debulking], [mahuron], [burden], [cloyd], [grade], [primary], [frilling], [flr],
[body], [anatomy], [resections], [planner] and [staging]. The studies are the slab
livers of ``surgical_phantoms`` (Couinaud segments as slabs of known voxel counts on an
oblique anisotropic grid, 0.1 mL voxels); expected numbers are counted or computed here
from those counts and from the published rules (clinical_rules.md sections 1-6, 9),
never taken from the code. Each test loads the shipped rules and a user rules file
changing one key through ``load_rules`` (as ``--rules`` does).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rules_coverage import covers, user_rules
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

from netlm_imaging import analyze
from netlm_imaging.classify.classifications import (
    burden_category,
    cloyd_resectability,
    frilling_type,
    mahuron_type,
    primary_tumour_advice,
    who_grade,
)
from netlm_imaging.classify.distribution import lesion_distribution
from netlm_imaging.clinical.inputs import ClinicalInputs
from netlm_imaging.errors import InputError
from netlm_imaging.measure.segments import compute_segment_table

FULL = FULL_CLINICAL
LIVER_ML = 30 * NY * NZ * VOXEL_ML  # 1200 mL, 40 mL per x-slice
SLICE_ML = NY * NZ * VOXEL_ML


def _liver() -> SlabLiver:
    return SlabLiver(SLICES, ny=NY, nz=NZ)


def _mahuron(rules, achievable, n_lesions=3, symptoms="none"):
    return mahuron_type(
        n_lesions=n_lesions,
        achievable_percent=achievable,
        achievable_missing=[],
        symptoms=symptoms,
        distribution="bilobar",
        debulking=rules["debulking"],
        mahuron=rules["mahuron"],
    )


# ------------------------------------------------------------------ [debulking] [mahuron]
@covers("debulking.threshold_percent")
def test_debulking_threshold_decides_type_2(tmp_path):
    assert _mahuron(user_rules(tmp_path), 75.0)["type"] == "2"  # >= 70 %, not complete (Mahuron 2023)
    assert _mahuron(user_rules(tmp_path, {"debulking.threshold_percent": 80.0}), 75.0)["type"] == "4"


@covers("debulking.comparator")
def test_debulking_comparator_at_exactly_the_threshold(tmp_path):
    assert _mahuron(user_rules(tmp_path), 70.0)["type"] == "2"
    assert _mahuron(user_rules(tmp_path, {"debulking.comparator": ">"}), 70.0)["type"] == "4"


@covers("debulking.primary_measure")
def test_primary_measure_count_judges_the_plan_by_lesion_count(tmp_path):
    """Two lesions, only the larger (72 % of the volume) can be treated: 72 % by volume, 50 % by count."""
    p = _liver()
    p.add_in_segment(7, 4, 6, 6)  # 144 voxels
    p.add_in_segment(2, 2, 4, 7)  # 56 voxels
    tight = {
        "planner.allow_enucleation": False,
        "planner.allow_ablation": False,
        "flr.denominator": "non_tumorous",
        "flr.non_tumorous_threshold_percent.normal": 80.0,
    }
    clin = ClinicalInputs(symptoms="none", liver_condition="normal")
    by_volume = assess(p.ctx(), clin, user_rules(tmp_path, tight)).classification
    assert by_volume["achievable_debulking_percent"] == pytest.approx(100 * 144 / 200)
    assert by_volume["mahuron_type"] == "2"
    by_count = assess(p.ctx(), clin, user_rules(tmp_path, {**tight, "debulking.primary_measure": "count"}))
    assert by_count.classification["achievable_debulking_percent"] == pytest.approx(50.0)
    assert by_count.classification["mahuron_type"] == "4"


@covers("mahuron.limited_max_lesions")
def test_limited_max_lesions_separates_type_1_from_2(tmp_path):
    assert _mahuron(user_rules(tmp_path), 100.0, n_lesions=6)["type"] == "2"
    assert _mahuron(user_rules(tmp_path, {"mahuron.limited_max_lesions": 6}), 100.0, n_lesions=6)["type"] == "1"


@covers("mahuron.complete_clearance_percent")
def test_complete_clearance_percent_is_what_type_1_needs(tmp_path):
    assert _mahuron(user_rules(tmp_path), 95.0)["type"] == "2"
    assert _mahuron(user_rules(tmp_path, {"mahuron.complete_clearance_percent": 95.0}), 95.0)["type"] == "1"


@covers("mahuron.types_3_4_inferred_note")
def test_types_3_4_note_is_quoted_in_the_rationale(tmp_path):
    note = "types 3-4 read from the clinic's protocol"
    out = _mahuron(user_rules(tmp_path, {"mahuron.types_3_4_inferred_note": note}), 40.0)
    assert out["type"] == "4"
    assert note in out["rationale"][0]
    assert note not in _mahuron(user_rules(tmp_path), 40.0)["rationale"][0]


# ------------------------------------------------------------------ [burden]
@covers("burden.bin_upper_edges_percent")
def test_burden_bin_edges_decide_the_category(tmp_path):
    assert burden_category(12.0, user_rules(tmp_path)["burden"])["category"] == ">10-25"
    changed = user_rules(tmp_path, {"burden.bin_upper_edges_percent": [15.0, 25.0, 50.0]})
    assert burden_category(12.0, changed["burden"])["category"] == "<=10"  # first bin now up to 15 %


@covers("burden.bin_labels")
def test_burden_bin_labels_name_the_categories(tmp_path):
    labels = ["low", "moderate", "high", "very high"]
    assert burden_category(30.0, user_rules(tmp_path, {"burden.bin_labels": labels})["burden"])["category"] == "high"


@covers("burden.clarinet_split_percent")
def test_clarinet_split(tmp_path):
    assert burden_category(25.1, user_rules(tmp_path)["burden"])["clarinet_split"] == ">25"  # CLARINET
    changed = user_rules(tmp_path, {"burden.clarinet_split_percent": 30.0})
    assert burden_category(25.1, changed["burden"])["clarinet_split"] == "<=30"


# ------------------------------------------------------------------ [cloyd] [grade] [primary]
def _cloyd(rules, clinical=FULL, achievable=100.0):
    return cloyd_resectability(
        clinical=clinical,
        extrahepatic_lesions_seen=0,
        flr_adequate=True,
        flr_missing=[],
        achievable_percent=achievable,
        achievable_missing=[],
        cloyd=rules["cloyd"],
        grade=who_grade(clinical, rules["grade"]),
    )


@covers("cloyd.max_ecog")
def test_cloyd_max_ecog(tmp_path):
    ecog2 = replace(FULL, performance_status=2)
    assert _cloyd(user_rules(tmp_path), ecog2)["resectable"] is False
    assert _cloyd(user_rules(tmp_path, {"cloyd.max_ecog": 2}), ecog2)["resectable"] is True


@covers("cloyd.allowed_grades")
def test_cloyd_allowed_grades(tmp_path):
    g3 = replace(FULL, grade=3, ki67_percent=25.0)
    assert _cloyd(user_rules(tmp_path), g3)["resectable"] is False  # Cloyd: grade 1 or 2
    assert _cloyd(user_rules(tmp_path, {"cloyd.allowed_grades": [1, 2, 3]}), g3)["resectable"] is True


@covers("cloyd.resection_percent")
def test_cloyd_resection_percent(tmp_path):
    assert _cloyd(user_rules(tmp_path), achievable=85.0)["resectable"] is False  # > 90 % needed
    assert _cloyd(user_rules(tmp_path, {"cloyd.resection_percent": 80.0}), achievable=85.0)["resectable"] is True


@covers("cloyd.comparator")
def test_cloyd_comparator_at_exactly_90(tmp_path):
    assert _cloyd(user_rules(tmp_path), achievable=90.0)["resectable"] is True
    assert _cloyd(user_rules(tmp_path, {"cloyd.comparator": ">"}), achievable=90.0)["resectable"] is False


def _grade(rules, ki67):
    return who_grade(ClinicalInputs(ki67_percent=ki67), rules["grade"])


@covers("grade.ki67_g2_min_percent")
def test_ki67_g2_min(tmp_path):
    assert _grade(user_rules(tmp_path), 4.0)["grade"] == 2  # WHO 2019: 3-20 %
    assert _grade(user_rules(tmp_path, {"grade.ki67_g2_min_percent": 5.0}), 4.0)["grade"] == 1


@covers("grade.ki67_g3_above_percent")
def test_ki67_g3_above(tmp_path):
    assert _grade(user_rules(tmp_path), 25.0)["grade"] == 3  # WHO 2019: > 20 %
    assert _grade(user_rules(tmp_path, {"grade.ki67_g3_above_percent": 30.0}), 25.0)["grade"] == 2


@covers("grade.source")
def test_grade_source_is_quoted(tmp_path):
    text = "WHO 2022 endocrine tumours"
    assert any(text in r for r in _grade(user_rules(tmp_path, {"grade.source": text}), 4.0)["rationale"])
    assert not any(text in r for r in _grade(user_rules(tmp_path), 4.0)["rationale"])


@covers("primary.type_1_advice", "primary.type_2_advice")
@pytest.mark.parametrize("mtype", ["1", "2"])
def test_primary_tumour_advice_texts(tmp_path, mtype):
    key = f"primary.type_{mtype}_advice"
    shipped = user_rules(tmp_path)["primary"]
    assert primary_tumour_advice(mtype, False, shipped)["advice"] == shipped[f"type_{mtype}_advice"]
    changed = user_rules(tmp_path, {key: "discuss at the NET board"})["primary"]
    assert primary_tumour_advice(mtype, False, changed)["advice"] == "discuss at the NET board"


# ------------------------------------------------------------------ [frilling]
def _frilling(rules, volumes, involvement=10.0):
    p = _liver()
    lesions = [p.add_box(2 * i, 1, 0, 1, 0, 1) for i in range(len(volumes))]
    lesions = [replace(les, volume_ml=v) for les, v in zip(lesions, volumes)]
    return frilling_type(lesions, "bilobar", rules["frilling"], involvement)["type"]


@covers("frilling.dominant_lesion_fraction")
def test_frilling_dominant_fraction(tmp_path):
    assert _frilling(user_rules(tmp_path), [60.0, 20.0, 20.0]) == "II"  # 60 % > 50 %
    assert _frilling(user_rules(tmp_path, {"frilling.dominant_lesion_fraction": 0.7}), [60.0, 20.0, 20.0]) is None


@covers("frilling.diffuse_min_involvement_percent")
def test_frilling_diffuse_involvement(tmp_path):
    vols = [30.0, 35.0, 35.0]  # no dominant lesion
    assert _frilling(user_rules(tmp_path), vols, involvement=30.0) == "III"  # >= 25 %
    changed = user_rules(tmp_path, {"frilling.diffuse_min_involvement_percent": 40.0})
    assert _frilling(changed, vols, involvement=30.0) is None


# ------------------------------------------------------------------ [flr] [body]
def _std(out, name):
    return next(r for r in out.remnant["standard_resections"] if r["name"] == name)


def _tiny_lesion_liver():
    """One voxel lesion in segment 7 (a plan exists), non-tumorous liver 1199.9 mL."""
    p = _liver()
    p.add_in_segment(7, 1, 1, 1, max_3d_diameter_mm=4.0)
    return p


def _right_hep_flr_ml():
    return (SLICES[1] + SLICES[2] + SLICES[3] + SLICES[4]) * SLICE_ML  # 12 slices = 480 mL


def _telv(height=175.0, weight=70.0):
    return -794.41 + 1267.28 * math.sqrt(height * weight / 3600.0)  # Vauthey, Mosteller (CR section 6)


@covers("flr.denominator")
def test_flr_denominator_chooses_the_deciding_percentage(tmp_path):
    p = _tiny_lesion_liver()
    default = assess(p.ctx(), FULL, user_rules(tmp_path)).remnant
    assert default["adequacy_basis"] == "telv"
    assert default["flr_threshold_percent"] == 20.0
    changed = assess(p.ctx(), FULL, user_rules(tmp_path, {"flr.denominator": "non_tumorous"})).remnant
    assert changed["adequacy_basis"] == "non_tumorous"
    assert changed["flr_threshold_percent"] == 25.0  # Shoup, on the non-tumorous liver


@covers("flr.fallback_denominator")
def test_flr_fallback_denominator_without_height_and_weight(tmp_path):
    p = _tiny_lesion_liver()
    clin = ClinicalInputs(symptoms="none", liver_condition="normal")
    default = assess(p.ctx(), clin, user_rules(tmp_path)).remnant
    assert default["adequacy_basis"] == "non_tumorous"
    assert default["resection_plan"] is not None
    changed = assess(p.ctx(), clin, user_rules(tmp_path, {"flr.fallback_denominator": "none"}))
    assert changed.remnant["resection_plan"] is None
    assert "height/weight" in changed.classification["missing_inputs"]


@covers("flr.comparator")
def test_flr_comparator_at_exactly_the_threshold(tmp_path):
    """Left lateral sectionectomy of a lesion-free liver keeps 24 of 30 slices: FLR exactly 80 %."""
    p = _liver()
    base = {"flr.denominator": "non_tumorous", "flr.non_tumorous_threshold_percent.normal": 80.0}
    default = assess(p.ctx(), FULL, user_rules(tmp_path, base))
    assert _std(default, "left_lateral_sectionectomy")["flr_percent_of_non_tumorous"] == pytest.approx(80.0)
    assert _std(default, "left_lateral_sectionectomy")["adequate"] is False  # ">": 80 is the at-risk group
    changed = assess(p.ctx(), FULL, user_rules(tmp_path, {**base, "flr.comparator": ">="}))
    assert _std(changed, "left_lateral_sectionectomy")["adequate"] is True


@covers(
    "flr.threshold_percent.normal",
    "flr.threshold_percent.chemotherapy",
    "flr.threshold_percent.steatosis",
    "flr.threshold_percent.fibrosis",
    "flr.threshold_percent.cirrhosis",
)
@pytest.mark.parametrize(
    ("condition", "shipped_adequate", "new_threshold"),
    [
        ("normal", True, 35.0),
        ("chemotherapy", True, 35.0),
        ("steatosis", True, 35.0),
        ("fibrosis", False, 30.0),
        ("cirrhosis", False, 30.0),
    ],
)
def test_flr_threshold_per_liver_condition(tmp_path, condition, shipped_adequate, new_threshold):
    """Right hepatectomy keeps 480 mL: sFLR = 480 / TELV(175 cm, 70 kg) = 31.1 % vs 20 (normal) / 30
    (chemotherapy, steatosis: "compromised function") / 40 % (fibrosis/cirrhosis) (CR 6)."""
    sflr = 100 * _right_hep_flr_ml() / _telv()
    assert 30.0 < sflr < 35.0
    p = _liver()
    clin = replace(FULL, liver_condition=condition)
    default = _std(assess(p.ctx(), clin, user_rules(tmp_path)), "right_hepatectomy")
    assert default["standardized_flr_percent"] == pytest.approx(sflr)
    assert default["adequate"] is shipped_adequate
    changed = user_rules(tmp_path, {f"flr.threshold_percent.{condition}": new_threshold})
    assert _std(assess(p.ctx(), clin, changed), "right_hepatectomy")["adequate"] is (not shipped_adequate)


@covers(
    "flr.non_tumorous_threshold_percent.normal",
    "flr.non_tumorous_threshold_percent.fibrosis",
    "flr.non_tumorous_threshold_percent.cirrhosis",
)
@pytest.mark.parametrize(
    ("condition", "shipped_adequate", "new_threshold"),
    [("normal", True, 45.0), ("fibrosis", False, 35.0), ("cirrhosis", False, 35.0)],
)
def test_flr_non_tumorous_threshold_per_liver_condition(tmp_path, condition, shipped_adequate, new_threshold):
    """Right hepatectomy keeps 480 of 1200 mL = 40 % vs 25 % (Shoup) / 40 % (Azoulay; '>' needs more)."""
    p = _liver()
    clin = replace(FULL, liver_condition=condition)
    base = {"flr.denominator": "non_tumorous"}
    default = _std(assess(p.ctx(), clin, user_rules(tmp_path, base)), "right_hepatectomy")
    assert default["flr_percent_of_non_tumorous"] == pytest.approx(40.0)
    assert default["adequate"] is shipped_adequate
    changed = user_rules(tmp_path, {**base, f"flr.non_tumorous_threshold_percent.{condition}": new_threshold})
    assert _std(assess(p.ctx(), clin, changed), "right_hepatectomy")["adequate"] is (not shipped_adequate)


@covers("body.bsa_formula")
def test_bsa_formula(tmp_path):
    p = _tiny_lesion_liver()
    assert assess(p.ctx(), FULL, user_rules(tmp_path)).remnant["bsa_m2"] == pytest.approx(math.sqrt(175 * 70 / 3600))
    dubois = assess(p.ctx(), FULL, user_rules(tmp_path, {"body.bsa_formula": "dubois"})).remnant
    assert dubois["bsa_m2"] == pytest.approx(0.007184 * 175**0.725 * 70**0.425)


@covers("body.telv_intercept_ml", "body.telv_slope_ml_per_m2")
@pytest.mark.parametrize(("key", "value"), [("telv_intercept_ml", -794.0), ("telv_slope_ml_per_m2", 1300.0)])
def test_telv_coefficients(tmp_path, key, value):
    p = _tiny_lesion_liver()
    bsa = math.sqrt(175 * 70 / 3600)
    assert assess(p.ctx(), FULL, user_rules(tmp_path)).remnant["telv_ml"] == pytest.approx(-794.41 + 1267.28 * bsa)
    coef = {"telv_intercept_ml": -794.41, "telv_slope_ml_per_m2": 1267.28, key: value}
    changed = assess(p.ctx(), FULL, user_rules(tmp_path, {f"body.{key}": value})).remnant
    assert changed["telv_ml"] == pytest.approx(coef["telv_intercept_ml"] + coef["telv_slope_ml_per_m2"] * bsa)


@covers("body.telv_formula")
def test_telv_formula_has_one_choice(tmp_path):
    """Only Vauthey's TELV is implemented: it is reported, and any other formula is refused by name."""
    p = _tiny_lesion_liver()
    assert assess(p.ctx(), FULL, user_rules(tmp_path)).remnant["telv_formula"] == "vauthey"
    with pytest.raises(InputError, match=r"'body.telv_formula' = 'urata' is not allowed"):
        user_rules(tmp_path, {"body.telv_formula": "urata"})


@covers("body.height_cm_range", "body.weight_kg_range")
@pytest.mark.parametrize(
    ("key", "header", "widened", "field", "value"),
    [
        ("height_cm_range", {"patient_size_m": 2.6, "patient_weight_kg": 70.0}, [100.0, 300.0], "height_cm", 260.0),
        ("weight_kg_range", {"patient_size_m": 1.75, "patient_weight_kg": 400.0}, [25.0, 500.0], "weight_kg", 400.0),
    ],
)
def test_body_size_ranges_bound_header_and_clinical_values(tmp_path, key, header, widened, field, value):
    """A header value outside the range is ignored (no BSA); a clinical value outside it is refused (exit 3)."""
    p = _tiny_lesion_liver()
    default = assess(p.ctx(header=header), ClinicalInputs(grade=1), user_rules(tmp_path)).remnant
    assert default[field] is None
    assert default["bsa_m2"] is None
    changed = user_rules(tmp_path, {f"body.{key}": widened}, name="wide.json")
    used = assess(p.ctx(header=header), ClinicalInputs(grade=1), changed).remnant
    height = 100.0 * header["patient_size_m"]
    assert used[field] == pytest.approx(value)
    assert used["bsa_m2"] == pytest.approx(math.sqrt(height * header["patient_weight_kg"] / 3600))
    # the clinical file (and a cohort row) is validated by the same key, through the load stage
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps({field: value}))
    rules_file = tmp_path / "wide_rules.json"
    rules_file.write_text(json.dumps({"body": {key: widened}}))
    demo = Path(__file__).resolve().parents[1] / "sample_data" / "netlm_demo"
    with pytest.raises(InputError, match=rf"'{field}' has invalid value {value}.*rules key body.{key}"):
        analyze(demo, clinical=clinical)
    assert analyze(demo, clinical=clinical, rules=rules_file).to_dict()["remnant"][field] == pytest.approx(value)
    with pytest.raises(InputError, match=rf"rules key 'body.{key}' must be \[low, high\]"):
        user_rules(tmp_path, {f"body.{key}": [widened[1], widened[0]]}, name="bad.json")


# ------------------------------------------------------------------ [anatomy] [resections]
def _distribution(rules, segments):
    p = _liver()
    for s in segments:
        p.add_in_segment(s, 1, 2, 2)
    table = compute_segment_table(p.ctx())
    return lesion_distribution(table, rules["anatomy"], len(segments))["distribution"]


@covers("anatomy.right_hemiliver")
def test_right_hemiliver(tmp_path):
    assert _distribution(user_rules(tmp_path), [4, 5]) == "bilobar"
    assert _distribution(user_rules(tmp_path, {"anatomy.right_hemiliver": [6, 7, 8]}), [4, 5]) == "unilobar"


@covers("anatomy.left_hemiliver")
def test_left_hemiliver(tmp_path):
    assert _distribution(user_rules(tmp_path), [4, 5]) == "bilobar"
    assert _distribution(user_rules(tmp_path, {"anatomy.left_hemiliver": [2, 3]}), [4, 5]) == "unilobar"


@covers("anatomy.caudate_side")
def test_caudate_side(tmp_path):
    assert _distribution(user_rules(tmp_path), [1, 5]) == "unilobar"  # segment 1 on neither side
    assert _distribution(user_rules(tmp_path, {"anatomy.caudate_side": "left"}), [1, 5]) == "bilobar"


def _feasible(tmp_path, changes, name, extra=()):
    rules = user_rules(tmp_path, changes)
    out = assess(_liver().ctx(), FULL, rules, resections=extra)
    row = next(r for r in out.remnant["standard_resections"] if r["name"] == name or r["removed_segments"] == name)
    kept = set(range(1, 9)) - set(row["removed_segments"])
    return row["anatomically_feasible"], remnant_possible(kept, rules["anatomy"])


@covers("anatomy.couinaud.min_remnant_segments")
def test_min_remnant_segments(tmp_path):
    """An extended right hepatectomy keeps segments 1-3."""
    assert _feasible(tmp_path, {}, "extended_right_hepatectomy") == (True, True)
    changes = {"anatomy.couinaud.min_remnant_segments": 4}
    assert _feasible(tmp_path, changes, "extended_right_hepatectomy") == (False, False)


@covers("anatomy.couinaud.segments.*.adjacent")
def test_segment_adjacency_decides_contiguity(tmp_path):
    """Resecting segment 4 alone: segment 3 stays joined through 2; cut 2-3 and 3 is isolated."""
    cut = {"anatomy.couinaud.segments.2.adjacent": [1, 4], "anatomy.couinaud.segments.3.adjacent": [4]}
    assert _feasible(tmp_path, {}, [4], extra=[[4]]) == (True, True)
    assert _feasible(tmp_path, cut, [4], extra=[[4]]) == (False, False)


@covers(
    "anatomy.couinaud.segments.*.inflow", "anatomy.couinaud.segments.*.outflow", "anatomy.couinaud.segments.*.biliary"
)
@pytest.mark.parametrize(
    ("role", "structure", "resection"),
    [
        ("inflow", "right_anterior_pedicle", "right_anterior_sectionectomy"),  # lost with 5 and 8
        ("outflow", "right_hepatic_vein", "right_hepatectomy"),  # lost with 7 and 8
        ("biliary", "right_anterior_duct", "right_anterior_sectionectomy"),
    ],
)
def test_segment_drainage_decides_what_a_remnant_keeps(tmp_path, role, structure, resection):
    """Make segment 3 depend on a right-liver structure: the resection that takes it leaves 3 without it."""
    assert _feasible(tmp_path, {}, resection) == (True, True)
    changes = {f"anatomy.couinaud.segments.3.{role}": [structure]}
    assert _feasible(tmp_path, changes, resection) == (False, False)


@covers("anatomy.vessels.*.lost_when_resected")
def test_vessel_lost_when_resected(tmp_path):
    """Were the right hepatic vein lost with segment 8 alone, a right anterior sectionectomy leaves 6-7 undrained."""
    assert _feasible(tmp_path, {}, "right_anterior_sectionectomy") == (True, True)
    changes = {"anatomy.vessels.right_hepatic_vein.lost_when_resected": [8]}
    assert _feasible(tmp_path, changes, "right_anterior_sectionectomy") == (False, False)


@covers("anatomy.vessels.*.role")
def test_vessel_role_must_match_its_use(tmp_path):
    """A structure's role is what the segments need it for: a hepatic vein made an inflow is refused by name."""
    with pytest.raises(InputError, match="right_hepatic_vein"):
        user_rules(tmp_path, {"anatomy.vessels.right_hepatic_vein.role": "inflow"})


@covers("resections.*.segments", "resections.*.label", "resections.*.source")
def test_standard_resection_entries(tmp_path):
    p = _tiny_lesion_liver()
    default = _std(assess(p.ctx(), FULL, user_rules(tmp_path)), "left_hepatectomy")
    assert default["removed_segments"] == [2, 3, 4]
    assert default["flr_ml"] == pytest.approx(LIVER_ML - 10 * SLICE_ML - VOXEL_ML)  # 1-lesion voxel in segment 7
    changes = {
        "resections.left_hepatectomy.segments": [2, 3],
        "resections.left_hepatectomy.label": "Left lateral (clinic name)",
        "resections.left_hepatectomy.source": "clinic protocol",
    }
    changed = _std(assess(p.ctx(), FULL, user_rules(tmp_path, changes)), "left_hepatectomy")
    assert changed["removed_segments"] == [2, 3]
    assert changed["flr_ml"] == pytest.approx(LIVER_ML - 6 * SLICE_ML - VOXEL_ML)
    assert (changed["label"], changed["source"]) == ("Left lateral (clinic name)", "clinic protocol")


# ------------------------------------------------------------------ [planner]
SPARING_ONLY = {"planner.allow_segment_resection": False}


def _plan(tmp_path, p, changes, clinical=FULL):
    out = assess(p.ctx(), clinical, user_rules(tmp_path, changes))
    return out.remnant["resection_plan"]


def _kinds(plan):
    return [t["treatment"] for t in plan["lesion_treatments"]]


@covers("planner.allow_segment_resection")
def test_allow_segment_resection(tmp_path):
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=60.0)  # too large to wedge or ablate
    assert _plan(tmp_path, p, {})["resected_segments"] == [3]
    plan = _plan(tmp_path, p, SPARING_ONLY)
    assert plan["resected_segments"] == []
    assert _kinds(plan) == [None]


@covers("planner.allow_enucleation")
def test_allow_enucleation(tmp_path):
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)  # > 30 mm: not ablatable
    assert _kinds(_plan(tmp_path, p, SPARING_ONLY)) == ["enucleation"]
    assert _kinds(_plan(tmp_path, p, {**SPARING_ONLY, "planner.allow_enucleation": False})) == [None]


@covers("planner.allow_ablation")
def test_allow_ablation(tmp_path):
    p = _liver()
    p.add_in_segment(3, 1, 2, 2, max_3d_diameter_mm=20.0)
    base = {**SPARING_ONLY, "planner.allow_enucleation": False}
    assert _kinds(_plan(tmp_path, p, base)) == ["ablation"]
    assert _kinds(_plan(tmp_path, p, {**base, "planner.allow_ablation": False})) == [None]


@covers("planner.margin_mm", "planner.ablation_margin_mm")
@pytest.mark.parametrize(
    ("key", "kind", "off", "shipped_mm", "new_mm"),
    [
        ("margin_mm", "enucleation", "allow_ablation", 10.0, 5.0),
        ("ablation_margin_mm", "ablation", "allow_enucleation", 5.0, 8.0),
    ],
)
def test_treatment_margins_set_the_parenchyma_cost(tmp_path, key, kind, off, shipped_mm, new_mm):
    """Remnant = non-tumorous liver minus the zone (lesion dilated by the margin, k-d tree in LPS here)."""
    p = _liver()
    les = p.add_in_segment(3, 1, 2, 2, max_3d_diameter_mm=20.0)
    base = {**SPARING_ONLY, f"planner.{off}": False}
    nt = LIVER_ML - 4 * VOXEL_ML
    for margin, changes in ((shipped_mm, base), (new_mm, {**base, f"planner.{key}": new_mm})):
        plan = _plan(tmp_path, p, changes)
        assert _kinds(plan) == [kind]
        lost = sum(parenchyma_ml_by_segment(p, zone_mask(p, les.id, margin)).values())
        assert plan["remnant_ml"] == pytest.approx(nt - lost)


@covers("planner.enucleation_max_diameter_mm")
def test_enucleation_max_diameter(tmp_path):
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    base = {**SPARING_ONLY, "planner.allow_ablation": False}
    assert _kinds(_plan(tmp_path, p, base)) == ["enucleation"]  # 40 <= 50 mm
    assert _kinds(_plan(tmp_path, p, {**base, "planner.enucleation_max_diameter_mm": 35.0})) == [None]


@covers("planner.ablation_max_diameter_mm")
def test_ablation_max_diameter(tmp_path):
    p = _liver()
    p.add_in_segment(3, 1, 2, 2, max_3d_diameter_mm=25.0)
    base = {**SPARING_ONLY, "planner.allow_enucleation": False}
    assert _kinds(_plan(tmp_path, p, base)) == ["ablation"]  # 25 <= 30 mm
    assert _kinds(_plan(tmp_path, p, {**base, "planner.ablation_max_diameter_mm": 20.0})) == [None]


@covers("planner.max_ablations_per_operation")
def test_max_ablations_per_operation(tmp_path):
    p = _liver()
    for s in (2, 5, 7):
        p.add_in_segment(s, 1, 1, 1, max_3d_diameter_mm=8.0)
    base = {**SPARING_ONLY, "planner.allow_enucleation": False}
    assert _kinds(_plan(tmp_path, p, base)).count("ablation") == 3
    assert _kinds(_plan(tmp_path, p, {**base, "planner.max_ablations_per_operation": 2})).count("ablation") == 2


def _budget_for_two(tmp_path):
    """Three 1-voxel lesions, each ablation zone costing ``c`` mL (k-d tree here); FLR slack 2.5 c: two fit."""
    p = _liver()
    for s in (2, 5, 7):
        p.add_in_segment(s, 1, 1, 1, y0=10, z0=10, max_3d_diameter_mm=8.0)
    costs = [sum(parenchyma_ml_by_segment(p, zone_mask(p, les.id, 5.0)).values()) for les in p.lesions]
    assert costs[0] > 0
    assert costs == pytest.approx([costs[0]] * 3)
    nt = LIVER_ML - 3 * VOXEL_ML
    rules = {
        **SPARING_ONLY,
        "planner.allow_enucleation": False,
        "flr.denominator": "non_tumorous",
        "flr.non_tumorous_threshold_percent.normal": 100.0 * (nt - 2.5 * costs[0]) / nt,
    }
    return p, rules


@covers("planner.exact_enumeration_max_lesions")
def test_exact_enumeration_limit_chooses_the_optimiser(tmp_path):
    """With costs rounded up to 1000 mL the knapsack DP affords nothing; exact enumeration finds the two that fit."""
    p, base = _budget_for_two(tmp_path)
    base["planner.cost_resolution_ml"] = 1000.0
    assert _kinds(_plan(tmp_path, p, base)).count("ablation") == 2
    assert _kinds(_plan(tmp_path, p, {**base, "planner.exact_enumeration_max_lesions": 0})) == [None] * 3


@covers("planner.cost_resolution_ml")
def test_cost_resolution_of_the_knapsack(tmp_path):
    p, base = _budget_for_two(tmp_path)
    base["planner.exact_enumeration_max_lesions"] = 0
    assert _kinds(_plan(tmp_path, p, base)).count("ablation") == 2  # 0.1 mL resolution: two fit
    assert _kinds(_plan(tmp_path, p, {**base, "planner.cost_resolution_ml": 1000.0})) == [None] * 3


# ------------------------------------------------------------------ [staging]
def _staged(tmp_path, changes):
    """test_surgical_scenarios' inadequate-FLR liver: clearing leaves sFLR 20.7 % < 30 % (chemotherapy)."""
    p = _liver()
    p.add_box(10, 16, 2, 16, 2, 16, max_3d_diameter_mm=150.0)
    small = p.add_in_segment(2, 1, 2, 2, y0=10, z0=10, max_3d_diameter_mm=18.0)
    lesion_vox = p.labels > 0
    nt = {s: float(np.count_nonzero((p.seg == s) & ~lesion_vox)) * VOXEL_ML for s in range(1, 9)}
    abl = parenchyma_ml_by_segment(p, zone_mask(p, small.id, 5.0))
    flr_now = sum(nt[s] - abl[s] for s in (1, 2, 3))
    clin = replace(FULL, weight_kg=weight_for_telv(flr_now / 0.207, 175.0), liver_condition="chemotherapy")
    return assess(p.ctx(), clin, user_rules(tmp_path, changes)).classification["staged_strategies"]


@covers("staging.pve_expected_hypertrophy_percent")
def test_pve_expected_hypertrophy(tmp_path):
    pve = _staged(tmp_path, {})["strategies"]["portal_vein_embolisation"]
    assert pve["expected_flr_percent"] == pytest.approx(20.7 * 1.379)  # van Lienden 2013: +37.9 %
    assert pve["reaches_threshold"] is False
    pve = _staged(tmp_path, {"staging.pve_expected_hypertrophy_percent": 50.0})["strategies"][
        "portal_vein_embolisation"
    ]
    assert pve["expected_flr_percent"] == pytest.approx(20.7 * 1.5)
    assert pve["reaches_threshold"] is True


@covers("staging.alpps_expected_hypertrophy_percent")
def test_alpps_expected_hypertrophy(tmp_path):
    alpps = _staged(tmp_path, {})["strategies"]["alpps"]
    assert alpps["expected_flr_percent"] == pytest.approx(20.7 * 1.843)
    assert alpps["reaches_threshold"] is True
    alpps = _staged(tmp_path, {"staging.alpps_expected_hypertrophy_percent": 40.0})["strategies"]["alpps"]
    assert alpps["expected_flr_percent"] == pytest.approx(20.7 * 1.4)
    assert alpps["reaches_threshold"] is False


@covers("staging.source")
def test_staging_source_is_reported(tmp_path):
    assert _staged(tmp_path, {"staging.source": "clinic growth data"})["source"] == "clinic growth data"
