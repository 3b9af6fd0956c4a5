"""Plans a liver surgeon would sign: resection names, segment involvement, FLR threshold after chemotherapy.

Through ``netlm analyze`` on the oblique anisotropic slab liver of ``surgical_phantoms`` (30 x-slices of
20 x 20 voxels; segments 1..8 as slabs of 2, 3, 3, 4, 4, 4, 5, 5 slices). The expected plans follow from
the voxel counts chosen here and from clinical_rules.md sections 6 and 9.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_studies import run_analyze, stored_voxel_ml
from rules_coverage import covers
from surgical_phantoms import NY, NZ, SLICES, SlabLiver

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
