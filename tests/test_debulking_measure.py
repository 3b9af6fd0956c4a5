"""The achievable debulking is the most the plan can treat ON THE MEASURE THE DECISION READS.

clinical_rules.md section 4: "% debulked" is volume (primary) or lesion count (``debulking.primary_measure``);
Mahuron 2023 type 2 needs >70 % debulking achievable. With the count as the measure, the plan must
treat the most lesions the FLR allows, not the most volume.

Phantom: a 10.8 mL lesion that only a wedge resection can take (40 mm, above the 30 mm ablation
limit) and three 0.8 mL lesions that ablation takes; zone costs computed here with a k-d tree on
the oblique grid (surgical_phantoms.zone_mask), independently of the planner; the FLR budget is
set between the big wedge's cost and that cost plus one ablation, so the plan treats either the big
lesion (81.8 % of the volume, 1 of 4 lesions) or the three small ones (18.2 %, 3 of 4 = 75 %).
"""

from __future__ import annotations

import pytest
from rules_coverage import user_rules
from surgical_phantoms import NY, NZ, SLICES, VOXEL_ML, SlabLiver, assess, parenchyma_ml_by_segment, zone_mask

from netlm_imaging.clinical.inputs import ClinicalInputs


def _scene():
    p = SlabLiver(SLICES, ny=NY, nz=NZ)
    big = p.add_in_segment(7, 3, 6, 6, x_off=1, y0=7, z0=7, max_3d_diameter_mm=40.0)  # 108 voxels
    small = [p.add_in_segment(s, 2, 2, 2, x_off=1, y0=9, z0=9, max_3d_diameter_mm=20.0) for s in (2, 4, 6)]
    cost = {
        les.id: sum(parenchyma_ml_by_segment(p, zone_mask(p, les.id, margin)).values())
        for les, margin in [(big, 10.0), *((s, 5.0) for s in small)]  # planner.margin_mm, ablation_margin_mm
    }
    nt_ml = (p.liver.sum() - (p.labels > 0).sum()) * VOXEL_ML
    c_small = max(cost[s.id] for s in small)
    budget = cost[big.id] + 0.5 * min(cost[s.id] for s in small)
    assert budget >= 3 * c_small  # the three small ones fit together, the big one with any small one does not
    threshold = 100.0 * (nt_ml - budget) / nt_ml
    return p, big, small, threshold


@pytest.mark.parametrize(
    ("measure", "achievable", "treated"), [("volume", 100 * 108 / 132, "big"), ("count", 75.0, "small")]
)
def test_the_plan_maximises_the_primary_measure(tmp_path, measure, achievable, treated):
    p, big, small, threshold = _scene()
    rules = user_rules(
        tmp_path,
        {
            "planner.allow_segment_resection": False,
            "flr.denominator": "non_tumorous",
            "flr.non_tumorous_threshold_percent.normal": threshold,
            "debulking.primary_measure": measure,
        },
    )
    a = assess(p.ctx(), ClinicalInputs(symptoms="none", liver_condition="normal"), rules)
    got = {t["lesion_id"]: t["treatment"] for t in a.remnant["resection_plan"]["lesion_treatments"]}
    if treated == "big":
        assert got == {big.id: "enucleation", **{s.id: None for s in small}}
    else:
        assert got == {big.id: None, **{s.id: "ablation" for s in small}}
    c = a.classification
    assert c["achievable_debulking_percent"] == pytest.approx(achievable)
    assert c["mahuron_type"] == "2"  # >= 70 % on its measure, not complete clearance (Mahuron 2023 [C])


@pytest.mark.parametrize(("symptoms", "named"), [(None, True), ("none", False)])
def test_an_unknown_achievable_debulking_also_names_missing_symptoms(tmp_path, symptoms, named):
    """No height/weight and no fallback: no plan, so the type is open; below 70 % the symptoms would decide
    3 vs 4 (Mahuron 2023, clinical_rules.md section 1), so a missing symptoms input is named with it."""
    p, *_ = _scene()
    rules = user_rules(tmp_path, {"flr.fallback_denominator": "none"})
    c = assess(p.ctx(), ClinicalInputs(symptoms=symptoms, liver_condition="normal"), rules).classification
    assert c["mahuron_type"] is None
    assert "height/weight" in c["missing_inputs"]
    assert ("symptoms" in c["missing_inputs"]) is named
