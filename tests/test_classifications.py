"""Classifications: Mahuron, burden bins, Cloyd, Frilling, RECIST, missing inputs, report blocks."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest
from conftest import shared_schema
from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, VOXEL_ML, SlabLiver, assess

from netlm_imaging.classify.classifications import burden_category, cloyd_resectability, recist_targets
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs, clinical_from_row

FULL = FULL_CLINICAL


def _liver():
    return SlabLiver(SLICES, ny=NY, nz=NZ)


def test_mahuron_type_1_single_resectable_lesion():
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    out = assess(p.ctx(), FULL, load_rules())
    c = out.classification
    assert c["mahuron_type"] == "1"
    assert c["mahuron_inferred"] is False
    assert c["achievable_debulking_percent"] == pytest.approx(100.0)
    assert c["frilling_type"] == "I"
    assert c["resectable_cloyd"] is True
    assert all(v["met"] for v in c["cloyd_criteria"].values())
    assert out.summary_lines[0] == "Mahuron type 1"
    assert any(line.startswith("Debulking plan:") for line in out.summary_lines)


def test_complete_clearance_of_many_lesions_is_type_2():
    p = _liver()
    for i in range(6):  # 6 > limited_max_lesions 5
        p.add_box(2 + 4 * i, 1, 2, 2, 2, 2, max_3d_diameter_mm=10.0)
    c = assess(p.ctx(), FULL, load_rules()).classification
    assert c["achievable_debulking_percent"] == pytest.approx(100.0)
    assert c["mahuron_type"] == "2"
    assert "6 lesions > 5" in " ".join(c["rationale"])


def _unreachable_liver():
    """Only ~1/3 of the tumour can be treated: bulky lesions in every segment but 1, tight FLR rule."""
    p = _liver()
    for s in (2, 4, 6, 8):
        p.add_in_segment(s, 2, 10, 10, max_3d_diameter_mm=60.0)
    return p


@pytest.mark.parametrize(("symptoms", "expected"), [("hormonal", "3"), ("bulk", "3"), ("none", "4"), (None, None)])
def test_mahuron_types_3_4_and_missing_symptoms(tmp_path, symptoms, expected):
    f = tmp_path / "tight.toml"
    f.write_text('[flr]\ndenominator = "non_tumorous"\n[flr.non_tumorous_threshold_percent]\nnormal = 85.0\n')
    p = _unreachable_liver()
    clin = ClinicalInputs(symptoms=symptoms, liver_condition="normal")
    c = assess(p.ctx(), clin, load_rules(f)).classification
    assert c["achievable_debulking_percent"] < 70.0
    assert c["mahuron_type"] == expected
    assert c["mahuron_inferred"] is True
    text = " ".join(c["rationale"])
    assert "inferred from the abstract; Figure 2 not verified" in text
    assert ("symptoms" in c["missing_inputs"]) is (symptoms is None)


def test_missing_height_weight_without_fallback_blocks_the_plan(tmp_path):
    f = tmp_path / "nofallback.toml"
    f.write_text('[flr]\nfallback_denominator = "none"\n')
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    out = assess(p.ctx(), ClinicalInputs(symptoms="none", liver_condition="normal"), load_rules(f))
    c = out.classification
    assert c["achievable_debulking_percent"] is None
    assert c["mahuron_type"] is None
    assert "height/weight" in c["missing_inputs"]
    assert out.remnant["resection_plan"] is None
    # no denominator to judge adequacy on: the basis is not stated (the threshold still is, for the reader)
    assert out.remnant["adequacy_basis"] is None
    assert out.remnant["flr_threshold_percent"] == 20.0  # clinical_rules.md section 6: normal liver
    # with the default fallback the plan is made on the non-tumorous denominator and says so
    out2 = assess(p.ctx(), ClinicalInputs(symptoms="none", liver_condition="normal"), load_rules())
    assert out2.remnant["resection_plan"]["adequacy_basis"] == "non_tumorous"
    assert any("fallback denominator" in r for r in out2.classification["rationale"])
    assert "height/weight" in out2.classification["missing_inputs"]


def test_each_clinical_missing_input_is_named():
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    c = assess(p.ctx(with_segments=False), None, load_rules()).classification
    for name in (
        "height/weight",
        "liver_condition",
        "performance_status",
        "grade or ki67_percent",
        "extrahepatic_disease",
        "segment map",
    ):
        assert name in c["missing_inputs"], name
    assert c["resectable_cloyd"] is None
    assert c["distribution"] == "unknown"


@pytest.mark.parametrize(
    ("value", "category", "clarinet"),
    [
        (0.0, "<=10", "<=25"),
        (10.0, "<=10", "<=25"),
        (10.01, ">10-25", "<=25"),
        (25.0, ">10-25", "<=25"),
        (25.01, ">25-50", ">25"),
        (50.0, ">25-50", ">25"),
        (50.01, ">50", ">25"),
        (100.0, ">50", ">25"),
    ],
)
def test_burden_bins_at_their_edges(value, category, clarinet):
    b = burden_category(value, load_rules()["burden"])
    assert (b["category"], b["clarinet_split"]) == (category, clarinet)


def test_burden_from_voxel_counts():
    p = _liver()
    p.add_in_segment(7, 5, NY, NZ)  # the whole of segment 7: 2000 of 12000 voxels
    p.add_in_segment(8, 5, NY, 10)  # half of segment 8: 1000 voxels
    c = assess(p.ctx(), FULL, load_rules()).classification
    assert c["involvement_percent"] == pytest.approx(100 * 3000 / 12000)  # 25.0 -> still <= 25
    assert (c["burden_category"], c["clarinet_split"]) == (">10-25", "<=25")
    assert c["distribution"] == "unilobar"


def _cloyd(**kw):
    base = {
        "clinical": FULL,
        "extrahepatic_lesions_seen": 0,
        "flr_adequate": True,
        "flr_missing": [],
        "achievable_percent": 95.0,
        "achievable_missing": [],
        "cloyd": load_rules()["cloyd"],
    }
    base.update(kw)
    return cloyd_resectability(**base)


def test_cloyd_each_criterion():
    assert _cloyd()["resectable"] is True
    failing = {
        "performance_status": {"clinical": replace(FULL, performance_status=2)},
        "grade": {"clinical": replace(FULL, grade=3)},
        "no_extrahepatic_disease": {"clinical": replace(FULL, extrahepatic_disease=True)},
        "adequate_flr": {"flr_adequate": False},
        "resection_feasible": {"achievable_percent": 89.9},
    }
    for name, kw in failing.items():
        r = _cloyd(**kw)
        assert r["resectable"] is False, name
        assert r["criteria"][name]["met"] is False
        assert [k for k, v in r["criteria"].items() if v["met"] is False] == [name]
    assert _cloyd(achievable_percent=90.0)["resectable"] is True  # >= 90 by default
    missing = {
        "performance_status": {"clinical": replace(FULL, performance_status=None)},
        "grade or ki67_percent": {"clinical": replace(FULL, grade=None)},
        "extrahepatic_disease": {"clinical": replace(FULL, extrahepatic_disease=None)},
        "height/weight": {
            "flr_adequate": None,
            "flr_missing": ["height/weight"],
            "achievable_percent": None,
            "achievable_missing": ["height/weight"],
        },
    }
    for name, kw in missing.items():
        r = _cloyd(**kw)
        assert r["resectable"] is None
        assert r["missing_inputs"] == [name]
    # extrahepatic lesions in the images decide criterion 3 even when the clinical file says none
    r = _cloyd(extrahepatic_lesions_seen=2)
    assert r["criteria"]["no_extrahepatic_disease"]["met"] is False
    assert "2 extrahepatic lesion(s)" in r["criteria"]["no_extrahepatic_disease"]["rule"]


@pytest.mark.parametrize(
    ("layout", "with_segments", "expected"),
    [
        ([(3, 3, 6, 6), (6, 1, 2, 2)], True, "II"),  # dominant bulk + a smaller deposit, both lobes
        ([(6, 2, 4, 4), (7, 2, 4, 4)], True, None),  # one hemiliver: the wording of II and III needs both lobes
        ([(3, 2, 4, 4), (6, 2, 4, 4)], True, None),  # both lobes, no bulk, 0.5% burden: not "little parenchyma"
        # 4 x 800 voxels of 12000 = 26.7% >= 25%, none dominant (25% each), both lobes: diffuse
        ([(2, 2, 20, 20), (3, 2, 20, 20), (7, 2, 20, 20), (8, 2, 20, 20)], True, "III"),
        ([(3, 2, 4, 4), (6, 2, 4, 4)], False, None),  # no map: II vs III undetermined
    ],
)
def test_frilling(layout, with_segments, expected):
    p = _liver()
    for seg, nx, ny, nz in layout:
        p.add_in_segment(seg, nx, ny, nz)
    c = assess(p.ctx(with_segments=with_segments), FULL, load_rules()).classification
    assert c["frilling_type"] == expected
    assert any("Frilling 2009 wording unverified [U]" in r for r in c["rationale"])


def test_recist_target_selection():
    """Extrahepatic lesions without an organ are each their own organ; 5 targets, 2 per organ."""
    p = _liver()
    for i, d in enumerate([40.0, 30.0, 20.0]):  # liver: 20 is the third, beyond 2 per organ
        p.add_box(2 + 3 * i, 1, 0, 1, 0, 1, longest_axial_diameter_mm=d)
    for i, d in enumerate([50.0, 35.0, 15.0]):  # extrahepatic, no organ: one organ each
        p.add_box(2 + 3 * i, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=d)
    p.add_box(20, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=25.0, extra={"organ": "lung"})
    p.add_box(22, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=8.0, extra={"organ": "lung"})  # < 10 mm
    rec = recist_targets(p.lesions, load_rules()["recist"], 2.5)
    got = [(t["organ"], t["diameter_mm"]) for t in rec["targets"]]
    # five organs (liver, lesions 4, 5, 6 each its own, lung; lung 8 not measurable): RECIST 1.1 wants targets
    # "representative of all involved organs", so each organ's largest (50, 40, 35, 25, 15) fills the five
    # places before the liver's second lesion (30)
    assert got == [
        ("extrahepatic lesion 4", 50.0),
        ("liver", 40.0),
        ("extrahepatic lesion 5", 35.0),
        ("lung", 25.0),
        ("extrahepatic lesion 6", 15.0),
    ]
    assert rec["sum_of_diameters_mm"] == pytest.approx(50 + 40 + 35 + 25 + 15)
    assert rec["lesions"][8]["category"] == "non_target"
    assert any("counted as its own organ" in r for r in rec["rationale"])


def test_no_lesions():
    c = assess(_liver().ctx(), FULL, load_rules()).classification
    assert c["mahuron_type"] is None
    assert c["achievable_debulking_percent"] is None
    assert c["distribution"] is None
    assert c["recist_targets"] == []
    assert c["burden_category"] == "<=10"


def test_blocks_validate_against_the_report_schema():
    schema = shared_schema()
    p = _liver()
    p.add_in_segment(3, 2, 4, 4)
    p.add_in_segment(6, 3, 5, 5, max_3d_diameter_mm=45.0)
    p.add_box(3, 2, NY + 1, 2, 0, 2)  # extrahepatic
    out = assess(p.ctx(), FULL, load_rules(), resections=[[6], [2, 3]])
    blocks = json.loads(
        json.dumps({"remnant": out.remnant, "segments": out.segments, "classification": out.classification})
    )
    for key, value in blocks.items():
        jsonschema.validate(value, schema["properties"][key])
    assert out.lesion_segments == {1: 3, 2: 6}
    assert out.remnant["non_tumorous_liver_volume_ml"] == pytest.approx((12000 - 32 - 75) * VOXEL_ML)


@pytest.mark.parametrize(("cell", "expected"), [("yes", "3"), ("Y", "3"), ("no", "4"), ("N", "4"), ("", None)])
def test_mahuron_3_4_from_symptom_cells_as_spreadsheets_write_them(tmp_path, cell, expected):
    """A cohort CSV's "symptoms" cell yes/no: symptomatic (kind not stated) is type 3, none type 4,
    blank undetermined with "symptoms" missing (Mahuron 2023 types 3/4, the project's reading, CR section 1)."""
    f = tmp_path / "tight.toml"
    f.write_text('[flr]\ndenominator = "non_tumorous"\n[flr.non_tumorous_threshold_percent]\nnormal = 85.0\n')
    clin = clinical_from_row({"symptoms": cell, "liver_condition": "normal"}, "cohort.csv line 2")
    c = assess(_unreachable_liver().ctx(), clin, load_rules(f)).classification
    assert c["achievable_debulking_percent"] < 70.0
    assert c["mahuron_type"] == expected
    assert ("symptoms" in c["missing_inputs"]) is (expected is None)


def test_frilling_undetermined_by_lesions_outside_the_segments_names_them_not_the_map():
    """A segment map that exists but leaves two lesions in unlabelled liver: the distribution (and so Frilling
    II vs III) is unknown because of those lesions, and the classification says so, not "segment map"."""
    from surgical_phantoms import SlabLiver as Slab

    p = Slab(SLICES, ny=NY, nz=NZ, unlabeled_slices=6)
    p.add_in_segment(7, 2, 4, 4)
    p.add_in_segment(6, 2, 4, 4)
    unassigned = [p.add_box(p.nx - 6 + x, 2, 0, 4, 0, 4).id for x in (0, 3)]
    c = assess(p.ctx(), FULL, load_rules()).classification
    assert c["frilling_type"] is None
    named = f"segment map covering lesion(s) {', '.join(map(str, unassigned))}"
    assert named in c["missing_inputs"]
    assert "segment map" not in c["missing_inputs"]
    assert any("Frilling type II or III undetermined: 4 lesions, distribution unknown" in r for r in c["rationale"])
    # the function itself names what the distribution lacked (its default: no segment map at all)
    from netlm_imaging.classify.classifications import frilling_type

    rules = load_rules()["frilling"]
    intra = [les for les in p.lesions if les.location == "intrahepatic"]
    assert frilling_type(intra, "unknown", rules, 5.0, [named])["missing_inputs"] == [named]
    assert frilling_type(intra, "unknown", rules, 5.0)["missing_inputs"] == ["segment map"]


def test_cloyd_quotes_the_achievable_resection_as_a_percentage():
    """The console's 'Cloyd resectable: no (...)' quoted 'resection_feasible=83.93865458347855 not met'."""
    r = _cloyd(achievable_percent=100 * 5 / 6)  # 5 of 6 equal lesions treated
    assert r["failed"] == ["resection_feasible=83.3 not met: achievable resection >= 90% of metastases [C]"]
    assert "resection_feasible=83.3 (NOT met)" in r["rationale"][0]
    near = _cloyd(achievable_percent=89.96)  # 0.1 would print the threshold itself
    assert near["failed"][0].startswith("resection_feasible=89.96 not met")
