"""RECIST 1.1 (edge-to-edge diameters, organs, lymph nodes, one implementation for analyze and compare),
WHO 2019 grade from Ki-67, primary-tumour advice, clinical inputs echoed, reasons for every "no",
FLR comparator and the fallback denominator.

Truths come from the phantom's own voxel counts and voxel-centre coordinates computed here with numpy,
from SimpleITK's Feret diameter (centre to centre), and from the WHO / RECIST cut-offs as published.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from surgical_phantoms import FULL_CLINICAL, NY, NZ, SLICES, SlabLiver, assess, weight_for_telv

from netlm_imaging.classify.classifications import who_grade
from netlm_imaging.classify.rules import load_rules
from netlm_imaging.clinical.inputs import ClinicalInputs, clinical_from_row
from netlm_imaging.clinical.text import parse_interval
from netlm_imaging.measure.lesions import measure_instance
from netlm_imaging.verify.longitudinal import compare_studies
from netlm_imaging.volume import Volume

FULL = FULL_CLINICAL


def _liver():
    return SlabLiver(SLICES, ny=NY, nz=NZ)


def _transverse_rotated_affine(spacing, angle_deg=23.0, origin=(-30.0, 12.0, 5.0)):
    """Transverse slices (axis 2 along patient S), in-plane rotation, anisotropic spacing."""
    a = np.eye(4)
    t = math.radians(angle_deg)
    rz = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    a[:3, :3] = rz @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def _voxel_extent(affine, u):
    return float(sum(abs(float(affine[:3, i] @ u)) for i in range(3)))


# --------------------------------------------------------------------------- diameters


def test_box_diameters_centre_and_edge_match_feret_and_formula():
    spacing = (0.8, 1.3, 2.5)
    aff = _transverse_rotated_affine(spacing)
    shape = (30, 20, 12)
    img = Volume(np.zeros(shape, np.float32), aff)
    n = (11, 6, 4)  # box lesion voxels per axis
    mask = np.ones(n, bool)
    bb = (slice(5, 5 + n[0]), slice(4, 4 + n[1]), slice(3, 3 + n[2]))
    g = measure_instance(img, bb, mask)
    # truth: the box's voxel centres span (n_i - 1) * s_i along each axis
    ext = np.array([(k - 1) * s for k, s in zip(n, spacing)])
    d3 = float(np.linalg.norm(ext))
    u3 = aff[:3, :3] @ (ext / np.array(spacing)) / d3  # unit LPS direction of the diagonal
    assert g.max_3d_diameter_mm == pytest.approx(d3)
    assert g.max_3d_diameter_edge_mm == pytest.approx(d3 + _voxel_extent(aff, u3))
    # the centre-to-centre value is SimpleITK's Feret diameter
    lab = np.zeros(shape, np.uint8)
    lab[bb] = 1
    im = sitk.GetImageFromArray(lab.transpose(2, 1, 0).copy())
    im.SetSpacing(spacing)
    im.SetDirection(aff[:3, :3].ravel() / np.tile(spacing, 3))
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputeFeretDiameterOn()
    f.Execute(im)
    assert g.max_3d_diameter_mm == pytest.approx(f.GetFeretDiameter(1), rel=1e-6)
    # axial: in-plane diagonal of the (11 x 6) face; short axis perpendicular to it
    da = math.hypot(ext[0], ext[1])
    ua = aff[:3, :3] @ np.array([ext[0] / spacing[0], ext[1] / spacing[1], 0.0]) / da
    assert g.longest_axial_diameter_mm == pytest.approx(da)
    assert g.longest_axial_diameter_edge_mm == pytest.approx(da + _voxel_extent(aff, ua))


def test_ten_mm_sphere_on_a_2mm_grid_reads_ten_edge_to_edge_and_is_measurable():
    spacing = (2.0, 2.0, 2.0)
    aff = _transverse_rotated_affine(spacing, angle_deg=0.0)
    shape = (15, 15, 15)
    idx = np.indices(shape).reshape(3, -1).T
    centre = np.array([7.3, 7.1, 7.0])  # off-grid centre, 5 mm radius
    inside = np.linalg.norm((idx - centre) * 2.0, axis=1) <= 5.0
    mask = np.zeros(shape, bool)
    mask[tuple(idx[inside].T)] = True
    g = measure_instance(Volume(np.zeros(shape, np.float32), aff), (slice(0, 15),) * 3, mask)
    # truth by brute force over voxel-centre pairs in each transverse slice (numpy, written here)
    best, best_u = 0.0, None
    for k in range(shape[2]):
        pts = idx[inside & (idx[:, 2] == k)][:, :2] * 2.0
        if len(pts) < 2:
            continue
        dd = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        i, j = np.unravel_index(np.argmax(dd), dd.shape)
        if dd[i, j] > best:
            best, best_u = float(dd[i, j]), (pts[j] - pts[i]) / dd[i, j]
    edge = best + 2.0 * (abs(best_u[0]) + abs(best_u[1]))
    assert best < 10.0  # between voxel centres a 10 mm sphere is never measurable
    assert g.longest_axial_diameter_mm == pytest.approx(best)
    assert g.longest_axial_diameter_edge_mm == pytest.approx(edge)
    assert g.longest_axial_diameter_edge_mm >= 10.0


# --------------------------------------------------------------------------- RECIST rules


def _node(p, x, short_mm, long_mm):
    les = p.add_box(x, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=long_mm, extra={"organ": "lymph node"})
    les.short_axis_diameter_mm = short_mm
    return les


def test_lymph_nodes_short_axis_one_organ_and_the_rules_minimum(tmp_path):
    p = _liver()
    p.add_box(2, 1, 0, 1, 0, 1, longest_axial_diameter_mm=11.0)  # liver 11 mm: measurable at 10
    for x, sa in ((4, 20.0), (6, 18.0), (8, 16.0)):  # three target-size nodes: one organ, 2 targets
        _node(p, x, sa, sa + 10.0)
    _node(p, 10, 12.0, 30.0)  # pathological, non-target although its long axis is 30 mm
    _node(p, 12, 8.0, 25.0)  # normal node
    out = assess(p.ctx(), FULL, load_rules())
    c = out.classification
    got = [(t["lesion_id"], t["organ"], t["diameter_mm"]) for t in c["recist_targets"]]
    assert got == [(2, "lymph nodes", 20.0), (3, "lymph nodes", 18.0), (1, "liver", 11.0)]
    assert c["recist_sum_of_diameters_mm"] == pytest.approx(20 + 18 + 11)  # node short axes + long axis
    cats = {k: v["recist_category"] for k, v in out.lesion_recist.items()}
    assert cats == {1: "target", 2: "target", 3: "target", 4: "measurable", 5: "non_target", 6: "normal_node"}
    # the rules key decides measurability: at 12 mm the 11 mm liver lesion is not measurable
    rules = load_rules(_write(tmp_path, "r.toml", "[recist]\nmeasurable_min_diameter_mm = 12.0\n"))
    c12 = assess(p.ctx(), FULL, rules).classification
    assert [t["lesion_id"] for t in c12["recist_targets"]] == [2, 3]
    assert c12["recist_measurable_limit_mm"] == 12.0


def _write(d, name, text):
    f = d / name
    f.write_text(text)
    return f


def test_thick_slices_need_twice_the_slice_thickness():
    from netlm_imaging.classify.recist import recist_assessment

    p = _liver()
    p.add_box(2, 1, 0, 1, 0, 1, longest_axial_diameter_mm=13.0)
    p.add_box(5, 1, 0, 1, 0, 1, longest_axial_diameter_mm=14.0)
    r = recist_assessment(p.lesions, load_rules()["recist"], slice_thickness_mm=7.0)  # > 5 mm: 2 x 7 = 14
    assert r["measurable_limit_mm"] == 14.0
    assert [t["lesion_id"] for t in r["targets"]] == [2]


def test_analyze_and_compare_choose_the_same_targets():
    p = _liver()
    for i, d in enumerate([40.0, 30.0, 20.0]):
        p.add_box(2 + 3 * i, 1, 0, 1, 0, 1, longest_axial_diameter_mm=d)
    p.add_box(2, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=50.0)  # extrahepatic, its own organ
    p.add_box(5, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=25.0, extra={"organ": "lung"})
    ctx = p.ctx()
    analyze_ids = [t["lesion_id"] for t in assess(ctx, FULL, load_rules()).classification["recist_targets"]]
    res = compare_studies(ctx, p.ctx(), registration="never")
    assert analyze_ids == [4, 1, 2, 5]
    assert sorted(res.recist["target_baseline_ids"]) == sorted(analyze_ids)
    assert res.recist["baseline_sum_mm"] == pytest.approx(50 + 40 + 30 + 25)
    assert res.recist["category"] == "SD"


# --------------------------------------------------------------------------- WHO grade and Cloyd

GRADE_RULES = load_rules()["grade"]


@pytest.mark.parametrize(
    ("ki67", "expected"), [(0.0, 1), (2.99, 1), (3.0, 2), (20.0, 2), (20.01, 3), (25.0, 3), (100.0, 3)]
)
def test_ki67_cut_offs(ki67, expected):
    g = who_grade(ClinicalInputs(ki67_percent=ki67, differentiation="well"), GRADE_RULES)
    assert g["grade"] == expected
    assert g["category"] == f"NET G{expected}"
    assert g["conflict"] is False


@pytest.mark.parametrize(("ki67", "category"), [(2.0, "NET G1"), (15.0, "NET G2"), (25.0, None), (60.0, None)])
def test_g3_without_the_differentiation_is_net_g3_or_nec(ki67, category):
    """WHO 2019: Ki-67 > 20 % is a NET G3 when well differentiated and a NEC when poorly differentiated;
    up to 20 % only a NET. Without the differentiation a G3 gets no category, with "differentiation" missing."""
    g = who_grade(ClinicalInputs(ki67_percent=ki67), GRADE_RULES)
    assert g["category"] == category
    assert ("differentiation" in g["missing_inputs"]) is (category is None)
    assert g["grade"] == (3 if category is None else int(category[-1]))


def test_ki67_25_alone_is_g3_and_not_resectable_by_cloyd():
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    clin = replace(FULL, grade=None, ki67_percent=25.0)
    out = assess(p.ctx(), clin, load_rules())
    c = out.classification
    assert c["who_grade"] == 3
    assert c["who_category"] is None  # NET G3 or NEC: the differentiation is not given
    assert any("NET G3 (well differentiated) or NEC (poorly differentiated) undetermined" in r for r in c["rationale"])
    assert "grade or ki67_percent" not in c["missing_inputs"]
    assert c["cloyd_criteria"]["grade"]["met"] is False
    assert c["resectable_cloyd"] is False
    line = next(x for x in out.summary_lines if x.startswith("Cloyd resectable"))
    assert line.startswith("Cloyd resectable: no (grade=3 not met: WHO grade in [1, 2]")


def test_grade_conflict_is_flagged_and_the_higher_grade_used(tmp_path):
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    c = assess(p.ctx(), replace(FULL, grade=1, ki67_percent=25.0), load_rules()).classification
    assert c["grade_conflict"] is True
    assert c["who_grade"] == 3
    assert c["resectable_cloyd"] is False
    assert any("CONFLICT: reported grade 1 vs Ki-67 grade 3" in r for r in c["rationale"])
    # a user rule moving the G3 cut-off changes the outcome
    rules = load_rules(_write(tmp_path, "g.toml", "[grade]\nki67_g3_above_percent = 30.0\n"))
    c2 = assess(p.ctx(), replace(FULL, grade=1, ki67_percent=25.0), rules).classification
    assert c2["who_grade"] == 2
    assert c2["resectable_cloyd"] is True


@pytest.mark.parametrize(("grade", "ki67"), [(None, None), (2, None), (None, 10.0), (3, 30.0)])
def test_poorly_differentiated_is_a_nec_never_a_net(grade, ki67):
    g = who_grade(ClinicalInputs(grade=grade, ki67_percent=ki67, differentiation="poor"), GRADE_RULES)
    assert g["category"] == "NEC"
    assert g["grade"] == 3
    assert g["conflict"] is ((grade is not None and grade < 3) or (ki67 is not None and ki67 <= 20))


def test_nec_fails_cloyd_grade():
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    c = assess(p.ctx(), replace(FULL, differentiation="poor"), load_rules()).classification
    assert c["who_category"] == "NEC"
    assert c["cloyd_criteria"]["grade"]["met"] is False


# --------------------------------------------------------------------------- primary tumour, echo, EHD


@pytest.mark.parametrize(("resected", "advice"), [(False, True), (True, False), (None, False)])
def test_primary_tumour_advice_for_type_1(resected, advice):
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    c = assess(p.ctx(), replace(FULL, primary_resected=resected), load_rules()).classification
    assert c["mahuron_type"] == "1"
    assert (c["primary_tumour_advice"] is not None) is advice
    if advice:
        assert "synchronous primary tumour resection" in c["primary_tumour_advice"]
    assert ("primary_resected" in c["missing_inputs"]) is (resected is None)


def test_clinical_inputs_are_echoed_with_their_source(tmp_path):
    f = tmp_path / "clinical.json"
    f.write_text(json.dumps({"grade": 2, "symptoms": "none"}))
    from netlm_imaging.clinical.inputs import load_clinical

    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    ctx = p.ctx(header={"patient_weight_kg": 70.0, "patient_size_m": 1.75})
    c = assess(ctx, load_clinical(f), load_rules()).classification
    used = c["clinical_inputs_used"]
    assert used["grade"] == {"value": 2, "source": "clinical file clinical.json"}
    assert used["weight_kg"] == {"value": 70.0, "source": "DICOM PatientWeight (0010,1030)"}
    assert used["height_cm"]["source"] == "DICOM PatientSize (0010,1020)"
    assert used["ki67_percent"] == {"value": None, "source": "not given"}
    assert str(tmp_path) not in json.dumps(used)  # the file name only, no directory


def test_no_extrahepatic_disease_reads_right():
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    c = assess(p.ctx(), replace(FULL, extrahepatic_disease=True), load_rules()).classification
    crit = c["cloyd_criteria"]["no_extrahepatic_disease"]
    assert (crit["value"], crit["extrahepatic_disease"], crit["met"]) == (False, True, False)


def test_segmented_extrahepatic_lesion_against_a_clinical_no_is_flagged():
    """The clinical file says no extrahepatic disease but the segmentation holds an extrahepatic lesion:
    Cloyd's criterion fails on the segmentation and the rule says the two disagree."""
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    p.add_box(5, 1, NY + 1, 1, 0, 1)  # outside the liver rows
    c = assess(p.ctx(), replace(FULL, extrahepatic_disease=False), load_rules()).classification
    crit = c["cloyd_criteria"]["no_extrahepatic_disease"]
    assert crit["met"] is False
    assert "although the clinical input says extrahepatic_disease = false" in crit["rule"]
    assert c["resectable_cloyd"] is False


# --------------------------------------------------------------------------- FLR comparator and fallback


def _flr_at_exactly_20_percent(tmp_path, comparator):
    """Lesion in segment 2 only; resecting 2 leaves exactly 20.0% of TELV."""
    p = _liver()
    p.add_in_segment(2, 1, 2, 2)
    nt_kept = (30 - 3) * NY * NZ * 0.1  # mL: every segment but 2 (no tumour there)
    telv = nt_kept / 0.20
    clin = replace(FULL, weight_kg=weight_for_telv(telv, 175.0))
    text = f'[planner]\nallow_enucleation = false\nallow_ablation = false\n[flr]\ncomparator = "{comparator}"\n'
    return assess(p.ctx(), clin, load_rules(_write(tmp_path, f"c{len(comparator)}.toml", text)))


def test_flr_exactly_at_the_threshold_is_at_risk_by_default(tmp_path):
    strict = _flr_at_exactly_20_percent(tmp_path, ">")  # the default: sources call FLR <= threshold the at-risk group
    assert strict.remnant["resection_plan"]["resected_segments"] == []
    loose = _flr_at_exactly_20_percent(tmp_path, ">=")
    assert loose.remnant["resection_plan"]["resected_segments"] == [2]
    assert loose.remnant["resection_plan"]["standardized_flr_percent"] == pytest.approx(20.0)


def test_fallback_denominator_uses_its_own_sourced_threshold():
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    no_body = replace(FULL, height_cm=None, weight_kg=None)
    out = assess(p.ctx(), no_body, load_rules())
    plan = out.remnant["resection_plan"]
    assert plan["adequacy_basis"] == "non_tumorous"
    assert plan["flr_threshold_percent"] == 25.0  # Shoup, CT non-tumorous liver
    chemo = assess(p.ctx(), replace(no_body, liver_condition="chemotherapy"), load_rules())
    assert chemo.remnant["resection_plan"] is None
    assert chemo.classification["achievable_debulking_percent"] is None
    assert "height/weight" in chemo.classification["missing_inputs"]
    assert any("no sourced FLR threshold" in r for r in chemo.classification["rationale"])


def test_organ_from_the_label_and_lymph_node_labels():
    from netlm_imaging.classify.recist import recist_assessment

    p = _liver()
    a = p.add_box(2, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=30.0)
    b = p.add_box(5, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=28.0)
    c = p.add_box(8, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=26.0)
    n = p.add_box(11, 1, NY + 1, 1, 0, 1, longest_axial_diameter_mm=40.0)
    a.label, b.label, c.label, n.label = "Lung met 1", "lung met 2", "LUNG 3", "para-aortic lymph node"
    n.short_axis_diameter_mm = 12.0
    r = recist_assessment(p.lesions, load_rules()["recist"], 2.5)
    assert {k: v["organ"] for k, v in r["lesions"].items()} == {1: "lung", 2: "lung", 3: "lung", 4: "lymph nodes"}
    assert [t["lesion_id"] for t in r["targets"]] == [1, 2]  # 2 per organ; the 12 mm node is non-target
    assert r["lesions"][4]["category"] == "non_target"


def test_the_report_states_both_diameter_definitions():
    p = _liver()
    p.add_in_segment(3, 1, 2, 2)
    c = assess(p.ctx(), FULL, load_rules()).classification
    assert "edge to edge" in c["lesion_diameter_method"]
    assert "Feret" in c["lesion_diameter_method"]


def test_recist_category_and_organ_are_registered_lesion_columns():
    from netlm_imaging.report.lesion_columns import LESION_COLUMNS, csv_columns, html_columns

    keys = [c.key for c in LESION_COLUMNS]
    for key in ("recist_category", "recist_organ", "longest_axial_diameter_edge_mm", "max_3d_diameter_edge_mm"):
        assert key in keys
        assert key in [c.key for c in csv_columns()]
        assert key in [c.key for c in html_columns()]


@pytest.mark.parametrize(
    ("cell", "rep", "grade", "conflict"),
    [
        # WHO 2019 (CR grade table): G1 < 3 %, G2 3-20 %, G3 > 20 %; every value in the bounds must agree
        ("<2%", None, 1, False),  # all below 3 %
        ("<1 %", 2, 2, True),  # reported G2 vs Ki-67 G1: the higher, flagged
        ("<5%", None, None, False),  # 0-5 %: G1 or G2
        ("<5%", 2, 2, False),  # G1 or G2 with a reported G2: G2 either way (the higher decides)
        (">20%", None, 3, False),  # all above 20 %
        (">=20%", None, None, False),  # 20 % itself is G2
        ("1-2%", None, 1, False),
        ("15-25 %", 1, None, True),  # G2 or G3, above the reported G1: at least G2, undetermined
    ],
)
def test_ki67_given_as_bounds_decides_only_when_every_value_agrees(cell, rep, grade, conflict):
    row = {"ki67_percent": cell, "grade": "" if rep is None else str(rep), "differentiation": "well"}
    g = who_grade(clinical_from_row(row, "cohort.csv line 2"), GRADE_RULES)
    assert g["grade"] == grade
    assert g["conflict"] is conflict
    assert ("grade or ki67_percent" in g["missing_inputs"]) is (grade is None)
    assert g["category"] == (None if grade is None else f"NET G{grade}")


def test_ki67_bounds_reach_cloyd():
    """Ki-67 "<2 %" alone is G1 (Cloyd's grade criterion met); "<5 %" leaves it undetermined, named."""
    p = _liver()
    p.add_in_segment(3, 2, 4, 4, max_3d_diameter_mm=40.0)
    for cell, met in (("<2 %", True), ("<5 %", None)):
        clin = replace(FULL, grade=None, ki67_percent=None, ki67_range=parse_interval(cell).text())
        c = assess(p.ctx(), clin, load_rules()).classification
        assert c["cloyd_criteria"]["grade"]["met"] is met
        assert ("grade or ki67_percent" in c["cloyd_criteria"]["grade"]["missing_inputs"]) is (met is None)


def _who_grade_of(value):
    """WHO 2019 written here: G1 < 3 %, G2 3-20 %, G3 > 20 %."""
    return 3 if value > 20.0 else (2 if value >= 3.0 else 1)


@pytest.mark.parametrize(
    "text", ["<3", "<=3", "<3.01", "<20", "<=20", "<20.01", ">2.99", ">3", ">=3", ">20", ">=20", "3-20"]
)
@pytest.mark.parametrize("rep", [None, 1, 2, 3])
def test_ki67_bounds_grades_against_the_values_inside(text, rep):
    """The grade range of Ki-67 bounds equals the grades of the values inside them, sampled on a 0.001 % grid
    with the open ends left out (independent of the code's case analysis); a reported grade outside that
    range is a conflict and the higher grade decides (WHO 2019)."""
    bounds = parse_interval(text)
    grid = np.round(np.arange(0.0, 100.0005, 0.001), 3)
    inside = grid[
        ((grid > bounds.low) if bounds.low_open else (grid >= bounds.low))
        & ((grid < bounds.high) if bounds.high_open else (grid <= bounds.high))
    ]
    grades = {_who_grade_of(float(v)) for v in inside}
    decided = {max(g, rep or 0) for g in grades}
    g = who_grade(ClinicalInputs(grade=rep, ki67_range=bounds.text(), differentiation="well"), GRADE_RULES)
    assert g["grade"] == (next(iter(decided)) if len(decided) == 1 else None)
    assert g["conflict"] is (rep is not None and rep not in grades)
