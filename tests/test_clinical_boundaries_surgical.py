"""clinical_rules.md sections 1, 3, 5, 6 and 9 at their boundaries, through ``netlm analyze``.

Each rule's threshold is met exactly, missed by a little and passed by a little on a study
written for it (NIfTI CT + liver/lesion label map + Couinaud map + clinical sidecar, on the
oblique anisotropic slab liver of ``surgical_phantoms``: 30 x-slices of 20 x 20 voxels,
segments 1..8 as slabs of 2, 3, 3, 4, 4, 4, 5, 5 slices). The expected outcomes are written
here from the published rules (the bins, thresholds and comparators of clinical_rules.md and
the rules file), and the percentages from voxel counts chosen here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cli_studies import fill, run_analyze, stored_voxel_ml
from conftest import oblique_affine
from surgical_phantoms import BRISBANE_RESECTIONS, NY, NZ, SLICES, SlabLiver, weight_for_telv

LIVER_VOXELS = 30 * NY * NZ  # 12000
#: x-slice ranges of the segments in the slab liver
X = {1: (0, 2), 2: (2, 5), 3: (5, 8), 4: (8, 12), 5: (12, 16), 6: (16, 20), 7: (20, 25), 8: (25, 30)}


def _liver() -> SlabLiver:
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    assert {s: p.ranges[s] for s in X} == X
    return p


def _in_segment(p: SlabLiver, seg: int, n: int, y: tuple[int, int] = (0, NY), z: tuple[int, int] = (0, NZ)):
    return fill(p.shape, (slice(*X[seg]), slice(*y), slice(*z)), n)


# ------------------------------------------------------------------ section 5: burden bins, CLARINET split
@pytest.mark.parametrize(
    ("tumour_voxels", "category", "clarinet"),
    [
        (1199, "<=10", "<=25"),
        (1200, "<=10", "<=25"),  # exactly 10 %: the <=10 bin is inclusive
        (1201, ">10-25", "<=25"),
        (2999, ">10-25", "<=25"),
        (3000, ">10-25", "<=25"),  # exactly 25 %: CLARINET <=25 (Caplin 2014)
        (3001, ">25-50", ">25"),
        (5999, ">25-50", ">25"),
        (6000, ">25-50", ">25"),  # exactly 50 %
        (6001, ">50", ">25"),
    ],
)
def test_burden_bins_and_clarinet_split_at_their_edges(tmp_path, tumour_voxels, category, clarinet):
    """HTL = 100 x tumour / (liver U lesions) (section 5); the liver label excludes the lesions (union taken)."""
    p = _liver()
    lesion = fill(p.shape, (slice(0, 30), slice(0, NY), slice(0, NZ)), tumour_voxels)
    rep = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion)
    c = rep["classification"]
    assert rep["involvement_percent"] == pytest.approx(100.0 * tumour_voxels / LIVER_VOXELS, abs=5e-5)
    assert (c["burden_category"], c["clarinet_split"]) == (category, clarinet)


@pytest.mark.parametrize(
    ("tumour_voxels", "category", "clarinet"),
    [
        (16, "<=10", "<=25"),
        (17, ">10-25", "<=25"),
        (40, ">10-25", "<=25"),
        (41, ">25-50", ">25"),
        (80, ">25-50", ">25"),
    ],
)
def test_an_edge_met_exactly_is_inside_on_any_voxel_size(tmp_path, tumour_voxels, category, clarinet):
    """160 liver voxels of 0.064 mL (4 mm, oblique): 16, 40 and 80 of them are exactly 10, 25 and 50 %, but
    100 x (n x v) / (160 x v) reads 10.000000000000002, 25.000000000000004 and 50.00000000000001 %: the report
    showed 25.0 % beside '>25-50' and CLARINET '>25'."""
    aff = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(7.0, -5.0, 11.0))
    v = stored_voxel_ml(tmp_path / "grid", aff)
    shape, box = (10, 12, 4), (slice(1, 9), slice(1, 11), slice(1, 3))
    liver, lesion = fill(shape, box, 160), fill(shape, box, tumour_voxels)
    rep = run_analyze(tmp_path, aff, liver & ~lesion, lesion)
    assert rep["involvement_percent"] == pytest.approx(100.0 * tumour_voxels / 160, abs=1e-9)
    if tumour_voxels in (16, 40, 80):  # the grid this test needs: the float quotient lies above the exact edge
        assert 100.0 * (tumour_voxels * v) / (160 * v) > 100.0 * tumour_voxels / 160
    c = rep["classification"]
    assert (c["burden_category"], c["clarinet_split"]) == (category, clarinet)


# ------------------------------------------------------------------ sections 1, 3, 4: achievable debulking
#: Only one of segments 2 and 7 can go (FLR >= 80 % of the non-tumorous liver, sparing treatments off):
#: the plan resects segment 7 and treats lesion A (a voxels) alone: a / (a + b) of the tumour volume.
ONE_SEGMENT_RULES = (
    "[planner]\nallow_enucleation = false\nallow_ablation = false\n"
    '[flr]\ndenominator = "non_tumorous"\n[flr.non_tumorous_threshold_percent]\nnormal = 80.0\n'
)
RESECTABLE = {
    "symptoms": "none",
    "grade": 1,
    "ki67_percent": 2.0,
    "extrahepatic_disease": False,
    "primary_resected": True,
    "liver_condition": "normal",
    "performance_status": 0,
}


def _a_b(tmp_path, a: int, clinical=None, rules: str = ONE_SEGMENT_RULES, extra_rules: str = ""):
    p = _liver()
    lesion = _in_segment(p, 7, a, y=(0, 10)) | _in_segment(p, 2, 100 - a, y=(10, NY))
    return run_analyze(
        tmp_path,
        p.affine,
        p.liver & ~lesion,
        lesion,
        segments=p.seg,
        clinical=RESECTABLE if clinical is None else clinical,
        rules=rules + extra_rules,
    )


@pytest.mark.parametrize(
    ("a", "mahuron", "cloyd_90"),
    [
        (69, "4", False),
        (70, "2", False),  # exactly 70 %: debulking.comparator ">=" (section 4 convention)
        (71, "2", False),
        (89, "2", False),
        (90, "2", True),  # exactly 90 %: cloyd.comparator ">="
        (91, "2", True),
    ],
)
def test_debulking_70_and_resection_90_percent_at_their_edges(tmp_path, a, mahuron, cloyd_90):
    """Mahuron type 2 needs >= 70 % debulking (asymptomatic below: type 4, section 1 [D]); Cloyd's
    fifth criterion needs resection of >= 90 % of the metastases (section 3)."""
    rep = _a_b(tmp_path, a)
    c = rep["classification"]
    assert rep["tumor"]["lesion_count"] == 2
    assert rep["remnant"]["resection_plan"]["resected_segments"] == [7]
    assert c["achievable_debulking_percent"] == pytest.approx(float(a), abs=1e-6)
    assert c["mahuron_type"] == mahuron
    assert c["cloyd_criteria"]["resection_feasible"]["met"] is cloyd_90
    assert c["resectable_cloyd"] is cloyd_90  # every other criterion is met in RESECTABLE


def test_strict_comparators_move_exactly_70_and_90_percent_out(tmp_path):
    """With the user comparator ">" (Mahuron's ">70 %", Cloyd's ">90 %" read literally) the edge itself fails."""
    strict = '[debulking]\ncomparator = ">"\n[cloyd]\ncomparator = ">"\n'
    at_70 = _a_b(tmp_path / "70", 70, extra_rules=strict)["classification"]
    at_90 = _a_b(tmp_path / "90", 90, extra_rules=strict)["classification"]
    assert at_70["mahuron_type"] == "4"
    assert at_90["cloyd_criteria"]["resection_feasible"]["met"] is False
    assert at_90["mahuron_type"] == "2"


@pytest.mark.parametrize(
    ("symptoms", "mahuron"),
    [("hormonal", "3"), ("bulk", "3"), ("none", "4"), (None, None)],
)
def test_symptoms_split_types_3_and_4_below_70_percent(tmp_path, symptoms, mahuron):
    """Below 70 %: symptomatic = type 3, asymptomatic = type 4 (section 1 project reading, marked inferred);
    without the symptoms input the type is null and ``symptoms`` is named missing."""
    clinical = {k: v for k, v in RESECTABLE.items() if k != "symptoms"}
    if symptoms is not None:
        clinical["symptoms"] = symptoms
    c = _a_b(tmp_path, 60, clinical=clinical)["classification"]
    assert c["achievable_debulking_percent"] == pytest.approx(60.0, abs=1e-6)
    assert c["mahuron_type"] == mahuron
    assert ("symptoms" in c["missing_inputs"]) is (symptoms is None)
    if mahuron is not None:
        assert c["mahuron_inferred"] is True
        assert any("Figure 2 not verified" in r for r in c["rationale"])


@pytest.mark.parametrize(("n_lesions", "mahuron"), [(4, "1"), (5, "1"), (6, "2")])
def test_type_1_limited_number_edge(tmp_path, n_lesions, mahuron):
    """All lesions cleared (small, ablatable): type 1 with a limited number (<= 5, rules [D]); 6 cleared = type 2."""
    p = _liver()
    lesion = p.liver & False
    for seg in (2, 4, 5, 6, 7, 8)[:n_lesions]:
        lesion |= fill(p.shape, (slice(X[seg][0], X[seg][0] + 2), slice(8, 10), slice(8, 10)), 8)
    clinical = {**RESECTABLE, "height_cm": 175.0, "weight_kg": 70.0}
    rep = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=clinical)
    c = rep["classification"]
    assert rep["tumor"]["lesion_count"] == n_lesions
    assert c["achievable_debulking_percent"] == pytest.approx(100.0)
    assert c["mahuron_type"] == mahuron


# ------------------------------------------------------------------ section 3: the other Cloyd criteria
@pytest.mark.parametrize(
    ("change", "criterion", "met"),
    [
        ({"performance_status": 1}, "performance_status", True),
        ({"performance_status": 2}, "performance_status", False),  # ECOG <= 1 [D]
        ({"grade": None, "ki67_percent": 2.9}, "grade", True),  # G1 (Ki-67 < 3 %, WHO 2019)
        ({"grade": None, "ki67_percent": 3.0}, "grade", True),  # G2 from 3 %
        ({"grade": None, "ki67_percent": 20.0}, "grade", True),  # still G2 at 20 %
        ({"grade": None, "ki67_percent": 20.1}, "grade", False),  # G3 above 20 %
        ({"grade": 2, "ki67_percent": 25.0}, "grade", False),  # conflict: the higher grade (G3) is used
        ({"grade": 3, "ki67_percent": None}, "grade", False),
        ({"extrahepatic_disease": True}, "no_extrahepatic_disease", False),
    ],
)
def test_cloyd_criteria_at_their_edges(tmp_path, change, criterion, met):
    clinical = {k: v for k, v in {**RESECTABLE, **change}.items() if v is not None}
    c = _a_b(tmp_path, 95, clinical=clinical)["classification"]
    assert c["cloyd_criteria"][criterion]["met"] is met
    assert c["resectable_cloyd"] is met  # the other four criteria hold


def test_who_grade_from_ki67_at_3_and_20_percent(tmp_path):
    grades = {}
    for ki67 in (2.9, 3.0, 20.0, 20.1):
        clinical = {k: v for k, v in RESECTABLE.items() if k != "grade"} | {"ki67_percent": ki67}
        grades[ki67] = _a_b(tmp_path / str(ki67), 95, clinical=clinical)["classification"]["who_grade"]
    assert grades == {2.9: 1, 3.0: 2, 20.0: 2, 20.1: 3}


def test_a_segmented_extrahepatic_lesion_fails_cloyd_whatever_the_sidecar_says(tmp_path):
    p = _liver()
    lesion = _in_segment(p, 7, 95, y=(0, 10)) | _in_segment(p, 2, 5, y=(10, NY))
    lesion |= fill(p.shape, (slice(4, 6), slice(NY + 1, NY + 3), slice(4, 6)), 8)  # outside the liver rows
    c = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=RESECTABLE, rules=ONE_SEGMENT_RULES
    )["classification"]
    assert c["cloyd_criteria"]["no_extrahepatic_disease"]["met"] is False
    assert c["resectable_cloyd"] is False


# ------------------------------------------------------------------ section 6: sFLR thresholds
@pytest.mark.parametrize(
    ("condition", "threshold"),
    [("normal", 20.0), ("chemotherapy", 30.0), ("steatosis", 30.0), ("fibrosis", 40.0), ("cirrhosis", 40.0)],
)
@pytest.mark.parametrize("offset", [-0.1, 0.0, 0.1])
def test_sflr_threshold_of_each_liver_condition_at_its_edge(tmp_path, condition, threshold, offset):
    """Right hemihepatectomy leaves segments 1-4 (12 slices, tumour-free): FLR = 4800 voxels. The weight is
    chosen (Mosteller BSA, Vauthey TELV, inverted here) so that sFLR = threshold + offset. Adequate means
    strictly above the threshold (rules flr.comparator ">": the at-risk group is sFLR <= threshold)."""
    p = _liver()
    lesion = _in_segment(p, 6, 40, y=(5, 7))
    flr_ml = 4800 * stored_voxel_ml(tmp_path, p.affine)
    sflr = threshold + offset
    weight = weight_for_telv(flr_ml / (sflr / 100.0), 175.0)
    clinical = {**RESECTABLE, "liver_condition": condition, "height_cm": 175.0, "weight_kg": weight}
    rep = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=clinical)
    right = next(r for r in rep["remnant"]["standard_resections"] if r["name"] == "right_hepatectomy")
    assert right["flr_ml"] == pytest.approx(flr_ml, abs=1e-6)
    assert right["standardized_flr_percent"] == pytest.approx(sflr, abs=1e-5)
    assert right["threshold_percent"] == threshold
    assert right["adequate"] is (offset > 0)


@pytest.mark.parametrize(("tumour_voxels", "adequate"), [(2399, True), (2400, False), (2401, False)])
def test_measured_flr_of_the_non_tumorous_liver_at_25_percent(tmp_path, tumour_voxels, adequate):
    """Denominator "non_tumorous" (Shoup 25 %, normal liver): tumour T in segments 2-4 makes the right
    hemihepatectomy's FLR (480 mL - T) / (1200 mL - T); at T = 240 mL it is exactly 25 %."""
    p = _liver()
    lesion = fill(p.shape, (slice(2, 12), slice(0, NY), slice(0, NZ)), tumour_voxels)
    rep = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg,
        clinical={**RESECTABLE, "liver_condition": "normal"}, rules='[flr]\ndenominator = "non_tumorous"\n',
    )  # fmt: skip
    right = next(r for r in rep["remnant"]["standard_resections"] if r["name"] == "right_hepatectomy")
    expected = 100.0 * (4800 - tumour_voxels) / (LIVER_VOXELS - tumour_voxels)
    assert right["flr_percent_of_non_tumorous"] == pytest.approx(expected, abs=1e-5)
    assert right["threshold_percent"] == 25.0
    assert right["adequate"] is adequate


# ------------------------------------------------------------------ section 9: hemilivers, caudate
def _distribution(tmp_path, lesion_masks, rules=None):
    p = _liver()
    lesion = p.liver & False
    for m in lesion_masks(p):
        lesion |= m
    return run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, rules=rules)["classification"]


def _box(p, x0, x1, y=(8, 10), z=(8, 10)):
    return fill(p.shape, (slice(x0, x1), slice(*y), slice(*z)), (x1 - x0) * (y[1] - y[0]) * (z[1] - z[0]))


@pytest.mark.parametrize(
    ("layout", "distribution", "caudate_only"),
    [
        (lambda p: [_box(p, 17, 19)], "unilobar", False),  # segment 6 only
        (lambda p: [_box(p, 17, 19), _box(p, 6, 7)], "bilobar", False),  # 6 and 3
        (lambda p: [_box(p, 0, 2)], "unilobar", True),  # caudate only: not bilobar, flagged
        (lambda p: [_box(p, 0, 2), _box(p, 17, 19)], "unilobar", False),  # caudate + right: segment 1 is no side
        # a lesion over segments 4 (3 slices) and 5 (2 slices) belongs to 4 by majority: left with segment 3
        (lambda p: [_box(p, 9, 14), _box(p, 6, 7, y=(2, 4))], "unilobar", False),
        (lambda p: [_box(p, 10, 15), _box(p, 6, 7, y=(2, 4))], "bilobar", False),  # 2 in 4, 3 in 5: right
    ],
)
def test_unilobar_bilobar_and_caudate(tmp_path, layout, distribution, caudate_only):
    c = _distribution(tmp_path, layout)
    assert c["distribution"] == distribution
    assert c["caudate_only"] is caudate_only


def test_caudate_counted_with_the_left_hemiliver_makes_caudate_plus_right_bilobar(tmp_path):
    c = _distribution(tmp_path, lambda p: [_box(p, 0, 2), _box(p, 17, 19)], rules='[anatomy]\ncaudate_side = "left"\n')
    assert c["distribution"] == "bilobar"


# ------------------------------------------------------------------ planner size limits (issue 13 rules keys)
def _line_liver_treatment(tmp_path, n: int, rules: str, angle_deg: float) -> dict:
    """One lesion, a line of ``n`` voxels along the first axis of a 0.5 mm grid rotated in plane (maximum 3-D
    diameter edge to edge = n x 0.5 mm; at 12 degrees the float32 affine makes 60 voxels read 30.0000007 mm),
    in a liver without a segment map."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([0.5, 0.5, 2.5])
    shape = (140, 60, 6)
    liver = np.ones(shape, dtype=bool)
    lesion = np.zeros(shape, dtype=bool)
    lesion[10 : 10 + n, 30, 3] = True
    rep = run_analyze(tmp_path, aff, liver & ~lesion, lesion, clinical=RESECTABLE, rules=rules)
    (les,) = rep["lesions"]
    assert les["max_3d_diameter_edge_mm"] == pytest.approx(n * 0.5, abs=1e-4)
    (t,) = rep["remnant"]["resection_plan"]["lesion_treatments"]
    return t


@pytest.mark.parametrize("angle_deg", [30.0, 12.0])
@pytest.mark.parametrize(("n", "ablated"), [(59, True), (60, True), (61, False)])
def test_ablation_up_to_30_mm_inclusive(tmp_path, n, ablated, angle_deg):
    """Ablation "of lesions up to a configurable diameter, 30 mm default" (issue 4): 30.0 mm is ablatable."""
    t = _line_liver_treatment(tmp_path, n, "[planner]\nallow_enucleation = false\n", angle_deg)
    assert (t["treatment"] == "ablation") is ablated
    if not ablated:
        assert "ablation: diameter 30.5 mm > 30 mm" in t["untreated_reason"]


@pytest.mark.parametrize("angle_deg", [30.0, 12.0])
@pytest.mark.parametrize(("n", "enucleated"), [(99, True), (100, True), (101, False)])
def test_enucleation_up_to_50_mm_inclusive(tmp_path, n, enucleated, angle_deg):
    t = _line_liver_treatment(tmp_path, n, "[planner]\nallow_ablation = false\n", angle_deg)
    assert (t["treatment"] == "enucleation") is enucleated


@pytest.mark.parametrize(("n_lesions", "n_ablated"), [(6, 6), (7, 6)])
def test_at_most_6_ablations_per_operation(tmp_path, n_lesions, n_ablated):
    p = _liver()
    lesion = p.liver & False
    for i in range(n_lesions):
        lesion |= fill(p.shape, (slice(2 + 4 * i, 4 + 4 * i), slice(8, 10), slice(8, 10)), 8)
    rules = "[planner]\nallow_enucleation = false\nallow_segment_resection = false\n"
    rep = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, clinical=RESECTABLE, rules=rules)
    treatments = [t["treatment"] for t in rep["remnant"]["resection_plan"]["lesion_treatments"]]
    assert len(treatments) == n_lesions
    assert treatments.count("ablation") == n_ablated
    assert rep["classification"]["achievable_debulking_percent"] == pytest.approx(100.0 * n_ablated / n_lesions)


# ------------------------------------------------------------------ section 2: Frilling (wording [U], reading [D])
@pytest.mark.parametrize(
    ("sizes", "frilling"),
    [
        ({6: 40}, "I"),  # a single metastasis
        ({2: 51, 6: 49}, "II"),  # bilobar, the largest holds 51 % > 50 % of the tumour: a dominant bulk
        ({2: 50, 6: 50}, None),  # exactly half: no dominant lesion; involvement 0.8 % < 25 %: neither II nor III
        ({2: 1000, 6: 1000, 8: 999}, None),  # no dominant lesion, involvement 2999 / 12000 < 25 %
        ({2: 1000, 6: 1000, 8: 1000}, "III"),  # exactly 25 %: the rules' "at least" (diffuse_min_involvement_percent)
        ({2: 1000, 6: 1000, 8: 1001}, "III"),
        ({6: 30, 7: 20}, None),  # several lesions in one hemiliver: the wording covers no type
    ],
)
def test_frilling_types_at_their_edges(tmp_path, sizes, frilling):
    p = _liver()
    lesion = p.liver & False
    for seg, n in sizes.items():
        lesion |= _in_segment(p, seg, n)
    c = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg)["classification"]
    assert c["frilling_type"] == frilling
    assert any("Frilling 2009 wording unverified" in r for r in c["rationale"])


def test_frilling_iii_at_exactly_25_percent_on_any_voxel_size(tmp_path):
    """208 liver voxels of 0.064 mL (4 mm, oblique), two 26-voxel lesions, one per hemiliver: involvement is
    exactly 25 % but 100 x (52 x v) / (208 x v) reads 24.999999999999996 %: it said 'involvement 25.0% < 25%:
    neither II nor III'. Exactly 25 % is the rules' "at least" (diffuse_min_involvement_percent): type III."""
    aff = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(7.0, -5.0, 11.0))
    v = stored_voxel_ml(tmp_path / "grid", aff)
    assert 100.0 * (52 * v) / (208 * v) < 25.0  # the grid this test needs
    shape = (10, 15, 4)
    liver = np.zeros(shape, dtype=bool)
    liver[1:9, 1:14, 1:3] = True
    segments = np.where(liver, np.where(np.arange(10)[:, None, None] < 5, 2, 6), 0)  # left 2, right 6
    lesion = np.zeros(shape, dtype=bool)
    lesion[1, 1:14, 1:3] = lesion[8, 1:14, 1:3] = True
    rep = run_analyze(tmp_path, aff, liver & ~lesion, lesion, segments=segments)
    assert rep["involvement_percent"] == pytest.approx(25.0, abs=1e-9)
    assert rep["classification"]["frilling_type"] == "III"


# ------------------------------------------------------------------ section 9: the standard resections
def test_standard_resections_remove_the_brisbane_segments_and_subtract_tumour_in_the_remnant(tmp_path):
    """Each resection's FLR = non-tumorous liver of the kept segments (the tumour inside the remnant subtracted,
    section 6), counted here from the slabs: segment s holds 400 voxels per x-slice."""
    p = _liver()
    lesion = _in_segment(p, 3, 150) | _in_segment(p, 6, 90)
    rep = run_analyze(tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg)
    v = stored_voxel_ml(tmp_path / "grid", p.affine)
    tumour = {3: 150, 6: 90}
    got = {r["name"]: r for r in rep["remnant"]["standard_resections"]}
    assert set(got) == set(BRISBANE_RESECTIONS)
    for name, removed in BRISBANE_RESECTIONS.items():
        kept = [s for s in range(1, 9) if s not in removed]
        assert got[name]["removed_segments"] == removed
        assert got[name]["remnant_segments"] == kept
        voxels = sum((X[s][1] - X[s][0]) * NY * NZ - tumour.get(s, 0) for s in kept)
        assert got[name]["flr_ml"] == pytest.approx(voxels * v, abs=1e-5)
        assert got[name]["tumor_in_remnant_ml"] == pytest.approx(sum(tumour.get(s, 0) for s in kept) * v, abs=1e-5)
