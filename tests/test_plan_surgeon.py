"""Plans a liver surgeon would sign: resection names, segment involvement, FLR threshold after chemotherapy.

Through ``netlm analyze`` on the oblique anisotropic slab liver of ``surgical_phantoms`` (30 x-slices of
20 x 20 voxels; segments 1..8 as slabs of 2, 3, 3, 4, 4, 4, 5, 5 slices). The expected plans follow from
the voxel counts chosen here and from clinical_rules.md sections 6 and 9.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_studies import run_analyze, stored_voxel_ml
from phantoms import write_nifti
from rules_coverage import covers
from surgical_phantoms import NY, NZ, SLICES, SlabLiver, weight_for_telv

from netlm_imaging.cli import main

#: x-slice ranges of the segments in the slab liver
X = {1: (0, 2), 2: (2, 5), 3: (5, 8), 4: (8, 12), 5: (12, 16), 6: (16, 20), 7: (20, 25), 8: (25, 30)}
#: Only whole-segment resection treats a lesion (no wedge, no ablation).
RESECTION_ONLY = "[planner]\nallow_enucleation = false\nallow_ablation = false\n"
CLINICAL = {
    "symptoms": "none",
    "grade": 1,
    "ki67_percent": 2.0,
    "extrahepatic_disease": False,
    "primary_resected": True,
    "liver_condition": "normal",
    "performance_status": 0,
}


def _liver() -> SlabLiver:
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    assert {s: p.ranges[s] for s in X} == X
    return p


def _box(p: SlabLiver, x: tuple[int, int], y: tuple[int, int] = (2, 6), z: tuple[int, int] = (2, 6)) -> np.ndarray:
    m = np.zeros(p.shape, dtype=bool)
    m[slice(*x), slice(*y), slice(*z)] = True
    return m


def test_segments_4_5_8_are_a_central_hepatectomy(tmp_path):
    """One lesion in each of segments 4, 5 and 8, resection only: the plan keeping the most FLR resects exactly
    4 + 5 + 8 (remnant 1, 2, 3, 6, 7: contiguous through segment 1, with the left pedicle and the right
    posterior pedicle). That is the left medial plus the right anterior section: a central hepatectomy
    (mesohepatectomy), which the plan named 'Right anterior sectionectomy + segmentectomy 4'."""
    p = _liver()
    lesion = _box(p, (9, 11)) | _box(p, (13, 15)) | _box(p, (26, 28))
    rep = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=CLINICAL, rules=RESECTION_ONLY
    )
    plan = rep["remnant"]["resection_plan"]
    assert plan["resected_segments"] == [4, 5, 8]
    assert plan["resection_name"] == "Central hepatectomy (mesohepatectomy)"
    assert plan["treated_lesion_count"] == 3
    rows = {r["name"]: r for r in rep["remnant"]["standard_resections"]}
    assert rows["central_hepatectomy"]["removed_segments"] == [4, 5, 8]
    assert rows["left_medial_sectionectomy"]["removed_segments"] == [4]


def test_two_adjacent_segments_are_a_bisegmentectomy(tmp_path):
    """One lesion across the 5 | 6 boundary (2 slices in each): the plan resects 5 + 6, the Brisbane 2000
    third-order 'bisegmentectomy'; it read 'segmentectomies 5+6'."""
    p = _liver()
    lesion = _box(p, (14, 18))
    rep = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=CLINICAL, rules=RESECTION_ONLY
    )
    plan = rep["remnant"]["resection_plan"]
    assert plan["resected_segments"] == [5, 6]
    assert plan["resection_name"] == "bisegmentectomy 5+6"


def _spilling_lesion(p: SlabLiver) -> np.ndarray:
    """A 3 x 4 x 4 box in segment 5 (48 voxels) and one voxel face-connected to it across the 4 | 5 boundary."""
    lesion = _box(p, (12, 15))
    lesion[11, 2, 2] = True
    assert p.seg[11, 2, 2] == 4
    assert set(np.unique(p.seg[12:15, 2:6, 2:6])) == {5}
    return lesion


def _spill_plan(tmp_path, rules: str = "") -> dict:
    p = _liver()
    lesion = _spilling_lesion(p)
    rep = run_analyze(
        tmp_path, p.affine, p.liver & ~lesion, lesion, segments=p.seg, clinical=CLINICAL, rules=RESECTION_ONLY + rules
    )
    assert len(rep["lesions"]) == 1
    return rep["remnant"]["resection_plan"]


def test_one_voxel_over_a_segment_boundary_does_not_make_the_plan_resect_that_segment(tmp_path):
    """49 voxels of 0.1 mL: 48 in segment 5, 1 (0.1 mL, 1/49 = 2.0 % of the lesion) in segment 4. The shipped
    tolerance (0.5 mL or 5 % of the lesion) makes that voxel a spill: the plan resects segment 5 alone and lists
    the ignored overlap; the plan resected segments 4 + 5 for it."""
    plan = _spill_plan(tmp_path / "shipped")
    v = stored_voxel_ml(tmp_path / "grid", _liver().affine)
    assert plan["resected_segments"] == [5]
    assert plan["treated_lesion_count"] == 1
    [spill] = plan["ignored_segment_overlaps"]
    assert (spill["lesion_id"], spill["segment"], spill["voxels"], spill["segment_resected"]) == (1, 4, 1, False)
    assert spill["volume_ml"] == pytest.approx(v, abs=1e-6)
    assert spill["fraction_of_lesion"] == pytest.approx(1 / 49, abs=1e-6)  # the report rounds to 6 places
    assert any("segment 4 is kept and the transection plane must include that part" in n for n in plan["notes"])


@covers("planner.segment_involvement_min_ml")
def test_a_volume_tolerance_below_the_spill_counts_it_as_involvement(tmp_path):
    """segment_involvement_min_ml = 0.05 mL, below the 0.1 mL voxel: segment 4 is involved, the plan takes 4 + 5."""
    plan = _spill_plan(tmp_path, "segment_involvement_min_ml = 0.05\n")
    assert plan["resected_segments"] == [4, 5]
    assert plan["ignored_segment_overlaps"] == []


@covers("planner.segment_involvement_min_fraction")
def test_a_fraction_tolerance_below_the_spill_counts_it_as_involvement(tmp_path):
    """segment_involvement_min_fraction = 0.02, below the spill's 1/49 = 0.0204: the plan takes 4 + 5."""
    plan = _spill_plan(tmp_path, "segment_involvement_min_fraction = 0.02\n")
    assert plan["resected_segments"] == [4, 5]
    assert plan["ignored_segment_overlaps"] == []


# ------------------------------------------------------------------ the FLR threshold after chemotherapy
#: TELV 1920 mL (Mosteller BSA, Vauthey TELV at 175 cm): the right hemihepatectomy's remnant, segments 1-4 = 12
#: slices x 400 voxels x 0.1 mL = 480 mL, is 25 % of it: above the normal liver's 20 %, below 30 % after
#: chemotherapy (clinical_rules.md section 6, Kishi / Shindoh).
BODY = {"height_cm": 175.0, "weight_kg": weight_for_telv(1920.0, 175.0)}


def _right_liver_lesion(tmp_path, clinical: dict) -> dict:
    """One lesion across segments 5-8 (x 13..27, 15 x 4 x 4 voxels): only a right hemihepatectomy treats it."""
    p = _liver()
    lesion = _box(p, (13, 28))
    return run_analyze(
        tmp_path,
        p.affine,
        p.liver & ~lesion,
        lesion,
        segments=p.seg,
        clinical={**CLINICAL, **BODY, **clinical},
        rules=RESECTION_ONLY,
    )


def test_a_normal_liver_keeps_the_normal_threshold_without_a_warning(tmp_path):
    rep = _right_liver_lesion(tmp_path, {"liver_condition": "normal"})
    assert rep["remnant"]["flr_threshold_percent"] == 20.0
    assert rep["remnant"]["resection_plan"]["resected_segments"] == [5, 6, 7, 8]
    assert not [w for w in rep["warnings"] if "liver_condition" in w]


def test_normal_liver_with_chemotherapy_uses_the_chemotherapy_threshold_and_says_so(tmp_path):
    """liver_condition 'normal' beside chemotherapy 'yes': the threshold after chemotherapy (30 %) decides, and
    the warning names both inputs and the threshold used; the report said nothing of the disagreement."""
    rep = _right_liver_lesion(tmp_path, {"liver_condition": "normal", "chemotherapy": "yes"})
    assert rep["remnant"]["flr_threshold_percent"] == 30.0
    assert rep["remnant"]["liver_condition"] == "chemotherapy"
    assert rep["remnant"]["resection_plan"]["resected_segments"] == []  # 25 % is below 30 %
    [w] = [w for w in rep["warnings"] if "liver_condition" in w]
    assert w.startswith("clinical file clinical.json: liver_condition 'normal' but chemotherapy 'yes': ")
    assert "the FLR threshold used is the 'chemotherapy' one, 30% of telv" in w
    assert "not the normal liver's 20%" in w


def test_a_chemotherapy_cycle_count_is_chemotherapy(tmp_path):
    """chemotherapy_cycles 6 beside liver_condition 'normal': was refused as an unknown clinical field."""
    rep = _right_liver_lesion(tmp_path, {"liver_condition": "normal", "chemotherapy_cycles": 6})
    assert rep["remnant"]["flr_threshold_percent"] == 30.0
    [w] = [w for w in rep["warnings"] if "liver_condition" in w]
    assert "liver_condition 'normal' but chemotherapy_cycles 6: the FLR threshold used is the 'chemotherapy'" in w
    used = rep["classification"]["clinical_inputs_used"]
    assert used["chemotherapy_cycles"] == {"value": 6, "source": "clinical file clinical.json"}


def test_a_cycle_count_contradicting_the_chemotherapy_flag_is_refused(tmp_path, capsys):
    p = _liver()
    lesion = _box(p, (13, 28))
    (tmp_path / "clinical.json").write_text(json.dumps({"chemotherapy": "no", "chemotherapy_cycles": 6}))
    write_nifti(tmp_path / "ct.nii.gz", np.where(p.liver, 60, -100).astype(np.int16), p.affine)
    write_nifti(tmp_path / "seg.nii.gz", np.where(lesion, 2, np.where(p.liver, 1, 0)).astype(np.uint8), p.affine)
    argv = ["analyze", "--image", str(tmp_path / "ct.nii.gz"), "--seg", str(tmp_path / "seg.nii.gz")]
    argv += ["--clinical", str(tmp_path / "clinical.json"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert "clinical.json: clinical fields chemotherapy 'no' and chemotherapy_cycles 6 disagree" in err
    assert "Traceback" not in err
